import CPKCS11
import Foundation
import Synchronization
import VaultCore

/// What went wrong talking to an HSM, in words an operator can act on.
public struct HSMError: Error, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A PKCS#11 module (an HSM's driver, or SoftHSM2), loaded at run time with dlopen. Modules are
/// kept loaded and initialised for the life of the process, once per path.
public final class PKCS11Module: @unchecked Sendable {
    public let path: String
    let functions: UnsafeMutablePointer<CK_FUNCTION_LIST>

    static let loaded = Mutex<[String: PKCS11Module]>([:])

    /// The module at `path`, loaded and initialised once per process.
    public static func load(_ path: String) throws(HSMError) -> PKCS11Module {
        let result: Result<PKCS11Module, HSMError> = loaded.withLock { modules in
            if let module = modules[path] { return .success(module) }
            do throws(HSMError) {
                let module = try PKCS11Module(path: path)
                modules[path] = module
                return .success(module)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    init(path: String) throws(HSMError) {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else {
            throw HSMError("the PKCS#11 module \(path) does not exist (is the HSM's driver installed?)")
        }
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            throw HSMError("cannot load the PKCS#11 module \(path): \(String(cString: dlerror()))")
        }
        guard let symbol = dlsym(handle, "C_GetFunctionList") else {
            throw HSMError("\(path) is not a PKCS#11 module (no C_GetFunctionList)")
        }
        typealias GetFunctionList =
            @convention(c) (UnsafeMutablePointer<UnsafeMutablePointer<CK_FUNCTION_LIST>?>?)
            -> CK_RV
        let getList = unsafeBitCast(symbol, to: GetFunctionList.self)
        var list: UnsafeMutablePointer<CK_FUNCTION_LIST>?
        let rv = getList(&list)
        guard rv == CKR_OK, let list else { throw HSMError("\(path): C_GetFunctionList failed (\(Self.name(rv)))") }
        functions = list
        var args = CK_C_INITIALIZE_ARGS()
        args.flags = CK_FLAGS(CKF_OS_LOCKING_OK)
        let initialized = withUnsafeMutablePointer(to: &args) { functions.pointee.C_Initialize($0) }
        guard initialized == CKR_OK || initialized == CK_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED) else {
            throw HSMError("\(path): C_Initialize failed (\(Self.name(initialized)))")
        }
    }

    /// Opens a read-write session on the token labelled `token` and logs in as its user.
    public func session(token label: String, pin: String) throws(HSMError) -> PKCS11Session {
        var count: CK_ULONG = 0
        try check(functions.pointee.C_GetSlotList(CK_BBOOL(CK_TRUE), nil, &count), "C_GetSlotList")
        var slots = [CK_SLOT_ID](repeating: 0, count: Int(count))
        try check(functions.pointee.C_GetSlotList(CK_BBOOL(CK_TRUE), &slots, &count), "C_GetSlotList")
        var labels: [String] = []
        for slot in slots.prefix(Int(count)) {
            var info = CK_TOKEN_INFO()
            guard functions.pointee.C_GetTokenInfo(slot, &info) == CKR_OK else { continue }
            let name = withUnsafeBytes(of: info.label) { String(decoding: $0, as: UTF8.self) }
                .trimmingCharacters(in: .whitespaces)
            labels.append(name)
            guard name == label else { continue }
            var session: CK_SESSION_HANDLE = 0
            try check(
                functions.pointee.C_OpenSession(
                    slot, CK_FLAGS(CKF_SERIAL_SESSION | CKF_RW_SESSION), nil, nil, &session),
                "C_OpenSession")
            var pinBytes = Array(pin.utf8)
            let rv = functions.pointee.C_Login(session, CK_USER_TYPE(CKU_USER), &pinBytes, CK_ULONG(pinBytes.count))
            guard rv == CKR_OK || rv == CK_RV(CKR_USER_ALREADY_LOGGED_IN) else {
                _ = functions.pointee.C_CloseSession(session)
                if rv == CK_RV(CKR_PIN_INCORRECT) || rv == CK_RV(CKR_PIN_LEN_RANGE) {
                    throw HSMError("the PIN for token \(label) is wrong")
                }
                if rv == CK_RV(CKR_PIN_LOCKED) { throw HSMError("the PIN for token \(label) is locked") }
                throw HSMError("cannot log in to token \(label): \(Self.name(rv))")
            }
            return PKCS11Session(module: self, handle: session, token: label)
        }
        throw HSMError(
            "no token labelled \(label) in \(path) (tokens: \(labels.isEmpty ? "none" : labels.joined(separator: ", ")))"
        )
    }

    func check(_ rv: CK_RV, _ call: String) throws(HSMError) {
        guard rv == CKR_OK else { throw HSMError("\(path): \(call) failed (\(Self.name(rv)))") }
    }

    static func name(_ rv: CK_RV) -> String {
        let names: [CK_RV: String] = [
            CK_RV(CKR_GENERAL_ERROR): "CKR_GENERAL_ERROR", CK_RV(CKR_ARGUMENTS_BAD): "CKR_ARGUMENTS_BAD",
            CK_RV(CKR_DEVICE_ERROR): "CKR_DEVICE_ERROR", CK_RV(CKR_DEVICE_REMOVED): "CKR_DEVICE_REMOVED",
            CK_RV(CKR_TOKEN_NOT_PRESENT): "CKR_TOKEN_NOT_PRESENT",
            CK_RV(CKR_KEY_HANDLE_INVALID): "CKR_KEY_HANDLE_INVALID",
            CK_RV(CKR_MECHANISM_INVALID): "CKR_MECHANISM_INVALID",
            CK_RV(CKR_ENCRYPTED_DATA_INVALID):
                "CKR_ENCRYPTED_DATA_INVALID", CK_RV(CKR_USER_NOT_LOGGED_IN): "CKR_USER_NOT_LOGGED_IN",
            CK_RV(CKR_SESSION_HANDLE_INVALID): "CKR_SESSION_HANDLE_INVALID",
            CK_RV(CKR_TEMPLATE_INCONSISTENT): "CKR_TEMPLATE_INCONSISTENT",
        ]
        return names[rv] ?? "CKR 0x" + String(rv, radix: 16)
    }
}

/// A logged-in session on one token. Calls on one session are serialised.
public final class PKCS11Session: @unchecked Sendable {
    public typealias ObjectHandle = CK_OBJECT_HANDLE
    let module: PKCS11Module
    let handle: CK_SESSION_HANDLE
    public let token: String
    let lock = Mutex(())

