/// A request refused before it reaches any work: what is wrong with it, and how to put it right.
/// The server answers it with 400 and `{"error": message, "hint": hint}`.
public struct RequestError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public let hint: String?

    public init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }

    public var description: String { message }
}

/// Numbers from query strings: decimal digits only, within the range the parameter allows.
public enum QueryNumber {
    /// The value of query parameter `name` given as `text`, or `fallback` when it is absent.
    /// - Throws: `RequestError` when the text is not a decimal integer within `range`.
    public static func parse(
        _ text: String?, name: String, in range: ClosedRange<Int>, fallback: Int? = nil
    ) throws(RequestError) -> Int {
        guard let text else {
            if let fallback { return fallback }
            throw RequestError("give \(name)=N (\(range.lowerBound) to \(range.upperBound))")
        }
        guard !text.isEmpty, text.utf8.count <= 19, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let value = Int(text), range.contains(value)
        else {
            throw RequestError(
                "\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text.prefix(40))'"
            )
        }
        return value
    }
}
