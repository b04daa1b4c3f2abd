import Foundation

/// The dtypes of the safetensors specification.
public enum SafetensorsDType: String, CaseIterable, Hashable, Sendable {
    case bool = "BOOL"
    case f4 = "F4"
    case f6e2m3 = "F6_E2M3"
    case f6e3m2 = "F6_E3M2"
    case u8 = "U8"
    case i8 = "I8"
    case f8e5m2 = "F8_E5M2"
    case f8e4m3 = "F8_E4M3"
    case f8e8m0 = "F8_E8M0"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case c64 = "C64"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Bits per element.
    public var bits: Int {
        switch self {
        case .f4: 4
        case .f6e2m3, .f6e3m2: 6
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3, .f8e8m0: 8
        case .i16, .u16, .f16, .bf16: 16
        case .i32, .u32, .f32: 32
        case .c64, .f64, .i64, .u64: 64
        }
    }
}

/// A parsed safetensors file: `u64 N` (little-endian), N bytes of JSON header, then the data
/// buffer that the header's `data_offsets` index. Parsing reads the header only and checks it
/// the way the reference implementation does, and a little more.
public struct SafetensorsFile: Sendable {
    /// The reference implementation's limit on the header length.
    public static let maximumHeaderSize: UInt64 = 100_000_000

    /// Tensors in data-buffer order; `bytes` are absolute file offsets.
    public let tensors: [TensorLayout]
    /// `__metadata__`, if the header has one.
    public let metadata: [String: String]?
    /// Where the data buffer starts: 8 + N.
    public let dataStart: UInt64

