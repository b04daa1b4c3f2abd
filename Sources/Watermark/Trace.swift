import Foundation
import ModelFormats

/// Which of several recipients a suspect copy came from: every candidate's code is tested, and the
/// threshold controls the family-wise false-positive rate over all of them (Bonferroni over the
/// candidates and the tests each one gets), from the bound e^(−z²/2).
public enum Trace {
    public struct Candidate: Sendable {
        public var name: String
        public var key: WatermarkKey
        public init(name: String, key: WatermarkKey) {
            self.name = name
            self.key = key
        }
    }

    public struct Match: Sendable {
        public var name: String
        public var z: Double
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
        var tests = 0
        var scored: [(String, Double)] = []
        for candidate in candidates {
            let report = try Watermarking.detect(
                source, tensors: tensors, key: candidate.key, strength: strength, rowOrder: rowOrder)
            tests = report.testCount
            scored.append((candidate.name, report.best.z))
        }
        let total = tests * candidates.count
        let limit = threshold(tests: total, rate: familyWiseRate)
        let matches = scored.sorted { $0.1 > $1.1 }.map { name, z in
            Match(
                name: name, z: z, familyWiseBound: min(1, Double(total) * (z <= 0 ? 1 : exp(-z * z / 2))),
                matched: z >= limit)
        }
        return Result(threshold: limit, candidates: matches)
    }
}
