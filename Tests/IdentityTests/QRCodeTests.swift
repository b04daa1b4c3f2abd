import Foundation
import Identity
import Testing

@Suite("QR codes for TOTP enrollment")
struct QRCodeTests {
    static var hasQRCode: Bool {
        guard FileManager.default.isExecutableFile(atPath: TOTPTests.python) else { return false }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TOTPTests.python)
        p.arguments = ["-c", "import qrcode"]
        p.standardError = FileHandle.nullDevice
        try? p.run()
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    /// Texts whose lengths need each version from 1 to 10 (capacities 14, 26, 42, 62, 84, 106,
    /// 122, 152, 180, 213 bytes).
    static let texts: [String] = [10, 20, 35, 55, 75, 100, 115, 140, 170, 205].map { n in
        String(
            "otpauth://totp/ModelVault%3Abob?secret=GEZDGNBVGY3TQOJQ&x=\(String(repeating: "z", count: n))".prefix(n))
    }

    @Test(
        "every module, for every version and mask, matches the Python qrcode package",
        .enabled(if: hasQRCode, "needs qrcode in .venv (run scripts/test once)"))
    func matchesReference() throws {
        var cases: [[String: Any]] = []
        var ours: [String] = []
        for text in Self.texts {
            for mask in 0..<8 {
                let code = try QRCode(text: text, mask: mask)
                cases.append(["text": text, "version": code.version, "mask": mask])
                ours.append(code.modules.map { row in String(row.map { $0 ? "1" : "0" }) }.joined(separator: "\n"))
            }
        }
        #expect(Set(cases.map { $0["version"] as! Int }) == Set(1...10))
        let script = """
            import json, sys, qrcode
            from qrcode.util import QRData, MODE_8BIT_BYTE
            out = []
            for c in json.loads(sys.stdin.read()):
                q = qrcode.QRCode(version=c["version"], error_correction=qrcode.constants.ERROR_CORRECT_M,
                                  mask_pattern=c["mask"], border=0)
                q.add_data(QRData(c["text"].encode(), mode=MODE_8BIT_BYTE))
                q.make(fit=False)
                out.append("\\n".join("".join("1" if m else "0" for m in row) for row in q.get_matrix()))
            print("\\n\\n".join(out))
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TOTPTests.python)
        p.arguments = ["-c", script]
        let input = Pipe()
        let output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        try p.run()
        input.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: cases))
        try input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let theirs = text.trimmingCharacters(in: .whitespacesAndNewlines).components(separatedBy: "\n\n")
        #expect(theirs.count == ours.count)
        for (i, (a, b)) in zip(ours, theirs).enumerated() where a != b {
            Issue.record("case \(cases[i]) differs")
        }
    }

    @Test("the terminal drawing has a quiet zone and two module rows per line; long text is refused")
    func drawing() throws {
        let code = try QRCode(text: "otpauth://totp/ModelVault%3Abob?secret=GEZDGNBVGY3TQOJQ")
        let lines = code.terminalText.split(separator: "\n")
        #expect(lines.count == (code.size + 4 + 1) / 2)
        #expect(lines.allSatisfy { $0.count == code.size + 4 })
        #expect(lines[0].allSatisfy { $0 == "█" })
        #expect(throws: QRCode.QRError.tooLong(bytes: 300)) { try QRCode(text: String(repeating: "a", count: 300)) }
    }
}
