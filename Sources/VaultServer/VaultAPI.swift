import AuditLog
import Foundation
import Hummingbird
import Identity
import Keyring
import Logging
import NIOPosix
import Storage
import Synchronization
import VaultCore
import VaultServices
import VaultWire

/// One endpoint of the `/v1` API: method, path, and what the OpenAPI document calls it.
public struct APIRoute: Hashable, Sendable {
    public var method: HTTPRequest.Method
    public var path: String
    public init(_ method: HTTPRequest.Method, _ path: String) {
        self.method = method
        self.path = path
    }
}

/// The API: every route is registered from `endpoints`, which is also what the OpenAPI test
/// compares against the committed document — the front door has no other routes. Each endpoint's
/// access level is enforced here, at registration, and nowhere else.
///
/// A class: every route and many of a request's closures hold the API, and a reference costs
/// one retain where a copy of its two dozen fields costs a retain of each.
final class VaultAPI: Sendable {
    typealias Handler = @Sendable (Request, VaultRequestContext) async throws -> Response
    typealias AuthenticatedHandler =
        @Sendable (Request, VaultRequestContext, AuthenticatedUser) async throws -> Response
    typealias AuthorizedHandler = AuthenticatedHandler

    /// What a route's authorization is about.
    enum Target {
        /// The model named by the route's `namespace`/`name` parameters.
        case model
        /// Some model (listing; the handler filters per model through the same policy).
        case anyModel
        /// The vault as a whole (users, roles, grants).
        case vault
    }

    enum Access {
        /// No credential: health, seal status, unseal (the shares are the credential), login.
        case open
        /// A valid session token or API token.
        case authenticated(AuthenticatedHandler)
        /// A session token (a person who logged in): API tokens cannot manage MFA or mint tokens.
        case session(AuthenticatedHandler)
        /// A valid session or API token, and the policy allowing `Capability` on `Target`.
        case authorized(Capability, Target, AuthorizedHandler)
    }

    let layout: VaultLayout
    let keys: KeyHolder
    /// Users, sessions, tokens, roles and grants (the same store as the vault's metadata); what
    /// authorization reads is served from memory.
    let identities: CachedStore
    /// The vault's models, opened once and shared by every request.
    let vault: LocalVault
    let limits: ServerConfiguration.Limits
    let audit: AuditTrail
    let metrics: VaultMetrics
    let detector: TheftDetector
    let throttle: LoginThrottle
    let tokenLimiter = RateLimiter(perSecond: 1, burst: 1)
    let passwordHashing = PasswordHashing.standard
    let dummyPasswordHash = DummyHash()
    let hashers = SecretHashers()
    let policy = Policy()
    let uploads: UploadRegistry
    /// Set when the HSM could not unseal the vault at start.
    let hsmError = SharedValue<String?>(nil)
    var sessionTTLSeconds: Int { limits.sessionTTLSeconds }
    static let version = "0.1.0"

    init(
        layout: VaultLayout, keys: KeyHolder, identities: CachedStore, vault: LocalVault,
        limits: ServerConfiguration.Limits, audit: AuditTrail, metrics: VaultMetrics, detector: TheftDetector,
        throttle: LoginThrottle
    ) {
        (self.layout, self.keys, self.identities, self.vault, self.limits) = (layout, keys, identities, vault, limits)
        (self.audit, self.metrics, self.detector, self.throttle) = (audit, metrics, detector, throttle)
        uploads = UploadRegistry(
            limits: .init(
                idleSeconds: TimeInterval(limits.uploadIdleSeconds), filesPerUser: limits.maxUploadFilesPerUser,
                bytesPerUser: limits.maxUploadBytesPerUser, openPerUser: limits.maxOpenUploadsPerUser))
    }

