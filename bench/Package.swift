// swift-tools-version: 6.1

// Benchmarks for ModelVault, built in release mode by the scripts beside this file.
import PackageDescription

let package = Package(
    name: "ModelVaultBench",
    dependencies: [.package(path: "..")],
    targets: [
        .executableTarget(
            name: "mvault-bench",
            dependencies: [
                .product(name: "SealedFormat", package: "main"), .product(name: "Storage", package: "main"),
            ]
        )
    ],
    swiftLanguageModes: [.v6]
)
