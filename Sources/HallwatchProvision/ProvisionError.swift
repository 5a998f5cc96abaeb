import HallwatchCore

/// Why a stick or bundle was refused, or why provisioning failed: a stable code and one sentence.
///
/// Every reason a refusal has goes on the receipt as `code: sentence`; the sentence never holds a secret.
public struct ProvisionError: HallwatchError, Equatable {
    /// Stable codes (`provision.*`), listed with their kinds in HallwatchCore's `ErrorCodes`.
    public struct Code: StableErrorCode {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// `bundle.txt` breaks the grammar or a bound (``BundleManifest``).
        public static let manifest = Code(rawValue: "provision.manifest")
        /// The signature is missing, malformed or does not verify.
        public static let signature = Code(rawValue: "provision.signature")
        /// The signature's key id is not in the box's keyring.
        public static let unknownKey = Code(rawValue: "provision.unknownKey")
        /// The keyring is unusable, or older than the bundle's `keyring` line.
        public static let keyring = Code(rawValue: "provision.keyring")
        /// The version is not above the floor (or equal with another hash).
        public static let replay = Code(rawValue: "provision.replay")
        /// Expired against the box's time floor, or issued after its expiry.
        public static let expired = Code(rawValue: "provision.expired")
        /// Another district, building or box.
        public static let otherBox = Code(rawValue: "provision.otherBox")
        /// A listed file: missing, short, long, or another SHA-256.
        public static let file = Code(rawValue: "provision.file")
        /// The reader helper failed, stalled past its deadline or printed more than allowed.
        public static let reader = Code(rawValue: "provision.reader")
        /// Neither FAT nor exFAT: ignored.
        public static let ignored = Code(rawValue: "provision.ignored")
        /// No bundle for this box on the stick.
        public static let noBundle = Code(rawValue: "provision.noBundle")
        /// Two or more bundles claim this box (two `adopt` bundles on a fresh box).
        public static let ambiguous = Code(rawValue: "provision.ambiguous")
        /// A warning: a secret in clear text, allowed by `cleartext-secrets yes`.
        public static let cleartextSecret = Code(rawValue: "provision.cleartextSecret")
        /// The staged `hallwatch.yaml` does not validate.
        public static let config = Code(rawValue: "provision.config")
        /// Staging or switching failed (I/O); the old configuration stays current.
        public static let apply = Code(rawValue: "provision.apply")
        /// A process did not report the new configuration healthy within the gate's time: reverted.
        public static let health = Code(rawValue: "provision.health")
        /// The receipt could not be written to the stick.
        public static let receipt = Code(rawValue: "provision.receipt")
    }

    /// The code.
    public var code: Code
    /// One sentence for people.
    public var message: String
    /// An error with `code` and `message`.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    /// `[code] message`.
    public var description: String { "[\(code.rawValue)] \(message)" }
    /// ``code`` as text.
    public var stableCode: String { code.rawValue }
}
