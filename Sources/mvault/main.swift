import CAllocator
import VaultCLI

mvault_keep_freed_buffers()
await MVault.runMain()
