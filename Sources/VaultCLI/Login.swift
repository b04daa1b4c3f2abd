import ArgumentParser
import Foundation
import VaultCore

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Log in to a server; the session is saved (mode 0600) for the commands that follow.",
        discussion: """
            Asks for the password, and for a TOTP code when the account has MFA (a recovery code \
            typed there works too; --recovery-code asks for one). Without a terminal, the password \
            is read from the first line of standard input and the code from the second. The profile lives in $MVAULT_CONFIG_DIR, else $XDG_CONFIG_HOME/mvault, \
            else ~/.config/mvault.
            """)

    @Option(help: "The server, as https://HOST:PORT.")
    var addr: String

    @Option(help: "A PEM file with the CA to trust (a vault's own tls/ca.crt); default: the system's CAs.")
    var ca: String?

    @Option(help: "The user name (default: $USER).")
    var user: String?

    @Flag(help: "Give a recovery code instead of a TOTP code (the authenticator is lost).")
    var recoveryCode = false

    struct Session: Decodable {
        var token: String
        var user: String
        var roles: [String]
        var expiresAt: Date
    }

    func run() async throws {
        guard let name = user ?? ProcessInfo.processInfo.environment["USER"], !name.isEmpty else {
            throw VaultError.invalidArgument("give the user name with --user NAME")
        }
        try UserName.validate(name)
        let caPEM = try ca.map { try RemoteProfile.readCA($0) }
        let client = try RemoteClient(addr: addr, token: nil, caPEM: caPEM)
        guard let password = Terminal.readSecret(prompt: "password for \(name): "), !password.isEmpty else {
            try? await client.http.shutdown()
            throw VaultError.invalidArgument("no password given")
        }
        let session: Session
        do {
            session = try await logIn(client, name: name, password: password)
            try? await client.http.shutdown()
        } catch {
            try? await client.http.shutdown()
            throw error
        }
        let profile = RemoteProfile(
            addr: client.base, user: session.user, token: session.token, expiresAt: session.expiresAt, caPEM: caPEM)
        try profile.save()
        print("logged in to \(client.base) as \(session.user) (\(session.roles.joined(separator: ", ")))")
        print("session saved in \(RemoteProfile.file.path); it expires at \(iso8601(session.expiresAt))")
    }
}

struct Logout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "End the saved session on the server and delete the login profile.")

    func run() async throws {
        guard let profile = try RemoteProfile.current(), FileManager.default.fileExists(atPath: RemoteProfile.file.path)
        else {
            print("not logged in")
            return
        }
        // The profile goes even when the server cannot be reached or the session has expired.
        _ = try? await RemoteClient.with(profile) { try await $0.call(.POST, "/v1/auth/logout") }
        try FileManager.default.removeItem(at: RemoteProfile.file)
        print("logged out of \(profile.addr)")
    }
}

extension Login {
    func logIn(_ client: RemoteClient, name: String, password: String) async throws -> Session {
        var body: [String: Any] = ["username": name, "password": password]
        do {
            return try await client.call(Session.self, .POST, "/v1/auth/login", json: body)
        } catch let error as RemoteError where error.message == "a TOTP code is required" {
            let prompt = recoveryCode ? "recovery code: " : "TOTP code (or a recovery code): "
            guard let code = Terminal.readSecret(prompt: prompt), !code.isEmpty else {
                throw VaultError.invalidArgument("no code given")
            }
            // Authenticator codes are digits; recovery codes are not.
            if recoveryCode || !code.allSatisfy(\.isASCIIDigit) {
                body["recoveryCode"] = code
            } else {
                body["totp"] = code
            }
            return try await client.call(Session.self, .POST, "/v1/auth/login", json: body)
        }
    }
}

func iso8601(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
