import Foundation
import Testing
import VaultCore

@Suite("Policy: roles, grants, denies, expiry, MFA, networks, token scopes")
struct PolicyTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let consumer = RoleRecord(name: "consumer", capabilities: [.list, .read, .pull], builtIn: true, createdAt: .now)

    func grant(
        _ id: String, _ subject: GrantSubject, _ pattern: String, _ capabilities: Set<Capability>,
        _ effect: GrantRecord.Effect = .allow, expires: Date? = nil
    ) throws -> GrantRecord {
        GrantRecord(
            id: id, subject: subject, pattern: try ModelPattern(pattern), capabilities: capabilities, effect: effect,
            expiresAt: expires, createdAt: now, createdBy: "admin")
    }

    func ask(
        _ capability: Capability, _ target: AccessTarget, roles: [RoleRecord] = [], grants: [GrantRecord] = [],
        mfa: Bool = false, token: TokenRecord? = nil, ip: String = "127.0.0.1"
    ) -> AccessDecision {
        Policy().decide(
            AccessRequest(
                user: "bob", roles: roles, mfaEnrolled: mfa, grants: grants, token: token, capability: capability,
                target: target, sourceIP: ip, now: now))
    }

    @Test("model patterns: * matches any run of characters, nothing else is special")
    func patterns() throws {
        let cases: [(String, String, Bool)] = [
            ("*", "acme/x", true), ("acme/*", "acme/llama-7b", true), ("acme/*", "acmex/y", false),
            ("acme/llama-*", "acme/llama-7b", true), ("acme/llama-*", "acme/mistral", false),
            ("acme/llama-7b", "acme/llama-7b", true), ("acme/llama-7b", "acme/llama-7b2", false),
            ("*/llama-*", "other/llama-2", true), ("a*b*c", "aXbYc", true), ("a*b*c", "aXbY", false),
        ]
        for (pattern, name, expected) in cases {
            #expect(try ModelPattern(pattern).matches(name) == expected, "\(pattern) ~ \(name)")
        }
        for bad in ["", "Acme/*", "acme/ x", "acme/?"] {
            #expect(throws: VaultError.self) { try ModelPattern(bad) }
        }
    }

    @Test("pattern containment is never wrong when it says yes; overlap is exact")
    func patternRelations() throws {
        let covers: [(String, String, Bool)] = [
            ("*", "acme/*", true), ("acme/*", "acme/*", true), ("acme/*", "acme/llama-*", true),
            ("acme/*", "acme/x", true), ("acme/x", "acme/*", false), ("acme/*", "*", false),
            ("acme/*", "acmex/*", false), ("acme/llama-*", "acme/*", false), ("*/llama-*", "acme/llama-7*", true),
            ("acme/*-7b", "acme/*", false), ("a*", "*a", false),
        ]
        for (outer, inner, expected) in covers {
            #expect(try ModelPattern(outer).covers(ModelPattern(inner)) == expected, "\(outer) ⊇ \(inner)")
        }
        let overlaps: [(String, String, Bool)] = [
            ("acme/secret-*", "acme/*", true), ("acme/*", "acme/secret-*", true), ("acme/*", "other/*", false),
            ("acme/x", "acme/x", true), ("acme/x", "acme/y", false), ("*", "acme/x", true), ("a*", "*b", true),
            ("a*c", "ab*", true), ("a*c", "*b", false), ("acme/secret-*", "acme/public", false),
            ("*-7b", "acme/*", true), ("x*y*z", "*q*", true), ("ab", "a*b*", true), ("ab", "a*c", false),
        ]
        for (a, b, expected) in overlaps {
            #expect(try ModelPattern(a).overlaps(ModelPattern(b)) == expected, "\(a) ∩ \(b)")
        }
    }

    @Test("a pattern target: allowed by a role or a grant covering all of it, refused by a deny on any of it")
    func patternTarget() throws {
        let acme = AccessTarget.pattern(try ModelPattern("acme/*"))
        #expect(ask(.pull, acme, roles: [consumer]).allowed)
        #expect(ask(.pull, acme, grants: [try grant("g1", .user("bob"), "acme/*", [.pull])]).allowed)
        #expect(ask(.pull, acme, grants: [try grant("g1", .user("bob"), "*", [.pull])]).allowed)
        #expect(!ask(.pull, acme, grants: [try grant("g1", .user("bob"), "acme/llama-*", [.pull])]).allowed)
        #expect(
            !ask(.pull, .pattern(try ModelPattern("*")), grants: [try grant("g1", .user("bob"), "acme/*", [.pull])])
                .allowed)
        let deny = try grant("g9", .user("bob"), "acme/secret-*", [.pull], .deny)
        #expect(!ask(.pull, acme, roles: [consumer], grants: [deny]).allowed)
        #expect(ask(.pull, .pattern(try ModelPattern("acme/public-*")), roles: [consumer], grants: [deny]).allowed)
        let token = TokenRecord(
            id: "t1", name: "ci", owner: "bob", secretHash: "",
            scopes: [
                TokenScope(pattern: try ModelPattern("acme/demo"), capabilities: [.pull])
            ], expiresAt: now.addingTimeInterval(60), createdAt: now)
        #expect(!ask(.pull, acme, roles: [consumer], token: token).allowed, "the token covers acme/demo only")
        #expect(ask(.pull, .pattern(try ModelPattern("acme/demo")), roles: [consumer], token: token).allowed)
    }

    @Test("stored file names: NFC, no hidden characters, no case twins, no file that is also a directory")
    func fileNames() throws {
        try ModelFilePath.validateNew("weights/model-00001.safetensors")
        try ModelFilePath.validateNew("caf\u{E9}/\u{6A21}\u{578B}.bin")
        for bad in [
            "cafe\u{301}", "a\u{0}b", "a\u{7F}", "a\u{85}b", "a\u{202E}b", "a\u{2066}", "a\u{FEFF}", "a\u{E000}",
            "a\nb", "../x",
        ] {
            #expect(throws: VaultError.self, "\(bad.debugDescription)") { try ModelFilePath.validateNew(bad) }
        }
        try ModelFilePath.validate("cafe\u{301}")  // still readable, if stored before the rule
        try ModelFilePath.validateSet(["a.bin", "b/a.bin", "b/c/d.bin", "bb"])
        for bad in [["a.bin", "A.BIN"], ["b", "b/c"], ["b/c", "b"], ["x/y", "X/y/z"], ["a", "a"]] {
            #expect(throws: VaultError.self, "\(bad)") { try ModelFilePath.validateSet(bad) }
        }
        #expect(ModelFilePath.displayed("plain/name.bin") == "plain/name.bin")
        #expect(ModelFilePath.displayed("a\u{1B}[2Jb\\c\u{202E}") == "a\\u{001B}[2Jb\\u{005C}c\\u{202E}")
        #expect(
            "\(VaultError.invalidFilePath("x\u{1B}]0;pwned\u{7}", reason: "r"))"
                == "invalid file name 'x\\u{001B}]0;pwned\\u{0007}': r")
    }

    @Test("model names: namespace/name of lowercase letters, digits, '-', '_' and '.', each part 1 to 64")
    func modelNames() throws {
        let name = try ModelName(parsing: "acme/llama-3.1_8b")
        #expect(name.namespace == "acme" && name.name == "llama-3.1_8b" && name.description == "acme/llama-3.1_8b")
        let bad: [(String, String)] = [
            ("acme", "expected namespace/name"), ("a/b/c", "expected namespace/name"),
            ("", "expected namespace/name"), ("/b", "each part must be 1 to 64 characters"),
            ("a/", "each part must be 1 to 64 characters"),
            ("a/" + String(repeating: "x", count: 65), "each part must be 1 to 64 characters"),
            ("a/..", "'.' and '..' are not names"), ("Acme/b", "use lowercase letters"),
            ("acme/é", "use lowercase letters"),
        ]
        for (text, reason) in bad {
            #expect(throws: VaultError.self) { try ModelName(parsing: text) }
            do {
                _ = try ModelName(parsing: text)
            } catch {
                #expect("\(error)".contains(reason), "\(text): \(error)")
            }
        }
    }

    @Test("a model name from a route's two segments follows the same rules and names the whole name")
    func modelNameFromParts() throws {
        let name = try ModelName(namespace: "acme", name: "llama-3.1_8b")
        #expect(name == (try ModelName(parsing: "acme/llama-3.1_8b")))
        let bad: [(String, String, String)] = [
            ("", "b", "each part must be 1 to 64 characters"), ("a", "", "each part must be 1 to 64 characters"),
            ("a", "..", "'.' and '..' are not names"), ("Acme", "b", "use lowercase letters"),
            ("a%2Fb", "c", "use lowercase letters"), ("a", "b/c", "use lowercase letters"),
        ]
        for (namespace, part, reason) in bad {
            do {
                _ = try ModelName(namespace: namespace, name: part)
                Issue.record("\(namespace)/\(part) was accepted")
            } catch {
                #expect("\(error)".contains(reason), "\(namespace)/\(part): \(error)")
                #expect("\(error)".contains("'\(namespace)/\(part)'"), "\(error)")
            }
        }
    }

    @Test("deny by default; a role allows on every model; a grant only on its pattern")
    func allows() throws {
        var d = ask(.pull, .model("acme/x"))
        #expect(!d.allowed)
        #expect(d.reason == "no role or grant allows pull on acme/x")
        d = ask(.pull, .model("acme/x"), roles: [consumer])
        #expect(d.allowed && d.reason == "role consumer allows pull on *")
        #expect(!ask(.push, .model("acme/x"), roles: [consumer]).allowed)
        let g = try grant("g1", .user("bob"), "acme/*", [.pull])
        d = ask(.pull, .model("acme/x"), grants: [g])
        #expect(d.allowed && d.grantID == "g1")
        #expect(!ask(.pull, .model("other/x"), grants: [g]).allowed)
        #expect(!ask(.pull, .vault, grants: [g]).allowed, "a pattern grant says nothing about the whole vault")
        #expect(ask(.pull, .anyModel, grants: [g]).allowed)
        // A grant to someone else, or to a role bob does not hold, gives bob nothing.
        #expect(!ask(.pull, .model("acme/x"), grants: [try grant("g2", .user("eve"), "*", [.pull])]).allowed)
        #expect(!ask(.pull, .model("acme/x"), grants: [try grant("g3", .role("ml"), "*", [.pull])]).allowed)
        let ml = RoleRecord(name: "ml", capabilities: [.list], createdAt: now)
        #expect(ask(.pull, .model("acme/x"), roles: [ml], grants: [try grant("g3", .role("ml"), "*", [.pull])]).allowed)
    }

    @Test("an explicit deny beats every allow, from a role or a grant")
    func denies() throws {
        let admin = RoleRecord(name: "admin", capabilities: Set(Capability.allCases), builtIn: true, createdAt: now)
        let deny = try grant("g9", .user("bob"), "acme/secret-*", [.pull], .deny)
        let allow = try grant("g1", .user("bob"), "acme/*", [.pull])
        let d = ask(.pull, .model("acme/secret-llm"), roles: [admin], grants: [allow, deny])
        #expect(!d.allowed)
        #expect(d.reason == "grant g9 denies pull on acme/secret-* to user bob")
        #expect(ask(.pull, .model("acme/public"), roles: [admin], grants: [allow, deny]).allowed)
        #expect(ask(.read, .model("acme/secret-llm"), roles: [admin], grants: [deny]).allowed)
        // Listing is still allowed when only some models are denied; a deny on * refuses it.
        #expect(ask(.pull, .anyModel, roles: [admin], grants: [deny]).allowed)
        #expect(
            !ask(.pull, .anyModel, roles: [admin], grants: [try grant("g8", .role("admin"), "*", [.pull], .deny)])
                .allowed)
    }

    @Test("expired grants, allow or deny, no longer count")
    func expiry() throws {
        let past = now.addingTimeInterval(-1)
        let future = now.addingTimeInterval(60)
        #expect(
            !ask(.pull, .model("a/b"), grants: [try grant("g1", .user("bob"), "*", [.pull], expires: past)]).allowed)
        #expect(
            ask(.pull, .model("a/b"), grants: [try grant("g1", .user("bob"), "*", [.pull], expires: future)]).allowed)
        let oldDeny = try grant("g2", .user("bob"), "*", [.pull], .deny, expires: past)
        #expect(ask(.pull, .model("a/b"), roles: [consumer], grants: [oldDeny]).allowed)
    }

    @Test("a role that requires MFA gives nothing until the user enrolls; the reason says so")
    func mfa() throws {
        var strict = consumer
        strict.requireMFA = true
        let d = ask(.pull, .model("a/b"), roles: [strict])
        #expect(!d.allowed)
        #expect(
            d.reason == "no role or grant allows pull on a/b (role consumer requires MFA, which bob has not enrolled)")
        #expect(ask(.pull, .model("a/b"), roles: [strict], mfa: true).allowed)
        // Grants to that role are held back the same way.
        let g = try grant("g1", .role("consumer"), "*", [.push])
        #expect(!ask(.push, .model("a/b"), roles: [strict], grants: [g]).allowed)
        #expect(ask(.push, .model("a/b"), roles: [strict], grants: [g], mfa: true).allowed)
    }

    @Test("a role limited to networks applies only to requests from them")
    func networks() throws {
        var office = consumer
        office.allowedNetworks = [try IPNetwork("10.0.0.0/8"), try IPNetwork("2001:db8::/32")]
        #expect(ask(.pull, .model("a/b"), roles: [office], ip: "10.1.2.3").allowed)
        #expect(ask(.pull, .model("a/b"), roles: [office], ip: "2001:db8::5").allowed)
        #expect(ask(.pull, .model("a/b"), roles: [office], ip: "::ffff:10.0.0.1").allowed)
        let d = ask(.pull, .model("a/b"), roles: [office], ip: "192.168.1.1")
        #expect(!d.allowed)
        #expect(d.reason.contains("role consumer is limited to 10.0.0.0/8, 2001:db8:0:0:0:0:0:0/32"))
        for bad in ["10.0.0.0/33", "10.0.0/8", "host", "::/129", ""] {
            #expect(throws: VaultError.self) { try IPNetwork(bad) }
        }
        #expect(try IPNetwork("0.0.0.0/0").contains("8.8.8.8"))
        #expect(try !IPNetwork("10.0.0.1").contains("10.0.0.2"))
    }

    @Test("the network an address is from: its /24, or its /64 for IPv6")
    func enclosingNetworks() {
        #expect(IPNetwork.enclosing("203.0.113.77")?.description == "203.0.113.0/24")
        #expect(IPNetwork.enclosing("::ffff:203.0.113.77")?.description == "203.0.113.0/24")
        #expect(IPNetwork.enclosing("2001:db8:1:2:3:4:5:6")?.description == "2001:db8:1:2:0:0:0:0/64")
        #expect(IPNetwork.enclosing("not-an-address") == nil)
    }

    @Test("an API token narrows its owner's rights to its scopes, never widens them")
    func tokenScopes() throws {
        let token = TokenRecord(
            id: "t1", name: "ci", owner: "bob", secretHash: "",
            scopes: [
                TokenScope(pattern: try ModelPattern("acme/*"), capabilities: [.pull, .push])
            ], expiresAt: now.addingTimeInterval(60), createdAt: now)
        #expect(ask(.pull, .model("acme/x"), roles: [consumer], token: token).allowed)
        let d = ask(.pull, .model("other/x"), roles: [consumer], token: token)
        #expect(!d.allowed && d.reason == "token t1 is not scoped for pull on other/x")
        // In scope, but the owner cannot push: still denied.
        #expect(!ask(.push, .model("acme/x"), roles: [consumer], token: token).allowed)
    }
}
