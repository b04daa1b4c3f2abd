import Foundation
import SealedFormat
import Testing

/// One entry of Vectors/mvlt-v1.txt.
struct FormatVector: CustomStringConvertible, Sendable {
    var fields: [String: String]
    var description: String { fields["name"] ?? "?" }

    func bytes(_ key: String) -> [UInt8]? { fields[key].map(hexBytes) }

    static func loadAll() throws -> [FormatVector] {
        let url = try #require(Bundle.module.url(forResource: "Vectors/mvlt-v1", withExtension: "txt"))
        let text = try String(contentsOf: url, encoding: .utf8)
        var vectors: [FormatVector] = []
        var current: [String: String] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("#") { continue }
            if line.trimmingCharacters(in: .whitespaces).isEmpty {
                if !current.isEmpty { vectors.append(FormatVector(fields: current)) }
                current = [:]
                continue
            }
            let parts = line.split(separator: ":", maxSplits: 1)
            current[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces)
        }
        if !current.isEmpty { vectors.append(FormatVector(fields: current)) }
        return vectors
    }
}

func hexBytes(_ text: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = text.startIndex
    while i < text.endIndex {
        let j = text.index(i, offsetBy: 2)
        out.append(UInt8(text[i..<j], radix: 16)!)
        i = j
    }
    return out
}

/// Reads everything, or fails with the expectation class of the first error.
func openAll(_ sealed: [UInt8], kek: KeyEncryptionKey, threads: Int = 1) -> Result<[UInt8], SealedFormatError> {
    do {
        let reader = try SealedFileReader(source: InMemorySealedSource(sealed), keys: kek)
        var out: [UInt8] = []
        try reader.read(0..<reader.plaintextSize, threads: threads) { out += $0 }
        return .success(out)
    } catch let error as SealedFormatError {
        return .failure(error)
    } catch {
        Issue.record("unexpected error \(error)")
        return .failure(.headerFailure)
    }
}

@Suite("MVLT v1 test vectors")
struct VectorTests {
    static let vectors = (try? FormatVector.loadAll()) ?? []

    @Test func vectorsArePresent() {
        #expect(Self.vectors.count >= 30)
        #expect(Self.vectors.contains { $0.fields["expect"] == "success" })
        #expect(Self.vectors.contains { $0.fields["expect"] == "header failure" })
        #expect(Self.vectors.contains { $0.fields["expect"] == "payload failure" })
    }

    @Test("each vector opens to its expected outcome", arguments: vectors)
    func opensAsExpected(_ vector: FormatVector) throws {
        let kek = KeyEncryptionKey(
            keyringID: try #require(vector.bytes("kek_id")),
            version: UInt32(try #require(vector.fields["kek_version"]))!, keyBytes: try #require(vector.bytes("kek")))
        let result = openAll(try #require(vector.bytes("sealed")), kek: kek)
        switch (vector.fields["expect"], result) {
        case ("success", .success(let plaintext)):
            #expect(plaintext == vector.bytes("plaintext"))
        case (let expected?, .failure(let error)):
            #expect(error.vectorClass == expected, "got \(error)")
        default:
            Issue.record("expected \(vector.fields["expect"] ?? "?"), got \(result)")
        }
    }

    @Test(
        "the writer reproduces each success vector byte for byte",
        arguments: vectors.filter { $0.fields["expect"] == "success" })
    func writerReproduces(_ vector: FormatVector) throws {
        let kek = KeyEncryptionKey(
            keyringID: try #require(vector.bytes("kek_id")),
            version: UInt32(try #require(vector.fields["kek_version"]))!, keyBytes: try #require(vector.bytes("kek")))
        let wrapNonce = try #require(vector.bytes("wrap_nonce"))
        for threads in [1, 3] {
            var writer = try SealedFileWriter(
                dataKey: try #require(vector.bytes("data_key")),
                noncePrefix: try #require(vector.bytes("nonce_prefix")),
                segmentSize: Int(try #require(vector.fields["segment_size"]))!,
                wrap: { try kek.wrap(dataKey: $0, headerPrefix: $1, nonce: wrapNonce) })
            var out = writer.header.encoded
            let plaintext = try #require(vector.bytes("plaintext"))
            try plaintext.withUnsafeBytes { try writer.append($0, threads: threads) { out += $0 } }
            try writer.finish { out += $0 }
            #expect(out == vector.bytes("sealed"), "sealed on \(threads) threads")
        }
    }
}
