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
