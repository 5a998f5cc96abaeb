import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchSodium

/// Who this box is: the identity bundles are matched against.
public struct BoxIdentity: Sendable, Equatable {
    /// The box's serial number.
    public var serial: String
    /// Its district, once provisioned.
    public var district: String?
    /// Its building, once provisioned; `nil` for a fresh box (which takes one `adopt` bundle).
    public var building: String?
    /// An identity.
    public init(serial: String, district: String? = nil, building: String? = nil) {
        self.serial = serial
        self.district = district
        self.building = building
    }
}

/// What processing one stick came to.
public struct ProvisionOutcome: Sendable {
    /// The result, as a receipt names it.
    public enum Result: String, Sendable {
        /// The bundle was (or would be, for `verify`) applied.
        case applied
        /// The same version with the same hash is current: nothing changed.
        case alreadyApplied = "already-applied"
        /// Refused; see ``reasons``.
        case refused
        /// Applied, then reverted byte for byte because the health gate failed; see ``reasons`` and ``health``.
        case reverted
        /// Not a FAT/exFAT stick: ignored, no receipt.
        case ignored
    }
    /// The result.
    public var result: Result
    /// Every reason (refusals) or notice, each a code and a sentence.
    public var reasons: [ProvisionError]
    /// The bundle's building (when one was found).
    public var building: String?
    /// The manifest, when it verified and parsed.
    public var manifest: BundleManifest?
    /// The signing key's id as minisign prints it.
    public var signerKeyID: String?
    /// The box's `age` recipient (X25519), for the district to encrypt secrets to it.
    public var boxRecipient: String? = nil
    /// What the bundle changes (applied or would-be applied).
    public var change: ConfigChange? = nil
    /// The version floor before.
    public var versionBefore: Int
    /// The version floor after.
    public var versionAfter: Int
    /// The health gate's report (applied with a gate, or reverted); `nil` without activation.
    public var health: HealthGate.Report? = nil
    /// The box as the receipt describes it (collected when the receipt is written).
    public var inventory: BoxInventory? = nil
}

/// Checks and applies one stick (issue 17, provisioner steps 3–6 and 9): read the manifest and its signature
/// through the sandboxed reader, verify, parse, check identity, floors and expiry, copy each listed file
/// (at most declared size + 1, exact size and SHA-256), validate `hallwatch.yaml`, apply atomically.
public struct Provisioner: Sendable {
    /// The box.
    public var identity: BoxIdentity
    /// Trusted keys.
    public var keyring: Keyring
    /// Applied configurations and floors.
    public var store: ConfigStore
    /// The box's clock reading, seconds since the epoch (injected; may be wrong, see ``timeFloorUnix``).
    public var nowUnix: Int64
    /// The image's build time, seconds since the epoch: the clock never counts as earlier.
    public var buildTimeUnix: Int64
    /// The box's `age` identity file (X25519, made with `age-keygen` when the box is installed): bundles'
    /// `secrets/*.age` are decrypted with it; its recipient goes on every receipt.
    public var ageIdentity: String?
    /// The box's identity key (`minisign -G -W` at install time), which signs every receipt; `nil`: unsigned.
    public var receiptKey: Minisign.SecretKey?
    /// The box's keyring directory, where a newer signed keyring from a stick is written once accepted
    /// (`nil`: accepted in memory only).
    public var keyringDirectory: String?
    /// Activation and the health gate after an apply (steps 7–8): `nil` applies without announcing (checks,
    /// tests of the reader, `--health-timeout 0`).
    public var healthGate: HealthGate?
    /// The LEDs and buzzer that tell the installer what is happening (step 10); `nil`: none.
    public var indicator: Indicator?
    /// Crash tests: called after each revert step (V1–V4) when the health gate failed.
    public var afterRevertStep: @Sendable (ConfigStore.RevertStep) -> Void = { _ in }

    /// A provisioner.
    public init(identity: BoxIdentity, keyring: Keyring, store: ConfigStore, nowUnix: Int64, buildTimeUnix: Int64) {
        self.identity = identity
        self.keyring = keyring
        self.store = store
        self.nowUnix = nowUnix
        self.buildTimeUnix = buildTimeUnix
    }

    /// The time a bundle's expiry is checked against: the max of the clock, the build time and the newest
    /// `issued` accepted (a box at 1970 cannot be fed an expired bundle).
    public var timeFloorUnix: Int64 { max(nowUnix, buildTimeUnix, store.state().timeFloorUnix) }

