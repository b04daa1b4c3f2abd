// swift-tools-version: 6.1

// Fuzz targets for ModelVault's parsers of untrusted bytes. Built by fuzz/run.sh with
// `-sanitize=fuzzer,address -parse-as-library`, so libFuzzer provides `main`.
import PackageDescription

let package = Package(
    name: "ModelVaultFuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .target(name: "FuzzDriver"),
        .executableTarget(
            name: "SealedFormatFuzz",
            dependencies: ["FuzzDriver", .product(name: "SealedFormat", package: "main")]
        ),
        .executableTarget(
            name: "AccessParsersFuzz",
            dependencies: ["FuzzDriver", .product(name: "VaultCore", package: "main")]
        ),
        .executableTarget(
            name: "RequestParsersFuzz",
            dependencies: [
                "FuzzDriver", .product(name: "VaultWire", package: "main"),
                .product(name: "VaultCore", package: "main"),
            ]
        ),
        .executableTarget(
            name: "AuditLogFuzz",
            dependencies: ["FuzzDriver", .product(name: "AuditLog", package: "main")]
        ),
        .executableTarget(
            name: "BackupFuzz",
            dependencies: [
                "FuzzDriver", .product(name: "Backup", package: "main"), .product(name: "AuditLog", package: "main"),
            ]
        ),
        .executableTarget(
            name: "ModelFormatsFuzz",
            dependencies: ["FuzzDriver", .product(name: "ModelFormats", package: "main")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
