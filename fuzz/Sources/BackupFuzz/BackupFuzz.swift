import AuditLog
import Backup
import Foundation
import FuzzDriver

/// libFuzzer entry point for what a backup destination hands back, which whoever controls the
/// destination writes: snapshot manifests and an S3 server's XML answers.
///
/// The first byte picks the parser: 0 — a manifest's text (its signature taken as checked);
/// 1 — a signed manifest, opened with a fixed key; 2 — an S3 XML answer's elements.
/// Invariants: a manifest that parses renders to text that parses to the same manifest, and
/// every path in it stays inside the vault; nothing passes as signed by the fixed key unless it is.
nonisolated(unsafe) let key = try! CheckpointKey(name: "mvault-backup", seed: [UInt8](repeating: 9, count: 32))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let text = String(decoding: input.dropFirst(), as: UTF8.self)
    switch input[0] % 3 {
    case 0:
        if let manifest = try? Manifest(text: text) {
            for entry in manifest.entries {
                precondition(!entry.path.hasPrefix("/") && !entry.path.split(separator: "/").contains(".."))
            }
            let again = try! Manifest(text: manifest.text)
            precondition(
                again.snapshot == manifest.snapshot && again.entries == manifest.entries
                    && abs(again.created.timeIntervalSince(manifest.created)) < 0.001,
                "a manifest does not round-trip")
        }
    case 1:
        _ = try? Manifest.open(text, key: key.verifier)
    default:
        for name in ["Key", "UploadId", "Code", "IsTruncated"] { _ = S3Destination.xmlElements(name, in: text) }
    }
    return 0
}

/// SwiftPM links an executable target's entry point as `BackupFuzz_main`; hand control to libFuzzer.
@_cdecl("BackupFuzz_main")
public func fuzzMain(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> CInt {
    runLibFuzzer(argc, argv) { fuzzOne($0, $1) }
}
