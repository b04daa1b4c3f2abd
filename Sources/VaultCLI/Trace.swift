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

            Each code is tested on the suspect itself (blind) and, when the vault holds the original file \
            the copy was made from in the suspect's format, on the difference between the two (informed): \
            the weights no longer count as noise, so copies averaged together (collusion) or damaged \
            further are still named. --realign also undoes a permutation of neurons (slow on large \
            matrices); --blind skips the informed test.

            Runs where the vault is, unsealed: the codes are derived from the vault's watermark secret.
            Exit status: 0 when a recipient is found, 3 when none is, 1 on errors.
            """)

    @OptionGroup var options: VaultOptions

    @Argument(help: "The suspect model file.") var suspect: String

    @Option(help: "Only the downloads of this model (namespace/name).") var model: String?

    @Option(help: "Family-wise false-positive rate: the chance that any innocent code is named.")
    var rate: Double = 1e-6

    @Flag(help: "Test the suspect only by itself, not against the original in the vault.")
    var blind = false

    @Flag(help: "Match the suspect's neurons to the original's first (a permuted copy; quadratic in the rows).")
    var realign = false

    func run() throws {
        guard rate > 0, rate < 1 else { throw VaultError.invalidArgument("--rate must be between 0 and 1") }
        guard !(blind && realign) else {
            throw VaultError.invalidArgument("--realign needs the informed test, which --blind turns off")
        }
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
        var originals: [String: Trace.Original?] = [:]
        for d in downloads {
            let code = "\(d.model)@\(d.version) \(d.recipient!)"
            if byCode[code] == nil {
                let key = WatermarkKey.recipient(
                    secret: secret, recipient: d.recipient!, model: d.model, version: d.version)
                let versionName = "\(d.model)@\(d.version)"
                if !blind && originals[versionName] == nil {
                    originals[versionName] = try original(
                        of: vault.metadata.version(of: ModelName(parsing: d.model), number: d.version), in: vault,
                        matching: tensors, format: format)
                }
                candidates.append(Trace.Candidate(name: code, key: key, original: originals[versionName] ?? nil))
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
                    "MATCH      \(describe(first)) — \(first.model)@\(first.version): z \(String(format: "%.1f", match.z)) (\(match.method)), \(probability(match.familyWiseBound))"
                )
                for d in records {
                    let range =
                        d.rangeStart == 0 && d.sentSHA256 != nil ? "whole file" : "bytes \(d.rangeStart)-\(d.rangeEnd)"
                    print(
                        "           download \(d.id)  \(d.at.formatted(.iso8601))  \(ModelFilePath.displayed(d.path))  \(range)\(d.sourceIP.map { "  from \($0)" } ?? "")"
                    )
                }
            }
            if let best = result.candidates.first(where: { !$0.matched }) {
                print("highest z among the others: \(String(format: "%.2f", best.z)) (\(best.name), \(best.method))")
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

    /// The file of `version` the suspect was most likely made from: of the suspect's format, with
    /// the most markable matrices of the same role and shape (nil when none has any).
    func original(
        of version: VersionRecord, in vault: LocalVault, matching suspect: [TensorLayout], format: ModelFile.Format
    ) throws -> Trace.Original? {
        let wanted = Set(suspect.filter(Watermarking.isMarkable).map { "\(TensorRole.of($0.name)) \($0.shape)" })
        var best: (Trace.Original, Int)?
        for file in version.files {
            let opened = try vault.openFile(file, of: version)
            guard try vault.markableLayout(file, of: version, opened: opened) != nil else { continue }
            let source = WindowedSource(opened)
            let (fileFormat, tensors, _) = try ModelFile.open(source)
            let shared = tensors.filter {
                Watermarking.isMarkable($0) && wanted.contains("\(TensorRole.of($0.name)) \($0.shape)")
            }
            guard fileFormat == format, !shared.isEmpty, shared.count > best?.1 ?? 0 else { continue }
            best = (Trace.Original(source: source, tensors: tensors, realign: realign), shared.count)
        }
        return best?.0
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

/// "p ≤ BOUND", or "p < 1e-300" once the bound is below what a Double holds.
func probability(_ bound: Double) -> String {
    bound > 0 ? "p ≤ \(String(format: "%.3g", bound))" : "p < 1e-300"
}