    var endpoints: [(APIRoute, Access, Handler?)] {
        [
            (APIRoute(.get, "/v1/sys/health"), .open, health),
            (APIRoute(.get, "/v1/sys/seal-status"), .open, sealStatus),
            (APIRoute(.post, "/v1/sys/unseal"), .open, unseal),
            (APIRoute(.get, "/v1/openapi.json"), .open, openAPI),
            (APIRoute(.post, "/v1/auth/login"), .open, login),
            (APIRoute(.get, "/v1/auth/whoami"), .authenticated(whoami), nil),
            (APIRoute(.post, "/v1/auth/logout"), .session(logout), nil),
            (APIRoute(.post, "/v1/auth/mfa/enroll"), .session(enrollMFA), nil),
            (APIRoute(.post, "/v1/auth/mfa/confirm"), .session(confirmMFA), nil),
            (APIRoute(.get, "/v1/models"), .authorized(.list, .anyModel, listModels), nil),
            (APIRoute(.get, "/v1/models/{namespace}/{name}"), .authorized(.read, .model, showModel), nil),
            (
                APIRoute(.get, "/v1/models/{namespace}/{name}/versions/{version}/files/**"),
                .authorized(.pull, .model, downloadFile), nil
            ),
            (
                APIRoute(.head, "/v1/models/{namespace}/{name}/versions/{version}/files/**"),
                .authorized(.pull, .model, downloadFile), nil
            ),
            (
                APIRoute(.delete, "/v1/models/{namespace}/{name}/versions/{version}"),
                .authorized(.delete, .model, removeVersion), nil
            ),
            (APIRoute(.post, "/v1/models/{namespace}/{name}/uploads"), .authorized(.push, .model, startUpload), nil),
            (
                APIRoute(.put, "/v1/models/{namespace}/{name}/uploads/{upload}/files/**"),
                .authorized(.push, .model, uploadFile), nil
            ),
            (
                APIRoute(.post, "/v1/models/{namespace}/{name}/uploads/{upload}/commit"),
                .authorized(.push, .model, commitUpload), nil
            ),
            (
                APIRoute(.delete, "/v1/models/{namespace}/{name}/uploads/{upload}"),
                .authorized(.push, .model, abortUpload), nil
            ),
            (APIRoute(.get, "/v1/users"), .authorized(.admin, .vault, listUsers), nil),
            (APIRoute(.post, "/v1/users"), .authorized(.admin, .vault, createUser), nil),
            (APIRoute(.delete, "/v1/users/{user}"), .authorized(.admin, .vault, deleteUser), nil),
            (APIRoute(.put, "/v1/users/{user}/password"), .authorized(.admin, .vault, setPassword), nil),
            (APIRoute(.put, "/v1/users/{user}/roles"), .authorized(.admin, .vault, setRoles), nil),
            (APIRoute(.delete, "/v1/users/{user}/mfa"), .authorized(.admin, .vault, resetMFA), nil),
            (APIRoute(.get, "/v1/roles"), .authorized(.grant, .vault, listRoles), nil),
            (APIRoute(.post, "/v1/roles"), .authorized(.admin, .vault, createRole), nil),
            (APIRoute(.patch, "/v1/roles/{role}"), .authorized(.admin, .vault, updateRole), nil),
            (APIRoute(.delete, "/v1/roles/{role}"), .authorized(.admin, .vault, deleteRole), nil),
            (APIRoute(.get, "/v1/grants"), .authorized(.grant, .vault, listGrants), nil),
            (APIRoute(.post, "/v1/grants"), .authorized(.grant, .vault, createGrant), nil),
            (APIRoute(.delete, "/v1/grants/{grant}"), .authorized(.grant, .vault, deleteGrant), nil),
            (APIRoute(.get, "/v1/access/review"), .authorized(.grant, .vault, accessReview), nil),
            (APIRoute(.get, "/v1/certificates"), .authorized(.admin, .vault, listCertificates), nil),
            (APIRoute(.post, "/v1/certificates"), .authorized(.admin, .vault, issueCertificate), nil),
            (APIRoute(.delete, "/v1/certificates/{serial}"), .authorized(.admin, .vault, revokeCertificate), nil),
            (APIRoute(.get, "/v1/audit/checkpoint"), .authorized(.audit, .vault, auditCheckpoint), nil),
            (APIRoute(.get, "/v1/audit/entries"), .authorized(.audit, .vault, auditEntries), nil),
            (APIRoute(.get, "/v1/audit/proof/inclusion"), .authorized(.audit, .vault, auditInclusion), nil),
            (APIRoute(.get, "/v1/audit/proof/consistency"), .authorized(.audit, .vault, auditConsistency), nil),
            (APIRoute(.post, "/v1/audit/hash"), .authorized(.audit, .vault, auditHash), nil),
            (APIRoute(.get, "/metrics"), .authorized(.audit, .vault, prometheusMetrics), nil),
            (APIRoute(.get, "/v1/tokens"), .authenticated(listTokens), nil),
            (APIRoute(.post, "/v1/tokens"), .session(createToken), nil),
            (APIRoute(.delete, "/v1/tokens/{token}"), .authenticated(revokeToken), nil),
        ]
    }

