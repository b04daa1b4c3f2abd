import Foundation
import ModelFormats

/// Which of several recipients a suspect copy came from: every candidate's code is tested, and the
/// threshold controls the family-wise false-positive rate over all of them (Bonferroni over the
/// candidates and the tests each one gets), from the bound e^(−z²/2).
public enum Trace {
    public struct Candidate: Sendable {
        public var name: String
        public var key: WatermarkKey
        /// The unmarked file this candidate's copy was made from, when the owner has it: the
        /// candidate is then also tested by informed detection (one more test for the bound).
        public var original: Original?
        public init(name: String, key: WatermarkKey, original: Original? = nil) {
            self.name = name
            self.key = key
            self.original = original
        }
    }

    public struct Original: Sendable {
        /// Candidates holding the same `Original` (copies of one file) are tested in one pass.
        final class ID: Sendable {}
        let id = ID()
        public var source: any ByteSource
        public var tensors: [TensorLayout]
        /// Undo a permutation of neurons before taking the difference (quadratic in the rows).
        public var realign: Bool
        public init(source: any ByteSource, tensors: [TensorLayout], realign: Bool = false) {
            self.source = source
            self.tensors = tensors
            self.realign = realign
        }
    }

    public struct Match: Sendable {
        public var name: String
        public var z: Double
        /// "blind" or "informed": the test that gave `z`.
        public var method: String
        /// Bound on the chance that any candidate reaches this z without its mark.
        public var familyWiseBound: Double
        public var matched: Bool
    }

    public struct Result: Sendable {
        /// z needed for a match.
        public var threshold: Double
        /// Every candidate, highest z first.
        public var candidates: [Match]
        public var matches: [Match] { candidates.filter(\.matched) }
    }

    /// The z at which m tests together stay below `rate`: √(2 ln(m / rate)).
    public static func threshold(tests: Int, rate: Double) -> Double {
        (2 * log(Double(max(1, tests)) / rate)).squareRoot()
    }

    public static func run(
        _ source: some ByteSource, tensors: [TensorLayout], candidates: [Candidate], rowOrder: RowOrder = .identity,
        familyWiseRate: Double = 1e-6, strength: Float = Watermarking.defaultStrength
    ) throws -> Result {
        var total = 0
        var scored: [(name: String, z: Double, method: String)] = []
        for candidate in candidates {
            let report = try Watermarking.detect(
                source, tensors: tensors, key: candidate.key, strength: strength, rowOrder: rowOrder)
            total += report.testCount
            scored.append((candidate.name, report.best.z, "blind"))
        }
        // Candidates made from the same original share one pass over the difference.
        var groups: [ObjectIdentifier: [Int]] = [:]
        for (i, candidate) in candidates.enumerated() {
            if let original = candidate.original { groups[ObjectIdentifier(original.id), default: []].append(i) }
        }
        for members in groups.values {
            let original = candidates[members[0]].original!
            let informed = try Watermarking.detectInformed(
                source, tensors: tensors, original: original.source, originalTensors: original.tensors,
                keys: members.map { candidates[$0].key }, realign: original.realign)
            total += members.count
            for (i, detection) in zip(members, informed) where detection.z > scored[i].z {
                scored[i] = (candidates[i].name, detection.z, "informed")
            }
        }
        let limit = threshold(tests: total, rate: familyWiseRate)
        let matches = scored.sorted { $0.z > $1.z }.map { name, z, method in
            Match(
                name: name, z: z, method: method,
                familyWiseBound: min(1, Double(total) * (z <= 0 ? 1 : exp(-z * z / 2))), matched: z >= limit)
        }
        return Result(threshold: limit, candidates: matches)
    }
}