    /// A checked bundle, every file copied into memory, ready to apply.
    public struct Checked: Sendable {
        /// The manifest.
        public var manifest: BundleManifest
        /// SHA-256 (hex) of `bundle.txt`.
        public var bundleHash: String
        /// The signer.
        public var signer: Minisign.PublicKey
        /// Each listed file's bytes, in manifest order.
        public var files: [(name: String, bytes: [UInt8])]
        /// The bundle's configuration, parsed.
        public var config: HallwatchConfig?
    }

    /// Processes `device` (a block device or image file): checks, and with `apply` applies and writes the
    /// receipt back. `afterStep` is the crash-test hook of ``ConfigStore/apply(files:state:afterStep:)``.
    public func process(
        device: String, apply: Bool, sandbox: ReaderSandbox = .default,
        afterStep: (ConfigStore.Step) -> Void = { _ in }
    ) -> ProvisionOutcome {
        let floor = store.state().versionFloor
        var outcome = ProvisionOutcome(
            result: .refused, reasons: [], building: identity.building, manifest: nil, signerKeyID: nil,
            versionBefore: floor, versionAfter: floor)
        if let ageIdentity {
            let r = try? Helper.run(
                ["/usr/bin/age-keygen", "-y", ageIdentity], sandbox: ReaderSandbox(prefix: [], deadline: .seconds(5)),
                maxOutputBytes: 256)
            outcome.boxRecipient = r.map { String(decoding: $0.output, as: UTF8.self) }?
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let volume = StickVolume.detect(path: device)
        guard let stick = volume.source(device: device, sandbox: sandbox) else {
            outcome.result = .ignored
            if case .ignored(let what) = volume {
                outcome.reasons = [ProvisionError(.ignored, "not a FAT or exFAT volume (\(what))")]
            }
            return outcome
        }
        if apply { indicator?.show(.stickSeen) }
        do throws(ProvisionError) {
            // Newer keyrings on the stick first (TUF's rule), then everything else against the newest.
            // Applying holds the store's lock from reading the floors to writing them; a check alone needs none
            // (and creates nothing).
            func run() throws(ProvisionError) -> ProvisionOutcome {
                var p = self
                p.keyring = try keyring.rotated(from: stick, persist: apply ? keyringDirectory : nil)
                var start = outcome
                start.versionBefore = store.state().versionFloor
                start.versionAfter = start.versionBefore
                return p.processVerified(stick: stick, apply: apply, outcome: start, afterStep: afterStep)
            }
            return apply ? try store.withLock(run) : try run()
        } catch {
            outcome.reasons = [error]
            return apply ? withReceipt(outcome, on: stick) : outcome
        }
    }

    /// Writes the receipts still pending from sticks that could not be written, then the receipt of `outcome`
    /// (when the building is known). A failure to write is one more reason (`provision.receipt`) and keeps
    /// the receipt pending in the store's `pending-receipts/` for the next stick.
    private func withReceipt(_ outcome: ProvisionOutcome, on stick: any StickSource) -> ProvisionOutcome {
        var outcome = outcome
        guard outcome.building != nil else {
            signal(outcome, receiptWritten: true)
            return outcome
        }
        let pending = store.root + "/pending-receipts"
        let fm = FileManager.default
        for name in ((try? fm.contentsOfDirectory(atPath: pending)) ?? []).sorted() {
            guard let data = fm.contents(atPath: pending + "/" + name) else { continue }
            do throws(ProvisionError) {
                try stick.create("HALLWATCH/receipts/" + name, contents: Array(data))
                try? fm.removeItem(atPath: pending + "/" + name)
            } catch { break }
        }
        let current = store.current().flatMap {
            try? ConfigLoader.load(path: store.root + "/releases/\($0)/hallwatch.yaml")
        }
        outcome.inventory = BoxInventory.collect(config: current, receiptKey: receiptKey, bus: healthGate != nil)
        var receipt = Receipt(outcome: outcome, identity: identity, nowUnix: nowUnix)
        receipt.signingKey = receiptKey
        do throws(ProvisionError) {
            try receipt.write(to: stick)
            signal(outcome, receiptWritten: true)
        } catch {
            outcome.reasons.append(error)
            try? fm.createDirectory(atPath: pending, withIntermediateDirectories: true)
            receipt.outcome = outcome
            for f in receipt.files { _ = fm.createFile(atPath: pending + "/" + f.name, contents: Data(f.bytes)) }
            signal(outcome, receiptWritten: false)
        }
        return outcome
    }

    /// The LED/buzzer pattern for a finished run (after the receipt was written, or could not be).
    private func signal(_ outcome: ProvisionOutcome, receiptWritten: Bool) {
        guard let indicator else { return }
        guard receiptWritten else { return indicator.show(.receiptNotWritten) }
        switch outcome.result {
        case .applied: indicator.show(.applied)
        case .alreadyApplied: indicator.show(.alreadyApplied)
        case .refused, .reverted: indicator.show(.refused)
        case .ignored: break
        }
    }

    private func processVerified(
        stick: any StickSource, apply: Bool, outcome start: ProvisionOutcome,
        afterStep: (ConfigStore.Step) -> Void
    ) -> ProvisionOutcome {
        var outcome = start
        do throws(ProvisionError) {
            let building = try chooseBuilding(stick)
            outcome.building = building
            let checked = try check(stick: stick, building: building, outcome: &outcome)
            if outcome.result != .alreadyApplied {
                if let config = checked.config {
                    let old = store.current().flatMap {
                        try? ConfigLoader.load(path: store.root + "/releases/\($0)/hallwatch.yaml")
                    }
                    outcome.change = ConfigChange(from: old, to: config)
                }
                if apply {
                    let state = ConfigStore.State(
                        district: checked.manifest.district, building: checked.manifest.building,
                        versionFloor: checked.manifest.version, bundleHash: checked.bundleHash,
                        timeFloorUnix: max(store.state().timeFloorUnix, checked.manifest.issuedUnix),
                        release: "v\(checked.manifest.version)-\(checked.bundleHash.prefix(16))")
                    let before = store.snapshot()
                    indicator?.show(.applying)
                    try store.apply(files: checked.files, state: state, afterStep: afterStep)
                    if let config = checked.config, let gate = healthGate {
                        try activate(
                            gate, release: state.release, version: checked.manifest.version, before: before,
                            busSocket: config.bus.socket, box: config.box, outcome: &outcome)
                        if outcome.result == .reverted { return withReceipt(outcome, on: stick) }
                    }
                }
                outcome.result = .applied
                outcome.versionAfter = checked.manifest.version
            }
        } catch {
            if !outcome.reasons.contains(error) { outcome.reasons.append(error) }
        }
        return apply ? withReceipt(outcome, on: stick) : outcome
    }

    /// Steps 7–8 (G1–G4 in the DocC page "Apply"): announces `release`, waits for the health gate, and when it
    /// fails reverts the store to `before` byte for byte, announces the old release again and sets
    /// `outcome.result = .reverted` with one `provision.health` reason per unhealthy service.
    private func activate(
        _ gate: HealthGate, release: String, version: Int, before: ConfigStore.Snapshot, busSocket: String,
        box: String, outcome: inout ProvisionOutcome
    ) throws(ProvisionError) {
        let at = UTCMicros(nowUnix * 1_000_000)
        let report = gate.activate(
            ConfigAnnouncement(version: release, bundleVersion: version, cause: "applied", at: at),
            busSocket: busSocket, box: box)
        outcome.health = report
        guard !report.healthy else { return }
        try store.restore(before, removing: release, afterStep: afterRevertStep)
        outcome.result = .reverted
        outcome.versionAfter = outcome.versionBefore
        outcome.reasons += report.failures.map {
            ProvisionError(.health, "\($0); reverted to \(before.current ?? "no configuration")")
        }
        if let old = before.current {
            let floor =
                (try? JSONDecoder().decode(ConfigStore.State.self, from: Data(before.stateBytes ?? [])))?
                .versionFloor ?? 0
            gate.announce(
                ConfigAnnouncement(version: old, bundleVersion: floor, cause: "reverted", at: at),
                busSocket: busSocket, box: box)
        }
    }

    /// `secrets/<name>.age` → `secrets/<name>`, decrypted with the box's identity (`age -d`, bounded output);
    /// a clear-text secret (allowed by the manifest) adds a `provision.cleartextSecret` warning.
    private func decryptSecrets(
        _ files: [(name: String, bytes: [UInt8])], reasons: inout [ProvisionError], outcome: inout ProvisionOutcome
    ) throws(ProvisionError) -> [(name: String, bytes: [UInt8])] {
        var out: [(name: String, bytes: [UInt8])] = []
        for f in files {
            guard f.name.hasPrefix("secrets/") else {
                out.append(f)
                continue
            }
            guard f.name.hasSuffix(".age") else {
                outcome.reasons.append(ProvisionError(.cleartextSecret, "\(f.name) travelled in clear text"))
                out.append(f)
                continue
            }
            guard let ageIdentity else {
                reasons.append(ProvisionError(.config, "\(f.name): this box has no age identity to decrypt it"))
                continue
            }
            let r = try withTemporaryCopy(f.bytes) { (path) throws(ProvisionError) in
                try Helper.run(
                    ["/usr/bin/age", "-d", "-i", ageIdentity, path],
                    sandbox: ReaderSandbox(prefix: [], deadline: .seconds(5)), maxOutputBytes: 1 << 20)
            }
            guard r.status == 0, r.output.count < 1 << 20 else {
                reasons.append(
                    ProvisionError(.config, "\(f.name): not encrypted to this box (age could not decrypt it)"))
                continue
            }
            out.append((String(f.name.dropLast(4)), r.output))
        }
        return out
    }

    /// The building folder to read: the box's own, or for a fresh box the one bundle that adopts it.
    func chooseBuilding(_ stick: any StickSource) throws(ProvisionError) -> String {
        if let b = identity.building { return b }
        var candidates: [String] = []
        for name in try stick.directories(in: "HALLWATCH").prefix(256)
        where BundleManifest.isID(name) && name != "keyring" && name != "receipts" {
            var scratch = ProvisionOutcome(
                result: .refused, reasons: [], building: name, manifest: nil, signerKeyID: nil, versionBefore: 0,
                versionAfter: 0)
            guard let m = try? verifiedManifest(stick: stick, building: name, outcome: &scratch).manifest else {
                continue
            }
            switch m.boxes {
            case .adopt: candidates.append(name)
            case .serials(let s) where s.contains(identity.serial): candidates.append(name)
            default: continue
            }
        }
        guard candidates.count <= 1 else {
            throw ProvisionError(
                .ambiguous, "\(candidates.count) bundles could adopt this box: \(candidates.joined(separator: ", "))")
        }
        guard let only = candidates.first else {
            throw ProvisionError(.noBundle, "no verified bundle on the stick adopts this fresh box")
        }
        return only
    }

    private func verifiedManifest(stick: any StickSource, building: String, outcome: inout ProvisionOutcome)
        throws(ProvisionError) -> (manifest: BundleManifest, hash: String, signer: Minisign.PublicKey)
    {
        let dir = "HALLWATCH/\(building)"
        let text = try stick.read(dir + "/bundle.txt", maxBytes: BundleManifest.maxBytes + 1)
        guard !text.isEmpty else { throw ProvisionError(.noBundle, "no \(dir)/bundle.txt on the stick") }
        guard text.count <= BundleManifest.maxBytes else {
            throw ProvisionError(.manifest, "bundle.txt is larger than \(BundleManifest.maxBytes) bytes")
        }
        let sigBytes = try stick.read(dir + "/bundle.txt.minisig", maxBytes: Minisign.Signature.maxBytes + 1)
        guard !sigBytes.isEmpty else { throw ProvisionError(.signature, "no \(dir)/bundle.txt.minisig") }
        // Verify the copy in memory first, then parse only what verified.
        let signature = try Minisign.Signature(bytes: sigBytes)
        let signer = try Minisign.verify(signature, of: text, keys: keyring.keys)
        outcome.signerKeyID = signer.keyIDText
        let manifest = try BundleManifest.parse(text)
        return (manifest, hex(Sodium.sha256(text)), signer)
    }

    /// Reads, verifies, parses and checks the bundle of `building`, then copies and validates its files.
    /// Sets `outcome.result = .alreadyApplied` (and returns) for a replug of the current bundle.
    /// - Throws: the first error; when several checks fail at once they are all in `outcome.reasons`.
    public func check(stick: any StickSource, building: String, outcome: inout ProvisionOutcome)
        throws(ProvisionError) -> Checked
    {
        let (manifest, hash, signer) = try verifiedManifest(stick: stick, building: building, outcome: &outcome)
        outcome.manifest = manifest
        var reasons: [ProvisionError] = []
        if let entry = keyring.entries.first(where: { $0.key == signer }) {
            if !entry.covers(manifest.building) {
                reasons.append(
                    ProvisionError(
                        .unknownKey, "key \(signer.keyIDText) may sign for \(entry.pattern), not \(manifest.building)"))
            }
            if timeFloorUnix >= entry.expiresUnix {
                reasons.append(
                    ProvisionError(
                        .expired,
                        "key \(signer.keyIDText) expired at \(BundleManifest.formatRFC3339(entry.expiresUnix))"))
            }
        }
        if let d = identity.district, d != manifest.district {
            reasons.append(ProvisionError(.otherBox, "the bundle is for district \(manifest.district), not \(d)"))
        }
        if manifest.building != building || (identity.building.map { $0 != manifest.building } ?? false) {
            reasons.append(
                ProvisionError(.otherBox, "the bundle names building \(manifest.building), not \(building)"))
        }
        switch manifest.boxes {
        case .any:
            if identity.building == nil { reasons.append(ProvisionError(.otherBox, "a fresh box takes only adopt")) }
        case .adopt:
            if identity.building != nil {
                reasons.append(ProvisionError(.otherBox, "adopt bundles are for fresh boxes only"))
            }
        case .serials(let s):
            if !s.contains(identity.serial) {
                reasons.append(ProvisionError(.otherBox, "the bundle does not name box \(identity.serial)"))
            }
        }
        if manifest.keyringVersion > keyring.version {
            reasons.append(
                ProvisionError(
                    .keyring, "the bundle needs keyring \(manifest.keyringVersion); the box has \(keyring.version)"))
        }
        let now = timeFloorUnix
        if now >= manifest.expiresUnix {
            reasons.append(
                ProvisionError(
                    .expired,
                    "expired at \(BundleManifest.formatRFC3339(manifest.expiresUnix)); the box's time floor is "
                        + BundleManifest.formatRFC3339(now)))
        }
        let state = store.state()
        if manifest.version < state.versionFloor
            || (manifest.version == state.versionFloor && hash != state.bundleHash && state.versionFloor > 0)
        {
            reasons.append(
                ProvisionError(
                    .replay, "version \(manifest.version) is not above the applied version \(state.versionFloor)"))
        }
        if !manifest.files.contains(where: { $0.name == "hallwatch.yaml" }) {
            reasons.append(ProvisionError(.manifest, "the bundle lists no hallwatch.yaml"))
        }
        guard reasons.isEmpty else {
            outcome.reasons = reasons
            throw reasons[0]
        }
        if manifest.version == state.versionFloor, hash == state.bundleHash {
            outcome.result = .alreadyApplied
            return Checked(manifest: manifest, bundleHash: hash, signer: signer, files: [], config: nil)
        }
        // Copy each listed file (never an unlisted one): at most size + 1 bytes, exact size and SHA-256.
        var files: [(name: String, bytes: [UInt8])] = []
        for f in manifest.files {
            let bytes = try stick.read("HALLWATCH/\(building)/files/\(f.name)", maxBytes: f.sizeBytes + 1)
            guard bytes.count == f.sizeBytes else {
                reasons.append(
                    ProvisionError(
                        .file,
                        "\(f.name): \(bytes.count > f.sizeBytes ? "longer than" : "missing or shorter than") "
                            + "its \(f.sizeBytes) bytes"))
                continue
            }
            guard Sodium.sha256(bytes) == f.sha256 else {
                reasons.append(ProvisionError(.file, "\(f.name): its SHA-256 is not the signed one"))
                continue
            }
            files.append((f.name, bytes))
        }
        for f in files {
            if let why = ImageCheck.problem(name: f.name, bytes: f.bytes) {
                reasons.append(ProvisionError(.config, why))
            }
        }
        files = try decryptSecrets(files, reasons: &reasons, outcome: &outcome)
        var parsed: HallwatchConfig?
        if let yaml = files.first(where: { $0.name == "hallwatch.yaml" }) {
            guard let text = String(validating: yaml.bytes, as: UTF8.self), !text.contains("\0") else {
                reasons.append(ProvisionError(.config, "hallwatch.yaml is not UTF-8 text"))
                outcome.reasons = reasons
                throw reasons[0]
            }
            do { parsed = try ConfigLoader.parse(text, file: "hallwatch.yaml") } catch let e as ConfigError {
                reasons += e.diagnostics.map { ProvisionError(.config, $0.description) }
            } catch { reasons.append(ProvisionError(.config, "hallwatch.yaml: \(error)")) }
        }
        guard reasons.isEmpty else {
            outcome.reasons = reasons
            throw reasons[0]
        }
        return Checked(manifest: manifest, bundleHash: hash, signer: signer, files: files, config: parsed)
    }
}
