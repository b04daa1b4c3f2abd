import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Runs the real `mvault` binary built next to the test bundle.
struct CLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static let binary: URL = {
        let exe = URL(
            fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "")
        var dir = exe.deletingLastPathComponent()
        // The test bundle may sit in a .xctest directory; walk up to the build products folder.
        for _ in 0..<4 where !FileManager.default.fileExists(atPath: dir.appendingPathComponent("mvault").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("mvault")
    }()

    let root: URL
    var vault: URL { root.appendingPathComponent("vault") }

    init() throws {
        root = URL(fileURLWithPath: "/tmp/mvault-cli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    /// Runs `mvault ARGS --vault ROOT/vault` (the vault flag is added for commands that take it).
    @discardableResult
    func run(
        _ args: [String], stdin: String? = nil, vaultFlag: Bool = true, environment: [String: String] = [:]
    ) async throws -> Result {
        try await Self.run(
            args + (vaultFlag ? ["--vault", vault.path] : []), stdin: stdin, cwd: root, environment: environment)
    }

    static func run(
        _ args: [String], stdin: String? = nil, cwd: URL, executable: URL = binary, environment: [String: String] = [:]
    ) async throws -> Result {
        try await offPool {
            try runBlocking(args, stdin: stdin, cwd: cwd, executable: executable, environment: environment)
        }
    }

    static func runBlocking(
        _ args: [String], stdin: String?, cwd: URL, executable: URL, environment: [String: String] = [:]
    ) throws -> Result {
        let process = Process()
        process.executableURL = executable
        process.arguments = args
        process.currentDirectoryURL = cwd
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data((stdin + "\n").utf8)) }
        try input.fileHandleForWriting.close()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// Starts `mvault ARGS`, SIGKILLs it after `delay` seconds (if it is still running) and
    /// returns it once it has exited.
    static func killed(_ args: [String], after delay: Double) async throws -> Process {
        let process = Process()
        process.executableURL = binary
        process.arguments = args
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        try await Task.sleep(for: .seconds(delay))
        kill(process.processIdentifier, SIGKILL)
        await waitForExit(process)
        return process
    }

    /// `mvault init` with 5/3 shares; returns the shares printed.
    func initVault(extra: [String] = []) async throws -> [String] {
        let r = try await run(["init", vault.path] + extra, vaultFlag: false)
        #expect(r.status == 0, "\(r.stderr)")
        return Self.shares(in: r.stdout)
    }

    /// The unseal shares `mvault init` printed.
    static func shares(in output: String) -> [String] {
        output.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init).filter { $0.hasPrefix("mvs1-") }
    }

    /// curl against a server that uses this vault's CA.
    func curl(_ args: [String], maxTime: Int = 10) async throws -> Result {
        let ca = vault.appendingPathComponent("tls/ca.crt").path
        return try await Self.system(
            ["/usr/bin/curl", "-s", "--cacert", ca, "--max-time", String(maxTime)] + args, cwd: root)
    }

    /// Gives `shares` to the server at `base` through its unseal endpoint.
    @discardableResult
    func unsealOverHTTPS(_ base: String, shares: [String]) async throws -> Result? {
        var last: Result?
        for share in shares {
            last = try await curl(["-X", "POST", base + "/v1/sys/unseal", "-d", "{\"share\": \"\(share)\"}"])
        }
        return last
    }

    func unsealed() async throws -> [String] {
        let shares = try await initVault()
        for share in shares.prefix(3) { try await run(["unseal"], stdin: share) }
        return shares
    }

    func file(_ name: String, size: Int) throws -> URL {
        let url = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var remaining = size
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while remaining > 0 {
            for i in stride(from: 0, to: chunk.count, by: 8) { chunk[i] = UInt8.random(in: 0...255) }
            let n = min(remaining, chunk.count)
            _ = chunk.withUnsafeBytes { write(fd, $0.baseAddress!, n) }
            remaining -= n
        }
        close(fd)
        return url
    }

    /// Runs another program (mount, sh…).
    static func system(_ args: [String], cwd: URL) async throws -> Result {
        try await run(Array(args.dropFirst()), cwd: cwd, executable: URL(fileURLWithPath: args[0]))
    }

    /// Seals the vault (stopping its key agent) and removes the test's files. Synchronous, for
    /// `defer`; the work runs on its own thread.
    func cleanup() {
        let args = ["seal", "--vault", vault.path]
        let root = root
        Self.onOwnThread {
            _ = try? Self.runBlocking(args, stdin: nil, cwd: root, executable: Self.binary)
            try? FileManager.default.removeItem(at: root)
        }
    }

    /// Runs `/path/to/program ARGS…` to completion from synchronous code such as `defer`.
    static func systemNow(_ args: [String], cwd: URL) {
        onOwnThread {
            _ = try? runBlocking(
                Array(args.dropFirst()), stdin: nil, cwd: cwd, executable: URL(fileURLWithPath: args[0]))
        }
    }

    /// Runs `work` on a new thread and waits for it (for `defer` blocks, which cannot await).
    static func onOwnThread(_ work: @escaping @Sendable () -> Void) {
        let done = DispatchSemaphore(value: 0)
        Thread {
            work()
            done.signal()
        }.start()
        done.wait()
    }

    /// Starts `mvault server` on 127.0.0.1:0 for this vault and reads the URL it prints.
    func startServer(environment: [String: String] = [:], log: URL? = nil, arguments: [String] = []) async throws
        -> (Process, String)
    {
        let process = Process()
        process.executableURL = CLI.binary
        process.arguments = ["server"] + arguments
        process.environment = ["MVAULT_VAULT": vault.path, "MVAULT_LISTEN": "127.0.0.1:0"].merging(environment) { $1 }
        let out = Pipe()
        process.standardOutput = out
        if let log {
            FileManager.default.createFile(atPath: log.path, contents: nil)
            process.standardError = try FileHandle(forWritingTo: log)
        } else {
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        let reader = out.fileHandleForReading
        let text = try await offPool {
            var text = ""
            let deadline = Date().addingTimeInterval(20)
            while !text.contains("trust the vault CA"), Date() < deadline {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            return text
        }
        guard
            let base = text.split(separator: "\n").first(where: { $0.contains("listening on https://") })?
                .split(separator: " ").first(where: { $0.hasPrefix("https://") }).map(String.init)
        else {
            kill(process.processIdentifier, SIGKILL)
            throw CLIFailure(message: "the server printed no address: \(text)")
        }
        return (process, base)
    }

    /// Polls until `process` has exited, without holding a thread while it waits.
    static func waitForExit(_ process: Process) async {
        while process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
    }
}

/// Runs blocking work (waiting on a child process, reading its pipes) on a thread of its own.
///
/// The test bundle also runs servers in-process, whose handlers need the few threads of Swift's
/// concurrency pool (two on a two-core machine); a test that blocked one of those threads on a
/// child process would stall them.
func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Swift.Result { try work() }) }.start()
    }
}
