import Foundation
import FuzzDriver
import VaultCore

/// libFuzzer entry point for the parsers that see request text before any policy does: model
/// names and file paths from URLs, and the model patterns, networks and capability lists of
/// grants, roles and tokens (from JSON bodies and CLI arguments).
///
/// The input is split at the first 0x00: the text before it is parsed every way; the text after
/// it is matched against the pattern and network the first part made, if any.
/// Invariants checked: a parsed network prints to text that parses to the same network; a network
/// contains its own address; a pattern matches its own text when it has no `*`, and a pattern
/// made of `*` alone matches anything.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let split = input.firstIndex(of: 0) ?? input.count
    let first = String(decoding: input[..<split], as: UTF8.self)
    let second = split < input.count ? String(decoding: input[(split + 1)...], as: UTF8.self) : ""

    _ = try? ModelName(parsing: first)
    _ = try? ModelReference(parsing: first)
    try? ModelFilePath.validate(first)
    _ = try? Capability.parseList(first)
    if let network = try? IPNetwork(first) {
        let again = try? IPNetwork(network.description)
        precondition(again == network, "network \(network) does not round-trip")
        _ = network.contains(second)
    }
    if let pattern = try? ModelPattern(first) {
        _ = pattern.matches(second)
        if !first.contains("*") { precondition(pattern.matches(first)) }
        if first.allSatisfy({ $0 == "*" }) { precondition(pattern.matches(second)) }
    }
    return 0
}

/// SwiftPM links an executable target's entry point as `AccessParsersFuzz_main`; hand control to libFuzzer.
@_cdecl("AccessParsersFuzz_main")
public func fuzzMain(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> CInt {
    runLibFuzzer(argc, argv) { fuzzOne($0, $1) }
}