    /// Routes that leave no audit entry: probes and the API description.
    static let unaudited: Set<APIRoute> = [
        APIRoute(.get, "/v1/sys/health"), APIRoute(.get, "/v1/sys/seal-status"), APIRoute(.get, "/v1/openapi.json"),
    ]

    /// Every endpoint, as the front door routes requests to them.
    func routes() -> RouteTable<Endpoint> {
        var table = RouteTable<Endpoint>()
        for (route, access, handler) in endpoints {
            #if MVAULT_AUDIT_DISABLED
                // Only for bench/audit-cost.sh: the same server without its audit trail.
                let audited = false
            #else
                let audited = !Self.unaudited.contains(route)
            #endif
            table.add(
                route.method, route.path,
                Endpoint(api: self, route: route, access: access, handler: handler, audited: audited))
        }
        return table
    }

    /// One route's responder.
    struct Endpoint: HTTPResponder {
        let api: VaultAPI
        let route: APIRoute
        let access: Access
        let handler: Handler?
        let audited: Bool
        let action: String
        let targetParameters: AuditTargetParameters
        let counters: VaultMetrics.RouteCounters

        init(api: VaultAPI, route: APIRoute, access: Access, handler: Handler?, audited: Bool) {
            (self.api, self.route, self.access, self.handler, self.audited) = (api, route, access, handler, audited)
            action = "\(route.method) \(route.path)"
            targetParameters = AuditTargetParameters(route.path)
            counters = api.metrics.counters(method: route.method.rawValue, route: route.path)
        }

        func respond(to request: Request, context: VaultRequestContext) async throws -> Response {
            do {
                let response =
                    try await audited
                    ? api.serveAudited(action, targetParameters, access, handler, request, context)
                    : api.respond(access, handler, request, context)
                counters.answered(status: Int(response.status.code))
                return response
            } catch {
                // As an APIError, which the front door renders as it is.
                let refused = FrontDoor.apiError(error, request)
                counters.answered(status: Int(refused.status.code))
                throw refused
            }
        }
    }

    /// Serves one request between its `request` and `response` audit entries.
    @inline(__always)
    func serveAudited(
        _ action: String, _ targetParameters: AuditTargetParameters, _ access: Access, _ handler: Handler?,
        _ request: Request, _ context: VaultRequestContext
    ) async throws -> Response {
        let readOnly = request.method == .get || request.method == .head
        let scope = AuditScope(
            action: action, sourceIP: context.remoteIP, target: targetParameters.target(context.path),
            readOnly: readOnly)
        var context = context
        context.audit = scope
        if let serial = context.clientCertificate?.serial {
            scope.fields.withLock { $0.actor.certificate = serial }
        }
        let phase = readOnly ? "access" : "response"
        let response: Response
        do {
            response = try await respond(access, handler, request, context)
        } catch {
            let refused = APIError.from(error)
            let entry = scope.event(
                phase: phase, result: .init(status: Int(refused.status.code), error: refused.message))
            if try !audit.recordWithoutWaiting(entry) { try await audit.record(entry, durable: true) }
            throw error
        }
        // Nothing leaves, and no change is acknowledged, before its entry is on disk.
        let entry = scope.event(phase: phase, result: .init(status: Int(response.status.code)))
        if try !audit.recordWithoutWaiting(entry) { try await audit.record(entry, durable: true) }
        return response
    }

