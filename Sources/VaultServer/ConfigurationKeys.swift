import Foundation
import VaultCore

/// Refuses configuration keys the server does not know. A typo must not pass silently: a
/// misspelt `clientCertificates` would start a server that accepts clients without
/// certificates. The known keys are read from a configuration with every setting present
/// (`reference`), encoded as the server would write it, so a new setting is known once it exists.
enum ConfigurationKeys {
    /// Every setting present, once; an object holding `*` takes keys of any name (HTTP headers).
    static var reference: ServerConfiguration {
        var c = ServerConfiguration(vault: "/vault")
        c.backup = .init(to: "/backups")
        c.audit.sinks = [
            AuditSinkConfiguration(
                type: .webhook, address: "a:1", ca: "ca", path: "p", url: "https://x", headers: ["*": ""],
                alertsOnly: true)
        ]
        c.audit.canaryModels = ["*"]
        c.audit.alerts.bulk.maxBytes = 1
        c.audit.alerts.hours = [.init(roles: ["r"])]
        return c
    }

    /// The first unknown key in `json` (a configuration file's bytes): its path
    /// (`tls.clientCertficates`, `audit.sinks[0].adress`) and the nearest known name beside it.
    static func firstUnknown(in json: Data) throws -> (path: String, nearest: String?)? {
        guard let value = try? JSONSerialization.jsonObject(with: json) else { return nil }
        let known = try JSONSerialization.jsonObject(with: JSONEncoder().encode(reference))
        return firstUnknown(value, known, path: "")
    }

    static func firstUnknown(_ value: Any, _ known: Any, path: String) -> (path: String, nearest: String?)? {
        switch (value, known) {
        case (let object as [String: Any], let knownObject as [String: Any]):
            if knownObject["*"] != nil { return nil }
            for key in object.keys.sorted() {
                let here = path.isEmpty ? key : "\(path).\(key)"
                guard let expected = knownObject[key] else {
                    return (here, Suggestion.nearest(key, in: Array(knownObject.keys)))
                }
                if let found = firstUnknown(object[key] as Any, expected, path: here) { return found }
            }
        case (let array as [Any], let knownArray as [Any]):
            guard let element = knownArray.first else { return nil }
            for (i, item) in array.enumerated() {
                if let found = firstUnknown(item, element, path: "\(path)[\(i)]") { return found }
            }
        default: break
        }
        return nil
    }
}
