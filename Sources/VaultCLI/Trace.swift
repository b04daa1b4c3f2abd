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
    @OptionGroup var output: JSONOption

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
        var report = Report(
            suspect: suspect, format: format.rawValue, models: models, tested: candidates.count, rate: rate)
        if !candidates.isEmpty {
            let result = try Trace.run(
                source, tensors: tensors, candidates: candidates, rowOrder: order, familyWiseRate: rate)
            report.threshold = result.threshold
            report.matches = result.matches.map { match in
                let records = byCode[match.name]!
                return Report.Match(
                    recipient: records[0].recipient!, account: records[0].user, token: records[0].tokenID,
                    model: records[0].model, version: records[0].version, z: match.z, method: "\(match.method)",
                    p: match.familyWiseBound, downloads: records.map(Report.Download.init))
            }
            report.highestOther = result.candidates.first(where: { !$0.matched }).map {
                Report.Other(code: $0.name, z: $0.z, method: "\($0.method)")
            }
        }
        if report.matches.isEmpty {
            report.ownerMarks = try models.map { name in
                let found = try Watermarking.detect(
                    source, tensors: tensors, key: WatermarkKey.owner(secret: secret, model: name), rowOrder: order)
                let limit = Trace.threshold(tests: found.testCount * models.count, rate: rate)
                return Report.OwnerMark(model: name, present: found.best.z >= limit, z: found.best.z, threshold: limit)
            }
        }
        if output.json { try JSONOutput.print(report) } else { printText(report) }
        if report.matches.isEmpty { throw ExitCode(3) }
    }

    /// What `trace --json` prints (docs/cli.md).
    struct Report: Encodable {
        struct Download: Encodable {
            var id: Int64, at: Date, path: String, rangeStart: UInt64, rangeEnd: UInt64, wholeFile: Bool
            var sourceIP: String?
            init(_ d: DownloadRecord) {
                (id, at, path, rangeStart, rangeEnd) = (d.id, d.at, d.path, d.rangeStart, d.rangeEnd)
                wholeFile = d.rangeStart == 0 && d.sentSHA256 != nil
                sourceIP = d.sourceIP
            }
        }
        struct Match: Encodable {
            var recipient: String, account: String?, token: String?, model: String, version: Int
            var z: Double, method: String, p: Double, downloads: [Download]
        }
        struct Other: Encodable { var code: String, z: Double, method: String }
        struct OwnerMark: Encodable { var model: String, present: Bool, z: Double, threshold: Double }
        var suspect: String, format: String, models: [String], tested: Int, rate: Double
        var threshold: Double?
        var matches: [Match] = []
        var highestOther: Other?
        var ownerMarks: [OwnerMark] = []
    }

    func printText(_ report: Report) {
        print("suspect:    \(report.suspect) (\(report.format))")
        if let threshold = report.threshold {
            print(
                "tested:     \(report.tested) recipient code(s) of \(report.models.count) model(s); a match needs z ≥ \(String(format: "%.2f", threshold)) (family-wise rate \(report.rate))"
            )
        } else {
            print("tested:     no fingerprinted download of \(report.models.joined(separator: ", ")) is on record")
        }
        for match in report.matches {
            print(
                "MATCH      \(describe(match)) — \(match.model)@\(match.version): z \(String(format: "%.1f", match.z)) (\(match.method)), \(probability(match.p))"
            )
            for d in match.downloads {
                let range = d.wholeFile ? "whole file" : "bytes \(d.rangeStart)-\(d.rangeEnd)"
                print(
                    "           download \(d.id)  \(d.at.formatted(.iso8601))  \(ModelFilePath.displayed(d.path))  \(range)\(d.sourceIP.map { "  from \($0)" } ?? "")"
                )
            }
        }
        if let best = report.highestOther {
            print("highest z among the others: \(String(format: "%.2f", best.z)) (\(best.code), \(best.method))")
        }
        guard report.matches.isEmpty else { return }
        print("no recipient code matched")
        for mark in report.ownerMarks {
            print(
                "owner mark of \(mark.model): \(mark.present ? "PRESENT" : "absent") (z \(String(format: "%.2f", mark.z)), threshold \(String(format: "%.2f", mark.threshold)))"
            )
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

    func describe(_ match: Report.Match) -> String {
        if match.recipient.hasPrefix("offline:") {
            return
                "\(match.recipient.dropFirst(8)) (outside the vault, handed over by \(match.account ?? "the vault's host"))"
        }
        if let token = match.token { return "account \(match.account ?? "?"), token \(token)" }
        return "account \(match.account ?? "?")"
    }
}

/// "p ≤ BOUND", or "p < 1e-300" once the bound is below what a Double holds.
func probability(_ bound: Double) -> String {
    bound > 0 ? "p ≤ \(String(format: "%.3g", bound))" : "p < 1e-300"
}