    /// Serves one request by its access rule: authentication, the one policy decision, and the
    /// decision's audit entry (durable before anything is served), then the handler.
    @inline(__always)
    func respond(_ access: Access, _ handler: Handler?, _ request: Request, _ context: VaultRequestContext)
        async throws -> Response
    {
        switch access {
        case .open:
            return try await handler!(request, context)
        case .authenticated(let authenticated):
            let caller = try await requireCaller(request, context)
            if let entry = try recordDecision(
                context, caller, .init(allowed: true, rule: "authenticated as \(caller.name)"))
            {
                try await audit.record(entry, durable: true)
            }
            return try await authenticated(request, context, caller)
        case .session(let authenticated):
            let caller = try await requireCaller(request, context)
            guard caller.sessionID != nil else {
                if let entry = try recordDecision(
                    context, caller, .init(allowed: false, rule: "API tokens cannot do this"))
                {
                    try await audit.record(entry, durable: true)
                }
                throw APIError(
                    .forbidden, "API tokens cannot do this; a person must log in",
                    hint: "use a session token from POST /v1/auth/login")
            }
            if let entry = try recordDecision(context, caller, .init(allowed: true, rule: "session of \(caller.name)"))
            {
                try await audit.record(entry, durable: true)
            }
            return try await authenticated(request, context, caller)
        case .authorized(let capability, let target, let authorized):
            let about: AccessTarget =
                switch target {
                case .model: .model(try modelName(context).description)
                case .anyModel: .anyModel
                case .vault: .vault
                }
            // Authentication and the policy question, from memory or in one trip to the
            // thread pool.
            let (ip, certificate) = (context.remoteIP, context.clientCertificate)
            let decide: @Sendable () throws -> (AuthenticatedUser, AccessDecision) = { [self] in
                let caller = try requireCaller(request, from: ip, certificate: certificate)
                return (caller, try authorize(caller, capability, about, from: ip))
            }
            let (caller, decision) =
                if let answer = try identities.withoutWaiting(decide) { answer } else { try await blocking(decide) }
            if let entry = try recordDecision(context, caller, .init(allowed: decision.allowed, rule: decision.reason))
            {
                try await audit.record(entry, durable: true)
            }
            guard decision.allowed else { throw APIError(.forbidden, "access denied: \(decision.reason)") }
            return try await authorized(request, context, caller)
        }
    }

    /// The request entry: who asked, and what the policy said. Fails closed. A change's entry is
    /// on disk before it acts, a read's goes with its answer. Returns a change's entry when the
    /// caller must still await it (`audit.record(_:durable:)`: the log's device syncs slowly).
    func recordDecision(_ context: VaultRequestContext, _ caller: AuthenticatedUser, _ decision: AuditEvent.Decision)
        throws -> AuditEvent?
    {
        guard let scope = context.audit else { return nil }
        let hashed = caller.sessionID.flatMap { audit.hashedSession($0) }
        scope.fields.withLock { f in
            f.actor.user = caller.name
            f.actor.tokenID = caller.token?.id
            f.decision = decision
            f.hashed = hashed
        }
        var waiting: AuditEvent?
        if !scope.readOnly {
            let entry = scope.event(phase: "request")
            if try !audit.recordWithoutWaiting(entry) { waiting = entry }
        }
        watch(caller, from: scope.sourceIP)
        let target = scope.fields.withLock { $0.target }
        if let model = target?.model, audit.canaries.contains(where: { $0.matches(model) }) {
            audit.alert(
                "canary", "the decoy model \(model) was touched (\(scope.action))",
                actor: .init(user: caller.name, tokenID: caller.token?.id),
                sourceIP: scope.sourceIP, target: target)
        }
        return waiting
    }

