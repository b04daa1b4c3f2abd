import CHalf
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
    ///
    /// A float row moves once by the sum of every key's mark, w' = w + α·σ·Σ_k c_k, rounded to
    /// the storage type (randomly up or down, from the first key's stream, where the move is
    /// under half a step); a quantized row gets each key's sparse selection in turn.
    public func mark(_ tensor: TensorLayout, firstRow: Int, rows: UnsafeMutableRawBufferPointer) {
        guard Watermarking.isMarkable(tensor), let rowBytes = tensor.rowBytes, rowBytes > 0 else { return }
        let role = TensorRole.of(tensor.name)
        let sources = keys.map { ChipSource(key: $0, role: role) }
        let n = tensor.rowLength
        let count = rows.count / rowBytes
        if let codes = QuantCodes(tensor.encoding) {
            // Quantized: move a keyed sparse selection of codes one step along the chips, chosen
            // from the row as it was before any key moved it.
            let fraction = Watermarking.sparseFraction(codes.type, strength: strength)
            var values: [Float] = []
            values.reserveCapacity(n)
            for r in 0..<count {
                let row = UnsafeMutableRawBufferPointer(rebasing: rows[(r * rowBytes)..<((r + 1) * rowBytes)])
                let canonical = rowOrder.canonical(role: role, row: firstRow + r, rows: tensor.rowCount)
                values.removeAll(keepingCapacity: true)
                // (A whole row of a type QuantCodes knows always dequantizes.)
                try? Dequantize.append(UnsafeRawBufferPointer(row), as: tensor.encoding, to: &values)
                guard values.count == n else { continue }
                let selection = SparseSelection(row: values)
                for chips in sources {
                    let c = chips.chips(row: canonical, columns: n)
                    let candidates = chips.below(
                        fraction * SparseSelection.farFactor, row: canonical, columns: n, purpose: 2)
                    for j in selection.chosen(candidates, fraction: fraction, row: values) {
                        codes.nudge(row, j, toward: c[j])
                    }
                }
            }
        } else if let codec = FloatCodec(tensor.encoding), !sources.isEmpty {
            var scratch = DenseScratch(columns: n)
            for r in 0..<count {
                let row = UnsafeMutableRawBufferPointer(rebasing: rows[(r * rowBytes)..<((r + 1) * rowBytes)])
                let canonical = rowOrder.canonical(role: role, row: firstRow + r, rows: tensor.rowCount)
                markDense(row, codec: codec, sources: sources, canonical: canonical, scratch: &scratch)
            }
        }
    }

    /// One float row: load, measure σ, add the chips of every key, round to the storage type
    /// in bulk; only values the move leaves on the same grid point take the slow, random step.
    func markDense(
        _ row: UnsafeMutableRawBufferPointer, codec: FloatCodec, sources: [ChipSource], canonical: Int,
        scratch: inout DenseScratch
    ) {
        let n = scratch.columns
        scratch.w.withUnsafeMutableBufferPointer { w in
            scratch.s.withUnsafeMutableBufferPointer { s in
                scratch.t.withUnsafeMutableBufferPointer { t in
                    codec.load(UnsafeRawBufferPointer(row), into: w)
                    let (mean, sigma) = Dense.moments(UnsafeBufferPointer(w))
                    guard sigma > 0, sigma.isFinite else { return }
                    s.update(repeating: 0)
                    for chips in sources { chips.addChips(row: canonical, into: s) }
                    Dense.lean(s, toward: UnsafeBufferPointer(w), mean: mean, deviation: sigma)
                    let scale = strength * sigma
                    if codec == .f16 {
                        // Halves: moved and rounded in place, eight at a time.
                        let stuck = scratch.unmoved.withUnsafeMutableBufferPointer { unmoved in
                            mvault_half_move(
                                row.baseAddress!.assumingMemoryBound(to: UInt16.self), w.baseAddress!, s.baseAddress!,
                                scale, unmoved.baseAddress!, n)
                        }
                        guard stuck > 0 else { return }
                        let u = sources[0].uniforms(row: canonical, columns: n)
                        for j in scratch.unmoved[0..<stuck].map(Int.init) {
                            codec.store(row, j, codec.nudge(w[j], by: scale * s[j], uniform: u[j]))
                        }
                        return
                    }
                    Dense.move(w, by: s, scale: scale, into: t)
                    codec.round(t, scratch: &scratch.bits)
                    var uniforms: [Float]?
                    let allFinite = Dense.forEachUnmoved(w, t, s) { j in
                        // Under half a step (or not a number): a random step, or none.
                        let u = uniforms ?? sources[0].uniforms(row: canonical, columns: n)
                        uniforms = u
                        t[j] = codec.nudge(w[j], by: scale * s[j], uniform: u[j])
                    }
                    codec.store(
                        UnsafeBufferPointer(t), original: UnsafeBufferPointer(w), allFinite: allFinite, into: row,
                        scratch: &scratch.bits)
                }
            }
        }
    }
}

