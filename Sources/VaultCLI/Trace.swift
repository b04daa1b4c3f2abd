import ArgumentParser
import Foundation
import ModelFormats
import VaultCore
import VaultServices
import Watermark

struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Find whose fingerprinted copy a suspect model file is.",
        discussion: """
            Tests the suspect (safetensors or GGUF, converted, quantized or pruned) against the recipient \
            code of every fingerprinted download on record — of one model with --model, else of all — and \
            reports the account, token and downloads behind each code that matches. The threshold keeps \
            the chance that any code matches by accident below --rate over all codes tested. When no code \
            matches, it reports whether the model's owner mark is there.

            Runs where the vault is, unsealed: the codes are derived from the vault's watermark secret.
            Exit status: 0 when a recipient is found, 3 when none is, 1 on errors.
            """)

    @OptionGroup var options: VaultOptions

    @Argument(help: "The suspect model file.") var suspect: String

    @Option(help: "Only the downloads of this model (namespace/name).") var model: String?

    @Option(help: "Family-wise false-positive rate: the chance that any innocent code is named.")
    var rate: Double = 1e-6

    func run() throws {
        guard rate > 0, rate < 1 else { throw VaultError.invalidArgument("--rate must be between 0 and 1") }
        let modelName = try model.map { try ModelName(parsing: $0) }
        let vault = try openVault(options)
        if let modelName { _ = try vault.versions(of: modelName) }
        let secret = try vault.keys.watermarkSecret()
        let source = try FileSource(path: suspect)
        let (format, tensors, gguf) = try ModelFile.open(source)
        guard tensors.contains(where: Watermarking.isMarkable) else {
            throw VaultError.invalidArgument("\(suspect) has no weight matrix that could carry a mark")
        }
        let order = gguf.map(RowOrder.init(gguf:)) ?? .identity

        // One candidate per recipient code: (model, version, recipient).
        let downloads = try vault.metadata.downloads(of: modelName).filter { $0.recipient != nil }
        var byCode: [String: [DownloadRecord]] = [:]
        var candidates: [Trace.Candidate] = []
        for d in downloads {
            let code = "\(d.model)@\(d.version) \(d.recipient!)"
            if byCode[code] == nil {
                let key = WatermarkKey.recipient(
                    secret: secret, recipient: d.recipient!, model: d.model, version: d.version)
                candidates.append(Trace.Candidate(name: code, key: key))
            }
            byCode[code, default: []].append(d)
        }
        let models = modelName.map { [$0.description] } ?? Array(Set(downloads.map(\.model))).sorted()
        guard !models.isEmpty else {
            throw VaultError.invalidArgument(
                "no fingerprinted download is on record, so there is no recipient to trace to")
        }
        print("suspect:    \(suspect) (\(format.rawValue))")
        var matched = false
        if candidates.isEmpty {
            print("tested:     no fingerprinted download of \(models.joined(separator: ", ")) is on record")
        } else {
            let result = try Trace.run(
                source, tensors: tensors, candidates: candidates, rowOrder: order, familyWiseRate: rate)
            print(
                "tested:     \(candidates.count) recipient code(s) of \(models.count) model(s); a match needs z ≥ \(String(format: "%.2f", result.threshold)) (family-wise rate \(rate))"
            )
            for match in result.matches {
                matched = true
                let records = byCode[match.name]!
                let first = records[0]
                print(
                    "MATCH      \(describe(first)) — \(first.model)@\(first.version): z \(String(format: "%.1f", match.z)), p ≤ \(String(format: "%.3g", match.familyWiseBound))"
                )
                for d in records {
                    let range =
                        d.rangeStart == 0 && d.sentSHA256 != nil ? "whole file" : "bytes \(d.rangeStart)-\(d.rangeEnd)"
                    print(
                        "           download \(d.id)  \(d.at.formatted(.iso8601))  \(d.path)  \(range)\(d.sourceIP.map { "  from \($0)" } ?? "")"
                    )
                }
            }
            if let best = result.candidates.first(where: { !$0.matched }) {
                print("highest z among the others: \(String(format: "%.2f", best.z)) (\(best.name))")
            }
        }
        if !matched {
            print("no recipient code matched")
            for name in models {
                let report = try Watermarking.detect(
                    source, tensors: tensors, key: WatermarkKey.owner(secret: secret, model: name), rowOrder: order)
                let z = report.best.z
                let limit = Trace.threshold(tests: report.testCount * models.count, rate: rate)
                print(
                    "owner mark of \(name): \(z >= limit ? "PRESENT" : "absent") (z \(String(format: "%.2f", z)), threshold \(String(format: "%.2f", limit)))"
                )
            }
            throw ExitCode(3)
        }
    }

    func describe(_ d: DownloadRecord) -> String {
        let recipient = d.recipient!
        if recipient.hasPrefix("offline:") {
            return "\(recipient.dropFirst(8)) (outside the vault, handed over by \(d.user ?? "the vault's host"))"
        }
        if let token = d.tokenID { return "account \(d.user ?? "?"), token \(token)" }
        return "account \(d.user ?? "?")"
    }
}
