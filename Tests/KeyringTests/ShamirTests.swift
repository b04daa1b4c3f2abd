import Foundation
import Keyring
import PropertyBased
import SealedFormat
import Testing

@Suite("Shamir secret sharing")
struct ShamirTests {
    @Test("any threshold-sized subset reconstructs the secret; fewer do not")
    func subsets() async {
        await propertyCheck(count: 40, input: Gen.int(in: 2...7), Gen.int(in: 0...5)) { threshold, extra in
            let n = threshold + extra
            let secret = SecureRandom.bytes(32)
            let points = Shamir.split(secret, shares: n, threshold: threshold)
            #expect(Set(points.map(\.x)).count == n)
            let subset = Array(points.shuffled().prefix(threshold))
            #expect(Shamir.combine(subset) == secret)
            if threshold > 2 {
                #expect(Shamir.combine(Array(subset.prefix(threshold - 1))) != secret)
            }
        }
    }

    @Test("interpolation recovers the constant of a hand-computed line over GF(2^8)")
    func knownPoints() {
        // f(x) = 0x42 + 0x17·x over GF(2^8): f(1) = 0x55, f(2) = 0x42 ^ (0x17·2 = 0x2e) = 0x6c.
        let points = [Shamir.Point(x: 1, y: [0x55]), Shamir.Point(x: 2, y: [0x6C])]
        #expect(Shamir.combine(points) == [0x42])
    }
}

@Suite("Unseal shares")
struct UnsealShareTests {
    let vaultID = SecureRandom.bytes(16)

    func shares(_ n: Int = 5, _ t: Int = 3) -> [UnsealShare] {
        Shamir.split(SecureRandom.bytes(32), shares: n, threshold: t).map {
            UnsealShare(vaultID: vaultID, threshold: t, point: $0)
        }
    }

    @Test("text form round-trips, whitespace and case ignored")
    func textRoundTrip() throws {
        let share = shares()[0]
        #expect(
            try UnsealShare(
                text: "  " + share.text.uppercased().replacingOccurrences(of: "MVS1-", with: "mvs1-") + "\n") == share)
    }

    @Test("a mistyped share is refused by its checksum", arguments: [5, 20, 60, 90])
    func typo(position: Int) throws {
        var chars = Array(shares()[0].text)
        chars[position] = chars[position] == "a" ? "b" : "a"
        #expect(throws: KeyringError.self) { try UnsealShare(text: String(chars)) }
    }

    @Test("malformed shares are refused", arguments: ["", "hello", "mvs1-", "mvs1-zz", "mvs1-0011"])
    func malformed(text: String) {
        #expect(throws: KeyringError.self) { try UnsealShare(text: text) }
    }

    @Test("progress counts shares; duplicates and foreign shares are refused without counting")
    func progress() throws {
        let all = shares()
        var progress = UnsealProgress(vaultID: vaultID, threshold: 3)
        #expect(try progress.add(all[0]) == .needMore(have: 1, need: 3))
        #expect(throws: KeyringError.duplicateShare) { try progress.add(all[0]) }
        let foreign = UnsealShare(vaultID: SecureRandom.bytes(16), threshold: 3, point: all[1].point)
        #expect(throws: KeyringError.foreignShare) { try progress.add(foreign) }
        let otherSplit = UnsealShare(vaultID: vaultID, threshold: 2, point: all[1].point)
        #expect(throws: KeyringError.thresholdMismatch) { try progress.add(otherSplit) }
        #expect(try progress.add(all[3]) == .needMore(have: 2, need: 3))
        guard case .complete = try progress.add(all[4]) else {
            Issue.record("expected completion")
            return
        }
    }
}

@Suite("Keyring file")
struct KeyringFileTests {
    @Test("Shamir: threshold shares open the keyring; the wrong key does not")
    func shamir() throws {
        let created = try KeyringFile.create(method: .shamir(shares: 5, threshold: 3))
        #expect(created.shares.count == 5)
        var progress = UnsealProgress(vaultID: created.keyring.id, threshold: 3)
        var key: [UInt8] = []
        for share in [created.shares[4], created.shares[1], created.shares[2]] {
            if case .complete(let k) = try progress.add(share) { key = k }
        }
        let opened = try created.file.open(unsealKey: key)
        #expect(opened.keyring.id == created.keyring.id)
        #expect(throws: KeyringError.wrongShares) { try created.file.open(unsealKey: SecureRandom.bytes(32)) }
    }