/// Buffers for marking float rows, reused row after row.
struct DenseScratch {
    let columns: Int
    var w: [Float]
    var s: [Float]
    var t: [Float]
    var bits: [UInt16]
    var unmoved: [UInt32]

    init(columns: Int) {
        self.columns = columns
        w = [Float](repeating: 0, count: columns)
        s = w
        t = w
        bits = [UInt16](repeating: 0, count: columns)
        unmoved = [UInt32](repeating: 0, count: columns)
    }
}

enum Dense {
    /// t = w + scale·s where s ≠ 0, and t = w (bit for bit, −0 included) where s = 0.
    static func move(
        _ w: UnsafeMutableBufferPointer<Float>, by s: UnsafeMutableBufferPointer<Float>, scale: Float,
        into t: UnsafeMutableBufferPointer<Float>
    ) {
        let (wr, sr, tr) = (
            UnsafeRawPointer(w.baseAddress!), UnsafeRawPointer(s.baseAddress!), UnsafeMutableRawPointer(t.baseAddress!)
        )
        let n = w.count
        var j = 0
        while j + 8 <= n {
            let wv = wr.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
            let sv = sr.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
            var tv = wv + scale * sv
            tv.replace(with: wv, where: sv .== 0)
            tr.storeBytes(of: tv, toByteOffset: j * 4, as: SIMD8<Float>.self)
            j += 8
        }
        while j < n {
            t[j] = s[j] == 0 ? w[j] : w[j] + scale * s[j]
            j += 1
        }
    }

    /// Calls `body` for each column the move did not take off its grid point (s ≠ 0 but the
    /// rounded t equals w, or w is not a finite number); returns whether every w is finite.
    static func forEachUnmoved(
        _ w: UnsafeMutableBufferPointer<Float>, _ t: UnsafeMutableBufferPointer<Float>,
        _ s: UnsafeMutableBufferPointer<Float>, _ body: (Int) -> Void
    ) -> Bool {
        let (wr, sr, tr) = (
            UnsafeRawPointer(w.baseAddress!), UnsafeRawPointer(s.baseAddress!), UnsafeRawPointer(t.baseAddress!)
        )
        let n = w.count
        var allFinite = true
        var j = 0
        let infinity = SIMD8<Float>(repeating: .infinity)
        while j + 8 <= n {
            let wv = wr.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
            let sv = sr.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
            let tv = tr.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
            let finite = (wv .< infinity) .& (wv .> -infinity)
            let flagged = (sv .!= 0) .& ((tv .== wv) .| .!finite)
            if any(.!finite) { allFinite = false }
            if any(flagged) {
                for k in 0..<8 where flagged[k] { body(j + k) }
            }
            j += 8
        }
        while j < n {
            if !w[j].isFinite { allFinite = false }
            if s[j] != 0 && (t[j] == w[j] || !w[j].isFinite) { body(j) }
            j += 1
        }
        return allFinite
    }

