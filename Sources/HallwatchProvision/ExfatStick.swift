import Foundation

/// An exFAT volume read through exfat-fuse in a private mount namespace: the kernel's own exFAT driver never
/// parses the stick (these machines have none), and the FUSE mount exists only inside the helper.
///
/// Each operation is one helper run (inside ``ReaderSandbox``): `unshare --mount --propagation private`, an
/// image file or partition offset attached read-only with `losetup -r -o`, `mount.exfat-fuse -o
/// ro,nosuid,nodev,noexec`, then a bind-remount adding `noexec` (exfat-fuse 1.3.0 silently drops it) and
/// `nosymfollow`, and the flags re-read from `/proc/self/mountinfo`: any flag missing and nothing is read.
/// Only regular files that are not symlinks are read, at most the bytes asked for. The mount and loop
/// device are removed when the helper exits (a helper killed at its deadline can leave its loop device).
public struct ExfatStick: StickSource {
    /// The device, the volume's offset in it and the helper's sandbox.
    public var location: VolumeLocation

    /// A reader of the exFAT volume at `location`.
    public init(_ location: VolumeLocation) { self.location = location }

    /// The helper script: `$1` device, `$2` offset, `$3` op (read, list, files, create), `$4` path, `$5` max bytes or
    /// the local source file. Exit 90: a mount flag is missing; 91: not mounted within 5 s. It is
    /// ``mountScript`` then ``checkedOperations``.
    static let script = mountScript + checkedOperations

    /// Mounts the exFAT volume with exfat-fuse at a fresh `$mnt` (removed, with its loop device, on exit) and
    /// sets `$opts` and `$want` (the flags the mount must show).
    static let mountScript = #"""
        set -eu
        dev=$1 off=$2 op=$3 p=$4 arg=$5
        mnt=$(mktemp -d /tmp/hw-exfat.XXXXXX)
        loop= fuse=
        cleanup() {
            umount "$mnt" 2>/dev/null || true; [ -z "$fuse" ] || wait "$fuse" || true
            [ -z "$loop" ] || losetup -d "$loop"; rmdir "$mnt"
        }
        trap cleanup EXIT
        mounted() { awk -v m="$mnt" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo; }
        ro=-r; opts=ro,nosuid,nodev,noexec; want="ro nosuid nodev noexec nosymfollow"
        if [ "$op" = create ]; then ro=; opts=nosuid,nodev,noexec; want="nosuid nodev noexec nosymfollow"; fi
        if [ ! -b "$dev" ] || [ "$off" != 0 ]; then loop=$(losetup $ro -o "$off" -f --show "$dev"); dev=$loop; fi
        # -d keeps the FUSE daemon in the foreground, a child of this shell (reaped here, killed with the group).
        mount.exfat-fuse -d -o "$opts" "$dev" "$mnt" >/dev/null 2>&1 &
        fuse=$!
        i=0; until mounted; do i=$((i + 1)); [ $i -lt 250 ] || exit 91; sleep 0.02; done

        """#

    /// On whatever is mounted at `$mnt`: the bind-remount adding `$opts` and `nosymfollow`, every flag of
    /// `$want` re-read from `/proc/self/mountinfo` (exit 90 when one is missing), then the operation `$op` on
    /// `$p` — regular files that are not symlinks only: a symlink, FIFO, device node or directory where a file
    /// is named reads as nothing (the caller's exact size and SHA-256 then refuse it) and is never listed.
    /// Kept apart from the exFAT mount so a tmpfs fixture holding such entries runs the very same checks
    /// (exFAT itself cannot store them; a hostile FUSE daemon or a future reader could present them).
    static let checkedOperations = #"""
        mount -o "remount,bind,$opts,nosymfollow" "$mnt"
        flags=$(awk -v m="$mnt" '$5 == m { print $6 }' /proc/self/mountinfo)
        for f in $want; do case ",$flags," in *",$f,"*) ;; *) exit 90 ;; esac; done
        case $op in
        read) if [ -f "$mnt/$p" ] && [ ! -L "$mnt/$p" ]; then head -c "$arg" -- "$mnt/$p"; fi ;;
        list) for d in "$mnt/$p"/*/; do if [ -d "$d" ] && [ ! -L "${d%/}" ]; then basename -- "$d"; fi; done ;;
        files) for f in "$mnt/$p"/*; do if [ -f "$f" ] && [ ! -L "$f" ]; then basename -- "$f"; fi; done ;;
        create) mkdir -p -- "$(dirname -- "$mnt/$p")"; set -C; cat -- "$arg" > "$mnt/$p"; sync ;;
        esac
        """#

    private func run(_ op: String, _ path: String, _ arg: String, maxOutputBytes: Int) throws(ProvisionError)
        -> Helper.Result
    {
        let r = try Helper.run(
            location.sandbox.prefix + [
                "/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", Self.script, "sh",
                location.device, String(location.offsetBytes), op, path, arg,
            ], sandbox: location.sandbox, maxOutputBytes: maxOutputBytes)
        if r.status == 90 {
            throw ProvisionError(.reader, "the exFAT mount lacked ro, nosuid, nodev, noexec or nosymfollow")
        }
        if r.status == 91 { throw ProvisionError(.reader, "exfat-fuse did not mount the volume") }
        return r
    }

    public func read(_ path: String, maxBytes: Int) throws(ProvisionError) -> [UInt8] {
        try run("read", path, String(maxBytes), maxOutputBytes: maxBytes).output
    }

    public func directories(in path: String) throws(ProvisionError) -> [String] {
        String(decoding: try run("list", path, "0", maxOutputBytes: 1 << 20).output, as: UTF8.self)
            .split(separator: "\n").map(String.init)
    }

    public func files(in path: String) throws(ProvisionError) -> [String] {
        String(decoding: try run("files", path, "0", maxOutputBytes: 1 << 20).output, as: UTF8.self)
            .split(separator: "\n").map(String.init)
    }

    public func create(_ path: String, contents: [UInt8]) throws(ProvisionError) {
        let r = try location.withTemporaryCopy(contents) { (local) throws(ProvisionError) in
            try run("create", path, local, maxOutputBytes: 4096)
        }
        guard r.status == 0, (try? read(path, maxBytes: contents.count + 1)) == contents else {
            throw ProvisionError(.receipt, "\(path) could not be written to the exFAT stick (exit \(r.status))")
        }
    }
}
