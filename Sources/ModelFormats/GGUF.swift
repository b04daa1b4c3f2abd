import Foundation

/// The tensor types of ggml (the numbering GGUF files use), named as ggml names them.
// swift-format-ignore: AlwaysUseLowerCamelCase
public enum GGMLType: UInt32, Hashable, Sendable, CustomStringConvertible {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case iq2_XXS = 16, iq2_XS = 17, iq3_XXS = 18, iq1_S = 19, iq4_NL = 20, iq3_S = 21, iq2_S = 22, iq4_XS = 23
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_M = 29, bf16 = 30
    case tq1_0 = 34, tq2_0 = 35, mxfp4 = 39, nvfp4 = 40, q1_0 = 41

    /// Elements per block.
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16, .i8, .i16, .i32, .i64, .f64: 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .iq4_NL, .mxfp4: 32
        case .nvfp4: 64
        case .q1_0: 128
        default: 256
        }
    }

    /// Bytes per block.
    public var typeSize: Int {
        switch self {
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .i8: 1
        case .i64, .f64: 8
        case .q4_0: 18
        case .q4_1: 20
        case .q5_0: 22
        case .q5_1: 24
        case .q8_0: 34
        case .q8_1: 40  // as the gguf package has it (d and s as f32)
        case .q2_K: 84
        case .q3_K: 110
        case .q4_K: 144
        case .q5_K: 176
        case .q6_K: 210
        case .q8_K: 292
        case .iq2_XXS: 66
        case .iq2_XS: 74
        case .iq3_XXS: 98
        case .iq1_S: 50
        case .iq4_NL: 18
        case .iq3_S: 110
        case .iq2_S: 82
        case .iq4_XS: 136
        case .iq1_M: 56
        case .tq1_0: 54
        case .tq2_0: 66
        case .mxfp4: 17
        case .nvfp4: 36
        case .q1_0: 18
        }
    }

    /// The name llama.cpp and the `gguf` package use.
    public var description: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .q4_0: "Q4_0"
        case .q4_1: "Q4_1"
        case .q5_0: "Q5_0"
        case .q5_1: "Q5_1"
        case .q8_0: "Q8_0"
        case .q8_1: "Q8_1"
        case .q2_K: "Q2_K"
        case .q3_K: "Q3_K"
        case .q4_K: "Q4_K"
        case .q5_K: "Q5_K"
        case .q6_K: "Q6_K"
        case .q8_K: "Q8_K"
        case .iq2_XXS: "IQ2_XXS"
        case .iq2_XS: "IQ2_XS"
        case .iq3_XXS: "IQ3_XXS"
        case .iq1_S: "IQ1_S"
        case .iq4_NL: "IQ4_NL"
        case .iq3_S: "IQ3_S"
        case .iq2_S: "IQ2_S"
        case .iq4_XS: "IQ4_XS"
        case .i8: "I8"
        case .i16: "I16"
        case .i32: "I32"
        case .i64: "I64"
        case .f64: "F64"
        case .iq1_M: "IQ1_M"
        case .bf16: "BF16"
        case .tq1_0: "TQ1_0"
        case .tq2_0: "TQ2_0"
        case .mxfp4: "MXFP4"
        case .nvfp4: "NVFP4"
        case .q1_0: "Q1_0"
        }
    }
}

/// A GGUF metadata value.
public indirect enum GGUFValue: Hashable, Sendable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String), uint64(UInt64), int64(Int64), float64(Double)
    /// Element type code and elements.
    case array(UInt32, [GGUFValue])
}

/// A parsed GGUF file (version 2 or 3): header, metadata key-value pairs, tensor infos, and the
/// aligned data section they index. Parsing reads the metadata and tensor infos only.
public struct GGUFFile: Sendable {
    public let version: UInt32
    /// In file order.
    public let metadata: [(key: String, value: GGUFValue)]
    /// In tensor-info order; `bytes` are absolute file offsets. `shape` is `ne` reversed.
    public let tensors: [TensorLayout]
    public let alignment: Int
    public let dataStart: UInt64

    public func value(_ key: String) -> GGUFValue? { metadata.first { $0.key == key }?.value }

