#!/usr/bin/env bash
# Builds a RAUC 1.8 update bundle (verity format) of the last `make image`: the read-only root (EROFS) for the
# box's inactive slot, with the kernel and initrd that go beside it on the ESP (README § Updates).
#
#   Image/update-bundle.sh [--out DIR] [--version V] [--bundle FILE] [--unbootable]
#
# Signed with HALLWATCH_UPDATE_KEY / HALLWATCH_UPDATE_CERT (the district's; the certificate must chain to the
# keyring baked into its boxes' images), or by default with the development key `make image` made in OUT/keys/.
# --unbootable puts a root that cannot be mounted in the bundle (zeros): the VM test's proof that a system that
# does not boot falls back to the previous slot by itself. Needs rauc and squashfs-tools (Debian).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
out=$repo/.image
version=""
bundle=""
unbootable=false
say() { printf '%s [bundle] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --bundle) bundle=$2; shift 2 ;;
    --unbootable) unbootable=true; shift ;;
    *) echo "update-bundle.sh: unknown argument $1" >&2; exit 64 ;;
  esac
done
work=$out/work
key=${HALLWATCH_UPDATE_KEY:-$out/keys/update.key.pem}
cert=${HALLWATCH_UPDATE_CERT:-$out/keys/update.cert.pem}
for f in "$work/root.erofs" "$work/vmlinuz" "$work/initrd.img"; do
  [ -f "$f" ] || { echo "no $f: run make image first" >&2; exit 66; }
done
[ -f "$key" ] && [ -f "$cert" ] || { echo "no signing key ($key, $cert): set HALLWATCH_UPDATE_KEY/CERT" >&2; exit 66; }
version=${version:-$(git -C "$repo" describe --always --dirty 2>/dev/null || date -u +%Y%m%d%H%M%S)}
bundle=${bundle:-$out/hallwatch-$version.raucb}

content=$work/bundle
rm -rf "$content" && mkdir -p "$content"
if $unbootable; then
  say "an unbootable root (4 MiB of zeros): for the fallback test only"
  head -c $((4 << 20)) /dev/zero > "$content/root.img"
else
  # RAUC writes raw slots from an image named .img (it refuses .erofs); a hard link costs no copy.
  ln "$work/root.erofs" "$content/root.img" 2>/dev/null || cp "$work/root.erofs" "$content/root.img"
fi
cp "$work/vmlinuz" "$work/initrd.img" "$content/"
# The slot's post-install hook puts the kernel and initrd on the ESP under the slot's bootname (/efi/a or /efi/b),
# before RAUC makes the slot primary (rauc-bootloader set-primary then writes its loader entry).
cat > "$content/hook.sh" <<'HOOK'
#!/bin/sh
set -eu
case "$1" in
  slot-post-install)
    [ "$RAUC_SLOT_CLASS" = rootfs ] || exit 0
    here=$(dirname "$0")
    dir=/efi/$RAUC_SLOT_BOOTNAME
    mkdir -p "$dir"
    for f in vmlinuz initrd.img; do
      cp "$here/$f" "$dir/.$f.new"
      sync -f "$dir"
      mv "$dir/.$f.new" "$dir/$f"
    done
    sync -f "$dir"
    ;;
esac
HOOK
chmod 0755 "$content/hook.sh"
cat > "$content/manifest.raucm" <<EOF
[update]
compatible=hallwatch-x86-64
version=$version
description=Hallwatch $version

[bundle]
format=verity

[hooks]
filename=hook.sh

[image.rootfs]
filename=root.img
hooks=post-install
EOF
rm -f "$bundle"
say "rauc bundle $version → $bundle"
rauc bundle --cert="$cert" --key="$key" "$content" "$bundle" > "$work/rauc-bundle.log" 2>&1 ||
  { cat "$work/rauc-bundle.log" >&2; exit 1; }
rm -rf "$content"
say "done: $bundle ($(du -h "$bundle" | cut -f1))"