    public init(source: some ByteSource) throws {
        guard source.size >= 8 else { throw ModelFormatError.truncated("the 8-byte header length") }
        let n = try source.bytes(at: 0, count: 8).withUnsafeBytes {
            UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))
        }
        guard n <= Self.maximumHeaderSize else {
            throw ModelFormatError.invalidHeader(
                "the header length is \(n) bytes, over the limit of \(Self.maximumHeaderSize)")
        }
        guard n <= source.size - 8 else {
            throw ModelFormatError.invalidHeader(
                "the header length is \(n) bytes, beyond the end of the file (\(source.size) bytes)")
        }
        try self.init(header: try source.bytes(at: 8, count: Int(n)), fileSize: source.size)
    }

    /// Checks `header` (the N bytes after the length) for a file of `fileSize` bytes.
    public init(header: [UInt8], fileSize: UInt64) throws {
        let dataStart = 8 + UInt64(header.count)
        guard fileSize >= dataStart else { throw ModelFormatError.truncated("the header") }
        guard String(validating: header, as: UTF8.self) != nil else {
            throw ModelFormatError.invalidHeader("the header is not valid UTF-8")
        }
        guard header.first == UInt8(ascii: "{") else {
            throw ModelFormatError.invalidHeader("the header must be a JSON object starting with '{'")
        }
        let entries: [String: Entry]
        do {
            entries = try JSONDecoder().decode(Header.self, from: Data(header)).entries
        } catch let error as ModelFormatError {
            throw error
        } catch {
            throw ModelFormatError.invalidHeader("the header is not valid JSON: \(Self.reason(error))")
        }
        var metadata: [String: String]?
        var tensors: [TensorLayout] = []
        for (name, entry) in entries {
            switch entry {
            case .metadata(let values):
                metadata = values
            case .tensor(let dtypeName, let shape, let offsets):
                guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
                    throw ModelFormatError.invalidTensor(name: name, reason: "unknown dtype \"\(dtypeName)\"")
                }
                guard shape.allSatisfy({ $0 >= 0 }) else {
                    throw ModelFormatError.invalidTensor(name: name, reason: "negative dimension in shape \(shape)")
                }
                guard offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
                    throw ModelFormatError.invalidTensor(
                        name: name, reason: "data_offsets must be [begin, end] with 0 <= begin <= end, not \(offsets)")
                }
                var elements = 1
                for d in shape {
                    let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                    guard !overflow else {
                        throw ModelFormatError.invalidTensor(name: name, reason: "shape \(shape) is too large")
                    }
                    elements = product
                }
                let (bits, overflow) = elements.multipliedReportingOverflow(by: dtype.bits)
                guard !overflow, bits % 8 == 0 else {
                    throw ModelFormatError.invalidTensor(
                        name: name, reason: "shape \(shape) of \(dtype.rawValue) is not a whole number of bytes")
                }
                guard offsets[1] - offsets[0] == bits / 8 else {
                    throw ModelFormatError.invalidTensor(
                        name: name,
                        reason:
                            "shape \(shape) of \(dtype.rawValue) needs \(bits / 8) bytes, but data_offsets \(offsets) span \(offsets[1] - offsets[0])"
                    )
                }
                tensors.append(
                    TensorLayout(
                        name: name, shape: shape, encoding: .safetensors(dtype),
                        bytes: (dataStart + UInt64(offsets[0]))..<(dataStart + UInt64(offsets[1]))))
            }
        }
        tensors.sort {
            ($0.bytes.lowerBound, $0.bytes.upperBound, $0.name) < ($1.bytes.lowerBound, $1.bytes.upperBound, $1.name)
        }
        // The data buffer must be exactly the tensors, back to back: no overlap, no hole.
        var end = dataStart
        for tensor in tensors {
            if tensor.bytes.lowerBound < end {
                throw ModelFormatError.invalidTensor(
                    name: tensor.name,
                    reason:
                        "its data_offsets overlap the previous tensor's (starts at \(tensor.bytes.lowerBound - dataStart), the previous ends at \(end - dataStart))"
                )
            }
            if tensor.bytes.lowerBound > end {
                throw ModelFormatError.invalidTensor(
                    name: tensor.name,
                    reason:
                        "there is a hole of \(tensor.bytes.lowerBound - end) bytes before its data (at \(end - dataStart))"
                )
            }
            end = tensor.bytes.upperBound
        }
        if end > fileSize {
            throw ModelFormatError.invalidTensor(
                name: tensors.last!.name,
                reason: "its data ends at byte \(end) of the file, beyond its end (\(fileSize) bytes)")
        }
        if end < fileSize {
            throw ModelFormatError.invalidHeader(
                "the data buffer holds \(fileSize - dataStart) bytes but the tensors cover \(end - dataStart)")
        }
        self.tensors = tensors
        self.metadata = metadata
        self.dataStart = dataStart
    }

    static func reason(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let c): c.debugDescription
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c),
            DecodingError.keyNotFound(_, let c):
            "\(c.codingPath.map(\.stringValue).joined(separator: ".")): \(c.debugDescription)"
        default: "\(error)"
        }
    }

    enum Entry {
        case tensor(dtype: String, shape: [Int], offsets: [Int])
        case metadata([String: String])
    }

    struct Header: Decodable {
        var entries: [String: Entry] = [:]

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        struct Tensor: Decodable {
            var dtype: String
            var shape: [Int]
            var dataOffsets: [Int]
            enum CodingKeys: String, CodingKey {
                case dtype, shape
                case dataOffsets = "data_offsets"
            }
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: Key.self)
            for key in container.allKeys {
                if key.stringValue == "__metadata__" {
                    do {
                        entries[key.stringValue] = .metadata(try container.decode([String: String].self, forKey: key))
                    } catch {
                        throw ModelFormatError.invalidHeader(
                            "__metadata__ must map strings to strings: \(SafetensorsFile.reason(error))")
                    }
                    continue
                }
                do {
                    let t = try container.decode(Tensor.self, forKey: key)
                    entries[key.stringValue] = .tensor(dtype: t.dtype, shape: t.shape, offsets: t.dataOffsets)
                } catch {
                    throw ModelFormatError.invalidTensor(
                        name: key.stringValue,
                        reason:
                            "needs dtype (a string), shape and data_offsets (arrays of integers): \(SafetensorsFile.reason(error))"
                    )
                }
            }
        }
    }
}

/// Writes a new safetensors file: the header lists the tensors in the given order with their
/// data back to back, `__metadata__` first, padded with spaces to a multiple of 8 bytes (as the
/// reference implementation does, so the data buffer is aligned).
public enum SafetensorsWriter {
    public struct Tensor {
        public var name: String
        public var dtype: SafetensorsDType
        public var shape: [Int]
        public var data: [UInt8]
        public init(name: String, dtype: SafetensorsDType, shape: [Int], data: [UInt8]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.data = data
        }
    }

    public static func encode(_ tensors: [Tensor], metadata: [String: String]? = nil) throws -> [UInt8] {
        func quoted(_ s: String) throws -> String {
            String(decoding: try JSONEncoder().encode(s), as: UTF8.self)
        }
        var parts: [String] = []
        if let metadata {
            let pairs = try metadata.keys.sorted().map { "\(try quoted($0)):\(try quoted(metadata[$0]!))" }
            parts.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for t in tensors {
            let shape = t.shape.map(String.init).joined(separator: ",")
            parts.append(
                "\(try quoted(t.name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.data.count)]}"
            )
            offset += t.data.count
        }
        var header = Array("{\(parts.joined(separator: ","))}".utf8)
        header += [UInt8](repeating: UInt8(ascii: " "), count: (8 - header.count % 8) % 8)
        var out = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
        out += header
        for t in tensors { out += t.data }
        return out
    }
}
