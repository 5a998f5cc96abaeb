#!/usr/bin/env bash
# Resident memory of `hallwatchctl export` over one hour of an 8 Mbit/s camera (issue 11 §3: under 150 MB).
# A 10 s 1080p clip encoded at a constant 8 Mbit/s (x264, keyframe every 2 s, cut into keyframe fragments) is
# recorded over and over for 3600 s through the real writer (`hallwatchctl bench-fill --clip`) onto a disk made
# in /var/tmp (about 3.6 GB of records; 4.4 GiB of zero-filled slots), then exported under /usr/bin/time -v.
# The peer is PEER_CTL, a hallwatchctl built before the streaming read path (it read the whole run into
# memory), when given; else ffmpeg remuxing the exported file with +faststart. Prints a markdown row in the
# columns of Tests/Bench/bench.sh's table; then the evidence bundle's MB/s beside sha256sum on the same bytes and
# its max RSS over a tenth of the range and the whole; writes .bench/export.json.
# Usage: Tests/Bench/export.sh [BIN_DIR] [SECONDS]        (PEER_CTL=/path/to/old/hallwatchctl optional)
set -euo pipefail
BIN=${1:-.build/release}; SECONDS_RECORDED=${2:-3600}
work=$(mktemp -d /var/tmp/hw-bench-export-XXXX)
trap 'rm -rf "$work"' EXIT

ffmpeg -v error -f lavfi -i "testsrc2=size=1920x1080:rate=25" -vf "noise=alls=30:allf=t" -t 10 -an \
  -c:v libx264 -preset ultrafast -b:v 8M -minrate 8M -maxrate 8M -bufsize 4M -x264-params nal-hrd=cbr -g 50 \
  -video_track_timescale 90000 -movflags +frag_keyframe+empty_moov+default_base_moof -f mp4 "$work/clip.mp4"
"$BIN/hallwatchctl" bench-fill "$work/disk0" --box bench --clip "$work/clip.mp4" --seconds "$SECONDS_RECORDED" \
  --slots 140 --slot-size $((32 << 20)) >&2
# The fill's own writeback (4.4 GiB of slots, 3.6 GB of records) is done before anything is timed: otherwise the
# exports below share the disk with it and wait on its dirty pages (measured: 251 MB/s with it, see README).
sync
cat > "$work/hw.yaml" <<YAML
box: bench
bus: {socket: $work/bus.sock}
recorder: {disks: [{name: disk0, path: $work/disk0}]}
YAML
maxrss_mb() { sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\)/\1/p' "$1" | awk '{printf "%.0f", $1 / 1024}'; }
wall_s() { sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): \(.*\)/\1/p' "$1" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.0f", s }'; }

/usr/bin/time -v -o "$work/time.txt" "$BIN/hallwatchctl" export --no-audit --config "$work/hw.yaml" --camera bench-0 --from -3h --to now \
  --out "$work/out.mp4" > "$work/export.txt"
ours=$(maxrss_mb "$work/time.txt"); ours_s=$(wall_s "$work/time.txt")
out_bytes=$(stat -c %s "$work/out.mp4")
media=$(sed -n 's/.*: \([0-9.]*\) s, .*/\1/p' "$work/export.txt")
mbit=$(awk -v b="$out_bytes" -v s="$media" 'BEGIN { printf "%.1f", b * 8 / s / 1e6 }')
if [ -n "${PEER_CTL:-}" ]; then
  rm -f "$work/out.mp4"
  /usr/bin/time -v -o "$work/peer.txt" "$PEER_CTL" export --config "$work/hw.yaml" --camera bench-0 --from -3h --to now \
    --out "$work/peer.mp4" > /dev/null
  peer_what="hallwatchctl before the streaming path"
else
  /usr/bin/time -v -o "$work/peer.txt" ffmpeg -v error -i "$work/out.mp4" -c copy -movflags +faststart "$work/peer.mp4"
  peer_what="ffmpeg -c copy +faststart of the exported file"
fi
peer=$(maxrss_mb "$work/peer.txt"); peer_s=$(wall_s "$work/peer.txt")
ratio=$(awk -v a="$ours" -v b="$peer" 'BEGIN { printf "%.3f", a / b }')
echo "| export | max resident memory of hallwatchctl export, ${media} s of a ${mbit} Mbit/s camera ($((out_bytes / 1000000)) MB written), MB (done-criterion: < 150) | $ours | $peer | $ratio | peer: $peer_what; wall time ${ours_s} s vs ${peer_s} s |"

# The evidence bundle (issue 15): MB/s of `hallwatchctl export --bundle` (each MP4 laid out from the records and
# written once while its framehash and SHA-256 are taken, then the manifest and signatures)
# beside sha256sum reading the same video bytes from the page cache in the same run, and its max RSS over a tenth
# of the range and over the whole (independent of the range's length). A throwaway signing key.
# The two 3.6 GB files above are done with: deleted, so their page cache does not crowd the bundle's writes
# (with them, reclaim doubled the bundle's system time).
rm -f "$work/out.mp4" "$work/peer.mp4"
printf 'hallwatch-ed25519-private-v1\n%s\n' "$(head -c 32 /dev/urandom | base64)" > "$work/identity.key"
bundle_row() {  # $1: seconds of the range
  rm -rf "$work/bundle"
  sync  # the previous export's output written back first (as above)
  /usr/bin/time -v -o "$work/btime.txt" "$BIN/hallwatchctl" export --no-audit --config "$work/hw.yaml" --camera bench-0 \
    --from "-$(($1 + 5))s" --to now --bundle "$work/bundle" --reason bench --case bench-1 --no-hold \
    --signing-key "$work/identity.key" > /dev/null 2>&1
  bundle_rss=$(maxrss_mb "$work/btime.txt"); bundle_s=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): \(.*\)/\1/p' "$work/btime.txt" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.2f", s }')
  bundle_bytes=$(cat "$work"/bundle/video/bench-0/*.mp4 | wc -c)
  t0=$(date +%s.%N); sha256sum "$work"/bundle/video/bench-0/*.mp4 > /dev/null; t1=$(date +%s.%N)
  bundle_mbs=$(awk -v b="$bundle_bytes" -v s="$bundle_s" 'BEGIN { printf "%.0f", b / 1e6 / s }')
  sha_mbs=$(awk -v b="$bundle_bytes" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.0f", b / 1e6 / (c - a) }')
}
bundle_row $((SECONDS_RECORDED / 10)); short_rss=$bundle_rss
bundle_row "$SECONDS_RECORDED"
echo "| export | evidence bundle (hallwatchctl export --bundle), $((bundle_bytes / 1000000)) MB of video, MB/s | $bundle_mbs | sha256sum $sha_mbs | $(awk -v a="$bundle_mbs" -v b="$sha_mbs" 'BEGIN { printf "%.2f", a / b }')× | goal ≥ 1.0× sha256sum on the same bytes; max RSS ${bundle_rss} MB (a tenth of the range: ${short_rss} MB) |"
mkdir -p .bench
printf '{"bench":"export","mediaSeconds":%s,"mbitPerSecond":%s,"outBytes":%d,"maxRSSMB":%s,"peerMaxRSSMB":%s,"seconds":%s,"peerSeconds":%s,"peer":"%s","bundleMBps":%s,"bundleSha256sumMBps":%s,"bundleMaxRSSMB":%s,"bundleTenthMaxRSSMB":%s}\n' \
  "$media" "$mbit" "$out_bytes" "$ours" "$peer" "$ours_s" "$peer_s" "$peer_what" "$bundle_mbs" "$sha_mbs" "$bundle_rss" "$short_rss" > .bench/export.json
