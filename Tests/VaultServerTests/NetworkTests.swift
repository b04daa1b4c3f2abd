import Foundation
import NIOCore
import Testing

@testable import VaultServer

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Server: rate limits and slow clients", .serialized)
struct NetworkTests {
    @Test("a peer's address as text: IPv4 formatted as NIO does, IPv6 by NIO")
    func addressText() throws {
        for text in [
            "0.0.0.0", "127.0.0.1", "10.0.0.1", "9.99.100.255", "192.168.100.200", "255.255.255.255", "1.20.3.40",
        ] {
            let address = try SocketAddress(ipAddress: text, port: 443)
            #expect(VaultRequestContext.text(of: address) == text)
            #expect(VaultRequestContext.text(of: address) == address.ipAddress)
        }
        let v6 = try SocketAddress(ipAddress: "2001:db8::1", port: 443)
        #expect(VaultRequestContext.text(of: v6) == "2001:db8::1")
        #expect(VaultRequestContext.text(of: nil) == "unknown")
    }

    @Test("an address gets its burst, then 429 with Retry-After and a JSON error")
    func rateLimit() async throws {
        // One token per 1000 s: the burst cannot refill while the test runs, however loaded the
        // machine (at one per 10 s, a CI run busy with other suites took 21 s and got a refill).
        let limits = ServerConfiguration.Limits(requestsPerSecondPerIP: 0.001, requestBurstPerIP: 5)
        try await ServerFixture.with(limits: limits) { f in
            for i in 0..<5 {
                #expect(try await f.request(.GET, "/v1/sys/seal-status").status == 200, "request \(i)")
            }
            let r = try await f.request(.GET, "/v1/sys/seal-status")
            #expect(r.status == 429)
            #expect(Int(r.headers["retry-after"] ?? "") ?? 0 >= 1)
            #expect((r.json["error"] as? String)?.hasPrefix("too many requests from 127.0.0.1") == true)
            #expect(r.headers["strict-transport-security"] != nil)
        }
    }

    @Test("a client that connects and sends nothing is disconnected after the idle timeout")
    func slowClient() async throws {
        let limits = ServerConfiguration.Limits(idleTimeoutSeconds: 1)
        try await ServerFixture.with(limits: limits) { f in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(f.port).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            try #require(connected == 0)
            var tv = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let start = Date()
            var byte: UInt8 = 0
            let n = recv(fd, &byte, 1, 0)
            let waited = Date().timeIntervalSince(start)
            #expect(n == 0, "the server closed the connection")
            #expect(waited < 5, "closed after \(waited) s")
        }
    }

    @Test("the bucket refills at its rate and never beyond its burst")
    func bucket() {
        let limiter = RateLimiter(perSecond: 2, burst: 3)
        let t0 = Date(timeIntervalSince1970: 1_000)
        for _ in 0..<3 { #expect(limiter.take("a", now: t0) == nil) }
        #expect(limiter.take("a", now: t0) == 1)
        #expect(limiter.take("b", now: t0) == nil, "keys are independent")
        #expect(limiter.take("a", now: t0.addingTimeInterval(0.5)) == nil, "one token after 0.5 s at 2/s")
        #expect(limiter.take("a", now: t0.addingTimeInterval(0.5)) == 1)
        for _ in 0..<3 { #expect(limiter.take("a", now: t0.addingTimeInterval(100)) == nil) }
        #expect(limiter.take("a", now: t0.addingTimeInterval(100)) != nil, "capped at the burst")
    }
}

@Suite("Bearer tokens")
struct BearerTokenTests {
    @Test("PREFIX_ID_SECRET with a known prefix parses; anything else is refused")
    func parsing() throws {
        let session = try #require(BearerToken(text: "mvsess_abc_s3cret"))
        #expect(session.id == "abc" && session.secret == "s3cret" && !session.isAPIToken)
        #expect(session.text == "mvsess_abc_s3cret")
        let api = try #require(BearerToken(text: "mvtok_t1_xyz"))
        #expect(api.isAPIToken && api.id == "t1" && api.secret == "xyz")
        for bad in ["", "mvsess", "mvsess_abc", "mvsess__s", "mvsess_abc_", "other_abc_s", "mvsess_a_b_c", "_a_b"] {
            #expect(BearerToken(text: Substring(bad)) == nil, "\(bad)")
        }
    }
}
