/// Why a model file was refused. Every case says what is wrong and, where it is about one
/// tensor, names it.
public enum ModelFormatError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file ends before `what` does.
    case truncated(String)
    /// The header is malformed as a whole (length, encoding, JSON, structure).
    case invalidHeader(String)
    /// One tensor's entry is wrong.
    case invalidTensor(name: String, reason: String)
    /// Well-formed, but something this library does not handle.
    case unsupported(String)
    /// The file could not be read or written.
    case io(String)

    public var description: String {
        switch self {
        case .truncated(let what): "the file is truncated: it ends inside \(what)"
        case .invalidHeader(let reason): "invalid header: \(reason)"
        case .invalidTensor(let name, let reason): "tensor \"\(name)\": \(reason)"
        case .unsupported(let what): "unsupported: \(what)"
        case .io(let detail): detail
        }
    }
}
