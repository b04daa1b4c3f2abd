import Hummingbird
import HummingbirdTLS
import NIOCore
import NIOPosix
import NIOSSL

// The reference for bench/server.sh: the smallest Hummingbird server over TLS, with the same
// certificate and TLS versions as `mvault server`. By default it runs as any Hummingbird server
// does (handlers on the global concurrency pool); with --nio-executor, on NIO's event loops, as
// `mvault` runs.
// Usage: hello-tls CERT KEY PORT [--nio-executor]
let arguments = CommandLine.arguments
guard arguments.count == 4 || (arguments.count == 5 && arguments[4] == "--nio-executor"),
    let port = Int(arguments[3])
else {
    fatalError("usage: hello-tls CERT KEY PORT [--nio-executor]")
}
if arguments.count == 5 { NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor() }
let router = Router()
router.get("/") { _, _ in "hello" }
var tls = TLSConfiguration.makeServerConfiguration(
    certificateChain: try NIOSSLCertificate.fromPEMFile(arguments[1]).map { .certificate($0) },
    privateKey: .privateKey(try NIOSSLPrivateKey(file: arguments[2], format: .pem)))
tls.minimumTLSVersion = .tlsv12
let app = Application(
    router: router, server: try .tls(.http1(), tlsConfiguration: tls),
    configuration: .init(address: .hostname("127.0.0.1", port: port)))
try await app.runService()
