import Foundation
import Hummingbird
import Identity
import VaultCore

extension VaultAPI {
    struct EnrollResponse: Encodable {
        /// Base32, for typing into an authenticator app.
        var secret: String
        /// otpauth:// URI, for a QR code.
        var uri: String
    }

    struct EnrollRequest: Decodable {
        /// When a secret is enrolled already: a current code from it, or an unused recovery code.
        var code: String?
    }

    /// Starts TOTP enrollment: a new secret, kept pending until a code from it is confirmed.
    /// Replacing an enrolled secret (which also replaces the recovery codes) needs a second factor
    /// in the same request, so a stolen session alone cannot take over the account's MFA.
    var enrollMFA: AuthenticatedHandler {
        { [self] request, _, caller in
            let body = try await decode(EnrollRequest.self, from: request, emptyAs: EnrollRequest(code: nil))
            return try await blocking { [self] in try enrollMFA(caller, code: body.code) }
        }
    }

    func enrollMFA(_ caller: AuthenticatedUser, code: String?) throws -> Response {
        guard var user = try identities.user(named: caller.name) else {
            throw APIError(.unauthorized, "unknown user")
        }
        if user.sealedTOTPSecret != nil {
            guard let code, code.utf8.count <= 64, !code.isEmpty else {
                throw APIError(
                    .forbidden, "replacing your TOTP secret needs a current code",
                    hint: #"send {"code": "…"} with a code from your authenticator, or an unused recovery code"#)
            }
            guard try checkTOTP(code, for: user) || checkRecoveryCode(code, for: user) else {
                throw APIError(
                    .forbidden, "that code is neither a current TOTP code nor an unused recovery code",
                    hint: "enter the code your authenticator shows now")
            }
            guard let current = try identities.user(named: caller.name) else {
                throw APIError(.unauthorized, "unknown user")
            }
            user = current  // the code's use was recorded
        }
        let secret = TOTP.generateSecret()
        user.pendingTOTPSecret = try SealedSecret.seal(secret, key: keys.derivedKey(purpose: "totp"))
        try identities.updateUser(user)
        let totp = TOTP(secret: secret)
        return try json(
            EnrollResponse(secret: Base32.encode(secret), uri: totp.provisioningURI(account: user.name)))
    }

    struct ConfirmRequest: Decodable {
        var code: String
    }

    struct ConfirmResponse: Encodable {
        /// Ten single-use codes for when the authenticator is lost; shown only now.
        var recoveryCodes: [String]
    }

    /// Activates the pending secret once a current code from it is given; returns recovery codes.
    var confirmMFA: AuthenticatedHandler {
        { [self] request, _, caller in
            let body = try await decode(ConfirmRequest.self, from: request)
            return try await blocking { [self] in try confirmMFA(body, caller) }
        }
    }

    func confirmMFA(_ body: ConfirmRequest, _ caller: AuthenticatedUser) throws -> Response {
        guard var user = try identities.user(named: caller.name) else {
            throw APIError(.unauthorized, "unknown user")
        }
        guard let pending = user.pendingTOTPSecret else {
            throw APIError(.conflict, "no TOTP enrollment in progress", hint: "start one: POST /v1/auth/mfa/enroll")
        }
        let secret = try openTOTPSecret(pending)
        guard let step = TOTP(secret: secret).validate(body.code, at: Date(), lastUsedStep: nil) else {
            throw APIError(
                .badRequest, "that code does not match the new secret",
                hint: "check the authenticator's clock and enter the current code")
        }
        let codes = SecretGenerator.recoveryCodes()
        let hasher = try hasher("recovery")
        user.sealedTOTPSecret = pending
        user.pendingTOTPSecret = nil
        user.totpLastStep = step
        user.recoveryCodeHashes = codes.map(hasher.hash)
        try identities.updateUser(user)
        return try json(ConfirmResponse(recoveryCodes: codes))
    }

    /// A recovery code in place of a TOTP code: valid once.
    func checkRecoveryCode(_ code: String?, for user: UserRecord) throws -> Bool {
        guard let code, user.sealedTOTPSecret != nil else { return false }
        let hasher = try hasher("recovery")
        return try identities.consumeRecoveryCode(user: user.name, hash: hasher.hash(code.lowercased()))
    }
}
