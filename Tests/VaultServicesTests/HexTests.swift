import Testing
import VaultCore

@Suite("Hex")
struct HexTests {
    @Test("encode, append and decode agree: a fixed vector, every byte value, and random lengths")
    func agree() {
        #expect(Hex.encode([0x00, 0x01, 0x7F, 0x80, 0xAB, 0xFF]) == "00017f80abff")
        let every = (0...255).map { UInt8($0) }
        let text = Hex.encode(every)
        #expect(Hex.decode(text) == every)
        #expect(Hex.decode(text.uppercased()) == every)
        for count in [0, 1, 31, 32, 33, 200] {
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255) }
            var out: [UInt8] = Array("x=".utf8)
            bytes.withUnsafeBytes { Hex.append($0, to: &out) }
            #expect(String(decoding: out, as: UTF8.self) == "x=" + Hex.encode(bytes))
        }
        #expect((0..<16).map { Hex.digit(UInt8($0)) } == Array("0123456789abcdef".utf8))
    }

    @Test("decode refuses an odd length and non-hex characters")
    func refuses() {
        #expect(Hex.decode("abc") == nil)
        #expect(Hex.decode("zz") == nil)
        #expect(Hex.decode("0g") == nil)
        #expect(Hex.decode("") == [])
    }

    @Test("decode into a buffer: exactly its size, and nothing else")
    func intoBuffer() {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 4) { out in
            #expect(Hex.decode("00017FaB", into: out))
            #expect(Array(out) == [0x00, 0x01, 0x7F, 0xAB])
            #expect(!Hex.decode("00017f", into: out))
            #expect(!Hex.decode("00017fab00", into: out))
            #expect(!Hex.decode("00017fag", into: out))
            #expect(!Hex.decode("00017fé", into: out))
        }
    }
}
