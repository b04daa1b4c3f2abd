// swift-tools-version: 6.1

// Benchmarks for ModelVault, built in release mode by the scripts beside this file.
import PackageDescription

let package = Package(
    name: "ModelVaultBench",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    ],
    targets: [
        .executableTarget(
            name: "mvault-bench",
            dependencies: [
                .product(name: "SealedFormat", package: "main"), .product(name: "Storage", package: "main"),
                .product(name: "CAllocator", package: "main"),
            ]
        ),
        .executableTarget(
            name: "audit-append",
            dependencies: [
                .product(name: "AuditLog", package: "main"), .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "hello-tls",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