    /// GGML's limit on dimensions.
    public static let maximumDimensions = 4

    public init(source: some ByteSource) throws {
        var r = Cursor(source: source)
        guard try r.bytes(4, "the magic") == Array("GGUF".utf8) else {
            throw ModelFormatError.invalidHeader("not a GGUF file (the magic is not \"GGUF\")")
        }
        version = try r.u32("the version")
        guard version == 2 || version == 3 else {
            throw ModelFormatError.unsupported("GGUF version \(version) (this reads versions 2 and 3)")
        }
        let tensorCount = try r.u64("the tensor count")
        let kvCount = try r.u64("the metadata count")
        // Every entry takes at least 8 bytes; refuse counts the file cannot hold before looping.
        guard tensorCount <= source.size / 8, kvCount <= source.size / 8 else {
            throw ModelFormatError.invalidHeader(
                "it claims \(tensorCount) tensors and \(kvCount) metadata entries, more than the file can hold")
        }
        var metadata: [(key: String, value: GGUFValue)] = []
        var keys = Set<String>()
        for _ in 0..<kvCount {
            let key = try r.string("a metadata key")
            guard keys.insert(key).inserted else {
                throw ModelFormatError.invalidHeader("the metadata key \"\(key)\" appears twice")
            }
            let type = try r.u32("the type of \(key)")
            metadata.append((key, try r.value(type: type, depth: 0, of: key)))
        }
        var alignment = 32
        if let value = metadata.first(where: { $0.key == "general.alignment" })?.value {
            guard case .uint32(let a) = value, a > 0, a & (a - 1) == 0 else {
                throw ModelFormatError.invalidHeader("general.alignment must be a power of two stored as uint32")
            }
            alignment = Int(a)
        }
        var infos: [(name: String, ne: [Int], type: GGMLType, offset: UInt64)] = []
        var names = Set<String>()
        for _ in 0..<tensorCount {
            let name = try r.string("a tensor name")
            guard names.insert(name).inserted else {
                throw ModelFormatError.invalidTensor(name: name, reason: "the name appears twice")
            }
            let dims = try r.u32("the dimensions of \(name)")
            guard dims >= 1, dims <= UInt32(Self.maximumDimensions) else {
                throw ModelFormatError.invalidTensor(name: name, reason: "\(dims) dimensions (ggml allows 1 to 4)")
            }
            var ne: [Int] = []
            for _ in 0..<dims {
                let d = try r.u64("the shape of \(name)")
                guard d <= UInt64(Int32.max) * 64 else {
                    throw ModelFormatError.invalidTensor(name: name, reason: "dimension \(d) is too large")
                }
                ne.append(Int(d))
            }
            let code = try r.u32("the type of \(name)")
            guard let type = GGMLType(rawValue: code) else {
                throw ModelFormatError.invalidTensor(name: name, reason: "unknown ggml type \(code)")
            }
            let offset = try r.u64("the offset of \(name)")
            infos.append((name, ne, type, offset))
        }
        let dataStart = (r.position + UInt64(alignment) - 1) / UInt64(alignment) * UInt64(alignment)
        var tensors: [TensorLayout] = []
        for info in infos {
            guard info.offset % UInt64(alignment) == 0 else {
                throw ModelFormatError.invalidTensor(
                    name: info.name,
                    reason: "its data offset \(info.offset) is not a multiple of the alignment \(alignment)")
            }
            guard info.ne[0] % info.type.blockSize == 0 else {
                throw ModelFormatError.invalidTensor(
                    name: info.name,
                    reason:
                        "a row of \(info.ne[0]) elements is not a whole number of \(info.type) blocks of \(info.type.blockSize)"
                )
            }
            var blocks = info.ne[0] / info.type.blockSize
            for d in info.ne.dropFirst() {
                let (p, o) = blocks.multipliedReportingOverflow(by: d)
                guard !o else {
                    throw ModelFormatError.invalidTensor(name: info.name, reason: "shape \(info.ne) is too large")
                }
                blocks = p
            }
            let (size, o) = blocks.multipliedReportingOverflow(by: info.type.typeSize)
            let start = dataStart.addingReportingOverflow(info.offset)
            guard !o, !start.overflow, start.partialValue <= source.size,
                UInt64(size) <= source.size - start.partialValue
            else {
                throw ModelFormatError.invalidTensor(
                    name: info.name,
                    reason:
                        "its data (\(size) bytes at offset \(info.offset) of the data section) runs past the end of the file"
                )
            }
            tensors.append(
                TensorLayout(
                    name: info.name, shape: info.ne.reversed(), encoding: .ggml(info.type),
                    bytes: start.partialValue..<(start.partialValue + UInt64(size))))
        }
        let ordered = tensors.sorted { $0.bytes.lowerBound < $1.bytes.lowerBound }
        for (a, b) in zip(ordered, ordered.dropFirst()) where b.bytes.lowerBound < a.bytes.upperBound {
            throw ModelFormatError.invalidTensor(name: b.name, reason: "its data overlaps that of \(a.name)")
        }
        self.metadata = metadata
        self.tensors = tensors
        self.alignment = alignment
        self.dataStart = dataStart
    }

