import Foundation
import FuzzDriver
import VaultCore
import VaultWire

/// libFuzzer entry point for what a client sends before any handler acts on it: the Range and
/// conditional headers of a download, the audit proof and entry queries, and the JSON bodies of
/// tokens, grants, upload commits and logins.
///
/// The first byte picks the parser; the rest is its input. For Range, the next 8 bytes are the
/// file's size (little-endian). For the audit queries, the rest is split at 0x00 into the two
/// parameters and the log's size. Invariants checked: a partial range is non-empty and inside the
/// file; a proof query names an entry inside its tree, and a tree inside the log; a body that
/// validates keeps the bounds it promises.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let selector = input.first else { return 0 }
    let rest = Array(input.dropFirst())
    switch selector % 8 {
    case 0:
        var fileSize: UInt64 = 0
        for (i, byte) in rest.prefix(8).enumerated() { fileSize |= UInt64(byte) << (8 * UInt64(i)) }
        let header = String(decoding: rest.dropFirst(8), as: UTF8.self)
        switch RangeRequest(header: header, size: fileSize) {
        case .partial(let range):
            precondition(!range.isEmpty && range.upperBound <= fileSize, "range \(range) of \(fileSize)")
            _ = RangeRequest.contentRange(range, size: fileSize)
        case .whole, .unsatisfiable: break
        }
    case 1, 2, 3:
        let parts = rest.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        let first = parts.first
        let second = parts.count > 1 ? parts[1] : nil
        let logSize = parts.count > 2 ? Int(parts[2].utf8.count) : 10
        if selector % 8 == 1, let q = try? InclusionProofQuery(index: first, size: second, logSize: logSize) {
            precondition(q.index >= 0 && q.index < q.size && q.size <= logSize)
        }
        if selector % 8 == 2, let q = try? ConsistencyProofQuery(first: first, second: second, logSize: logSize) {
            precondition(q.first >= 1 && q.first <= q.second && q.second <= logSize)
        }
        if selector % 8 == 3, let q = try? AuditEntriesQuery(start: first, limit: second, logSize: logSize) {
            precondition(q.start >= 0 && q.start <= logSize && (1...AuditEntriesQuery.maxLimit).contains(q.limit))
        }
    case 4:
        if let body = try? WireJSON.decoder().decode(NewToken.self, from: Data(rest)),
            let lifetime = try? body.validate(maxLifetime: 365 * 86_400)
        {
            precondition(lifetime >= 1 && lifetime <= 365 * 86_400)
            precondition(body.requestsPerSecond.map(NewToken.requestsPerSecondRange.contains) ?? true)
        }
    case 5:
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        if let body = try? WireJSON.decoder().decode(NewGrant.self, from: Data(rest)),
            let valid = try? body.validate(now: now), let expires = valid.expiresAt
        {
            precondition(expires > now && expires.timeIntervalSince(now) <= NewGrant.maxLifetime)
        }
    case 6:
        if let body = try? WireJSON.decoder().decode(CommitRequest.self, from: Data(rest)) { try? body.validate() }
    default:
        if let body = try? WireJSON.decoder().decode(LoginRequest.self, from: Data(rest)), (try? body.validate()) != nil
        {
            precondition(body.username.utf8.count <= LoginRequest.maxUsernameBytes)
        }
        _ = EntityTags.noneMatch(String(decoding: rest, as: UTF8.self), "\"abc\"")
        _ = EntityTags.rangeApplies(ifRange: String(decoding: rest, as: UTF8.self), "\"abc\"")
    }
    return 0
}

/// SwiftPM links an executable target's entry point as `RequestParsersFuzz_main`; hand control to libFuzzer.
@_cdecl("RequestParsersFuzz_main")
public func fuzzMain(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> CInt {
    runLibFuzzer(argc, argv) { fuzzOne($0, $1) }
}
