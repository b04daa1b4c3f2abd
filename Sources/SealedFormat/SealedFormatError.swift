/// Why a sealed file could not be opened.
///
/// Deliberately coarse, like swift-crypto's `authenticationFailure`: a caller learns *where*
/// the file is bad (header, or which payload segment) but not which check failed.
public enum SealedFormatError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The bytes do not start with the `MVLT` magic.
    case notSealedFile
    /// The file is a later format version than this build reads.
    case unsupportedVersion(UInt8)
    /// The header is malformed, or it (or the wrapped data key) failed authentication.
    case headerFailure
    /// Payload segment `segment` (0-based) is missing, truncated, reordered, modified or foreign.
    case payloadFailure(segment: UInt64)
    /// A read past the end of the plaintext was requested.
    case rangeOutOfBounds
    /// The plaintext would need more than 2³² segments.
    case tooLarge

    public var description: String {
        switch self {
        case .notSealedFile: "not an MVLT sealed file"
        case .unsupportedVersion(let version): "unsupported MVLT format version \(version)"
        case .headerFailure: "header failed authentication"
        case .payloadFailure(let segment): "segment \(segment) failed authentication"
        case .rangeOutOfBounds: "requested range is beyond the end of the file"
        case .tooLarge: "file too large for the MVLT v1 format"
        }
    }

    /// The expectation class used by the committed test vectors.
    public var vectorClass: String {
        switch self {
        case .notSealedFile, .unsupportedVersion, .headerFailure: "header failure"
        case .payloadFailure, .tooLarge, .rangeOutOfBounds: "payload failure"
        }
    }
}
