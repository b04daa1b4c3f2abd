import VaultCLI

MVault.runMain()
