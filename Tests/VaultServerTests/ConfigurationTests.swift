import Foundation
import Testing
import VaultCore
import VaultServer

@Suite("Server configuration")
struct ConfigurationTests {
    func write(_ text: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString).json")
        try Data(text.utf8).write(to: url)
        return url.path
    }

    @Test("the committed sample config loads, and the environment overrides it")
    func sampleAndOverrides() throws {
        let sample = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../config/server.sample.json").standardizedFileURL.path
        let config = try ServerConfiguration.load(path: sample, environment: [:])
        #expect(config.vault == "/srv/modelvault")
        #expect(config.listen.port == 8443)
        #expect(config.limits.loginLockoutSeconds == 1)
        let overridden = try ServerConfiguration.load(
            path: sample, environment: ["MVAULT_LISTEN": "0.0.0.0:9443", "MVAULT_VAULT": "/data/v"])
        #expect(overridden.listen.host == "0.0.0.0")
        #expect(overridden.listen.port == 9443)
        #expect(overridden.vault == "/data/v")
    }

    @Test("a partial section keeps the defaults of the settings it omits")
    func partialSections() throws {
        let config = try ServerConfiguration.load(
            path: try write(#"{"vault": "/v", "listen": {"port": 9443}}"#), environment: [:])
        #expect(config.listen.host == "127.0.0.1")
        #expect(config.listen.port == 9443)
        #expect(config.tls.certificate == "tls/server.crt")
    }

    @Test("an unknown setting anywhere stops the server, with its path and the nearest valid name")
    func unknownSettings() throws {
        let cases: [(String, String)] = [
            (
                #"{"vault": "/v", "tls": {"clientCertficates": "required"}}"#,
                "unknown setting 'tls.clientCertficates'; did you mean 'clientCertificates'?"
            ),
            (#"{"vault": "/v", "listn": {"port": 9443}}"#, "unknown setting 'listn'; did you mean 'listen'?"),
            (
                #"{"vault": "/v", "audit": {"sinks": [{"type": "file", "path": "/x"}, {"type": "syslog", "adress": "h:1"}]}}"#,
                "unknown setting 'audit.sinks[1].adress'; did you mean 'address'?"
            ),
            (
                #"{"vault": "/v", "audit": {"alerts": {"bulk": {"maxByte": 5}}}}"#,
                "unknown setting 'audit.alerts.bulk.maxByte'; did you mean 'maxBytes'?"
            ),
            (
                #"{"vault": "/v", "backup": {"to": "/b", "keep": {"monthly": 3}}}"#,
                "unknown setting 'backup.keep.monthly'"
            ),
            (#"{"vault": "/v", "zzzzzzzz": 1}"#, "unknown setting 'zzzzzzzz' (docs/configuration.md"),
        ]
        for (text, message) in cases {
            let path = try write(text)
            do {
                _ = try ServerConfiguration.load(path: path, environment: [:])
                Issue.record("\(text) was accepted")
            } catch {
                #expect("\(error)".hasPrefix("\(path): \(message)"), "\(error)")
            }
        }
        // Free-form maps keep any key: a webhook's HTTP headers.
        let headers = try write(
            #"{"vault": "/v", "audit": {"sinks": [{"type": "webhook", "url": "https://h/x", "headers": {"X-Any": "1"}}]}}"#
        )
        #expect(try ServerConfiguration.load(path: headers, environment: [:]).audit.sinks[0].headers == ["X-Any": "1"])
    }

    @Test("limits that would stop the server working are refused")
    func badLimits() throws {
        for (key, value) in [
            ("maxJSONBodyBytes", "0"), ("idleTimeoutSeconds", "0"), ("sessionTTLSeconds", "0"),
            ("requestsPerSecondPerIP", "0"), ("requestBurstPerIP", "0"), ("maxTokenTTLSeconds", "0"),
            ("uploadIdleSeconds", "0"), ("maxUploadFilesPerUser", "0"), ("maxUploadBytesPerUser", "0"),
            ("maxOpenUploadsPerUser", "-1"),
        ] {
            let path = try write(#"{"vault": "/v", "limits": {"\#(key)": \#(value)}}"#)
            do {
                _ = try ServerConfiguration.load(path: path, environment: [:])
                Issue.record("\(key) = \(value) was accepted")
            } catch {
                #expect("\(error)".hasPrefix("limits.\(key) must be"), "\(error)")
            }
        }
    }

    @Test("bad config files get an error naming the file and the setting")
    func badConfigs() throws {
        let missingVault = try write(#"{"listen": {"port": 1}}"#)
        #expect(throws: VaultError.invalidArgument("\(missingVault): missing setting 'vault'")) {
            try ServerConfiguration.load(path: missingVault, environment: [:])
        }
        let badType = try write(#"{"vault": "/v", "listen": {"port": "x"}}"#)
        #expect(throws: VaultError.invalidArgument("\(badType): setting 'listen.port' has the wrong type")) {
            try ServerConfiguration.load(path: badType, environment: [:])
        }
        let notJSON = try write("vault = /v")
        #expect(throws: VaultError.invalidArgument("\(notJSON) is not valid JSON")) {
            try ServerConfiguration.load(path: notJSON, environment: [:])
        }
        #expect(throws: VaultError.self) {
            try ServerConfiguration.load(path: nil, environment: ["MVAULT_VAULT": "/v", "MVAULT_LISTEN": "nope"])
        }
        let badHours = try write(
            #"{"vault": "/v", "audit": {"alerts": {"hours": [{"roles": ["consumer"], "timeZone": "Mars/Olympus"}]}}}"#)
        #expect(
            throws: VaultError.invalidArgument(
                "audit.alerts.hours[0]: unknown time zone 'Mars/Olympus': use a name such as Europe/Berlin or UTC")
        ) {
            try ServerConfiguration.load(path: badHours, environment: [:])
        }
        let plainWebhook = try write(
            #"{"vault": "/v", "audit": {"sinks": [{"type": "webhook", "url": "http://alerts.example/hook"}]}}"#)
        #expect(
            throws: VaultError.invalidArgument(
                #"audit.sinks[0]: a webhook sink needs "url": "https://HOST/PATH" (http only to a loopback address)"#)
        ) {
            try ServerConfiguration.load(path: plainWebhook, environment: [:])
        }
        for lockout in ["0", "-1", "901"] {
            let badLockout = try write(#"{"vault": "/v", "limits": {"loginLockoutSeconds": \#(lockout)}}"#)
            #expect(
                throws: VaultError.invalidArgument(
                    "limits.loginLockoutSeconds must be above 0 and at most 900 (15 minutes)")
            ) {
                try ServerConfiguration.load(path: badLockout, environment: [:])
            }
        }
        #expect(throws: VaultError.invalidArgument("no vault: pass --config FILE or set MVAULT_VAULT")) {
            try ServerConfiguration.load(path: nil, environment: [:])
        }
    }
}
