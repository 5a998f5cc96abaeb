import Foundation

/// The receipt a box writes back to the stick: the only write ever made to a stick, one new pair of files
/// `HALLWATCH/receipts/<building>_<serial>_<time>_<result>.txt` and `.json`.
///
/// It holds the result, every reason (code and sentence), the box serial and software version, the bundle
/// versions before and after, the signer's key id and the box clock. Never a password, hash or private key.
/// (Issue 17's fuller receipt — disks, cameras, health, the box's signature — is to come.)
public struct Receipt: Sendable {
    /// The software version written on receipts.
    public static let softwareVersion = "hallwatch-0.1"

    /// What the receipt reports.
    public var outcome: ProvisionOutcome
    /// The box.
    public var identity: BoxIdentity
    /// The box clock when written, seconds since the epoch.
    public var nowUnix: Int64

    /// A receipt.
    public init(outcome: ProvisionOutcome, identity: BoxIdentity, nowUnix: Int64) {
        self.outcome = outcome
        self.identity = identity
        self.nowUnix = nowUnix
    }

    /// Set by ``write(to:)`` when a receipt of the same name is already on the stick (a replug within the
    /// same second): `-2`, `-3`, … after the time.
    public var sequence = 1

    /// The file name without extension: `<building>_<serial>_<YYYYMMDDTHHMMSSZ>[-N]_<result>`.
    public var baseName: String {
        let t = BundleManifest.formatRFC3339(nowUnix).filter { $0 != "-" && $0 != ":" }
        let building = outcome.building ?? identity.building ?? "unknown"
        let n = sequence > 1 ? "-\(sequence)" : ""
        return "\(building)_\(identity.serial)_\(t)\(n)_\(outcome.result.rawValue)"
    }

    /// The human-readable receipt, one `key: value` per line, reasons as `reason: code: sentence`.
    public var text: String {
        var lines = [
            "hallwatch-receipt 1",
            "result: \(outcome.result.rawValue)",
            "box: \(identity.serial)",
            "software: \(Self.softwareVersion)",
            "building: \(outcome.building ?? "-")",
            "district: \(outcome.manifest?.district ?? identity.district ?? "-")",
            "version-before: \(outcome.versionBefore)",
            "version-after: \(outcome.versionAfter)",
            "bundle-version: \(outcome.manifest.map { String($0.version) } ?? "-")",
            "signer: \(outcome.signerKeyID ?? "-")",
            "box-clock: \(BundleManifest.formatRFC3339(nowUnix))",
            "issued: \(outcome.manifest.map { BundleManifest.formatRFC3339($0.issuedUnix) } ?? "-")",
            "box-recipient: \(outcome.boxRecipient ?? "-")",
            "changed: \(outcome.change?.summary ?? "-")",
        ]
        lines += outcome.reasons.map { "reason: \($0.code.rawValue): \(Self.oneLine($0.message))" }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The same as JSON (sorted keys).
    public var json: [UInt8] {
        let object: [String: Any] = [
            "result": outcome.result.rawValue, "box": identity.serial, "software": Self.softwareVersion,
            "building": outcome.building ?? "", "versionBefore": outcome.versionBefore,
            "versionAfter": outcome.versionAfter, "signer": outcome.signerKeyID ?? "",
            "boxClock": BundleManifest.formatRFC3339(nowUnix), "boxRecipient": outcome.boxRecipient ?? "",
            "changed": outcome.change?.summary ?? "",
            "reasons": outcome.reasons.map { ["code": $0.code.rawValue, "message": $0.message] },
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return Array(data) + [0x0A]
    }

    /// The box's identity key, which signs the text receipt (`.txt.minisig`, minisign's format: the district
    /// checks it with `minisign -V -p <box>.pub -m <receipt>.txt`); `nil`: unsigned.
    public var signingKey: Minisign.SecretKey?

    /// The files to write: `.txt`, its `.txt.minisig` when signed, and `.json`.
    public var files: [(name: String, bytes: [UInt8])] {
        var out = [("\(baseName).txt", Array(text.utf8))]
        if let signingKey {
            let sig = signingKey.sign(Array(text.utf8), trustedComment: "hallwatch receipt \(baseName)")
            out.append(("\(baseName).txt.minisig", Array(sig.utf8)))
        }
        out.append(("\(baseName).json", json))
        return out
    }

    /// Writes ``files`` under `HALLWATCH/receipts/`, each read back.
    /// - Throws: `provision.receipt` when the stick cannot be written (the caller keeps it pending).
    public func write(to stick: any StickSource) throws(ProvisionError) {
        var receipt = self
        let existing = Set(((try? stick.files(in: "HALLWATCH/receipts")) ?? []).map { $0.lowercased() })
        while existing.contains("\(receipt.baseName).txt".lowercased()) && receipt.sequence < 1000 {
            receipt.sequence += 1
        }
        for f in receipt.files { try stick.create("HALLWATCH/receipts/\(f.name)", contents: f.bytes) }
    }

    private static func oneLine(_ s: String) -> String {
        String(s.map { $0.isNewline || ($0.asciiValue.map { $0 < 0x20 } ?? false) ? " " : $0 })
    }
}
