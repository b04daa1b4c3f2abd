import Foundation

/// How events are written for a SIEM. Every format carries the entry's `seq`, so a receiver can
/// spot a gap and drop the duplicates a reconnecting sink may resend.
public enum SIEMFormat: String, Codable, Sendable, CaseIterable {
    /// The log's own canonical JSON, one event per line.
    case json
    /// ArcSight Common Event Format.
    case cef
    /// OCSF 1.x JSON: Authentication (class 3002) for logins, API Activity (class 6003) otherwise.
    case ocsf

    public static let product = (vendor: "ModelVault", name: "mvault", version: "0.1.0")

    /// One event, without framing or line end.
    public func render(_ event: AuditEvent) -> String {
        switch self {
        case .json: String(decoding: (try? event.encoded()) ?? [], as: UTF8.self)
        case .cef: Self.cef(event)
        case .ocsf: Self.ocsf(event)
        }
    }

    /// Appends the entry on one line of the log, without framing or line end: in JSON, the
    /// line itself. False, having appended nothing, when the line is not an event.
    public func append(line: ArraySlice<UInt8>, to out: inout [UInt8]) -> Bool {
        if self == .json {
            out += line
            return true
        }
        guard let event = try? AuditEvent.decode(line) else { return false }
        out += render(event).utf8
        return true
    }

    /// Low for allowed and successful, medium for refused, high for alerts.
    static func severity(_ e: AuditEvent) -> (cef: Int, ocsf: Int, syslog: Int) {
        severity(phase: e.phase, allowed: e.decision?.allowed, status: e.result?.status)
    }

    static func severity(phase: String, allowed: Bool?, status: Int?) -> (cef: Int, ocsf: Int, syslog: Int) {
        if phase == "alert" { return (9, 4, 2) }  // high / critical
        if allowed == false || (status ?? 200) >= 400 { return (6, 3, 4) }  // medium / warning
        return (3, 1, 6)  // low / informational
    }

