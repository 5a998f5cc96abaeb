#!/usr/bin/env bash
# Makes the benchmark's camera streams once: the real 1080p clip (bigbuckbunny, from `make clips`) encoded
# with x264 at fixed bitrates the way an IP camera sends it — 1920x1080, 25 fps, one keyframe per second (or every G s),
# no B-frames, constant bitrate (nal-hrd=cbr pads with filler so the rate holds on easy scenes).
#
# Usage: [GOPS="1 2 4"] Tests/Bench/make-inputs.sh MEDIA_DIR [MBITS...]     (default MBITS: 2 4 8, GOPS: 1)
# Writes MEDIA_DIR/bench-<M>M.mp4 for each (GOP 1 s), bench-<M>M-g<G>s.mp4 for another GOP of G seconds; a file already present is left alone (cached); each is written
# under a temporary name and moved into place, so an interrupted run never leaves half a clip.
set -euo pipefail
dir=${1:?usage: make-inputs.sh MEDIA_DIR [MBITS...]}; shift
rates=("$@"); [ ${#rates[@]} -gt 0 ] || rates=(2 4 8)
src="$dir/h264-aac.mp4"
[ -s "$src" ] || { echo "make-inputs: $src missing (run make clips)" >&2; exit 1; }
trap 'rm -f "$dir"/.tmp-$$-*' EXIT
for m in "${rates[@]}"; do for g in ${GOPS:-1}; do
  name="bench-${m}M"; [ "$g" = 1 ] || name="bench-${m}M-g${g}s"
  out="$dir/$name.mp4"
  [ -s "$out" ] && continue
  # Loop the 5.28 s clip three times so a camera's loop is ~16 s (fewer loop boundaries in a window).
  ffmpeg -nostdin -hide_banner -loglevel error -y -stream_loop 2 -i "$src" \
    -map 0:v:0 -an -vf "scale=1920:1080:flags=bicubic,fps=25" -c:v libx264 -preset veryfast \
    -profile:v high -pix_fmt yuv420p -bf 0 -g $((25 * g)) -keyint_min $((25 * g)) -sc_threshold 0 \
    -b:v "${m}M" -minrate "${m}M" -maxrate "${m}M" -bufsize "${m}M" -x264-params nal-hrd=cbr:log-level=error \
    -movflags +faststart -f mp4 "$dir/.tmp-$$-$name.mp4"
  mv -f "$dir/.tmp-$$-$name.mp4" "$out"
  echo "make-inputs: $out ($(ffprobe -v error -show_entries format=bit_rate,duration -of csv=p=0 "$out"))" >&2
done; done
