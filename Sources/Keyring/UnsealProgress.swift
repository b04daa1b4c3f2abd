/// Shares collected so far toward unsealing a Shamir-sealed vault.
public struct UnsealProgress: Sendable {
    public enum Step: Sendable, Equatable {
        case needMore(have: Int, need: Int)
        case complete(unsealKey: [UInt8])
    }

    public let vaultID: [UInt8]
    public let threshold: Int
    public private(set) var shares: [UnsealShare] = []

    public init(vaultID: [UInt8], threshold: Int) {
        self.vaultID = vaultID
        self.threshold = threshold
    }

    /// Adds one share.
    /// - Throws: `.foreignShare`, `.thresholdMismatch` or `.duplicateShare`; nothing is added then.
    public mutating func add(_ share: UnsealShare) throws(KeyringError) -> Step {
        guard share.vaultID == Array(vaultID.prefix(8)) else { throw .foreignShare }
        guard share.threshold == threshold else { throw .thresholdMismatch }
        guard !shares.contains(where: { $0.point.x == share.point.x }) else { throw .duplicateShare }
        shares.append(share)
        guard shares.count >= threshold else { return .needMore(have: shares.count, need: threshold) }
        let key = threshold == 1 ? shares[0].point.y : Shamir.combine(shares.map(\.point))
        return .complete(unsealKey: key)
    }

    /// Forgets every share given so far.
    public mutating func reset() { shares.removeAll() }
}
