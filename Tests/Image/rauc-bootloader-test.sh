#!/usr/bin/env bash
# The appliance's RAUC backend (Image/appliance/rootfs/usr/lib/hallwatch/rauc-bootloader) on a directory of
# loader entries, offline: an update installed into slot B, three failed boots of B, the fall back to A, a
# second update, and the answers RAUC reads. Which entry systemd-boot would boot is worked out the way
# systemd-boot sorts (entries out of tries last, then by id, highest version first); `make image-test` boots it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
backend=$repo/Image/appliance/rootfs/usr/lib/hallwatch/rauc-bootloader
export HALLWATCH_LOADER_ENTRIES=$(mktemp -d)
trap 'rm -rf "$HALLWATCH_LOADER_ENTRIES"' EXIT
e=$HALLWATCH_LOADER_ENTRIES
failures=0
expect() { # expect WHAT GOT WANT
  if [ "$2" = "$3" ]; then echo "ok   $1: $2"; else echo "FAIL $1: got '$2', want '$3'"; failures=$((failures + 1)); fi
}
# The slot systemd-boot boots with `default hallwatch-*`: the first entry in its order.
booted() {
  local good bad
  good=$(ls "$e" | grep -v '+0' | sed -E 's/(\+[0-9]+(-[0-9]+)?)?\.conf$//' | sort -V -r | head -n 1)
  bad=$(ls "$e" | grep '+0' | sed -E 's/(\+[0-9]+(-[0-9]+)?)?\.conf$//' | sort -V -r | head -n 1)
  echo "${good:-$bad}" | sed -E 's/^hallwatch-[0-9]+-//'
}
# One boot of the entry systemd-boot picks that does not reach boot-complete.target: a try spent.
failed_boot() {
  local f left done
  f=$(ls "$e" | grep -E "^hallwatch-[0-9]+-$(booted)\+" | head -n 1) || return 0
  left=$(echo "$f" | sed -E 's/.*\+([0-9]+).*/\1/')
  done=$(echo "$f" | sed -nE 's/.*\+[0-9]+-([0-9]+)\.conf$/\1/p')
  [ "$left" -gt 0 ] || return 0
  mv "$e/$f" "$e/$(echo "$f" | sed -E 's/\+[0-9]+(-[0-9]+)?\.conf$//')+$((left - 1))-$((${done:-0} + 1)).conf"
}
# systemd-bless-boot at boot-complete.target: the counter removed.
blessed_boot() {
  local f
  f=$(ls "$e" | grep -E "^hallwatch-[0-9]+-$(booted)" | head -n 1)
  mv "$e/$f" "$e/$(echo "$f" | sed -E 's/(\+[0-9]+(-[0-9]+)?)?\.conf$//').conf"
}

# A new image: slot A only, three tries.
printf 'title Hallwatch (slot A)\nlinux /a/vmlinuz\ninitrd /a/initrd.img\noptions root=PARTUUID=8c4b1f7e-2d9a-4f63-b1e5-7a3c9d0e6b02 rootfstype=erofs ro panic=5\n' \
  > "$e/hallwatch-1-a+3.conf"
expect "new image: primary" "$("$backend" get-primary)" a
expect "new image: B has no system" "$("$backend" get-state b)" bad
blessed_boot
expect "A blessed" "$(ls "$e")" hallwatch-1-a.conf

# RAUC installs into B: marks it bad, writes it, makes it primary.
"$backend" set-state b bad
"$backend" set-primary b
expect "update: B's entry" "$(ls "$e" | grep -- '-b')" "hallwatch-2-b+3.conf"
expect "update: B's root" "$(sed -n 's/^options //p' "$e/hallwatch-2-b+3.conf")" \
  "root=PARTUUID=3e9d6a2c-7f1b-4c85-8d0a-5b2e4f7c1d03 rootfstype=erofs ro panic=5"
expect "update: B's kernel" "$(sed -n 's/^linux //p' "$e/hallwatch-2-b+3.conf")" /b/vmlinuz
expect "update: primary" "$("$backend" get-primary)" b
expect "update: systemd-boot boots" "$(booted)" b
expect "update: B on trial is not bad" "$("$backend" get-state b)" good

# B never reaches boot-complete.target: three tries, then A again by itself.
failed_boot; expect "1 failed boot of B: next boot" "$(booted)" b
failed_boot; expect "2 failed boots of B: next boot" "$(booted)" b
failed_boot; expect "3 failed boots of B: next boot" "$(booted)" a
expect "fallback: B's entry" "$(ls "$e" | grep -- '-b')" "hallwatch-2-b+0-3.conf"
expect "fallback: B is bad" "$("$backend" get-state b)" bad
expect "fallback: A is good" "$("$backend" get-state a)" good
expect "fallback: primary" "$("$backend" get-primary)" a

# The next update goes into B again and boots well.
"$backend" set-state b bad
"$backend" set-primary b
expect "second update: entries" "$(ls "$e" | tr '\n' ' ')" "hallwatch-1-a.conf hallwatch-3-b+3.conf "
failed_boot
blessed_boot
expect "second update: B blessed" "$(ls "$e" | grep -- '-b')" hallwatch-3-b.conf
expect "second update: boots" "$(booted)" b
"$backend" set-state a good
expect "set-state good keeps a blessed entry" "$(ls "$e" | grep -- '-a')" hallwatch-1-a.conf

# Going back to A by hand (rauc status mark-active other).
"$backend" set-primary a
expect "back to A: entry" "$(ls "$e" | grep -- '-a')" "hallwatch-4-a+3.conf"
expect "back to A: boots" "$(booted)" a

# Refusals: a slot that does not exist, a state that does not exist.
if "$backend" set-primary c 2>/dev/null; then expect "slot c refused" accepted refused; else expect "slot c refused" refused refused; fi
if "$backend" set-state a maybe 2>/dev/null; then expect "state maybe refused" accepted refused; else expect "state maybe refused" refused refused; fi
if "$backend" frobnicate 2>/dev/null; then expect "unknown command refused" accepted refused; else expect "unknown command refused" refused refused; fi

[ "$failures" = 0 ] || { echo "rauc-bootloader: $failures failures"; exit 1; }
echo "rauc-bootloader: all passed"
