import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The times ModelVault writes into what it signs (audit entries, backup manifests):
/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, parsed strictly and without ICU, since they come back from
/// places an attacker may write.
public enum Timestamp {
    /// RFC 3339 UTC with milliseconds, rounded to the nearest one, computed from whole
    /// milliseconds so that decoding and encoding again gives the same text.
    public static func format(_ date: Date) -> String {
        var out: [UInt8] = []
        write(date, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `format(date)` to `out` as UTF-8. Years 0…9999 (every entry has one) are worked
    /// out with integer arithmetic — the civil date of a day count in the proleptic Gregorian
    /// calendar, as `gmtime` counts — without `gmtime_r`, which takes glibc's time-zone lock.
    static func write(_ date: Date, to out: inout [UInt8]) {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let (seconds, millis) = floorDivide(ms, 1000)
        let (days, secondOfDay) = floorDivide(seconds, 86_400)
        let (year, month, day) = civil(days: days)
        guard (0...9999).contains(year) else {
            var t = time_t(seconds)
            var parts = tm()
            gmtime_r(&t, &parts)
            let text = String(
                format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(millis))
            out.append(contentsOf: text.utf8)
            return
        }
        // Written into 24 bytes on the stack and appended once: appending digit by digit checked
        // the array's uniqueness and capacity for each.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { text in
            var at = 0
            func put(_ value: Int64, digits: Int, then separator: UInt8) {
                var rest = value
                for i in stride(from: digits - 1, through: 0, by: -1) {
                    text[at + i] = UInt8(48 + rest % 10)
                    rest /= 10
                }
                text[at + digits] = separator
                at += digits + 1
            }
            put(year, digits: 4, then: UInt8(ascii: "-"))
            put(month, digits: 2, then: UInt8(ascii: "-"))
            put(day, digits: 2, then: UInt8(ascii: "T"))
            put(secondOfDay / 3600, digits: 2, then: UInt8(ascii: ":"))
            put(secondOfDay / 60 % 60, digits: 2, then: UInt8(ascii: ":"))
            put(secondOfDay % 60, digits: 2, then: UInt8(ascii: "."))
            put(millis, digits: 3, then: UInt8(ascii: "Z"))
            out.append(contentsOf: text)
        }
    }

    /// Quotient rounded down, and the remainder that goes with it (never negative).
    static func floorDivide(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        let (q, r) = a.quotientAndRemainder(dividingBy: b)
        return r < 0 ? (q - 1, r + b) : (q, r)
    }

    /// The (year, month, day) of `days` after 1970-01-01, proleptic Gregorian (H. Hinnant's
    /// `civil_from_days`).
    static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// The inverse of `format`, exactly: `YYYY-MM-DDTHH:MM:SS.mmmZ` in the proleptic Gregorian
    /// calendar (as `gmtime` and `timegm` count), nothing else.
    public static func parse(_ text: String) -> Date? {
        let b = Array(text.utf8)
        guard b.count == 24, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54, b[13] == 0x3A, b[16] == 0x3A, b[19] == 0x2E,
            b[23] == 0x5A
        else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var n = 0
            for i in range {
                guard (0x30...0x39).contains(b[i]) else { return nil }
                n = n * 10 + Int(b[i] - 0x30)
            }
            return n
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19), let millis = number(20..<23),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60
        else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = timegm(&parts)
        // timegm normalises 31 February into March: such a date is not one.
        guard parts.tm_mday == Int32(day), parts.tm_mon == Int32(month - 1) else { return nil }
        return Date(timeIntervalSince1970: (Double(Int64(seconds) * 1000 + Int64(millis))) / 1000)
    }
}