    static func cef(_ e: AuditEvent) -> String {
        func header(_ s: String) -> String {
            s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "|", with: "\\|")
        }
        func value(_ s: String) -> String {
            s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "=", with: "\\=")
                .replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\n", with: "\\n")
        }
        var ext: [(String, String)] = [
            ("rt", String(Int64(e.time.timeIntervalSince1970 * 1000))), ("externalId", String(e.seq)),
            ("cs1Label", "requestID"), ("cs1", e.requestID), ("act", e.phase),
        ]
        if let user = e.actor.user { ext.append(("suser", user)) }
        if let token = e.actor.tokenID { ext += [("cs2Label", "tokenID"), ("cs2", token)] }
        if let ip = e.sourceIP { ext.append(("src", ip)) }
        if let model = e.target?.model {
            ext += [("cs3Label", "model"), ("cs3", model + (e.target?.version.map { "@\($0)" } ?? ""))]
        }
        if let file = e.target?.file { ext.append(("fname", file)) }
        if let d = e.decision {
            ext += [("outcome", d.allowed ? "allowed" : "denied"), ("reason", d.rule)]
        }
        if let r = e.result {
            ext.append(("cn1Label", "status"))
            ext.append(("cn1", String(r.status)))
            if let bytes = r.bytes { ext.append(("out", String(bytes))) }
            if let error = r.error { ext.append(("msg", error)) }
        }
        let sev = severity(e).cef
        return "CEF:0|\(header(product.vendor))|\(header(product.name))|\(header(product.version))|\(header(e.action))|"
            + "\(header(e.phase == "alert" ? "alert: " + (e.result?.error ?? e.action) : e.action))|\(sev)|"
            + ext.map { "\($0)=\(value($1))" }.joined(separator: " ")
    }

    static func ocsf(_ e: AuditEvent) -> String {
        let login = e.action == "POST /v1/auth/login"
        let classUID = login ? 3002 : 6003
        let failed = e.decision?.allowed == false || (e.result?.status ?? 200) >= 400
        // Authentication: 1 logon. API Activity: 1 create, 2 read, 3 update, 4 delete.
        let method = e.action.split(separator: " ").first.map(String.init) ?? ""
        let activity =
            login ? 1 : ["POST": 1, "GET": 2, "HEAD": 2, "PUT": 3, "PATCH": 3, "DELETE": 4][method] ?? 99
        var object: [String: Any] = [
            "category_uid": login ? 3 : 6, "class_uid": classUID, "activity_id": activity,
            "type_uid": classUID * 100 + activity, "time": Int64(e.time.timeIntervalSince1970 * 1000),
            "severity_id": severity(e).ocsf, "status_id": failed ? 2 : 1, "status": failed ? "Failure" : "Success",
            "metadata": [
                "version": "1.1.0", "uid": String(e.seq), "correlation_uid": e.requestID,
                "product": ["name": product.name, "vendor_name": product.vendor, "version": product.version],
            ],
            "api": ["operation": e.action, "request": ["uid": e.requestID]],
            "actor": ["user": ["name": e.actor.user ?? "", "uid": e.actor.tokenID ?? e.actor.user ?? ""]],
        ]
        if let ip = e.sourceIP { object["src_endpoint"] = ["ip": ip] }
        if login { object["user"] = ["name": e.actor.user ?? ""] }
        if let target = e.target {
            object["resources"] = [
                [
                    "type": target.file == nil ? "model" : "model file",
                    "name": [
                        target.model.map { m in target.version.map { "\(m)@\($0)" } ?? m }, target.file, target.name,
                    ]
                    .compactMap { $0 }.joined(separator: " "),
                ]
            ]
        }
        if let d = e.decision { object["status_detail"] = (d.allowed ? "allowed: " : "denied: ") + d.rule }
        if let r = e.result {
            object["http_response"] = ["code": r.status]
            if let error = r.error { object["message"] = error }
        }
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
            ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// Appends `entry` as one octet-counted frame (RFC 6587: "LEN SP MSG") whose MSG is an RFC 5424
    /// syslog message carrying the entry (`append(line:to:)`): facility authpriv (10), severity from the event,
    /// APP-NAME `mvault`, MSGID the phase, and the seq as structured data. Written in place: a
    /// busy server frames thousands of these a second.
    public func appendSyslogFrame(_ entry: LoggedEvent, hostname: [UInt8], to out: inout [UInt8]) {
        let start = out.count
        let pri = 10 * 8 + Self.severity(phase: entry.phase, allowed: entry.allowed, status: entry.status).syslog
        out.append(UInt8(ascii: "<"))
        Self.appendDecimal(pri, to: &out)
        out.append(contentsOf: ">1 ".utf8)
        // RFC 3339 with milliseconds in UTC: the entry's own.
        out += entry.timeText
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: hostname)
        out.append(contentsOf: " mvault - ".utf8)
        out.append(contentsOf: entry.phase.utf8)
        out.append(contentsOf: " [mvault@32473 seq=\"".utf8)
        Self.appendDecimal(entry.seq, to: &out)
        out.append(contentsOf: "\"] ".utf8)
        if !append(line: entry.bytes, to: &out) { out += entry.bytes }
        // The length goes in front of the message, now that it is known.
        var length = out.count - start
        var digits = 1
        var rest = length
        while rest >= 10 { (rest, digits) = (rest / 10, digits + 1) }
        out.insert(contentsOf: repeatElement(UInt8(ascii: " "), count: digits + 1), at: start)
        for i in (start..<start + digits).reversed() {
            out[i] = UInt8(48 + length % 10)
            length /= 10
        }
    }

    /// Appends `value` (not negative) in decimal.
    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value >= 10 { appendDecimal(value / 10, to: &out) }
        out.append(UInt8(48 + value % 10))
    }
}
