import VaultCLI

await MVault.runMain()
