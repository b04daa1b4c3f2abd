import CAllocator
import NIOCore
import NIOPosix
import VaultCLI

mvault_keep_freed_buffers()
// Swift concurrency runs on NIO's event loops: a request's handler runs on the thread that read
// the request and writes its response, instead of hopping to the global pool and back (the
// audited server serves about 8 % more requests; docs/benchmarks.md). CPU-heavy work goes to
// Dispatch's pool (concurrentPerform, `offTheLoops`) or NIO's thread pool (blocking I/O), never
// to the loops.
NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
await MVault.runMain()
