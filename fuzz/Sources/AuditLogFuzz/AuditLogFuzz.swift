import AuditLog
import Foundation
import FuzzDriver

/// libFuzzer entry point for what `mvault audit verify` and the server read back from disk: an
/// entries file, checkpoints and verifier keys, all of which an attacker with disk access writes.
///
/// The first byte picks the parser: 0 — the bytes are an entries file, checked against its chain
/// (and each line decoded as an event, and read for a SIEM header as a sink does); 1 — a signed
/// checkpoint; 2 — a verifier key.
/// Invariants: an event that decodes re-encodes to bytes that decode to the same event; no input
/// passes as a checkpoint signed by the fixed key unless it is one.
nonisolated(unsafe) let key = try! CheckpointKey(name: "mvault-audit", seed: [UInt8](repeating: 7, count: 32))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let body = Array(input.dropFirst())
    switch input[0] % 3 {
    case 0:
        _ = AuditVerifier.check(entries: Data(body), checkpoints: [], verifier: key.verifier)
        for line in body.split(separator: 0x0A) {
            // What a SIEM sink reads of each line for its header.
            _ = LoggedEvent(line: line)
            if let event = try? AuditEvent.decode(line) {
                let again = try! AuditEvent.decode(try! event.encoded())
                precondition(again == event, "an event does not round-trip")
            }
        }
    case 1:
        _ = try? Checkpoint.verify(String(decoding: body, as: UTF8.self), key: key.verifier)
    default:
        _ = try? CheckpointVerifier(encoded: String(decoding: body, as: UTF8.self))
    }
    return 0
}

/// SwiftPM links an executable target's entry point as `AuditLogFuzz_main`; hand control to libFuzzer.
@_cdecl("AuditLogFuzz_main")
public func fuzzMain(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> CInt {
    runLibFuzzer(argc, argv) { fuzzOne($0, $1) }
}
