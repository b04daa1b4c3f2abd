import Foundation
import Testing
import VaultCore
import VaultWire

@Suite("Request parsers: Range, conditional headers, query numbers, bodies")
struct RequestParserTests {
    @Test("Range follows RFC 9110: ignored when unsupported or invalid, 416 only when unsatisfiable")
    func ranges() {
        let size: UInt64 = 100
        let cases: [(String?, RangeRequest)] = [
            (nil, .whole),
            ("bytes=0-9", .partial(0..<10)),
            ("bytes=90-", .partial(90..<100)),
            ("bytes=-10", .partial(90..<100)),
            ("bytes=-1000", .partial(0..<100)),
            ("bytes=5-18446744073709551615", .partial(5..<100)),
            ("bytes=5-99999999999999999999999", .partial(5..<100)),
            ("bytes=99-99", .partial(99..<100)),
            ("bytes=50-500", .partial(50..<100)),
            ("BYTES = 1-2", .partial(1..<3)),
            ("bytes=100-", .unsatisfiable),
            ("bytes=18446744073709551615-", .unsatisfiable),
            ("bytes=99999999999999999999999-", .unsatisfiable),
            ("bytes=-0", .unsatisfiable),
            // Ignored: another unit, several ranges, bad syntax, last before first.
            ("items=0-9", .whole),
            ("bytes=0-1,5-6", .whole),
            ("bytes=0-1,", .whole),
            ("bytes=", .whole),
            ("bytes=-", .whole),
            ("bytes=a-b", .whole),
            ("bytes=+1-2", .whole),
            ("bytes=1-2-3", .whole),
            ("bytes=9-3", .whole),
            ("bytes 0-9", .whole),
            ("", .whole),
        ]
        for (header, expected) in cases {
            #expect(RangeRequest(header: header, size: size) == expected, "\(header ?? "nil")")
        }
        #expect(RangeRequest(header: "bytes=-5", size: 0) == .unsatisfiable)
        #expect(RangeRequest(header: "bytes=0-", size: 0) == .unsatisfiable)
        #expect(RangeRequest.contentRange(5..<100, size: 100) == "bytes 5-99/100")
        #expect(RangeRequest.contentRange(nil, size: 100) == "bytes */100")
    }

    @Test("If-None-Match compares weakly and takes lists and *; If-Range needs this strong tag")
    func conditionals() {
        let etag = #""abc""#
        #expect(EntityTags.noneMatch(nil, etag))
        #expect(!EntityTags.noneMatch(#""abc""#, etag))
        #expect(!EntityTags.noneMatch(#"W/"abc""#, etag))
        #expect(!EntityTags.noneMatch(#""x", "abc""#, etag))
        #expect(!EntityTags.noneMatch("*", etag))
        #expect(EntityTags.noneMatch(#""x", "y""#, etag))
        #expect(EntityTags.rangeApplies(ifRange: nil, etag))
        #expect(EntityTags.rangeApplies(ifRange: #" "abc" "#, etag))
        #expect(!EntityTags.rangeApplies(ifRange: #"W/"abc""#, etag))
        #expect(!EntityTags.rangeApplies(ifRange: "Wed, 21 Oct 2015 07:28:00 GMT", etag))
    }

