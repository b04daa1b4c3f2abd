/// A store that can tell cheaply whether anything in it changed, so callers may keep what they
/// read in memory and drop it the moment the store moves on — including changes made by another
/// process (a local `mvault user …` next to a running server).
public protocol ChangeTracking: Sendable {
    /// A number that differs from any earlier answer once a change has been committed since.
    /// Equal answers mean nothing was committed in between. Never negative.
    func changeCount() throws -> Int64
}
