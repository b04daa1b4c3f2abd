import ModelFormats

/// Marks rows of model matrices with one or more keys. A row's mark depends only on the key,
/// the tensor's role, the row's canonical index and the row itself, so any row can be marked
/// alone, in any order, and always comes out the same — which is what lets a download be marked
/// piece by piece and a resumed (HTTP Range) download match the first one byte for byte.
public struct Marker: Sendable {
    public let keys: [WatermarkKey]
    public let strength: Float
    public let rowOrder: RowOrder

    public init(keys: [WatermarkKey], strength: Float = Watermarking.defaultStrength, rowOrder: RowOrder = .identity) {
        self.keys = keys
        self.strength = strength
        self.rowOrder = rowOrder
    }

    /// Marks whole rows of `tensor` in place: `rows` holds rows `firstRow...` back to back.
    /// Tensors `Watermarking.isMarkable` rejects are left alone.
    public func mark(_ tensor: TensorLayout, firstRow: Int, rows: UnsafeMutableRawBufferPointer) {
        guard Watermarking.isMarkable(tensor), let rowBytes = tensor.rowBytes, rowBytes > 0 else { return }
        let role = TensorRole.of(tensor.name)
        let sources = keys.map { ChipSource(key: $0, role: role) }
        let n = tensor.rowLength
        for r in 0..<(rows.count / rowBytes) {
            let row = UnsafeMutableRawBufferPointer(rebasing: rows[(r * rowBytes)..<((r + 1) * rowBytes)])
            let canonical = rowOrder.canonical(role: role, row: firstRow + r, rows: tensor.rowCount)
            if let codes = QuantCodes(tensor.encoding) {
                // Quantized: move a keyed sparse selection of codes one step along the chips.
                let fraction = Watermarking.sparseFraction(codes.type, strength: strength)
                for chips in sources {
                    let c = chips.chips(row: canonical, columns: n)
                    for j in chips.selected(row: canonical, columns: n, fraction: fraction) {
                        codes.nudge(row, j, toward: c[j])
                    }
                }
            } else if let codec = FloatCodec(tensor.encoding) {
                var w = (0..<n).map { codec.load(row, $0) }
                let sigma = Float(Detection.moments(w).deviation)
                guard sigma > 0, sigma.isFinite else { continue }
                for chips in sources {
                    let c = chips.chips(row: canonical, columns: n)
                    let u = chips.uniforms(row: canonical, columns: n)
                    for j in 0..<n { w[j] = codec.nudge(w[j], by: strength * sigma * c[j], uniform: u[j]) }
                }
                for j in 0..<n { codec.store(row, j, w[j]) }
            }
        }
    }
}

/// A model file as it reads once marked: the bytes of `base` with every markable row of its
/// tensors marked by `marker`, computed on the fly for whatever range is read. The marked file
/// has the same size and layout as the original, and nothing is kept between reads.
public struct MarkedSource<Base: ByteSource>: ByteSource {
    public let base: Base
    public let marker: Marker
    /// The markable tensors, by position in the file.
    let tensors: [TensorLayout]

    public init(_ base: Base, tensors: [TensorLayout], marker: Marker) {
        self.base = base
        self.marker = marker
        self.tensors = tensors.filter { Watermarking.isMarkable($0) && ($0.rowBytes ?? 0) > 0 }
            .sorted { $0.bytes.lowerBound < $1.bytes.lowerBound }
    }

    public var size: UInt64 { base.size }

    /// Whether the file has anything to mark.
    public var marksAnything: Bool { !tensors.isEmpty }

    public func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        try base.read(at: offset, into: buffer)
        let end = offset + UInt64(buffer.count)
        // The first tensor that ends after `offset`.
        var low = 0
        var high = tensors.count
        while low < high {
            let mid = (low + high) / 2
            if tensors[mid].bytes.upperBound <= offset { low = mid + 1 } else { high = mid }
        }
        for tensor in tensors[low...] {
            guard tensor.bytes.lowerBound < end else { break }
            try mark(tensor, in: buffer, at: offset)
        }
    }

    /// Marks the rows of `tensor` that overlap `buffer` (which holds the file from `offset`):
    /// rows wholly inside in place, a row cut by either edge in a copy of the whole row.
    func mark(_ tensor: TensorLayout, in buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        let rowBytes = UInt64(tensor.rowBytes!)
        let start = max(offset, tensor.bytes.lowerBound)
        let end = min(offset + UInt64(buffer.count), tensor.bytes.upperBound)
        let firstRow = (start - tensor.bytes.lowerBound) / rowBytes
        let lastRow = (end - tensor.bytes.lowerBound - 1) / rowBytes
        func rowStart(_ r: UInt64) -> UInt64 { tensor.bytes.lowerBound + r * rowBytes }
        var whole = firstRow..<(lastRow + 1)
        for r in Set([firstRow, lastRow]) where rowStart(r) < offset || rowStart(r) + rowBytes > end {
            var row = try base.bytes(at: rowStart(r), count: Int(rowBytes))
            row.withUnsafeMutableBytes { marker.mark(tensor, firstRow: Int(r), rows: $0) }
            let from = max(rowStart(r), offset)
            let to = min(rowStart(r) + rowBytes, end)
            row.withUnsafeBytes {
                UnsafeMutableRawBufferPointer(rebasing: buffer[Int(from - offset)..<Int(to - offset)])
                    .copyMemory(
                        from: UnsafeRawBufferPointer(rebasing: $0[Int(from - rowStart(r))..<Int(to - rowStart(r))]))
            }
            if r == whole.lowerBound, !whole.isEmpty { whole = (r + 1)..<whole.upperBound }
            if r + 1 == whole.upperBound, !whole.isEmpty { whole = whole.lowerBound..<r }
        }
        guard !whole.isEmpty else { return }
        let from = Int(rowStart(whole.lowerBound) - offset)
        marker.mark(
            tensor, firstRow: Int(whole.lowerBound),
            rows: UnsafeMutableRawBufferPointer(rebasing: buffer[from..<(from + whole.count * Int(rowBytes))]))
    }
}
