/// How a tensor's elements are stored.
public enum TensorEncoding: Hashable, Sendable, CustomStringConvertible {
    case safetensors(SafetensorsDType)
    case ggml(GGMLType)

    public var description: String {
        switch self {
        case .safetensors(let t): t.rawValue
        case .ggml(let t): "\(t)"
        }
    }
}

/// One tensor of a model file: its name, shape, encoding and where its bytes are.
public struct TensorLayout: Hashable, Sendable {
    public var name: String
    /// Dimensions, outermost first (C order). For GGUF this is its `ne` reversed, so a weight
    /// matrix is [rows, columns] in both formats, as PyTorch has it ([out, in] for a linear layer).
    public var shape: [Int]
    public var encoding: TensorEncoding
    /// Absolute byte range in the file.
    public var bytes: Range<UInt64>

    public init(name: String, shape: [Int], encoding: TensorEncoding, bytes: Range<UInt64>) {
        self.name = name
        self.shape = shape
        self.encoding = encoding
        self.bytes = bytes
    }

    public var elementCount: Int { shape.reduce(1, *) }
    /// Elements in one row: the innermost dimension (1 for a scalar).
    public var rowLength: Int { shape.last ?? 1 }
    public var rowCount: Int { shape.dropLast().reduce(1, *) }
    /// Bytes of one row, or nil when rows do not start on byte boundaries (sub-byte dtypes).
    public var rowBytes: Int? {
        switch encoding {
        case .safetensors(let t):
            let bits = rowLength * t.bits
            return bits % 8 == 0 ? bits / 8 : nil
        case .ggml(let t):
            return rowLength / t.blockSize * t.typeSize
        }
    }
}

/// Copies a model file byte for byte, letting a caller change the rows of chosen tensors in
/// place on the way: the header, every other tensor and all padding come out unchanged. Memory
/// stays at about `chunk` bytes whatever the file size.
public enum ModelRewriter {
    /// A transform gets at least one whole row; this bounds the buffer that takes.
    public static let maximumRowBytes = 256 << 20

    /// - Parameters:
    ///   - tensors: the file's tensors (any order; they must not overlap).
    ///   - select: whether `transform` wants a tensor (it must have whole-byte rows).
    ///   - transform: gets whole rows — `firstRow` and their bytes — at most `chunk` bytes at a
    ///     time, but always at least one row.
    ///   - sink: receives the output, in order.
    public static func rewrite(
        _ source: some ByteSource, tensors: [TensorLayout], chunk: Int = 4 << 20,
        select: (TensorLayout) -> Bool,
        transform: (TensorLayout, _ firstRow: Int, _ rows: UnsafeMutableRawBufferPointer) throws -> Void,
        sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        var buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buffer.deallocate() }
        func copy(_ range: Range<UInt64>) throws {
            var at = range.lowerBound
            while at < range.upperBound {
                let n = Int(min(UInt64(buffer.count), range.upperBound - at))
                let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
                try source.read(at: at, into: piece)
                try sink(UnsafeRawBufferPointer(piece))
                at += UInt64(n)
            }
        }
        var position: UInt64 = 0
        for tensor in tensors.sorted(by: { $0.bytes.lowerBound < $1.bytes.lowerBound }) {
            try copy(position..<tensor.bytes.lowerBound)
            position = tensor.bytes.upperBound
            guard select(tensor), tensor.rowCount > 0, let rowBytes = tensor.rowBytes, rowBytes > 0 else {
                try copy(tensor.bytes)
                continue
            }
            guard rowBytes <= Self.maximumRowBytes else {
                throw ModelFormatError.unsupported(
                    "tensor \"\(tensor.name)\" has rows of \(rowBytes) bytes; rows over \(Self.maximumRowBytes) bytes are not rewritten"
                )
            }
            if rowBytes > buffer.count {
                buffer.deallocate()
                buffer = .allocate(byteCount: rowBytes, alignment: 64)
            }
            let rowsPerPiece = buffer.count / rowBytes
            var row = 0
            while row < tensor.rowCount {
                let rows = min(rowsPerPiece, tensor.rowCount - row)
                let piece = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<(rows * rowBytes)])
                try source.read(at: tensor.bytes.lowerBound + UInt64(row * rowBytes), into: piece)
                try transform(tensor, row, piece)
                try sink(UnsafeRawBufferPointer(piece))
                row += rows
            }
        }
        try copy(position..<source.size)
    }
}