    /// Reads little-endian values through a small buffer, never past the end of the source.
    struct Cursor<Source: ByteSource> {
        let source: Source
        var position: UInt64 = 0
        var buffer: [UInt8] = []
        var bufferStart: UInt64 = 0

        init(source: Source) { self.source = source }

        mutating func bytes(_ count: Int, _ what: @autoclosure () -> String) throws -> [UInt8] {
            guard UInt64(count) <= source.size - min(position, source.size) else {
                throw ModelFormatError.truncated(what())
            }
            let end = position + UInt64(count)
            if position < bufferStart || end > bufferStart + UInt64(buffer.count) {
                let length = Int(min(max(UInt64(count), 1 << 16), source.size - position))
                buffer = try source.bytes(at: position, count: length)
                bufferStart = position
            }
            let from = Int(position - bufferStart)
            position = end
            return Array(buffer[from..<(from + count)])
        }

        mutating func load<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
            let b = try bytes(MemoryLayout<T>.size, what())
            return b.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(as: T.self)) }
        }

        mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 { try load(UInt32.self, what()) }
        mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 { try load(UInt64.self, what()) }

        mutating func string(_ what: @autoclosure () -> String) throws -> String {
            let length = try u64(what())
            guard length <= source.size else { throw ModelFormatError.truncated(what()) }
            let raw = try bytes(Int(length), what())
            guard let text = String(validating: raw, as: UTF8.self) else {
                throw ModelFormatError.invalidHeader("\(what()) is not valid UTF-8")
            }
            return text
        }

        mutating func value(type: UInt32, depth: Int, of key: String) throws -> GGUFValue {
            let what = "the value of \(key)"
            switch type {
            case 0: return .uint8(try load(UInt8.self, what))
            case 1: return .int8(try load(Int8.self, what))
            case 2: return .uint16(try load(UInt16.self, what))
            case 3: return .int16(try load(Int16.self, what))
            case 4: return .uint32(try load(UInt32.self, what))
            case 5: return .int32(try load(Int32.self, what))
            case 6: return .float32(Float(bitPattern: try load(UInt32.self, what)))
            case 7:
                let b = try load(UInt8.self, what)
                guard b <= 1 else { throw ModelFormatError.invalidHeader("\(what) is a bool of \(b)") }
                return .bool(b == 1)
            case 8: return .string(try string(what))
            case 9:
                guard depth == 0 else { throw ModelFormatError.invalidHeader("\(what) nests arrays") }
                let itemType = try u32(what)
                let count = try u64(what)
                guard count <= source.size - min(position, source.size) else { throw ModelFormatError.truncated(what) }
                var items: [GGUFValue] = []
                items.reserveCapacity(Int(min(count, 1 << 20)))
                for _ in 0..<count { items.append(try value(type: itemType, depth: depth + 1, of: key)) }
                return .array(itemType, items)
            case 10: return .uint64(try load(UInt64.self, what))
            case 11: return .int64(try load(Int64.self, what))
            case 12: return .float64(Double(bitPattern: try load(UInt64.self, what)))
            default: throw ModelFormatError.invalidHeader("\(what) has unknown type \(type)")
            }
        }
    }
}