    @Test("audit proof and entry queries: only whole numbers inside the log")
    func auditQueries() throws {
        let inclusion = try InclusionProofQuery(index: "0", size: nil, logSize: 10)
        #expect(inclusion.index == 0 && inclusion.size == 10)
        #expect(try ConsistencyProofQuery(first: "3", second: "7", logSize: 10).second == 7)
        #expect(try AuditEntriesQuery(start: nil, limit: nil, logSize: 250).start == 150)
        #expect(try AuditEntriesQuery(start: nil, limit: "20", logSize: 5).start == 0)
        let bad: [(String?, String?)] = [
            (nil, nil), ("0", "-1"), ("-1", nil), ("10", nil), ("0", "11"), ("5", "5"), ("1e3", nil), (" 1", nil),
            ("+1", nil), ("99999999999999999999", nil), ("0", "99999999999999999999"), ("", nil), ("0x1", nil),
        ]
        for (index, size) in bad {
            #expect(throws: RequestError.self, "\(index ?? "nil") \(size ?? "nil")") {
                try InclusionProofQuery(index: index, size: size, logSize: 10)
            }
        }
        for (first, second) in [(nil, nil), ("1", "-5"), ("0", nil), ("8", "7"), ("1", "11"), ("-3", "5")] {
            #expect(throws: RequestError.self, "\(first ?? "nil") \(second ?? "nil")") {
                try ConsistencyProofQuery(first: first, second: second, logSize: 10)
            }
        }
        #expect(throws: RequestError.self) { try InclusionProofQuery(index: "0", size: nil, logSize: 0) }
        for (start, limit) in [("-1", nil), (nil, "0"), (nil, "10001"), ("11", nil), ("9223372036854775807", nil)] {
            #expect(throws: RequestError.self) { try AuditEntriesQuery(start: start, limit: limit, logSize: 10) }
        }
    }

    @Test("token bodies: the rate, lifetime, name and scopes are bounded")
    func tokens() throws {
        let scope = TokenScope(pattern: try ModelPattern("acme/*"), capabilities: [.pull])
        #expect(try NewToken(name: "ci", scopes: [scope]).validate(maxLifetime: 86_400 * 365) == 30 * 86_400)
        #expect(
            try NewToken(name: "ci", scopes: [scope], requestsPerSecond: 0.5).validate(maxLifetime: 86_400 * 365) > 0)
        let bad: [NewToken] = [
            NewToken(name: "ci", scopes: [scope], requestsPerSecond: 1e-19),
            NewToken(name: "ci", scopes: [scope], requestsPerSecond: 0),
            NewToken(name: "ci", scopes: [scope], requestsPerSecond: -1),
            NewToken(name: "ci", scopes: [scope], requestsPerSecond: 1e300),
            NewToken(name: "ci", scopes: [scope], expiresIn: 0),
            NewToken(name: "ci", scopes: [scope], expiresIn: Int.max),
            NewToken(name: "", scopes: [scope]),
            NewToken(name: String(repeating: "n", count: 101), scopes: [scope]),
            NewToken(name: "ci", scopes: []),
            NewToken(name: "ci", scopes: [TokenScope(pattern: scope.pattern, capabilities: [])]),
        ]
        for body in bad {
            #expect(throws: RequestError.self) { try body.validate(maxLifetime: 3600) }
        }
        // A zero lifetime limit refuses every lifetime instead of making an impossible range.
        #expect(throws: RequestError.self) { try NewToken(name: "ci", scopes: [scope]).validate(maxLifetime: 0) }
    }

    @Test("grant bodies: one subject, a capability, an expiry in the next 100 years")
    func grants() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let pattern = try ModelPattern("acme/*")
        let ok = try NewGrant(user: "bob", pattern: pattern, capabilities: [.pull], expiresIn: 60).validate(now: now)
        #expect(ok.subject == .user("bob"))
        #expect(ok.expiresAt == now.addingTimeInterval(60))
        let bad: [NewGrant] = [
            NewGrant(pattern: pattern, capabilities: [.pull]),
            NewGrant(user: "bob", role: "ml", pattern: pattern, capabilities: [.pull]),
            NewGrant(user: "bob", pattern: pattern, capabilities: []),
            NewGrant(user: "bob", pattern: pattern, capabilities: [.pull], expiresIn: 0),
            NewGrant(user: "bob", pattern: pattern, capabilities: [.pull], expiresIn: Int.max),
            NewGrant(user: "bob", pattern: pattern, capabilities: [.pull], expiresAt: now.addingTimeInterval(-1)),
            NewGrant(user: "bob", pattern: pattern, capabilities: [.pull], expiresAt: .distantFuture),
            NewGrant(user: "bob", pattern: pattern, capabilities: [.pull], expiresAt: now, expiresIn: 5),
        ]
        for body in bad {
            #expect(throws: RequestError.self) { try body.validate(now: now) }
        }
    }

    @Test("login and commit bodies are bounded before any work")
    func loginAndCommit() throws {
        try LoginRequest(username: "alice", password: "pw", totp: "123456").validate()
        let bad = [
            LoginRequest(username: String(repeating: "u", count: 65), password: "pw"),
            LoginRequest(username: "alice", password: String(repeating: "p", count: 1025)),
            LoginRequest(username: "alice", password: "pw", totp: String(repeating: "1", count: 65)),
            LoginRequest(username: "alice", password: "pw", recoveryCode: String(repeating: "r", count: 65)),
        ]
        for body in bad {
            #expect(throws: RequestError.self) { try body.validate() }
        }
        try CommitRequest(note: "first").validate()
        #expect(throws: RequestError.self) { try CommitRequest(note: String(repeating: "n", count: 4097)).validate() }
    }
}