    /// How a float row's mark is shared between far weights (beyond 1.29 σ of the row's mean,
    /// 19.7 % of a Gaussian row) and near ones: 1.5 : 1, scaled so that the mark's energy (its
    /// mean square, hence its cost) stays α²σ² on a Gaussian row. Magnitude pruning keeps the far
    /// weights, and with them more of the mark; a stronger lean (1.75 : 0.75) kept all of it
    /// after 90 % pruning but cost 12 % of the clean z on all-MiniLM-L6-v2.
    static let farGain: Float = 1.5 / 1.116
    static let nearGain: Float = 1 / 1.116

    /// s_j ×= farGain where |w_j − mean| > 1.29·σ, else nearGain.
    static func lean(
        _ s: UnsafeMutableBufferPointer<Float>, toward w: UnsafeBufferPointer<Float>, mean: Float, deviation: Float
    ) {
        let (wr, sr) = (UnsafeRawPointer(w.baseAddress!), UnsafeMutableRawPointer(s.baseAddress!))
        let line = Float(SparseSelection.farDeviations) * deviation
        let n = w.count
        var j = 0
        let (m, l) = (SIMD8<Float>(repeating: mean), SIMD8<Float>(repeating: line))
        let (far, near) = (SIMD8<Float>(repeating: farGain), SIMD8<Float>(repeating: nearGain))
        while j + 8 <= n {
            let d = wr.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self) - m
            let sv = sr.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
            let gain = near.replacing(with: far, where: (d .> l) .| (d .< -l))
            sr.storeBytes(of: sv * gain, toByteOffset: j * 4, as: SIMD8<Float>.self)
            j += 8
        }
        while j < n {
            s[j] *= abs(w[j] - mean) > line ? farGain : nearGain
            j += 1
        }
    }

    /// The mean and standard deviation of a row, in two passes (mean, then squares about it),
    /// eight lanes at a time.
    static func moments(_ w: UnsafeBufferPointer<Float>) -> (mean: Float, deviation: Float) {
        let n = w.count
        guard n > 0 else { return (0, 0) }
        let raw = UnsafeRawPointer(w.baseAddress!)
        var lanes = SIMD8<Float>()
        var j = 0
        while j + 8 <= n {
            lanes += raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
            j += 8
        }
        var sum = lanes.sum()
        while j < n {
            sum += w[j]
            j += 1
        }
        let mean = sum / Float(n)
        var squares = SIMD8<Float>()
        let m = SIMD8<Float>(repeating: mean)
        j = 0
        while j + 8 <= n {
            let d = raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self) - m
            squares += d * d
            j += 8
        }
        var total = squares.sum()
        while j < n {
            total += (w[j] - mean) * (w[j] - mean)
            j += 1
        }
        return (mean, (total / Float(n)).squareRoot())
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

    /// Where a read ending near `offset` should end so that it cuts no marked row: the start of
    /// the row `offset` falls in, or `offset` itself when it is outside every marked tensor.
    /// (A read that cuts a row reads that whole row again, to mark it.)
    public func rowStart(atOrBefore offset: UInt64) -> UInt64 {
        guard let i = firstTensor(endingAfter: offset), tensors[i].bytes.contains(offset) else { return offset }
        let tensor = tensors[i]
        let rowBytes = UInt64(tensor.rowBytes!)
        return tensor.bytes.lowerBound + (offset - tensor.bytes.lowerBound) / rowBytes * rowBytes
    }

    /// The index of the first tensor that ends after `offset`, if any.
    func firstTensor(endingAfter offset: UInt64) -> Int? {
        var low = 0
        var high = tensors.count
        while low < high {
            let mid = (low + high) / 2
            if tensors[mid].bytes.upperBound <= offset { low = mid + 1 } else { high = mid }
        }
        return low < tensors.count ? low : nil
    }

    public func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        try base.read(at: offset, into: buffer)
        let end = offset + UInt64(buffer.count)
        guard let first = firstTensor(endingAfter: offset) else { return }
        for tensor in tensors[first...] {
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
