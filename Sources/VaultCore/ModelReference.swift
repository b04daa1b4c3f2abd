/// `namespace/name` or `namespace/name@VERSION`, as typed on the command line.
public struct ModelReference: Hashable, Sendable, CustomStringConvertible {
    public let model: ModelName
    /// The version number, or `nil` for "the latest version".
    public let version: Int?

    public init(model: ModelName, version: Int?) {
        self.model = model
        self.version = version
    }

    /// Parses `ns/name` or `ns/name@N` where N is a positive integer.
    public init(parsing text: String) throws(VaultError) {
        guard let at = text.firstIndex(of: "@") else {
            self.init(model: try ModelName(parsing: text), version: nil)
            return
        }
        let versionText = text[text.index(after: at)...]
        guard let number = Int(versionText), number > 0 else {
            throw .invalidVersion(String(versionText))
        }
        self.init(model: try ModelName(parsing: String(text[..<at])), version: number)
    }

    public var description: String {
        version.map { "\(model)@\($0)" } ?? model.description
    }
}
