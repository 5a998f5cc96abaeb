import Foundation

/// The receipt a box writes back to the stick: the only write ever made to a stick, one new pair of files
/// `HALLWATCH/receipts/<building>_<serial>_<time>_<result>.txt` and `.json`.
///
/// It holds the result, every reason (code and sentence), the box serial and software version, the bundle
/// versions before and after, the signer's key id and the box clock. Never a password, hash or private key.
/// It also carries the health gate's verdict per service, the capture workers that restarted (and for how
/// long), and the box's inventory (``BoxInventory``): disks, cameras configured and answering, cameras
/// discovered but not configured, addresses, the TLS fingerprint and the box's public key.
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
            "clock-vs-issued: \(outcome.manifest.map { Self.signed(nowUnix - $0.issuedUnix) + " s" } ?? "-")",
        ]
        // Camera models and sysfs strings come from outside: one line each, bounded.
        lines += (outcome.inventory?.lines ?? []).map { String(Self.oneLine($0).prefix(400)) }
        if let h = outcome.health {
            lines += h.services.map {
                "health: \($0.name): \($0.healthy ? "healthy" : "UNHEALTHY"): \(Self.oneLine($0.detail))"
            }
            lines.append("health-gate: \(String(format: "%.1f", h.elapsedSeconds)) s")
            lines += h.cameras.map {
                "camera-\($0.event): \($0.camera)\($0.downSeconds.map { String(format: " (%.1f s without recording)", $0) } ?? "")"
            }
        }
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
            "health": (outcome.health?.services ?? []).map {
                ["service": $0.name, "healthy": $0.healthy, "detail": $0.detail] as [String: Any]
            },
            "clockVsIssuedSeconds": outcome.manifest.map { Int(nowUnix - $0.issuedUnix) as Any } ?? NSNull(),
            "inventory": outcome.inventory?.json ?? [:],
            "cameras": (outcome.health?.cameras ?? []).map {
                ["camera": $0.camera, "event": $0.event, "downSeconds": $0.downSeconds.map { $0 as Any } ?? NSNull()]
                    as [String: Any]
            },
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

    private static func signed(_ v: Int64) -> String { v >= 0 ? "+\(v)" : "\(v)" }

    private static func oneLine(_ s: String) -> String {
        String(s.map { $0.isNewline || ($0.asciiValue.map { $0 < 0x20 } ?? false) ? " " : $0 })
    }
}
