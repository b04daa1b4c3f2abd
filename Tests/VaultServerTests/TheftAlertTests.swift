import AsyncHTTPClient
import AuditLog
import Foundation
import Hummingbird
import Keyring
import NIOCore
import Synchronization
import Testing
import VaultCore
import VaultServices

@testable import VaultServer

@Suite("Server: theft alerts and metrics", .serialized)
struct TheftAlertTests {
    /// An HTTP receiver on 127.0.0.1 that keeps what is POSTed to it; the first `refuse` posts get 503.
    final class Receiver: Sendable {
        let bodies = Mutex<[String]>([])
        let refused = Mutex(0)
        let refuse: Int
        init(refuse: Int) { self.refuse = refuse }

        func run(_ body: (Int) async throws -> Void) async throws {
            let router = Router()
            router.post("/hook") { request, _ -> HTTPResponse.Status in
                let data = try await request.body.collect(upTo: 1 << 20)
                if self.refused.withLock({ n in
                    defer { n += 1 }
                    return n < self.refuse
                }) {
                    return .serviceUnavailable
                }
                let text = String(buffer: data)
                let auth = request.headers[.authorization] ?? ""
                self.bodies.withLock { $0.append(auth + " " + text) }
                return .noContent
            }
            let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
            let app = Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) })
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await app.runService(gracefulShutdownSignals: []) }
                var iterator = ports.makeAsyncIterator()
                let port = try #require(await iterator.next())
                try await body(port)
                group.cancelAll()
            }
        }
    }

    /// Today's UTC hours from `start` to `end` hours from now (any day of the week).
    static func hours(_ roles: [String], fromNow start: Int, to end: Int) -> AlertConfiguration.Hours {
        let hour = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: Date())
            .hour!
        func clock(_ h: Int) -> String { String(format: "%02d:00", ((hour + h) % 24 + 24) % 24) }
        return .init(
            roles: roles, days: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"], from: clock(start), to: clock(end))
    }

    /// curl from another loopback address (another /24), with `token`.
    static func curl(_ f: ServerFixture, from ip: String, _ path: String, token: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = [
            "-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface", ip, "--cacert", f.caPath,
            "-H", "Authorization: Bearer \(token)", f.base + path,
        ]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        process.waitUntilExit()
        return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    @Test(
        "a scripted normal day raises no alert; the attack raises each: brute force, bulk pulls, a canary, a new network, off hours; the webhook gets them"
    )
    func scriptedDay() async throws {
        let receiver = Receiver(refuse: 1)
        try await receiver.run { hookPort in
            let alerts = AlertConfiguration(
                bulk: .init(maxModels: 3, maxVersions: 10),
                hours: [Self.hours(["consumer"], fromNow: -2, to: 2), Self.hours(["auditor"], fromNow: 3, to: 5)])
            let audit = ServerConfiguration.Audit(
                checkpointSeconds: 3600,
                sinks: [
                    .init(
                        type: .webhook, url: "http://127.0.0.1:\(hookPort)/hook",
                        headers: ["Authorization": "Bearer hook-secret"])
                ], canaryModels: ["acme/decoy*"], alerts: alerts)
            try await ServerFixture.with(audit: audit) { f in
                let (sessions, weights) = try await ModelAccessTests().prepare(f)
                let keyring = try KeyringFixture.open(f)
                let vault = try LocalVault(
                    layout: VaultLayout(root: f.root.appendingPathComponent("vault")),
                    keys: InProcessKeys(keyring: keyring))
                let input = f.root.appendingPathComponent("w.bin")
                try weights.prefix(1000).write(to: input)
                for name in ["acme/a", "acme/b", "acme/c", "acme/decoy"] {
                    _ = try vault.push([input], to: try ModelName(parsing: name), note: nil)
                }
                var r = try await f.send(
                    .POST, "/v1/tokens",
                    ["name": "ci", "scopes": [["pattern": "acme/*", "capabilities": ["pull", "read"]]]],
                    token: sessions["consumer"])
                let token = try #require(r.json["token"] as? String, "\(r.json)")
                let tokenID = try #require(r.json["id"] as? String)

                // A normal day: the consumer pulls two models in its hours, its token works from
                // its usual network, the publisher lists.
                for file in ["acme/demo/versions/1/files/weights.bin", "acme/a/versions/1/files/w.bin"] {
                    #expect(try await f.raw(.GET, "/v1/models/\(file)", token: token).status == 200)
                }
                #expect(try Self.curl(f, from: "127.0.0.1", "/v1/models/acme/demo", token: token) == "200")
                #expect(try await f.request(.GET, "/v1/models", token: sessions["publisher"]).status == 200)
                #expect(try await f.request(.GET, "/v1/models", token: sessions["consumer"]).status == 200)
                try await Task.sleep(for: .milliseconds(300))
                #expect(try AuditTests.entries(f).filter { $0.phase == "alert" }.map(\.action) == [])

                // The attack: password guessing; the token pulls every model it can, from
                // another network; the auditor works at night; someone opens the decoy.
                for _ in 0..<6 {
                    _ = try await f.request(
                        .POST, "/v1/auth/login", body: #"{"username": "admin", "password": "letmein-letmein"}"#)
                }
                #expect(try Self.curl(f, from: "127.0.1.5", "/v1/models/acme/demo", token: token) == "200")
                for model in ["acme/b", "acme/c"] {
                    r = try await f.request(.GET, "/v1/models/\(model)/versions/1/files/w.bin", token: token)
                    #expect(r.status == 200)
                }
                #expect(try await f.request(.GET, "/v1/models", token: sessions["auditor"]).status == 200)
                #expect(try await f.request(.GET, "/v1/models", token: sessions["auditor"]).status == 200)
                #expect(try await f.request(.GET, "/v1/models/acme/decoy", token: token).status == 200)
                var raised = try await AuditTests.alerts(f, atLeast: 5)
                // A moment more, so that a repeated alert would be there too.
                try await Task.sleep(for: .milliseconds(300))
                raised = try AuditTests.entries(f).filter { $0.phase == "alert" }
                #expect(
                    Set(raised.map(\.action)) == [
                        "alert.brute-force", "alert.new-network", "alert.bulk-exfiltration", "alert.off-hours",
                        "alert.canary",
                    ])
                // Each once: repeated requests in the same window do not repeat an alert.
                #expect(raised.count == 5, "\(raised.map(\.action))")
                let bulk = try #require(raised.first { $0.action == "alert.bulk-exfiltration" })
                #expect(bulk.actor.tokenID == tokenID && bulk.target?.model == "acme/c")
                #expect(bulk.result?.error?.contains("pulled 4 distinct models within 3600 s (limit 3") == true)
                let network = try #require(raised.first { $0.action == "alert.new-network" })
                #expect(network.sourceIP == "127.0.1.5" && network.actor.tokenID == tokenID)
                #expect(network.result?.error?.contains("127.0.1.0/24, a network it was never used from") == true)
                let night = try #require(raised.first { $0.action == "alert.off-hours" })
                #expect(night.actor.user == "u-auditor")

                // The webhook got the alerts (and only them), after refusing the first post once.
                var posted: [String] = []
                for _ in 0..<50 {
                    posted = receiver.bodies.withLock { $0 }
                    if posted.count >= 5 { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(posted.count == 5)
                #expect(posted.allSatisfy { $0.hasPrefix("Bearer hook-secret {") && $0.contains(#""phase":"alert""#) })
                #expect(receiver.refused.withLock { $0 } == 6)

                // The metrics tell the same story, to the auditor only.
                #expect(try await f.request(.GET, "/metrics", token: sessions["consumer"]).status == 403)
                #expect(try await f.raw(.GET, "/metrics").status == 401)
                let scrape = try await f.raw(.GET, "/metrics", token: sessions["auditor"])
                #expect(scrape.status == 200 && scrape.headers["content-type"]?.hasPrefix("text/plain") == true)
                let text = String(decoding: scrape.body, as: UTF8.self)
                for line in [
                    #"mvault_http_requests_total{method="GET",route="/v1/models",status="200"}"#,
                    #"mvault_auth_failures_total{route="/v1/auth/login"}"#,
                    #"mvault_downloads_total{model="acme/c"} 1"#,
                    #"mvault_download_bytes_total{model="acme/c"} 1000"#,
                    #"mvault_alerts_total{kind="bulk-exfiltration"} 1"#,
                    #"mvault_alerts_total{kind="canary"} 1"#,
                    "mvault_sealed 0",
                    "mvault_audit_log_entries ",
                    "mvault_audit_checkpoint_age_seconds ",
                    #"mvault_audit_sink_dropped_events{sink="http://127.0.0.1:\#(hookPort)/hook"} 0"#,
                ] {
                    #expect(text.contains(line), "\(line)")
                }
                #expect(!text.contains("hook-secret") && !text.contains(token))
            }
        }
    }

    @Test("bulk pulls are measured against the caller's own baseline; limits are per window")
    func baseline() throws {
        let detector = try TheftDetector(
            .init(
                bulk: .init(windowSeconds: 100, maxModels: 2, maxVersions: nil, baselineWindows: 10, baselineFactor: 2))
        )
        func pull(_ n: Int, at t: Double, actor: String = "user a") -> [String] {
            (0..<n).flatMap {
                detector.download(
                    actor: actor, model: "m/\($0)", version: 1, bytes: 1, at: Date(timeIntervalSince1970: t)
                )
                .map(\.kind)
            }
        }
        // First window: 3 models, over the limit, no history → raised once.
        #expect(pull(4, at: 1000) == ["bulk-exfiltration"])
        // A busy caller: windows of 4 are its normal; 5 is not twice that.
        #expect(pull(4, at: 1100) == [])
        #expect(pull(5, at: 1200) == [])
        // Nine of its usual 4.3 is over twice its baseline.
        #expect(pull(9, at: 1300) == ["bulk-exfiltration"])
        // Others have their own baselines.
        #expect(pull(3, at: 1300, actor: "user b") == ["bulk-exfiltration"])
    }

    @Test("hours: a window across midnight, days, time zones; bad settings are named")
    func schedules() throws {
        let night = try Schedule(.init(roles: ["r"], days: ["fri"], from: "22:00", to: "06:00", timeZone: "UTC"))
        // 2026-11-27 is a Friday.
        let friday = Date(timeIntervalSince1970: 1_795_737_600)  // 2026-11-27 00:00 UTC
        #expect(!night.contains(friday.addingTimeInterval(21 * 3600)))
        #expect(night.contains(friday.addingTimeInterval(23 * 3600)))
        #expect(night.contains(friday.addingTimeInterval(29 * 3600)))  // Saturday 05:00
        #expect(!night.contains(friday.addingTimeInterval(31 * 3600)))
        #expect(!night.contains(friday.addingTimeInterval(-1 * 3600)))  // Thursday 23:00
        let berlin = try Schedule(
            .init(roles: ["r"], days: ["fri"], from: "09:00", to: "10:00", timeZone: "Europe/Berlin"))
        #expect(berlin.contains(friday.addingTimeInterval(8.5 * 3600)))  // 09:30 in Berlin (UTC+1)
        for (bad, message) in [
            (AlertConfiguration.Hours(roles: [], days: ["mon"]), "name at least one role"),
            (.init(roles: ["r"], days: ["funday"]), "unknown day 'funday'"),
            (.init(roles: ["r"], from: "25:00"), "invalid time '25:00'"),
            (.init(roles: ["r"], timeZone: "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        ] {
            #expect(AlertConfiguration(hours: [bad]).problem()?.contains(message) == true, "\(message)")
        }
    }
}

@Suite("Work kept off the event loops")
struct OffTheLoopsTests {
    @Test("offTheLoops runs its work, across suspensions, on the background queue, and passes errors through")
    func backgroundQueue() async throws {
        #expect(DispatchQueue.getSpecific(key: BackgroundExecutor.marker) == nil)
        let marks = await offTheLoops { () async -> [Bool?] in
            var seen: [Bool?] = []
            for _ in 0..<3 {
                seen.append(DispatchQueue.getSpecific(key: BackgroundExecutor.marker))
                try? await Task.sleep(for: .milliseconds(1))
            }
            return seen
        }
        #expect(marks == [true, true, true])
        struct Failed: Error {}
        await #expect(throws: Failed.self) { try await offTheLoops { () async throws -> Int in throw Failed() } }
    }
}

@Suite("Audit sinks: the backlog and the resend window")
struct SinkBacklogTests {
    @Test("FIFO keeps order through appends, removals from the front and compaction")
    func fifo() {
        var fifo = FIFO<Int>()
        fifo.append(contentsOf: 0..<10_000)
        #expect(fifo.prefix(3) == [0, 1, 2] && fifo.count == 10_000)
        fifo.removeFirst(6_000)  // past the compaction point: the storage is rebuilt
        #expect(fifo.count == 4_000 && fifo.prefix(2) == [6_000, 6_001])
        fifo.removeFirst(while: { $0 < 9_000 })
        #expect(Array(fifo.elements) == Array(9_000..<10_000))
        fifo.append(contentsOf: [10_000])
        #expect(fifo.prefix(2) == [9_000, 9_001] && fifo.count == 1_001 && fifo.elements.last == 10_000)
        fifo.removeFirst(5_000)
        #expect(fifo.count == 0 && fifo.prefix(1).isEmpty)
        fifo.append(contentsOf: [1])
        #expect(Array(fifo.elements) == [1])
    }

    @Test("the resend window goes back to the batches of the last seconds, up to its byte bound")
    func resendWindow() {
        let window = SentWindow()
        let now = Date()
        func at(_ seq: Int) -> AuditSink.Position { .init(offset: seq * 100, seq: seq) }
        window.sent(from: at(0), bytes: 1 << 20, at: now.addingTimeInterval(-10))  // too old once newer ones come
        #expect(window.sent(from: at(10), bytes: 1, at: now.addingTimeInterval(-1)) == at(10))  // the old one went
        #expect(window.sent(from: at(20), bytes: 1, at: now.addingTimeInterval(-1)) == at(10))
        #expect(window.rewind(since: now.addingTimeInterval(-5)) == at(10))
        #expect(window.rewind(since: .distantPast) == nil)  // taken: the window starts again
        for i in 0..<20 { window.sent(from: at(100 + i), bytes: 1 << 20, at: now) }
        // 20 MiB and a byte: the oldest 5 go.
        #expect(window.sent(from: at(200), bytes: 1, at: now) == at(105))
        #expect(window.rewind(since: .distantPast) == at(105))
    }
}
