import Logging

/// The server's log handler: swift-log's stream handler on standard error, except that metadata
/// is formatted when a line is logged rather than whenever it is set. The stream handler formats
/// all its metadata each time any is set, and the server sets a request id on every request,
/// logged or not.
public struct ServerLogHandler: LogHandler {
    var stream: StreamLogHandler
    public var metadata: Logger.Metadata = [:]

    public init(label: String) {
        stream = .standardError(label: label)
    }

    /// A logger that writes through this handler.
    public static func logger(label: String) -> Logger {
        Logger(label: label) { ServerLogHandler(label: $0) }
    }

    public var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { stream.metadataProvider }
        set { stream.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var event = event
        if !metadata.isEmpty {
            event.metadata = metadata.merging(event.metadata ?? [:]) { _, explicit in explicit }
        }
        stream.log(event: event)
    }
}
