#!/usr/bin/env bash
# Builds the Hallwatch appliance: a bootable x86-64 UEFI disk image of Debian 12 (README § Appliance image).
#
#   Image/build-image.sh [--bin DIR] [--out DIR]                 the whole image (root, ESP, data) → OUT/hallwatch.img
#   Image/build-image.sh --assemble-only [--config DIR] [--ssh-key FILE.pub] [--keyring DIR] [--out DIR] [--disk FILE]
#                                                                 a new data partition from the last build's
#                                                                 root and ESP (the VM test's own box)
#
# Tools from Debian only, nothing mounted by the kernel (this recipe runs where vfat cannot be mounted):
#   1. mmdebstrap (minbase, bookworm + updates + security) installs Image/appliance/packages.txt;
#   2. the customize step adds the release binaries, the Swift runtime they link, Systemd/ units, the overlay
#      Image/appliance/rootfs/, users (sysusers.d), enables and masks units, rebuilds the initramfs;
#   3. /var moves out of the tree: it seeds the data partition (ext4 made by mkfs.ext4 -d, label hallwatch-data);
#   4. the rest becomes the read-only root (mkfs.erofs, lz4hc);
#   5. the ESP is a FAT image made by mkfs.vfat and filled by mcopy (systemd-boot, loader entry, kernel, initrd);
#   6. systemd-repart lays the partitions out from Image/appliance/repart.d/ with CopyBlocks= (ESP, root A,
#      root B empty, data).
# The root carries RAUC's keyring: the district's update certificate (HALLWATCH_UPDATE_CERT), or, when none is
# given, a development certificate made once under OUT/keys/ (Image/update-bundle.sh signs with its key).
# Needs root (mmdebstrap's root mode, file owners in the data partition) and deb.debian.org.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
appliance=$here/appliance
bin=$repo/.build/release
out=$repo/.image
assemble_only=false
config_dir=$appliance/etc-hallwatch
ssh_key=""
keyring=${HALLWATCH_KEYRING:-}
disk=""
customize_tree=""
say() { printf '%s [image] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# The binaries the box runs (hallwatch-simcam and hallwatch-loadgen are test tools and stay out).
binaries=(hallwatch-capture hallwatch-recorder hallwatch-pruner hallwatch-discovery hallwatch-web hallwatch-provision
  hallwatchctl hallwatch-generator)
root_uuid=$(sed -n 's/^UUID=//p' "$appliance/repart.d/20-root-a.conf")
update_cert=${HALLWATCH_UPDATE_CERT:-}

# The update certificate RAUC trusts. Without HALLWATCH_UPDATE_CERT a development key pair is made once with
# openssl (RSA 4096, self-signed, 10 years) beside the image: fine for a test VM, never for a district's boxes.
ensure_update_cert() {
  [ -n "$update_cert" ] && return 0
  update_cert=$out/keys/update.cert.pem
  [ -f "$update_cert" ] && return 0
  say "no HALLWATCH_UPDATE_CERT: a development update key in $out/keys/ (not for real boxes)"
  install -d -m 0700 "$out/keys"
  openssl req -x509 -newkey rsa:4096 -nodes -days 3650 -subj "/O=Hallwatch development/CN=hallwatch-update-dev" \
    -keyout "$out/keys/update.key.pem" -out "$update_cert" 2>/dev/null
}

build_root() {
  for b in "${binaries[@]}"; do [ -x "$bin/$b" ] || { echo "missing $bin/$b (make image builds them)" >&2; exit 66; }; done
  local base=$work/base tree=$work/tree stamp
  # The Debian part (packages, overlay, units, users) is rebuilt only when its inputs change.
  stamp=$(cat "$appliance/packages.txt" "$here/build-image.sh" "$repo"/Systemd/*.service "$repo"/Systemd/*.target "$repo"/Systemd/*.path \
    "$repo/Image/udev/"* "$repo"/Hardware/udev/* $(find "$appliance/rootfs" -type f | sort) | sha256sum | cut -c1-16)
  if [ "$(cat "$base.stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$base" "$base.stamp"
    mapfile -t pkgs < <(grep -v '^\s*#' "$appliance/packages.txt" | grep -v '^\s*$')
    say "mmdebstrap: ${#pkgs[@]} packages"
    # Documentation, manuals and translations are dropped at unpack time (a box has no one to read them).
    mmdebstrap --mode=root --variant=minbase --components=main --include="$(IFS=,; echo "${pkgs[*]}")" \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      --customize-hook="'$here/build-image.sh' --customize \"\$1\"" \
      bookworm "$base" \
      "deb http://deb.debian.org/debian bookworm main" \
      "deb http://deb.debian.org/debian bookworm-updates main" \
      "deb http://deb.debian.org/debian-security bookworm-security main"
    echo "$stamp" > "$base.stamp"
  else
    say "Debian tree unchanged ($stamp): reused"
  fi
  rm -rf "$tree" "$work/var"
  cp -a "$base" "$tree"

  ensure_update_cert
  say "RAUC keyring: $update_cert"
  install -m 0644 "$update_cert" "$tree/etc/rauc/keyring.pem"

  say "the Hallwatch binaries from $bin"
  install -m 0755 -t "$tree/usr/bin" $(printf "$bin/%s " "${binaries[@]}")
  # Without their symbols the binaries are a fifth of the size (a crash's backtrace keeps function names).
  strip --strip-debug $(printf "$tree/usr/bin/%s " "${binaries[@]}")
  mv "$tree/usr/bin/hallwatch-generator" "$tree/usr/lib/systemd/system-generators/hallwatch-generator"
  # The Swift runtime libraries the binaries link (ldd); none when built with --static-swift-stdlib.
  local lib
  for lib in $(ldd $(printf "$bin/%s " "${binaries[@]}") | awk '/=> \/opt\/swift|=> .*\/swift\/linux\//{print $3}' |
    sort -u); do
    install -m 0644 "$lib" "$tree/usr/lib/hallwatch/swift/"
  done
  ldconfig -r "$tree"
  # Every shared library a binary needs is in the tree (a package missing from packages.txt would otherwise
  # show only on the box, as units failing with status 127).
  local needed missing=()
  for needed in $(for b in "${binaries[@]}"; do readelf -d "$bin/$b" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'; done |
    sort -u); do
    [ -n "$(find "$tree/usr/lib" "$tree/lib" -name "$needed" -print -quit 2>/dev/null)" ] || missing+=("$needed")
  done
  [ ${#missing[@]} -eq 0 ] || { echo "the image lacks ${missing[*]}: add its package to $appliance/packages.txt" >&2; exit 1; }

  say "kernel and initramfs for the ESP"
  local kernel initrd
  kernel=$(ls "$tree"/boot/vmlinuz-* | sort -V | tail -1)
  initrd=$(ls "$tree"/boot/initrd.img-* | sort -V | tail -1)
  cp "$kernel" "$work/vmlinuz"
  cp "$initrd" "$work/initrd.img"

  say "data partition seed: the image's /var"
  mv "$tree/var" "$work/var"
  mkdir -m 0755 "$tree/var"

  say "root: mkfs.erofs"
  rm -f "$work/root.erofs"
  mkfs.erofs -zlz4hc "$work/root.erofs" "$tree" >/dev/null
  rm -rf "$tree"

  say "ESP: mkfs.vfat + mcopy"
  local esp=$work/esp.vfat
  rm -f "$esp"
  mkfs.vfat -C -F 32 -n ESP "$esp" $((256 * 1024)) >/dev/null
  local m="-i $esp"
  mmd $m ::/EFI ::/EFI/BOOT ::/EFI/systemd ::/loader ::/loader/entries ::/a ::/b
  mcopy $m /usr/lib/systemd/boot/efi/systemd-bootx64.efi ::/EFI/BOOT/BOOTX64.EFI
  mcopy $m /usr/lib/systemd/boot/efi/systemd-bootx64.efi ::/EFI/systemd/systemd-bootx64.efi
  mcopy $m "$work/vmlinuz" ::/a/vmlinuz
  mcopy $m "$work/initrd.img" ::/a/initrd.img
  printf 'timeout 0\ndefault hallwatch-*\neditor no\nconsole-mode keep\n' > "$work/loader.conf"
  mcopy $m "$work/loader.conf" ::/loader/loader.conf
  # Boot counting (systemd-boot): +3 tries; systemd-bless-boot marks the entry good at boot-complete.target.
  # Entries are hallwatch-GEN-SLOT: the A/B scheme of /usr/lib/hallwatch/rauc-bootloader (RAUC's backend), whose
  # set-primary writes the other slot's entry from this one's options.
  cat > "$work/hallwatch-a.conf" <<EOF
title Hallwatch (slot A)
linux /a/vmlinuz
initrd /a/initrd.img
options root=PARTUUID=$root_uuid rootfstype=erofs ro console=ttyS0,115200 panic=5 loglevel=4 systemd.show_status=auto
EOF
  mcopy $m "$work/hallwatch-a.conf" "::/loader/entries/hallwatch-1-a+3.conf"
}

# Runs inside mmdebstrap's customize hook: $1 is the tree (proc, sys, dev mounted there by mmdebstrap).
customize() {
  local tree=$1
  set -x
  cp -a --no-preserve=ownership "$appliance/rootfs/." "$tree/"
  install -d "$tree/usr/lib/systemd/system-generators" "$tree/usr/lib/hallwatch/swift"
  echo /usr/lib/hallwatch/swift > "$tree/etc/ld.so.conf.d/hallwatch-swift.conf"
  install -m 0644 -t "$tree/usr/lib/systemd/system" "$repo"/Systemd/*.service "$repo"/Systemd/*.target "$repo"/Systemd/*.path
  install -d "$tree/usr/share/doc/hallwatch/Systemd"
  install -m 0644 "$repo/Systemd/README.md" "$tree/usr/share/doc/hallwatch/Systemd/README.md"
  install -m 0644 "$repo/Image/udev/90-hallwatch-usb.rules" "$repo"/Hardware/udev/*.rules "$tree/etc/udev/rules.d/"
  # Users and groups (fixed ids), then the root account locked: no password login anywhere, no default user.
  chroot "$tree" systemd-sysusers
  chroot "$tree" usermod -p '!*' root
  # Units: the box, its identity, the network; Debian's own mosquitto (TCP 1883) never runs.
  chroot "$tree" systemctl enable hallwatch.target hallwatch-bus.service hallwatch-recorder.service \
    hallwatch-pruner.service hallwatch-web.service hallwatch-identity.service hallwatch-boot-health.service \
    hallwatch-provision.service hallwatch-config.path systemd-networkd.service usbguard.service ssh.service
  chroot "$tree" systemctl mask mosquitto.service ctrl-alt-del.target getty@.service serial-getty@.service \
    console-getty.service autovt@.service getty-static.service systemd-networkd-wait-online.service \
    apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service
  chroot "$tree" systemctl set-default multi-user.target
  # No SSH host keys in the image: each box makes its own on first boot (hallwatch-identity.service).
  rm -f "$tree"/etc/ssh/ssh_host_*
  # The box's id is not the image's: an empty machine-id the initramfs bind-mounts the data partition's over.
  : > "$tree/etc/machine-id"
  rm -f "$tree/var/lib/dbus/machine-id"
  echo hallwatch > "$tree/etc/hostname"
  install -d -m 0755 "$tree/etc/hallwatch" "$tree/efi"
  chmod 0600 "$tree/etc/usbguard/rules.conf"
  # The read-only root needs the EROFS driver in the initramfs (it is a module in Debian's kernel).
  printf 'erofs\next4\n' >> "$tree/etc/initramfs-tools/modules"
  chroot "$tree" update-initramfs -u -k all
  rm -rf "$tree"/var/lib/apt/lists/* "$tree"/var/cache/apt/*.bin "$tree"/var/cache/apt/archives/*.deb
}

assemble() {
  for f in root.erofs esp.vfat; do
    [ -f "$work/$f" ] || { echo "no $work/$f: run Image/build-image.sh (make image) first" >&2; exit 66; }
  done
  say "data partition: mkfs.ext4 -d (config from $config_dir)"
  local data=$work/data
  rm -rf "$data" "$work/data.ext4"
  cp -a "$work/var" "$data"
  install -d -m 0750 -g 900 "$data/etc/hallwatch"
  local f
  for f in "$config_dir"/*.yaml; do
    [ "$(basename "$f")" = hallwatch.yaml ] || install -m 0640 -g 900 "$f" "$data/etc/hallwatch/"
  done
  install -m 0640 -g 900 "$repo/Image/mosquitto.conf.template" "$data/etc/hallwatch/mosquitto.conf"
  install -d -m 0770 -g 900 "$data/lib/hallwatch"
  # The configuration store (HallwatchProvision's ConfigStore, README § USB config drop): the factory
  # hallwatch.yaml is its first release, so every process reads through `current` from the first boot, a USB
  # bundle's health gate can always revert to something, and the version floor starts at 0. The directories are
  # setgid hallwatch: releases the provisioner (root) writes later stay readable by the box's processes.
  local store=$data/lib/hallwatch/config
  install -d -m 2750 -g 900 "$store" "$store/releases" "$store/releases/factory"
  install -m 0640 -g 900 "$config_dir/hallwatch.yaml" "$store/releases/factory/hallwatch.yaml"
  ln -s releases/factory "$store/current"
  printf '{"bundleHash":"","release":"factory","timeFloorUnix":%s,"versionFloor":0}\n' "$(date +%s)" \
    > "$store/state.json"
  chgrp 900 "$store/state.json"
  ln -s /var/lib/hallwatch/config/current/hallwatch.yaml "$data/etc/hallwatch/hallwatch.yaml"
  # The district's keyring for USB bundles (HALLWATCH_KEYRING: root keys, keyring version); without one the
  # provisioner does not start (its unit's condition) and the box takes no USB configuration.
  if [ -n "$keyring" ]; then
    install -d -m 0750 -g 900 "$data/etc/hallwatch/keyring"
    install -m 0640 -g 900 "$keyring"/* "$data/etc/hallwatch/keyring/"
  fi
  if [ -n "$ssh_key" ]; then
    install -d -m 0700 "$data/etc/hallwatch/ssh"
    install -m 0600 "$ssh_key" "$data/etc/hallwatch/ssh/authorized_keys"
  fi
  mkfs.ext4 -q -L hallwatch-data -d "$data" "$work/data.ext4" 1G
  rm -rf "$data"

  say "disk: systemd-repart"
  local defs=$work/repart.d
  rm -rf "$defs" && mkdir -p "$defs"
  for f in "$appliance"/repart.d/*.conf; do sed "s|@WORK@|$work|g" "$f" > "$defs/$(basename "$f")"; done
  rm -f "$disk"
  systemd-repart --empty=create --size=auto --definitions="$defs" --dry-run=no --no-pager "$disk" >/dev/null
  say "done: $disk ($(du -h --apparent-size "$disk" | cut -f1) sparse, $(du -h "$disk" | cut -f1) allocated)"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --assemble-only) assemble_only=true; shift ;;
    --config) config_dir=$2; shift 2 ;;
    --ssh-key) ssh_key=$2; shift 2 ;;
    --keyring) keyring=$2; shift 2 ;;
    --disk) disk=$2; shift 2 ;;
    --customize) customize_tree=$2; shift 2 ;;
    *) echo "build-image.sh: unknown argument $1" >&2; exit 64 ;;
  esac
done
if [ -n "$customize_tree" ]; then customize "$customize_tree"; exit 0; fi
[ "$(id -u)" -eq 0 ] || { echo "build-image.sh: run as root (mmdebstrap root mode, file owners)" >&2; exit 77; }
work=$out/work
disk=${disk:-$out/hallwatch.img}
mkdir -p "$work"
start=$(date +%s)
$assemble_only || build_root
assemble
say "$(($(date +%s) - start)) s"