    /// Raises the alerts a caller's request can raise by itself: access outside its role's hours,
    /// and an API token used from a network it was never used from (checked against the record
    /// once per token, network and process, off the request's path).
    func watch(_ caller: AuthenticatedUser, from ip: String) {
        let actor = AuditEvent.Actor(user: caller.name, tokenID: caller.token?.id)
        if let finding = detector.outsideHours(user: caller.name, roles: caller.roles, at: Date()) {
            audit.alert(finding.kind, finding.detail, actor: actor, sourceIP: ip)
        }
        guard let token = caller.token, let network = IPNetwork.enclosing(ip)?.description,
            detector.unseen(token: token.id, network: network)
        else { return }
        Task {
            do {
                let sighting = try await blocking { [self] in
                    try identities.recordTokenNetwork(id: token.id, network: network, at: Date())
                }
                if sighting == .new {
                    audit.alert(
                        "new-network",
                        "API token \(token.id) (\(token.name), of \(token.owner)) was used from \(network), a network it was never used from",
                        actor: actor, sourceIP: ip)
                }
            } catch {
                detector.forget(token: token.id, network: network)
            }
        }
    }

    /// Runs `work` at once when what it reads from the store is in memory, else on the thread
    /// pool (which also fills the cache). The paths that answer most requests (an authorized
    /// route's decision, `showModel`) write these two steps out instead: calling this async
    /// function costs a request trips through the event loop's job queue even when the answer is
    /// in memory.
    func cachedOrBlocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        if let answer = try identities.withoutWaiting(work) { return answer }
        return try await blocking(work)
    }

    /// The one policy question every authorized route asks; records the deciding grant's use.
    func authorize(_ caller: AuthenticatedUser, _ capability: Capability, _ target: AccessTarget, from ip: String)
        throws -> AccessDecision
    {
        let decision = policy.decide(try accessRequest(caller, capability, target, from: ip))
        if let id = decision.grantID { try identities.touchGrant(id: id, at: Date()) }
        return decision
    }

    /// The facts the policy needs about `caller`, read from the store.
    func accessRequest(_ caller: AuthenticatedUser, _ capability: Capability, _ target: AccessTarget, from ip: String)
        throws -> AccessRequest
    {
        let roles = caller.roles.isEmpty ? [] : try identities.roles().filter { caller.roles.contains($0.name) }
        return AccessRequest(
            user: caller.name, roles: roles, mfaEnrolled: caller.mfaEnrolled,
            grants: try identities.grants(user: caller.name, roles: caller.roles), token: caller.token,
            capability: capability, target: target, sourceIP: ip, now: Date())
    }

    func requireCaller(_ request: Request, _ context: VaultRequestContext) async throws -> AuthenticatedUser {
        let (ip, certificate) = (context.remoteIP, context.clientCertificate)
        return try await cachedOrBlocking { [self] in try requireCaller(request, from: ip, certificate: certificate) }
    }

    /// The caller, or 401. Blocks (SQLite).
    func requireCaller(_ request: Request, from ip: String, certificate: CertificateRecord?) throws
        -> AuthenticatedUser
    {
        guard let caller = try authenticate(request, from: ip, certificate: certificate) else {
            throw APIError(
                .unauthorized, "authentication required",
                hint:
                    "send Authorization: Bearer TOKEN (a session from POST /v1/auth/login, or an API token), or a client certificate"
            )
        }
        return caller
    }

    // MARK: sys

    struct Health: Encodable {
        /// `ok`, `sealed`, or `audit-unavailable` (every audited request is refused).
        var status: String
        var sealed: Bool
        var version: String
        /// Why the audit log cannot record requests, when it cannot.
        var audit: String?
    }

    /// 200 when unsealed and the audit log records, else 503 (so load balancers only route to
    /// servers that can serve).
    var health: Handler {
        { [self] _, _ in
            let sealed = keys.status().sealed
            let audit = sealed ? nil : self.audit.cannotRecord
            let status = sealed ? "sealed" : audit == nil ? "ok" : "audit-unavailable"
            return try json(
                Health(status: status, sealed: sealed, version: Self.version, audit: audit),
                status: status == "ok" ? .ok : .serviceUnavailable)
        }
    }

    struct SealStatus: Encodable {
        var sealed: Bool
        var type: String
        /// Shares needed (Shamir), 0 for a passphrase vault.
        var threshold: Int
        /// Shares given so far toward the threshold.
        var progress: Int
        var version: String
        /// Why the HSM did not unseal an HSM-sealed vault at start, if it did not.
        var hsmError: String?
    }

    func sealStatusBody() -> SealStatus {
        let s = keys.status()
        return SealStatus(
            sealed: s.sealed, type: s.sealType, threshold: s.threshold, progress: s.sharesGiven, version: Self.version,
            hsmError: s.sealed ? hsmError.withLock { $0 } : nil)
    }

    var sealStatus: Handler {
        { [self] _, _ in try json(sealStatusBody()) }
    }

    struct UnsealRequest: Decodable {
        var share: String?
        var passphrase: String?
        var reset: Bool?
    }

    /// Takes one share (or the passphrase); like Vault's, this endpoint needs no token: the
    /// shares are the credential.
    var unseal: Handler {
        { [self] request, _ in
            let body = try await decode(UnsealRequest.self, from: request)
            if body.reset == true {
                // Anyone may call this endpoint: only a share holder may throw away the others' progress.
                guard let share = body.share, body.passphrase == nil else {
                    throw APIError(
                        .badRequest, "a reset needs one of this vault's unseal shares as proof",
                        hint: #"send {"reset": true, "share": "mvs1-…"}"#)
                }
                do { _ = try keys.resetUnseal(proof: share) } catch let error as KeyringError {
                    throw APIError(.forbidden, "unseal progress was not reset: \(error.description)")
                }
                return try json(sealStatusBody())
            }
            guard (body.share == nil) != (body.passphrase == nil) else {
                throw APIError(
                    .badRequest, "give exactly one of \"share\" or \"passphrase\"",
                    hint: "e.g. {\"share\": \"mvs1-…\"}")
            }
            do {
                _ = try await blocking { [self] in try keys.unseal(share: body.share, passphrase: body.passphrase) }
            } catch let error as KeyringError {
                throw APIError(.badRequest, error.description)
            }
            if !keys.status().sealed {
                do {
                    try await didUnseal()
                } catch {
                    throw APIError(
                        .serviceUnavailable,
                        "unsealed, but the audit log failed its checks, so every audited request is refused: \(error)",
                        hint: "run `mvault audit verify` on the vault and restore the log from a backup")
                }
            }
            return try json(sealStatusBody())
        }
    }

    /// What follows unsealing: the audit log opens with the keys; a log that fails its checks
    /// stops every audited request (fail closed) until it is restored.
    func didUnseal() async throws {
        hsmError.withLock { $0 = nil }
        try await audit.open(keys)
    }

    /// An HSM-sealed vault unseals itself at start when its token and PIN are there; otherwise
    /// it stays sealed, says why in the seal status and the log, and takes recovery shares.
    func unsealWithHSM(environment: [String: String], logger: Logger) async {
        guard case .pkcs11 = try? KeyringFile.load(from: layout.keyringFile).seal else { return }
        do {
            let pin = try TokenSealer.pin(environment: environment)
            _ = try await blocking { [self] in
                try keys.unsealWithHSM(pin: pin, module: environment["MVAULT_PKCS11_MODULE"])
            }
            try await didUnseal()
            logger.info("unsealed with the HSM")
        } catch {
            hsmError.withLock { $0 = "\(error)" }
            logger.error("the vault stays sealed: the HSM did not unseal it: \(error)")
        }
    }

    var openAPI: Handler {
        { _, _ in
            guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"),
                let data = try? Data(contentsOf: url)
            else { throw APIError(.internalServerError, "the OpenAPI document is missing from this build") }
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }

    // MARK: helpers

    /// Like `decode(_:from:)`, for a body that may be left out: an empty body is `empty`.
    func decode<T: Decodable>(_ type: T.Type, from request: Request, emptyAs empty: T) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limits.maxJSONBodyBytes)
        } catch {
            throw APIError(.contentTooLarge, "request body over \(limits.maxJSONBodyBytes) bytes")
        }
        if buffer.readableBytes == 0 { return empty }
        return try decodeJSON(type, buffer)
    }

    func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limits.maxJSONBodyBytes)
        } catch {
            throw APIError(.contentTooLarge, "request body over \(limits.maxJSONBodyBytes) bytes")
        }
        return try decodeJSON(type, buffer)
    }

    func decodeJSON<T: Decodable>(_ type: T.Type, _ buffer: ByteBuffer) throws -> T {
        do {
            return try WireJSON.decoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch {
            throw APIError(.badRequest, "malformed JSON body", hint: "see /v1/openapi.json for the request schema")
        }
    }
}

