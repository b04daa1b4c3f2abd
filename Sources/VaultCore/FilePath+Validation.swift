import Foundation

/// Rules for the names of files inside a model version.
public enum ModelFilePath {
    /// Validates a relative file name stored in a version (`config.json`, `weights/part-1.bin`).
    ///
    /// Refuses absolute paths, `.`/`..` components, empty components, NUL and backslashes,
    /// so a pulled file can never land outside the output directory. This is the rule for names
    /// read back; `validateNew` adds the rules for names being stored.
    public static func validate(_ path: String) throws(VaultError) {
        guard !path.isEmpty, path.utf8.count <= 1024 else {
            throw .invalidFilePath(path, reason: "must be 1 to 1024 bytes")
        }
        guard !path.hasPrefix("/") else {
            throw .invalidFilePath(path, reason: "must be relative")
        }
        guard !path.utf8.contains(0), !path.contains("\\") else {
            throw .invalidFilePath(path, reason: "must not contain NUL or '\\'")
        }
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            guard !component.isEmpty, component != ".", component != ".." else {
                throw .invalidFilePath(path, reason: "empty, '.' and '..' components are not allowed")
            }
        }
    }

    /// Validates a name about to be stored: `validate`'s rules, and one canonical form — Unicode
    /// NFC, with no control or invisible formatting characters (which could rewrite a terminal,
    /// or make two different names look alike).
    public static func validateNew(_ path: String) throws(VaultError) {
        try validate(path)
        if let bad = path.unicodeScalars.first(where: isHidden) {
            throw .invalidFilePath(
                path, reason: "must not contain control or formatting characters (it holds U+\(hex(bad)))")
        }
        guard canonical(path).utf8.elementsEqual(path.utf8) else {
            throw .invalidFilePath(path, reason: "must be in Unicode NFC (send it as '\(displayed(canonical(path)))')")
        }
    }

    /// The canonical (NFC) form of a name: what the CLI sends for a local file's name.
    public static func canonical(_ path: String) -> String {
        path.precomposedStringWithCanonicalMapping
    }

    /// Checks that the names of one version can all be written to one directory on any common
    /// file system: none equal to another ignoring case, and none both a file and a directory.
    public static func validateSet(_ paths: [String]) throws(VaultError) {
        var folded: [String: String] = [:]
        for path in paths {
            let key = path.lowercased()
            if let other = folded[key] {
                throw .invalidFilePath(
                    path,
                    reason: other == path
                        ? "given twice"
                        : "differs from '\(displayed(other))' only in case; a pull to macOS or Windows would write one over the other"
                )
            }
            folded[key] = path
        }
        let names = Set(folded.keys)
        for (key, path) in folded {
            var prefix = Substring(key)
            while let slash = prefix.lastIndex(of: "/") {
                prefix = prefix[..<slash]
                if names.contains(String(prefix)) {
                    throw .invalidFilePath(
                        path, reason: "its directory '\(displayed(folded[String(prefix)] ?? ""))' is also a file")
                }
            }
        }
    }

    /// `path` safe to print to a terminal: every control or formatting character (and `\`) as
    /// a `\u{…}` escape, so a stored name can neither move the cursor nor hide what it says.
    public static func displayed(_ path: String) -> String {
        guard path.unicodeScalars.contains(where: { isHidden($0) || $0 == "\\" }) else { return path }
        var out = ""
        for scalar in path.unicodeScalars {
            if isHidden(scalar) || scalar == "\\" {
                out += "\\u{\(hex(scalar))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func isHidden(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .unassigned, .privateUse, .surrogate: true
        default: false
        }
    }

    static func hex(_ scalar: Unicode.Scalar) -> String {
        let digits = String(scalar.value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
