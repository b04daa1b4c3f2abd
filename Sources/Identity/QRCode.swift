/// A QR code (ISO/IEC 18004) for short text such as an otpauth:// URI: byte mode, error
/// correction level M, versions 1–10 (up to 213 bytes), drawn for a terminal.
///
/// Not cryptography: a layout of bits that authenticator apps scan. The test suite compares every
/// module, for every mask, with the independent Python `qrcode` package.
public struct QRCode: Sendable {
    /// Modules, row by row; true is dark.
    public let modules: [[Bool]]
    public let version: Int
    public let mask: Int
    public var size: Int { modules.count }

    /// Error correction level M, per version 1–10: EC codewords per block, and the blocks'
    /// data codeword counts.
    static let blocks: [(ec: Int, data: [Int])] = [
        (10, [16]), (16, [28]), (26, [44]), (18, [32, 32]), (24, [43, 43]), (16, [27, 27, 27, 27]),
        (18, [31, 31, 31, 31]), (22, [38, 38, 39, 39]), (22, [36, 36, 36, 37, 37]), (26, [43, 43, 43, 43, 44]),
    ]

    static let alignment: [[Int]] = [
        [], [6, 18], [6, 22], [6, 26], [6, 30], [6, 34], [6, 22, 38], [6, 24, 42], [6, 26, 46], [6, 28, 50],
    ]

    public enum QRError: Error, Equatable {
        case tooLong(bytes: Int)
    }

    /// Encodes `text` in the smallest version that holds it; `mask` nil picks the mask with the
    /// lowest penalty, as the standard says.
    public init(text: String, mask: Int? = nil) throws(QRError) {
        let bytes = Array(text.utf8)
        guard
            let version = (1...10).first(where: { v in
                let countBits = v < 10 ? 8 : 16
                return 4 + countBits + bytes.count * 8 <= Self.blocks[v - 1].data.reduce(0, +) * 8
            })
        else { throw .tooLong(bytes: bytes.count) }
        let codewords = Self.codewords(bytes, version: version)
        var best: (penalty: Int, grid: Grid)?
        for candidate in mask.map({ [$0] }) ?? Array(0..<8) {
            var grid = Grid(version: version)
            grid.place(codewords, mask: candidate)
            grid.drawFormat(mask: candidate)
            let penalty = mask == nil ? grid.penalty : 0
            if best == nil || penalty < best!.penalty { best = (penalty, grid) }
        }
        self.version = version
        self.mask = best!.grid.mask
        self.modules = best!.grid.dark
    }

    /// Data and error correction codewords, interleaved.
    static func codewords(_ bytes: [UInt8], version: Int) -> [UInt8] {
        let layout = blocks[version - 1]
        let capacity = layout.data.reduce(0, +)
        var bits: [Bool] = []
        func put(_ value: Int, _ count: Int) {
            for i in stride(from: count - 1, through: 0, by: -1) { bits.append((value >> i) & 1 == 1) }
        }
        put(0b0100, 4)
        put(bytes.count, version < 10 ? 8 : 16)
        for byte in bytes { put(Int(byte), 8) }
        put(0, min(4, capacity * 8 - bits.count))
        while bits.count % 8 != 0 { bits.append(false) }
        var data: [UInt8] = stride(from: 0, to: bits.count, by: 8).map { start in
            bits[start..<start + 8].reduce(0) { $0 << 1 | ($1 ? 1 : 0) }
        }
        var pad: UInt8 = 0xEC
        while data.count < capacity {
            data.append(pad)
            pad = pad == 0xEC ? 0x11 : 0xEC
        }
        var dataBlocks: [[UInt8]] = []
        var offset = 0
        for count in layout.data {
            dataBlocks.append(Array(data[offset..<offset + count]))
            offset += count
        }
        let ecBlocks = dataBlocks.map { ReedSolomon.remainder($0, degree: layout.ec) }
        var result: [UInt8] = []
        for i in 0..<(layout.data.max() ?? 0) {
            for block in dataBlocks where i < block.count { result.append(block[i]) }
        }
        for i in 0..<layout.ec {
            for block in ecBlocks { result.append(block[i]) }
        }
        return result
    }

