import CHalf
import Testing

@Suite("Watermark: bulk half-precision conversion")
struct HalfTests {
    @Test("every half converts to the same float as Swift's Float16, and back to the same bits")
    func everyHalf() {
        let halves = (0...0xFFFF).map { UInt16($0) }
        var floats = [Float](repeating: 0, count: halves.count)
        mvault_half_to_float(halves, &floats, halves.count)
        var back = [UInt16](repeating: 0, count: halves.count)
        mvault_float_to_half(floats, &back, floats.count)
        for (h, f) in zip(halves, floats) {
            let expected = Float(Float16(bitPattern: h))
            #expect(f.bitPattern == expected.bitPattern || (f.isNaN && expected.isNaN), "\(h)")
        }
        // Quiet NaNs and every number round-trip bit for bit.
        for h in halves where !Float16(bitPattern: h).isSignalingNaN { #expect(back[Int(h)] == h, "\(h)") }
    }

    @Test("floats round to nearest even exactly as Float16(x) does, ties and overflow included")
    func rounding() {
        var values: [Float] = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e10, -1e10, 5.96e-8, 2.98e-8, 2.99e-8, 1e-9]
        // Exactly halfway between neighbours, both parities.
        for h in stride(from: 0x0400, to: 0x7BFF, by: 97) {
            let a = Float(Float16(bitPattern: UInt16(h)))
            let b = Float(Float16(bitPattern: UInt16(h + 1)))
            values += [(a + b) / 2, -(a + b) / 2, a.nextUp, b.nextDown]
        }
        var state: UInt32 = 12345
        for _ in 0..<100_000 {
            state = state &* 1_664_525 &+ 1_013_904_223
            values.append(Float(bitPattern: state))
        }
        var bits = [UInt16](repeating: 0, count: values.count)
        mvault_float_to_half(values, &bits, values.count)
        for (x, b) in zip(values, bits) where !x.isNaN {
            #expect(b == Float16(x).bitPattern, "\(x)")
        }
    }

    @Test("moving a row: eight at a time gives the same halves and the same unmoved columns as one at a time")
    func moveMatchesScalar() {
        let n = 4096
        var state: UInt32 = 99
        func next() -> UInt32 {
            state = state &* 1_664_525 &+ 1_013_904_223
            return state
        }
        var row = (0..<n).map { _ in Float16(Float(Int32(bitPattern: next())) / Float(Int32.max) * 0.08).bitPattern }
        row[5] = 0x7C00  // +inf
        row[17] = 0x7E01  // NaN
        row[18] = 0x8000  // −0
        let w = row.map { Float(Float16(bitPattern: $0)) }
        let s = (0..<n).map { _ in Float(Int(next() % 5) - 2) }
        for scale: Float in [0.0001, 0.00001, 0.000001] {
            var whole = row
            var unmoved = [UInt32](repeating: 0, count: n)
            let count = mvault_half_move(&whole, w, s, scale, &unmoved, n)
            var pieces = row
            var scalar: [UInt32] = []
            for start in stride(from: 0, to: n, by: 7) {
                let m = min(7, n - start)
                var found = [UInt32](repeating: 0, count: m)
                let k = pieces.withUnsafeMutableBufferPointer { p in
                    w.withUnsafeBufferPointer { wp in
                        s.withUnsafeBufferPointer { sp in
                            mvault_half_move(
                                p.baseAddress! + start, wp.baseAddress! + start, sp.baseAddress! + start, scale, &found,
                                m)
                        }
                    }
                }
                scalar += found[0..<k].map { $0 + UInt32(start) }
            }
            #expect(whole == pieces, "scale \(scale)")
            #expect(Array(unmoved[0..<count]) == scalar, "scale \(scale)")
            #expect(whole[5] == 0x7C00 && whole[17] == 0x7E01)
            // Where s = 0 nothing moves.
            #expect(zip(zip(whole, row), s).allSatisfy { pair, chip in chip != 0 || pair.0 == pair.1 })
        }
    }
}