    init(module: PKCS11Module, handle: CK_SESSION_HANDLE, token: String) {
        self.module = module
        self.handle = handle
        self.token = token
    }

    deinit { _ = module.functions.pointee.C_CloseSession(handle) }

    var f: CK_FUNCTION_LIST { module.functions.pointee }

    /// The secret key labelled `label`, if the token holds one.
    public func findSecretKey(label: String) throws(HSMError) -> CK_OBJECT_HANDLE? {
        try findObject(class: CK_OBJECT_CLASS(CKO_SECRET_KEY), label: label)
    }

    /// The private or public key labelled `label`.
    public func findKey(private isPrivate: Bool, label: String) throws(HSMError) -> CK_OBJECT_HANDLE? {
        try findObject(class: CK_OBJECT_CLASS(isPrivate ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY), label: label)
    }

    func findObject(class objectClass: CK_OBJECT_CLASS, label: String) throws(HSMError) -> CK_OBJECT_HANDLE? {
        var keyClass = objectClass
        var labelBytes = Array(label.utf8)
        let found: Result<CK_OBJECT_HANDLE?, HSMError> = lock.withLock { _ in
            withUnsafeMutableBytes(of: &keyClass) { classBytes in
                labelBytes.withUnsafeMutableBytes { labelPointer in
                    var template = [
                        CK_ATTRIBUTE(
                            type: CK_ATTRIBUTE_TYPE(CKA_CLASS), pValue: classBytes.baseAddress,
                            ulValueLen: CK_ULONG(classBytes.count)),
                        CK_ATTRIBUTE(
                            type: CK_ATTRIBUTE_TYPE(CKA_LABEL), pValue: labelPointer.baseAddress,
                            ulValueLen: CK_ULONG(labelPointer.count)),
                    ]
                    do throws(HSMError) {
                        try module.check(
                            f.C_FindObjectsInit(handle, &template, CK_ULONG(template.count)), "C_FindObjectsInit")
                        defer { _ = f.C_FindObjectsFinal(handle) }
                        var object: CK_OBJECT_HANDLE = 0
                        var count: CK_ULONG = 0
                        try module.check(f.C_FindObjects(handle, &object, 1, &count), "C_FindObjects")
                        return .success(count == 1 ? object : nil)
                    } catch {
                        return .failure(error)
                    }
                }
            }
        }
        return try found.get()
    }