    /// Two module rows per text line (upper and lower half blocks), with a 2-module quiet zone.
    /// Light modules are drawn as blocks, so the code reads right on the usual dark terminal.
    public var terminalText: String {
        let quiet = 2
        let span = size + 2 * quiet
        func light(_ row: Int, _ column: Int) -> Bool {
            let r = row - quiet
            let c = column - quiet
            guard r >= 0, r < size, c >= 0, c < size else { return true }
            return !modules[r][c]
        }
        var lines: [String] = []
        for row in stride(from: 0, to: span, by: 2) {
            var line = ""
            for column in 0..<span {
                let top = light(row, column)
                let bottom = row + 1 < span ? light(row + 1, column) : false
                line += top ? (bottom ? "█" : "▀") : (bottom ? "▄" : " ")
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}

/// The module grid while a code is drawn.
struct Grid {
    let version: Int
    let size: Int
    var dark: [[Bool]]
    /// Function patterns (finders, timing, alignment, format and version areas) are reserved.
    var reserved: [[Bool]]
    var mask = 0

    init(version: Int) {
        self.version = version
        size = 17 + 4 * version
        dark = Array(repeating: Array(repeating: false, count: size), count: size)
        reserved = dark
        for (r, c) in [(0, 0), (0, size - 7), (size - 7, 0)] { drawFinder(r, c) }
        for i in 8..<size - 8 {
            set(6, i, i % 2 == 0)
            set(i, 6, i % 2 == 0)
        }
        let centers = QRCode.alignment[version - 1]
        for r in centers {
            for c in centers
            where !(r == 6 && c == 6) && !(r == 6 && c == centers.last!) && !(r == centers.last! && c == 6) {
                for dr in -2...2 {
                    for dc in -2...2 { set(r + dr, c + dc, max(abs(dr), abs(dc)) != 1) }
                }
            }
        }
        // Format areas (filled in later) and the dark module.
        for i in 0..<9 {
            reserved[8][i] = true
            reserved[i][8] = true
        }
        for i in 0..<8 {
            reserved[8][size - 1 - i] = true
            reserved[size - 1 - i][8] = true
        }
        set(size - 8, 8, true)
        if version >= 7 {
            let bits = Self.bch(version, generator: 0x1F25, shift: 12)
            for i in 0..<18 {
                let on = (bits >> i) & 1 == 1
                set(size - 11 + i % 3, i / 3, on)
                set(i / 3, size - 11 + i % 3, on)
            }
        }
    }

    mutating func set(_ r: Int, _ c: Int, _ on: Bool) {
        dark[r][c] = on
        reserved[r][c] = true
    }

    mutating func drawFinder(_ top: Int, _ left: Int) {
        for dr in -1...7 {
            for dc in -1...7 {
                let r = top + dr
                let c = left + dc
                guard r >= 0, r < size, c >= 0, c < size else { continue }
                let ring = max(abs(dr - 3), abs(dc - 3))
                set(r, c, ring != 2 && ring != 4)
            }
        }
    }

    /// Places codewords in the two-column zigzag from the bottom right, skipping the timing
    /// column and reserved modules, applying `mask` to each data module.
    mutating func place(_ codewords: [UInt8], mask: Int) {
        self.mask = mask
        var bit = 0
        let total = codewords.count * 8
        var column = size - 1
        var upward = true
        while column > 0 {
            if column == 6 { column -= 1 }
            for step in 0..<size {
                let r = upward ? size - 1 - step : step
                for c in [column, column - 1] where !reserved[r][c] {
                    var on = false
                    if bit < total { on = (codewords[bit / 8] >> (7 - bit % 8)) & 1 == 1 }
                    bit += 1
                    dark[r][c] = on != Self.masked(mask, r, c)
                }
            }
            upward.toggle()
            column -= 2
        }
    }

    static func masked(_ mask: Int, _ r: Int, _ c: Int) -> Bool {
        switch mask {
        case 0: (r + c) % 2 == 0
        case 1: r % 2 == 0
        case 2: c % 3 == 0
        case 3: (r + c) % 3 == 0
        case 4: (r / 2 + c / 3) % 2 == 0
        case 5: (r * c) % 2 + (r * c) % 3 == 0
        case 6: ((r * c) % 2 + (r * c) % 3) % 2 == 0
        default: ((r + c) % 2 + (r * c) % 3) % 2 == 0
        }
    }

    /// Level M (bits 00) and the mask, BCH-coded and masked with 0x5412, in both copies.
    mutating func drawFormat(mask: Int) {
        let bits = Self.bch(mask, generator: 0x537, shift: 10) ^ 0x5412
        func bit(_ i: Int) -> Bool { (bits >> i) & 1 == 1 }
        for i in 0..<6 { dark[i][8] = bit(i) }
        dark[7][8] = bit(6)
        dark[8][8] = bit(7)
        dark[8][7] = bit(8)
        for i in 9..<15 { dark[8][14 - i] = bit(i) }
        for i in 0..<8 { dark[8][size - 1 - i] = bit(i) }
        for i in 8..<15 { dark[size - 15 + i][8] = bit(i) }
        dark[size - 8][8] = true
    }

    /// `value` followed by the remainder of `value << shift` divided by `generator` over GF(2).
    static func bch(_ value: Int, generator: Int, shift: Int) -> Int {
        var remainder = value << shift
        let degree = Int.bitWidth - generator.leadingZeroBitCount - 1
        while remainder != 0, Int.bitWidth - remainder.leadingZeroBitCount - 1 >= degree {
            remainder ^= generator << (Int.bitWidth - remainder.leadingZeroBitCount - 1 - degree)
        }
        return value << shift | remainder
    }

    /// The standard's four penalty rules: runs, 2×2 blocks, finder-like patterns, imbalance.
    var penalty: Int {
        var score = 0
        for line in [dark, (0..<size).map { c in (0..<size).map { dark[$0][c] } }] {
            for row in line {
                var run = 1
                for i in 1..<size {
                    if row[i] == row[i - 1] {
                        run += 1
                        if run == 5 { score += 3 } else if run > 5 { score += 1 }
                    } else {
                        run = 1
                    }
                }
                let pattern: [Bool] = [true, false, true, true, true, false, true]
                for i in 0...(size - 7) where Array(row[i..<i + 7]) == pattern {
                    let before = i >= 4 && row[i - 4..<i].allSatisfy { !$0 }
                    let after = i + 11 <= size && row[i + 7..<i + 11].allSatisfy { !$0 }
                    if before || after { score += 40 }
                }
            }
        }
        for r in 0..<size - 1 {
            for c in 0..<size - 1 {
                let v = dark[r][c]
                if dark[r][c + 1] == v && dark[r + 1][c] == v && dark[r + 1][c + 1] == v { score += 3 }
            }
        }
        let darkCount = dark.reduce(0) { $0 + $1.filter { $0 }.count }
        score += abs(darkCount * 20 / (size * size) - 10) * 10
        return score
    }
}

/// Reed–Solomon error correction over GF(256) with QR's polynomial x⁸+x⁴+x³+x²+1.
enum ReedSolomon {
    static let (exp, log): ([UInt8], [Int]) = {
        var exp = [UInt8](repeating: 0, count: 512)
        var log = [Int](repeating: 0, count: 256)
        var x = 1
        for i in 0..<255 {
            exp[i] = UInt8(x)
            log[x] = i
            x <<= 1
            if x & 0x100 != 0 { x ^= 0x11D }
        }
        for i in 255..<512 { exp[i] = exp[i - 255] }
        return (exp, log)
    }()

    static func multiply(_ a: UInt8, _ b: UInt8) -> UInt8 {
        a == 0 || b == 0 ? 0 : exp[log[Int(a)] + log[Int(b)]]
    }

    /// The generator polynomial (x−α⁰)…(x−α^(degree−1)), highest coefficient first, without the leading 1.
    static func generator(_ degree: Int) -> [UInt8] {
        var poly: [UInt8] = [1]
        for i in 0..<degree {
            var next = [UInt8](repeating: 0, count: poly.count + 1)
            for (j, coefficient) in poly.enumerated() {
                next[j] ^= coefficient
                next[j + 1] ^= multiply(coefficient, exp[i])
            }
            poly = next
        }
        return Array(poly.dropFirst())
    }

    static func remainder(_ data: [UInt8], degree: Int) -> [UInt8] {
        let gen = generator(degree)
        var result = [UInt8](repeating: 0, count: degree)
        for byte in data {
            let factor = byte ^ result[0]
            result.removeFirst()
            result.append(0)
            for i in 0..<degree { result[i] ^= multiply(gen[i], factor) }
        }
        return result
    }
}