/// Runs blocking work — SQLite, Argon2id, sealed-file reads — on NIO's thread pool, so the event
/// loops (where `mvault` runs Swift concurrency) stay free to serve other requests meanwhile.
func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await NIOThreadPool.singleton.runIfActive(work)
}

/// Runs long work that is async only because it awaits I/O now and then (a scheduled backup) on
/// Dispatch's pool instead of NIO's event loops: it reads, hashes and writes between its awaits,
/// and on a loop that would stall every connection the loop serves.
func offTheLoops<T: Sendable>(_ work: @Sendable () async throws -> T) async rethrows -> T {
    try await withTaskExecutorPreference(BackgroundExecutor.shared, operation: work)
}

/// Jobs of tasks that prefer it run on a concurrent Dispatch queue (on Dispatch's pool).
final class BackgroundExecutor: TaskExecutor {
    static let shared = BackgroundExecutor()
    /// Set (true) on the queue: code can tell it runs there.
    static let marker = DispatchSpecificKey<Bool>()
    let queue = DispatchQueue(label: "mvault.background", attributes: .concurrent)

    init() { queue.setSpecific(key: Self.marker, value: true) }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    json(body: try jsonBody(value), status: status)
}

func json(body: ByteBuffer, status: HTTPResponse.Status = .ok) -> Response {
    var headers = HTTPFields()
    // With room for the security headers the front door adds.
    headers.reserveCapacity(1 + FrontDoor.securityHeaders.count)
    headers[.contentType] = "application/json"
    return Response(status: status, headers: headers, body: .init(byteBuffer: body))
}