    /// Creates a 256-bit AES key inside the token that never leaves it: token object, sensitive,
    /// not extractable, for encrypting and decrypting only.
    public func generateAESKey(label: String) throws(HSMError) -> CK_OBJECT_HANDLE {
        var yes = CK_BBOOL(CK_TRUE)
        var no = CK_BBOOL(CK_FALSE)
        var length = CK_ULONG(32)
        var keyClass = CK_OBJECT_CLASS(CKO_SECRET_KEY)
        var keyType = CK_KEY_TYPE(CKK_AES)
        var labelBytes = Array(label.utf8)
        var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_AES_KEY_GEN), pParameter: nil, ulParameterLen: 0)
        var key: CK_OBJECT_HANDLE = 0
        let rv: CK_RV = lock.withLock { _ in
            func attribute<T>(_ type: Int, _ value: UnsafeMutablePointer<T>) -> CK_ATTRIBUTE {
                CK_ATTRIBUTE(
                    type: CK_ATTRIBUTE_TYPE(type), pValue: UnsafeMutableRawPointer(value),
                    ulValueLen: CK_ULONG(MemoryLayout<T>.size))
            }
            return labelBytes.withUnsafeMutableBytes { labelPointer in
                var template = [
                    attribute(Int(CKA_CLASS), &keyClass), attribute(Int(CKA_KEY_TYPE), &keyType),
                    attribute(Int(CKA_VALUE_LEN), &length), attribute(Int(CKA_TOKEN), &yes),
                    attribute(Int(CKA_PRIVATE), &yes), attribute(Int(CKA_SENSITIVE), &yes),
                    attribute(Int(CKA_EXTRACTABLE), &no), attribute(Int(CKA_ENCRYPT), &yes),
                    attribute(Int(CKA_DECRYPT), &yes), attribute(Int(CKA_WRAP), &no), attribute(Int(CKA_UNWRAP), &no),
                    CK_ATTRIBUTE(
                        type: CK_ATTRIBUTE_TYPE(CKA_LABEL), pValue: labelPointer.baseAddress,
                        ulValueLen: CK_ULONG(labelPointer.count)),
                ]
                return f.C_GenerateKey(handle, &mechanism, &template, CK_ULONG(template.count), &key)
            }
        }
        try module.check(rv, "C_GenerateKey")
        return key
    }

    /// Creates an ECDSA P-256 key pair in the token: the private key sensitive, never
    /// extractable, for signing only. Returns (public, private).
    public func generateP256KeyPair(label: String) throws(HSMError) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
        var yes = CK_BBOOL(CK_TRUE)
        var no = CK_BBOOL(CK_FALSE)
        // DER of the OID 1.2.840.10045.3.1.7 (prime256v1).
        var curve: [UInt8] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
        var labelBytes = Array(label.utf8)
        var mechanism = CK_MECHANISM(
            mechanism: CK_MECHANISM_TYPE(CKM_EC_KEY_PAIR_GEN), pParameter: nil, ulParameterLen: 0)
        var publicKey: CK_OBJECT_HANDLE = 0
        var privateKey: CK_OBJECT_HANDLE = 0
        let rv: CK_RV = lock.withLock { _ in
            func attribute(_ type: Int, _ value: UnsafeMutablePointer<CK_BBOOL>) -> CK_ATTRIBUTE {
                CK_ATTRIBUTE(
                    type: CK_ATTRIBUTE_TYPE(type), pValue: UnsafeMutableRawPointer(value),
                    ulValueLen: CK_ULONG(MemoryLayout<CK_BBOOL>.size))
            }
            return labelBytes.withUnsafeMutableBytes { labelPointer in
                curve.withUnsafeMutableBytes { curvePointer in
                    let labelAttribute = CK_ATTRIBUTE(
                        type: CK_ATTRIBUTE_TYPE(CKA_LABEL), pValue: labelPointer.baseAddress,
                        ulValueLen: CK_ULONG(labelPointer.count))
                    var publicTemplate = [
                        CK_ATTRIBUTE(
                            type: CK_ATTRIBUTE_TYPE(CKA_EC_PARAMS), pValue: curvePointer.baseAddress,
                            ulValueLen: CK_ULONG(curvePointer.count)),
                        attribute(Int(CKA_TOKEN), &yes), attribute(Int(CKA_VERIFY), &yes), labelAttribute,
                    ]
                    var privateTemplate = [
                        attribute(Int(CKA_TOKEN), &yes), attribute(Int(CKA_PRIVATE), &yes),
                        attribute(Int(CKA_SENSITIVE), &yes), attribute(Int(CKA_EXTRACTABLE), &no),
                        attribute(Int(CKA_SIGN), &yes), labelAttribute,
                    ]
                    return f.C_GenerateKeyPair(
                        handle, &mechanism, &publicTemplate, CK_ULONG(publicTemplate.count), &privateTemplate,
                        CK_ULONG(privateTemplate.count), &publicKey, &privateKey)
                }
            }
        }
        try module.check(rv, "C_GenerateKeyPair")
        return (publicKey, privateKey)
    }

    /// The uncompressed point (0x04 ‖ X ‖ Y) of an EC public key in the token.
    public func ecPoint(_ publicKey: CK_OBJECT_HANDLE) throws(HSMError) -> [UInt8] {
        let result: Result<[UInt8], HSMError> = lock.withLock { _ in
            var attribute = CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_EC_POINT), pValue: nil, ulValueLen: 0)
            guard f.C_GetAttributeValue(handle, publicKey, &attribute, 1) == CKR_OK else {
                return .failure(HSMError("token \(token): cannot read the public key"))
            }
            var bytes = [UInt8](repeating: 0, count: Int(attribute.ulValueLen))
            let rv = bytes.withUnsafeMutableBytes { buffer in
                attribute.pValue = buffer.baseAddress
                return f.C_GetAttributeValue(handle, publicKey, &attribute, 1)
            }
            guard rv == CKR_OK else { return .failure(HSMError("token \(token): cannot read the public key")) }
            // CKA_EC_POINT is a DER OCTET STRING around the point (some modules give it bare).
            if bytes.count == 67, bytes[0] == 0x04, bytes[1] == 65 { return .success(Array(bytes.dropFirst(2))) }
            return .success(bytes)
        }
        return try result.get()
    }

    /// ECDSA over `digest` (a SHA-256 hash) inside the token: r ‖ s, 32 bytes each.
    public func signECDSA(key: CK_OBJECT_HANDLE, digest: [UInt8]) throws(HSMError) -> [UInt8] {
        var digest = digest
        let result: Result<[UInt8], HSMError> = lock.withLock { _ in
            var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_ECDSA), pParameter: nil, ulParameterLen: 0)
            let start = f.C_SignInit(handle, &mechanism, key)
            guard start == CKR_OK else {
                return .failure(
                    HSMError(
                        start == CK_RV(CKR_KEY_HANDLE_INVALID)
                            ? "the signing key is no longer in token \(token)"
                            : "\(module.path): signing in the token failed (\(PKCS11Module.name(start)))"))
            }
            var signature = [UInt8](repeating: 0, count: 64)
            var length = CK_ULONG(signature.count)
            let rv = f.C_Sign(handle, &digest, CK_ULONG(digest.count), &signature, &length)
            guard rv == CKR_OK else {
                return .failure(HSMError("\(module.path): signing in the token failed (\(PKCS11Module.name(rv)))"))
            }
            return .success(Array(signature.prefix(Int(length))))
        }
        return try result.get()
    }

    public func destroy(_ object: CK_OBJECT_HANDLE) throws(HSMError) {
        let rv = lock.withLock { _ in f.C_DestroyObject(handle, object) }
        try module.check(rv, "C_DestroyObject")
    }

    /// AES-256-GCM inside the token under `key`: ciphertext ‖ 16-byte tag.
    public func encrypt(key: CK_OBJECT_HANDLE, iv: [UInt8], aad: [UInt8], plaintext: [UInt8]) throws(HSMError)
        -> [UInt8]
    {
        try gcm(encrypting: true, key: key, iv: iv, aad: aad, input: plaintext)
    }

    /// Opens what `encrypt` made; a wrong key, IV, AAD or a changed byte fail.
    public func decrypt(key: CK_OBJECT_HANDLE, iv: [UInt8], aad: [UInt8], ciphertext: [UInt8]) throws(HSMError)
        -> [UInt8]
    {
        try gcm(encrypting: false, key: key, iv: iv, aad: aad, input: ciphertext)
    }

    func gcm(encrypting: Bool, key: CK_OBJECT_HANDLE, iv: [UInt8], aad: [UInt8], input: [UInt8]) throws(HSMError)
        -> [UInt8]
    {
        var iv = iv
        var aad = aad
        var input = input
        let result: Result<[UInt8], HSMError> = lock.withLock { _ in
            iv.withUnsafeMutableBufferPointer { ivPointer in
                aad.withUnsafeMutableBufferPointer { aadPointer in
                    var parameters = CK_GCM_PARAMS(
                        pIv: ivPointer.baseAddress, ulIvLen: CK_ULONG(ivPointer.count),
                        ulIvBits: CK_ULONG(ivPointer.count * 8), pAAD: aadPointer.baseAddress,
                        ulAADLen: CK_ULONG(aadPointer.count), ulTagBits: 128)
                    return withUnsafeMutablePointer(to: &parameters) { parametersPointer in
                        var mechanism = CK_MECHANISM(
                            mechanism: CK_MECHANISM_TYPE(CKM_AES_GCM),
                            pParameter: UnsafeMutableRawPointer(parametersPointer),
                            ulParameterLen: CK_ULONG(MemoryLayout<CK_GCM_PARAMS>.size))
                        let start =
                            encrypting
                            ? f.C_EncryptInit(handle, &mechanism, key) : f.C_DecryptInit(handle, &mechanism, key)
                        guard start == CKR_OK else {
                            return .failure(
                                HSMError(
                                    start == CK_RV(CKR_KEY_HANDLE_INVALID)
                                        ? "the key is no longer in token \(token)"
                                        : "\(module.path): AES-GCM in the token failed (\(PKCS11Module.name(start)))"))
                        }
                        var output = [UInt8](repeating: 0, count: input.count + 16)
                        var length = CK_ULONG(output.count)
                        let rv =
                            encrypting
                            ? f.C_Encrypt(handle, &input, CK_ULONG(input.count), &output, &length)
                            : f.C_Decrypt(handle, &input, CK_ULONG(input.count), &output, &length)
                        guard rv == CKR_OK else {
                            return .failure(
                                HSMError(
                                    rv == CK_RV(CKR_ENCRYPTED_DATA_INVALID) || rv == CK_RV(CKR_ENCRYPTED_DATA_LEN_RANGE)
                                        ? "the token's key does not open the sealed root key (another key, or a changed keyring)"
                                        : "\(module.path): AES-GCM in the token failed (\(PKCS11Module.name(rv)))"))
                        }
                        return .success(Array(output.prefix(Int(length))))
                    }
                }
            }
        }
        return try result.get()
    }
}
