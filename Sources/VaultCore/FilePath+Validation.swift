/// Rules for the names of files inside a model version.
public enum ModelFilePath {
    /// Validates a relative file name stored in a version (`config.json`, `weights/part-1.bin`).
    ///
    /// Refuses absolute paths, `.`/`..` components, empty components, NUL and backslashes,
    /// so a pulled file can never land outside the output directory.
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
}
