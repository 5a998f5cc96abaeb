import HummingbirdBcrypt

/// Password hashes: bcrypt (hummingbird-auth's `HummingbirdBcrypt`, OpenBSD's C implementation).
///
/// Why bcrypt rather than argon2id: it comes with the web framework's own package (no second C library and
/// module map to keep), its `$2b$<cost>$` strings are read by every tool a district may already use
/// (`htpasswd -B`, Python's `bcrypt`), and its cost is one number we raise over the years. Argon2id is
/// memory-hard and would resist GPU guessing better; the box's exposure is a hash leaked from the web file,
/// which root or `hallwatch-web` alone can read. bcrypt reads at most 72 bytes of a password: longer ones are
/// refused by ``hash(_:)`` rather than silently truncated (OWASP Password Storage Cheat Sheet).
public enum PasswordHashing {
    /// Work factor of new hashes: 2^12 rounds, about 0.2–0.4 s on the box's CPU — slow for guessing,
    /// acceptable once per login.
    public static let cost: UInt8 = 12
    /// Longest password bcrypt reads, in UTF-8 bytes.
    public static let maxPasswordBytes = 72
    /// Shortest password accepted by `hallwatchctl user hash`, in characters (NIST SP 800-63B asks for 8).
    public static let minPasswordCharacters = 10

    /// Why a password cannot be hashed.
    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case tooShort
        case tooLong
        /// A NUL (bcrypt stops reading there) or another control character (a line ending left in).
        case controlCharacter
        public var description: String {
            switch self {
            case .controlCharacter:
                "the password holds a control character (a NUL, or a line ending left in): bcrypt would not hash what was meant"
            case .tooShort: "the password is shorter than \(PasswordHashing.minPasswordCharacters) characters"
            case .tooLong:
                "the password is longer than \(PasswordHashing.maxPasswordBytes) bytes (bcrypt would ignore the rest)"
            }
        }
    }

    /// A `$2b$` hash of `password` at `cost`.
    /// - Throws: ``Refusal`` for a password outside 10 characters–72 bytes or with a control character.
    public static func hash(_ password: String, cost: UInt8 = cost) throws(Refusal) -> String {
        guard password.count >= minPasswordCharacters else { throw .tooShort }
        guard password.utf8.count <= maxPasswordBytes else { throw .tooLong }
        guard !password.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw .controlCharacter
        }
        return Bcrypt.hash(password, cost: cost)
    }

    /// Whether `password` matches `hash`. Constant work for a given cost; a password over 72 bytes, or with a
    /// NUL, never matches.
    public static func verify(_ password: String, hash: String) -> Bool {
        // bcrypt stops at a NUL: "secret\0anything" would match the hash of "secret".
        guard password.utf8.count <= maxPasswordBytes, !password.utf8.contains(0), isBcryptHash(hash) else {
            return false
        }
        return Bcrypt.verify(password, hash: hash)
    }

    /// Whether `text` has the shape of a bcrypt hash: `$2a$`, `$2b$` or `$2y$`, two-digit cost 04–31, 53
    /// characters of bcrypt's base-64.
    public static func isBcryptHash(_ text: String) -> Bool {
        let b = Array(text.utf8)
        guard b.count == 60, b[0] == 0x24, b[1] == 0x32, [0x61, 0x62, 0x79].contains(b[2]), b[3] == 0x24,
            b[6] == 0x24, let cost = Int(String(decoding: b[4...5], as: UTF8.self)), (4...31).contains(cost)
        else { return false }
        return b[7...].allSatisfy {
            (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2E
                || $0 == 0x2F
        }
    }
}
