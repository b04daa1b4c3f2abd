import Foundation
import Testing

@testable import AuditLog

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Audit log: entry times")
struct TimestampTests {
    /// What `gmtime_r` says of `ms` milliseconds since 1970, in the entries' format.
    func reference(_ ms: Int64) -> String {
        var seconds = time_t(ms / 1000 - (ms < 0 && ms % 1000 != 0 ? 1 : 0))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int((ms % 1000 + 1000) % 1000)
        )
    }

    @Test("times are written as gmtime counts them, from year 0 to 9999 and beyond, and parse back exactly")
    func agreesWithGmtime() {
        var generator = SystemRandomNumberGenerator()
        let year0 = Int64(-62_167_219_200_000)  // 0000-01-01T00:00:00.000Z
        let year10000 = Int64(253_402_300_800_000)  // 10000-01-01T00:00:00.000Z
        var samples: [Int64] = [0, -1, 1, 999, -999, -1000, year0, year0 - 1, year10000 - 1, year10000]
        // 2000-02-29, its last millisecond, 2100-03-01 and 1900-03-01 (no 29 February in either year)
        samples += [951_782_400_000, 951_868_799_999, 4_107_542_400_000, -2_203_891_200_000]
        samples += (0..<20_000).map { _ in
            Int64.random(in: (year0 - 10_000_000_000)...(year10000 + 10_000_000_000), using: &generator)
        }
        for ms in samples {
            let date = Date(timeIntervalSince1970: Double(ms) / 1000)
            let text = Timestamp.format(date)
            #expect(text == reference(ms), "\(ms)")
            if (year0..<year10000).contains(ms) { #expect(Timestamp.parse(text) == date, "\(ms)") }
        }
    }
}
