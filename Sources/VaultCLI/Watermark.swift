import ArgumentParser
import Foundation
import Keyring
import ModelFormats
import VaultCore
import Watermark

struct WatermarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watermark",
        abstract: "Mark model files and test suspect files for a mark, outside any vault.",
        discussion: """
            Works on safetensors and GGUF files. The mark goes into every weight matrix stored as F32, F16 \
            or BF16, or quantized as Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K or Q6_K (a few codes move by one \
            step; nothing is re-quantized); other tensors, the header and the metadata are copied byte for byte. Detection needs \
            only the key, not the original. The algorithm is specified in docs/watermark.md.
            """,
        subcommands: [Keygen.self, Embed.self, Detect.self])

    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a new random watermark key (64 hex digits) to FILE, readable by you only.")
        @Argument(help: "Where to write the key; must not exist.") var file: String

        func run() throws {
            guard !FileManager.default.fileExists(atPath: file) else {
                throw VaultError.invalidArgument("\(file) exists; choose a new file (a key is never overwritten)")
            }
            var key = [UInt8](repeating: 0, count: 32)
            var generator = SystemRandomNumberGenerator()
            for i in key.indices { key[i] = generator.next() }
            try AtomicFile.write(Data((Hex.encode(key) + "\n").utf8), to: URL(fileURLWithPath: file), mode: 0o600)
            print(
                "Wrote a new watermark key to \(file). Keep it secret: anyone holding it can find and remove the mark.")
        }
    }

    struct Embed: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a marked copy of a model file.")
        @Argument(help: "The model file (safetensors or GGUF).") var input: String
        @Option(name: .long, help: "The key file (from `mvault watermark keygen`).") var key: String
        @Option(name: .shortAndLong, help: "Where to write the marked copy; must not exist.") var output: String
        @Option(help: "Mark strength α, relative to each row's standard deviation.")
        var strength: Float = Watermarking.defaultStrength

        func run() throws {
            guard strength > 0, strength <= 0.1 else {
                throw VaultError.invalidArgument(
                    "--strength must be in (0, 0.1]; the default is \(Watermarking.defaultStrength)")
            }
            let watermarkKey = try readKey(key)
            guard !FileManager.default.fileExists(atPath: output) else {
                throw VaultError.invalidArgument("\(output) exists; choose a new output file")
            }
            let source = try FileSource(path: input)
            let (format, tensors, gguf) = try ModelFile.open(source)
            let marked = tensors.filter(Watermarking.isMarkable)
            guard !marked.isEmpty else {
                throw VaultError.invalidArgument(
                    "\(input) has no weight matrix to mark (2-D, rows of 16 or more, F32/F16/BF16 or a supported quantization)"
                )
            }
            // Written beside the target and renamed into place: no half-written copy is left.
            let temporary = output + ".partial-\(getpid())"
            guard
                FileManager.default.createFile(
                    atPath: temporary, contents: nil, attributes: [.posixPermissions: 0o600]),
                let handle = FileHandle(forWritingAtPath: temporary)
            else { throw VaultError.io(path: temporary, detail: "cannot create the output file") }
            do {
                let order = gguf.map(RowOrder.init(gguf:)) ?? .identity
                try Watermarking.embed(
                    source, tensors: tensors, keys: [watermarkKey], strength: strength, rowOrder: order
                ) {
                    try handle.write(contentsOf: Data($0))
                }
                try handle.synchronize()
                try handle.close()
                guard rename(temporary, output) == 0 else { throw AtomicFile.errnoError(path: output) }
            } catch {
                try? handle.close()
                unlink(temporary)
                throw error
            }
            let weights = marked.reduce(0) { $0 + $1.elementCount }
            print(
                "Marked \(marked.count) of \(tensors.count) tensors (\(weights) weights, α = \(strength)) of \(input) (\(format.rawValue)) into \(output)."
            )
        }
    }

    struct Detect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Test a model file for the mark of a key.",
            discussion:
                "Exit status: 0 when the mark is found (z at or above the threshold), 3 when it is not, 1 on errors.")
        @Argument(help: "The suspect model file (safetensors or GGUF).") var suspect: String
        @Option(name: .long, help: "The key file.") var key: String
        @Option(help: "z needed to report the mark; 5.3 bounds a false match by 10⁻⁶.") var threshold: Double = 5.3
        @Option(
            help: "The unmarked original, if you have it: informed detection, far stronger against averaging and noise."
        )
        var original: String?
        @Flag(
            help:
                "With --original: first match the suspect's rows and columns to the original's (undoes permuted neurons; slow on large models)."
        )
        var realign = false

        func run() throws {
            guard !realign || original != nil else {
                throw VaultError.invalidArgument("--realign needs --original: rows are matched to the original's")
            }
            let watermarkKey = try readKey(key)
            let source = try FileSource(path: suspect)
            let (format, tensors, gguf) = try ModelFile.open(source)
            if let original {
                let base = try FileSource(path: original)
                let result = try Watermarking.detectInformed(
                    source, tensors: tensors, original: base, originalTensors: try ModelFile.open(base).tensors,
                    key: watermarkKey, realign: realign)
                guard result.rows > 0 else {
                    throw VaultError.invalidArgument(
                        "\(suspect) and \(original) have no weight matrix in common (same role and shape)")
                }
                try report(format, rows: result.rows, weights: result.weights, lines: [], best: result, tests: 1)
                return
            }
            let order = gguf.map(RowOrder.init(gguf:)) ?? .identity
            let report = try Watermarking.detect(source, tensors: tensors, key: watermarkKey, rowOrder: order)
            // Several tests (dense, and sparse per step size); the bound counts them all.
            let result = report.best
            guard report.dense.rows > 0 else {
                throw VaultError.invalidArgument("\(suspect) has no weight matrix that could carry a mark")
            }
            let sparse = report.sparse.map { String(format: "%.2f", $0.detection.z) }.joined(separator: ", ")
            try self.report(
                format, rows: report.dense.rows, weights: report.dense.weights,
                lines: [
                    "z dense:    \(String(format: "%.2f", report.dense.z)) (as float files are marked)",
                    "z sparse:   \(sparse) (as quantized files are marked, by step size)",
                ], best: result, tests: report.testCount)
        }

        func report(
            _ format: ModelFile.Format, rows: Int, weights: Int, lines: [String], best: Detection, tests: Int
        ) throws {
            let found = best.z >= threshold
            print("file:       \(suspect) (\(format.rawValue))\(original.map { ", against the original \($0)" } ?? "")")
            print("tested:     \(rows) rows, \(weights) weights")
            for line in lines { print(line) }
            print("z:          \(String(format: "%.2f", best.z)) (threshold \(threshold))")
            let bound = probability(min(1, Double(tests) * best.falsePositiveBound))
            print("p:          \(bound.dropFirst(2)) (chance of a z this high without the mark)")
            print("verdict:    \(found ? "MARKED with this key" : "no mark of this key found")")
            if !found { throw ExitCode(3) }
        }
    }
}

/// A watermark key file: 64 hex digits (as `keygen` writes) or 32 raw bytes.
func readKey(_ path: String) throws -> WatermarkKey {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw VaultError.invalidArgument("cannot read the key file \(path)")
    }
    let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    if text.count == 64, let bytes = Hex.decode(text) { return WatermarkKey(bytes: bytes) }
    if data.count == 32 { return WatermarkKey(bytes: [UInt8](data)) }
    throw VaultError.invalidArgument(
        "the key file \(path) must hold 32 bytes, raw or as 64 hex digits; make one with `mvault watermark keygen FILE`"
    )
}
