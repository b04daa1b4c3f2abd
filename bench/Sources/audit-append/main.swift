import AuditLog
import Crypto
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// audit-append N DIR
// Appends N entries like a model read's (the event built and appended on one thread, as a request
// writes its own entry on a device that syncs fast) to a new audit log in DIR, and prints the
// time per entry; then the reference, the floor any such log pays: the same entries' bytes, each
// hashed with SHA-256 and written with write(2) to a file opened with O_DSYNC. Best of 3 each.

let args = CommandLine.arguments
guard args.count == 3, let count = Int(args[1]), count > 0 else {
    FileHandle.standardError.write(Data("usage: audit-append N DIR\n".utf8))
    exit(2)
}
let root = URL(fileURLWithPath: args[2])
let key = try CheckpointKey(name: "bench/audit", seed: [UInt8](repeating: 7, count: 32))

func event(_ i: Int) -> AuditEvent {
    AuditEvent(
        phase: "access", requestID: String(0x30cd_6b95_b675_0000 + i, radix: 16),
        action: "GET /v1/models/{namespace}/{name}", actor: .init(user: "bench"), sourceIP: "127.0.0.1",
        target: .init(model: "acme/small"), decision: .init(allowed: true, rule: "role admin allows read on *"),
        result: .init(status: 200),
        hashed: ["session": "hmac-sha256:9605dd38665ca76e9f3327b9bf6e5e8aed14de13ffb81349d7888a9fb0b69158"])
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

var logBest = Double.infinity
var floorBest = Double.infinity
var buildBest = Double.infinity
var encodeBest = Double.infinity
for round in 0..<3 {
    let directory = root.appendingPathComponent("log-\(round)")
    let log = try AuditLog(
        layout: AuditLogLayout(directory: directory), origin: "bench/audit", key: key, checkpointEvery: 1000,
        checkpointSeconds: 3600, inlineSyncNanos: Int.max)
    logBest = min(
        logBest,
        try seconds {
            for i in 0..<count { _ = try log.appendWithoutWaiting(event(i)) }
        })

    // The same bytes, hashed and written one entry at a time.
    let lines = try String(contentsOf: AuditLogLayout(directory: directory).entries, encoding: .utf8)
        .split(separator: "\n").map { Array($0.utf8) + [0x0A] }
    let path = root.appendingPathComponent("floor-\(round)").path
    let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_DSYNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { fatalError("cannot open \(path)") }
    floorBest = min(
        floorBest,
        seconds {
            for line in lines {
                let digest = SHA256.hash(data: line)
                precondition(digest.withUnsafeBytes { $0.count } == 32)
                _ = line.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
            }
        })
    close(fd)

    // Where the time goes: building the events, and encoding them.
    var sink = 0
    buildBest = min(buildBest, seconds { for i in 0..<count { sink &+= event(i).requestID.utf8.count } })
    encodeBest = min(
        encodeBest, seconds { for i in 0..<count { sink &+= (try? event(i).encoded())?.count ?? 0 } })
    precondition(sink != 42)
}
let perEntry = logBest / Double(count) * 1e6
let floorPerEntry = floorBest / Double(count) * 1e6
print(String(format: "audit log append, one thread: %.2f µs per entry (%d entries, best of 3)", perEntry, count))
print(String(format: "floor (SHA-256 and an O_DSYNC write of the same bytes): %.2f µs per entry", floorPerEntry))
print(String(format: "append / floor = %.2f", perEntry / floorPerEntry))
print(
    String(
        format: "of the append: building the event %.2f µs, encoding it %.2f µs",
        buildBest / Double(count) * 1e6, (encodeBest - buildBest) / Double(count) * 1e6))
