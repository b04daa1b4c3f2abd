/// Which weights of a row carry a sparse mark (docs/watermark.md, "Quantized matrices").
///
/// A weight far from its row's mean (beyond 1.29 σ, about a fifth of a Gaussian row) is chosen
/// 7/3 times as often as one near it: magnitude pruning keeps the far weights, so it keeps most
/// of the mark, while the near weights keep their share, which is what survives added noise.
/// "Far" is judged from the row's own mean and σ, so detection can judge it again on a suspect
/// copy. Pruning shrinks a suspect row's σ, but the weights it keeps are far either way, and the
/// zeros it leaves add nothing to the test.
struct SparseSelection {
    let mean: Double
    /// The distance from the mean beyond which a weight is far: 1.29 σ.
    let line: Double

    /// How much more (or less) likely than `fraction` a far and a near weight are to be chosen:
    /// 1.75 and 0.75, over 0.95 so that a Gaussian row (19.7 % of it far) keeps, on average,
    /// `fraction` of its weights.
    static let farFactor: Float = 1.75 / 0.95
    static let nearFactor: Float = 0.75 / 0.95
    /// Far is beyond this many σ of the row's mean, for sparse and dense marks alike.
    static let farDeviations = 1.29

    /// From the row's moments as `Detection.moments` takes them (in order, in double precision).
    init(mean: Double, deviation: Double) {
        self.mean = mean
        line = Self.farDeviations * deviation
    }

    init(row w: [Float]) {
        let (mean, deviation) = Detection.moments(w)
        self.init(mean: mean, deviation: deviation)
    }

    /// Never for a value, or in a row, that is not a number.
    func isFar(_ x: Float) -> Bool { abs(Double(x) - mean) > line }

    /// How much more (or less) likely than the fraction the weight `x` is to be chosen.
    func factor(_ x: Float) -> Float { isFar(x) ? Self.farFactor : Self.nearFactor }

    /// The columns of row `w` chosen at `fraction`, given each column's uniform
    /// (`ChipSource.below`, at `fraction · farFactor` or more).
    func chosen(_ candidates: [(column: Int, uniform: Float)], fraction: Float, row w: [Float]) -> [Int] {
        candidates.filter { $0.uniform < fraction * factor(w[$0.column]) }.map(\.column)
    }
}