    @Test("a 1-of-1 vault: the single share parses and opens the keyring")
    func singleShare() throws {
        let created = try KeyringFile.create(method: .shamir(shares: 1, threshold: 1))
        let share = try UnsealShare(text: try #require(created.shares.first).text)
        var progress = UnsealProgress(vaultID: created.keyring.id, threshold: 1)
        guard case .complete(let key) = try progress.add(share) else {
            Issue.record("expected completion")
            return
        }
        #expect(try created.file.open(unsealKey: key).keyring.id == created.keyring.id)
    }

    @Test("passphrase: Argon2id with at least 64 MiB; the wrong passphrase is refused")
    func passphrase() throws {
        let created = try KeyringFile.create(method: .passphrase("correct horse battery staple"))
        guard case .passphrase(let params) = created.file.seal else {
            Issue.record("expected passphrase seal")
            return
        }
        #expect(params.memoryBytes >= 64 << 20)
        #expect(params.iterations >= 3)
        let key = try created.file.unsealKey(passphrase: "correct horse battery staple")
        #expect(try created.file.open(unsealKey: key).keyring.id == created.keyring.id)
        let wrong = try created.file.unsealKey(passphrase: "correct horse battery stapler")
        #expect(throws: KeyringError.wrongPassphrase) { try created.file.open(unsealKey: wrong) }
    }

    @Test("short passphrases are refused")
    func weak() {
        #expect(throws: KeyringError.weakPassphrase) { try KeyringFile.create(method: .passphrase("short")) }
    }

    @Test("rotation persists through the file; retired versions stop unwrapping but rewrap still can")
    func rotateAndRetire() throws {
        let created = try KeyringFile.create(method: .shamir(shares: 3, threshold: 2))
        var keyring = created.keyring
        let dataKey = SecureRandom.bytes(32)
        let prefix = SecureRandom.bytes(20)
        let old = try keyring.wrap(dataKey: dataKey, headerPrefix: prefix)
        #expect(keyring.rotate() == 2)
        let file = try created.file.replacing(keyring: keyring, rootKey: created.rootKey)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("kr-\(UUID()).json")
        defer { try? FileManager.default.removeItem(at: url) }
        try file.write(to: url)
        var progress = UnsealProgress(vaultID: created.keyring.id, threshold: 2)
        _ = try progress.add(created.shares[0])
        guard case .complete(let key) = try progress.add(created.shares[2]) else { return }
        var reopened = try KeyringFile.load(from: url).open(unsealKey: key).keyring
        #expect(reopened.newestVersion == 2)
        #expect(try reopened.wrap(dataKey: dataKey, headerPrefix: prefix).kekVersion == 2)
        #expect(try reopened.unwrap(old, headerPrefix: prefix) == dataKey)
        try reopened.retire(below: 2)
        #expect(throws: KeyringError.retiredVersion(1)) { try reopened.unwrap(old, headerPrefix: prefix) }
        #expect(try reopened.unwrapForRewrap(old, headerPrefix: prefix) == dataKey)
        #expect(throws: KeyringError.unknownVersion(5)) { try reopened.retire(below: 5) }
    }

    @Test("blob addresses are keyed: equal files share one, other keyrings differ")
    func addresses() throws {
        let a = Keyring.generate()
        let b = Keyring.generate()
        let digest = SecureRandom.bytes(32)
        #expect(a.blobAddress(forSHA256: digest) == a.blobAddress(forSHA256: digest))
        #expect(a.blobAddress(forSHA256: digest) != b.blobAddress(forSHA256: digest))
        #expect(a.blobAddress(forSHA256: digest).count == 64)
    }

    @Test("interpolating at a share's x gives that share back")
    func interpolateShares() {
        let secret = SecureRandom.bytes(32)
        let points = Shamir.split(secret, shares: 5, threshold: 3)
        for point in points {
            #expect(Shamir.interpolate(Array(points.filter { $0.x != point.x }.prefix(3)), at: point.x) == point.y)
        }
    }

    @Test("the keyring recognises its own shares one at a time; an older keyring learns them from one unseal")
    func shareDigests() throws {
        let (file, _, _, shares) = try KeyringFile.create(method: .shamir(shares: 3, threshold: 2))
        for share in shares { #expect(file.recognizes(share) == true) }
        let genuine = shares[1]
        let forged = UnsealShare(
            vaultID: genuine.vaultID, threshold: 2, point: .init(x: genuine.point.x, y: genuine.point.y.reversed()))
        #expect(file.recognizes(forged) == false)
        #expect(
            file.recognizes(UnsealShare(vaultID: genuine.vaultID, threshold: 2, point: .init(x: 9, y: genuine.point.y)))
                == false)
        // A keyring written before share digests.
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(file)) as! [String: Any]
        #expect(json["shareDigests"] != nil)
        json["shareDigests"] = nil
        var legacy = try JSONDecoder().decode(KeyringFile.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(legacy.recognizes(genuine) == nil && !legacy.hasShareDigests)
        legacy.addShareDigests(from: [shares[0], shares[2]])
        for share in shares { #expect(legacy.recognizes(share) == true) }
        #expect(legacy.recognizes(forged) == false)
    }
}