/// The API's JSON: sorted keys, ISO 8601 dates.
func jsonBody(_ value: some Encodable) throws -> ByteBuffer {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    return ByteBuffer(bytes: try encoder.encode(value))
}

/// An Argon2id hash of a random password, made once, so logins of unknown users cost the same.
final class DummyHash: Sendable {
    let cached = Mutex<String?>(nil)
    var value: String {
        cached.withLock { cached in
            if let cached { return cached }
            let hash = (try? PasswordHashing.standard.hash(SecretGenerator.token())) ?? ""
            cached = hash
            return hash
        }
    }
}

/// A mutable value behind a lock, for a `Sendable` class's field.
final class SharedValue<Value: Sendable>: Sendable {
    let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<T>(_ body: (inout Value) -> T) -> T { value.withLock { body(&$0) } }
}

/// Which of a route's parameters name its audit target, found once from the route's path: a
/// model (and version, file), or a user, role, grant, token, certificate or upload.
struct AuditTargetParameters: Sendable {
    let model: Bool
    let version: Bool
    let file: Bool
    let name: String?

    init(_ path: String) {
        let route = RoutePath(path)
        let parameters = Set(route.parameterNames)
        model = parameters.contains("namespace") && parameters.contains("name")
        version = parameters.contains("version")
        file = route.catchAll
        name = ["user", "role", "grant", "token", "serial", "upload"].first { parameters.contains($0[...]) }
    }

    func target(_ p: PathParameters) -> AuditEvent.Target? {
        guard model || version || file || name != nil else { return nil }
        var target = AuditEvent.Target()
        if model, let namespace = p.get("namespace"), let name = p.get("name") { target.model = namespace + "/" + name }
        if version { target.version = p.get("version").flatMap(Int.init) }
        if file {
            let file = p.catchAll.joined(separator: "/")
            if !file.isEmpty { target.file = file.removingPercentEncoding ?? file }
        }
        if let name { target.name = p.get(name) }
        return target == AuditEvent.Target() ? nil : target
    }
}
