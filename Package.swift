// swift-tools-version: 6.1

import PackageDescription

let package = Package(
    name: "ModelVault",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "mvault", targets: ["mvault"]),
        .library(name: "SealedFormat", targets: ["SealedFormat"]),
        .library(name: "Keyring", targets: ["Keyring"]),
        .library(name: "Storage", targets: ["Storage"]),
        .library(name: "VaultServices", targets: ["VaultServices"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        .target(name: "VaultCore"),
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
            dependencies: ["VaultCore", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .target(name: "StorageTesting", dependencies: ["Storage", "VaultCore"]),
        .target(
            name: "VaultServices",
            dependencies: [
                "VaultCore", "SealedFormat", "Keyring", "Storage",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "VaultCLI",
            dependencies: [
                "VaultCore", "SealedFormat", "Keyring", "Storage", "VaultServices",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "mvault", dependencies: ["VaultCLI"]),
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
        .testTarget(name: "StorageTests", dependencies: ["Storage", "StorageTesting", "VaultCore"]),
        .testTarget(
            name: "VaultServicesTests",
            dependencies: [
                "VaultServices", "Keyring", "Storage", "StorageTesting", "SealedFormat", "VaultCore",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(name: "CLITests", dependencies: ["Keyring"]),
    ],
    swiftLanguageModes: [.v6]
)
