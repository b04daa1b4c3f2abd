// swift-tools-version: 6.1

import PackageDescription

let package = Package(
    name: "ModelVault",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "mvault", targets: ["mvault"]),
        .library(name: "SealedFormat", targets: ["SealedFormat"]),
        .library(name: "CAllocator", targets: ["CAllocator"]),
        .library(name: "Keyring", targets: ["Keyring"]),
        .library(name: "Storage", targets: ["Storage"]),
        .library(name: "VaultServices", targets: ["VaultServices"]),
        .library(name: "VaultCore", targets: ["VaultCore"]),
        .library(name: "ModelFormats", targets: ["ModelFormats"]),
        .library(name: "AuditLog", targets: ["AuditLog"]),
        .library(name: "Backup", targets: ["Backup"]),
        .library(name: "VaultWire", targets: ["VaultWire"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        .target(name: "VaultCore"),
        // What clients send, and how each field is checked before any work: no Hummingbird, so the
        // fuzz targets and the CLI can use it.
        .target(name: "VaultWire", dependencies: ["VaultCore"]),
        .systemLibrary(
            name: "CPKCS11",
            pkgConfig: "p11-kit-1",
            providers: [.apt(["libp11-kit-dev"])]
        ),
        .target(name: "HSM", dependencies: ["CPKCS11", "VaultCore"]),
        .target(
            name: "SealedFormat",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "Keyring",
            dependencies: [
                "SealedFormat", "VaultCore", "CSodium",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "Storage",
            dependencies: [
                "VaultCore", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ]
        ),
        .target(name: "StorageTesting", dependencies: ["Storage", "VaultCore"]),
        .target(
            name: "Identity",
            dependencies: ["CSodium", "VaultCore", .product(name: "Crypto", package: "swift-crypto")],
            resources: [.copy("common-passwords.txt")]
        ),
        .target(
            name: "VaultPKI",
            dependencies: [
                "VaultCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        .target(
            name: "VaultServices",
            dependencies: [
                "VaultCore", "SealedFormat", "Keyring", "Storage", "VaultPKI", "ModelFormats", "Watermark", "AuditLog",
                "HSM",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "VaultServer",
            dependencies: [
                "VaultCore", "VaultWire", "Keyring", "VaultServices", "VaultPKI", "Identity", "Storage", "ModelFormats",
                "Watermark", "AuditLog", "Backup", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            resources: [.copy("openapi.json")]
        ),
        .target(
            name: "VaultCLI",
            dependencies: [
                "VaultCore", "SealedFormat", "Keyring", "Storage", "VaultServices", "VaultServer", "Identity",
                "CAllocator", "ModelFormats", "Watermark", "AuditLog", "Backup", "HSM",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "ModelFormats", dependencies: ["VaultCore"]),
        .target(
            name: "Watermark",
            dependencies: ["ModelFormats", "CSodium", "CHalf", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(name: "CAllocator"),
        .target(name: "CHalf"),
        .target(name: "AuditLog", dependencies: ["VaultCore", .product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "Backup",
            dependencies: [
                "VaultCore", "Storage", "Keyring", "VaultServices", "AuditLog",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "mvault",
            dependencies: [
                "VaultCLI", "CAllocator", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SealedFormatTests",
            dependencies: [
                "SealedFormat",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            resources: [.copy("Vectors")]
        ),
        .testTarget(
            name: "KeyringTests",
            dependencies: ["Keyring", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        .testTarget(
            name: "IdentityTests", dependencies: ["Identity", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(
            name: "AuditLogTests", dependencies: ["AuditLog", .product(name: "Crypto", package: "swift-crypto")],
            exclude: ["Vectors/generate.py"], resources: [.copy("Vectors")]
        ),
        .testTarget(
            name: "WatermarkTests", dependencies: ["Watermark", "ModelFormats", "CHalf"], resources: [.copy("Vectors")]
        ),
        .testTarget(
            name: "ModelFormatsTests",
            dependencies: ["ModelFormats", .product(name: "Crypto", package: "swift-crypto")],
            exclude: ["reference.py"]
        ),
        .testTarget(name: "VaultWireTests", dependencies: ["VaultWire", "VaultCore"]),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "StorageTesting", "VaultCore"]),
        .testTarget(
            name: "VaultServicesTests",
            dependencies: [
                "VaultServices", "Keyring", "Storage", "StorageTesting", "SealedFormat", "VaultCore",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "CLITests",
            dependencies: ["Keyring", "Identity", "ModelFormats", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "VaultServerTests",
            dependencies: [
                "VaultServer", "VaultServices", "Keyring", "VaultPKI", "VaultCore", "VaultWire", "Identity", "Storage",
                "Backup", "AuditLog",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            exclude: ["Vectors/generate_manifest.py"], resources: [.copy("Vectors")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
