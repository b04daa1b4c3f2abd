import ArgumentParser
import Foundation
import Synchronization
import VaultCore

#if canImport(Glibc)
    import Glibc
#endif

/// Terminal input and output: secrets without echo; prompts, notes and progress on stderr (only
/// on a TTY for progress), so stdout piped to another program carries the records alone.
enum Terminal {
    static var stderrIsTTY: Bool { isatty(STDERR_FILENO) == 1 }
    static var stdinIsTTY: Bool { isatty(STDIN_FILENO) == 1 }

    /// Reads one line from stdin; on a terminal, prompts on stderr and turns echo off.
    static func readSecret(prompt: String) -> String? {
        // What was printed so far (a secret to type in, a QR code) shows before the prompt waits,
        // even when stdout goes to a pipe and is buffered.
        fflush(nil)
        guard stdinIsTTY else { return readLine(strippingNewline: true) }
        FileHandle.standardError.write(Data(prompt.utf8))
        var old = termios()
        tcgetattr(STDIN_FILENO, &old)
        var silent = old
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent)
        defer {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &old)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        return readLine(strippingNewline: true)
    }

    /// A one-line status on a terminal (nothing otherwise), redrawn in place at most 10 times a second.
    static func progress(_ line: String) {
        guard stderrIsTTY else { return }
        let now = Date()
        guard now.timeIntervalSince(lastProgress.withLock { $0 }) > 0.1 else { return }
        lastProgress.withLock { $0 = now }
        FileHandle.standardError.write(Data("\r\u{1B}[K\(line.prefix(100))".utf8))
    }

    static func progressDone() {
        if stderrIsTTY { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    /// A line for the person at the terminal, not for a program reading stdout: `note: …`.
    static func note(_ text: String) {
        FileHandle.standardError.write(Data("note: \(text)\n".utf8))
    }

    static let lastProgress = Mutex(Date.distantPast)

    static func bytes(_ n: UInt64) -> String { formatBytes(n) }

    static func formatBytes(_ n: UInt64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var value = Double(n)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
    }
}

/// Draws one progress bar per file, on stderr, when it is a terminal and the file is over 4 MB.
final class ProgressBar {
    let enabled: Bool
    var current: String?
    var start = Date()
    var lastDraw = Date.distantPast

    init() { enabled = Terminal.stderrIsTTY }

    func update(file: String, done: UInt64, total: UInt64) {
        guard enabled, total > 4_000_000 else { return }
        let file = ModelFilePath.displayed(file)
        if current != file {
            current = file
            start = Date()
        }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) > 0.1 || done == total else { return }
        lastDraw = now
        let fraction = total == 0 ? 1 : Double(done) / Double(total)
        let width = 30
        let filled = Int(fraction * Double(width))
        let rate = Double(done) / max(now.timeIntervalSince(start), 0.001)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = String(
            format: "\r%@ [%@] %3d%% %@/s", file, bar, Int(fraction * 100),
            Terminal.formatBytes(UInt64(rate)))
        FileHandle.standardError.write(Data(line.utf8))
        if done == total { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}

/// `--json`, for commands that print records: one JSON document on stdout instead of lines.
struct JSONOption: ParsableArguments {
    @Flag(help: "Print one JSON document instead of lines (docs/cli.md gives its shape).")
    var json = false
}

enum JSONOutput {
    /// `value` as JSON: keys sorted, times in RFC 3339, one line.
    static func print(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        Swift.print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    /// A server's answer as it came: the API's own JSON (its schema is in /v1/openapi.json).
    static func print(raw: Data) {
        Swift.print(String(decoding: raw, as: UTF8.self))
    }
}
