#!/usr/bin/env bash
# `npm run bench`: lanstream on the glass-to-glass rig (../shared/bench, or $BENCH_DIR) side by side
# with its peers, interleaved (lanstream, peer, lanstream, …) so machine load hits both alike, then
# scripts/bench-report.mjs writes bench/results/latest.md from the runs of this batch only.
#
#   npm run bench                         # default set, 20 s window x 2 rounds (~12 min)
#   npm run bench -- --seconds 30 --repeat 3
#   npm run bench -- --systems "lanstream ffmpeg-mjpeg-lowlat"   # a subset (names: bench/lanstream-systems.json)
#   npm run bench -- --report-only <batch stamp> [--until <stamp>] # rebuild latest.md from an earlier batch
#   options: --no-build --no-floor --results DIR --warmup S --settle S (passed to the rig)
#
# Needs root (the rig starts Xvfb and its own PulseAudio, and installs missing Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_DIR=${BENCH_DIR:-$ROOT/../shared/bench}
CONFIG=$ROOT/bench/lanstream-systems.json
RESULTS=$ROOT/bench/results
SECONDS_WIN=20
REPEAT=2
BUILD=1
REPORT_ONLY=""
UNTIL=()
# One round: each lanstream entry next to the peers it is compared with.
# (floor = the rig alone, only in round 1; more in the systems file: ffmpeg-mjpeg-lowlat-1thread, gst-mjpeg-q50,
# ffmpeg-av-nut-lowlat, ffmpeg-pcm-pacat-join5, lanstream-warm, lanstream-gst-join5, the fan-out systems, H.264 / Opus.)
SYSTEMS="lanstream lanstream-nowake ffmpeg-mjpeg-lowlat lanstream-video gst-mjpeg lanstream-gst lanstream-audio ffmpeg-pcm-pacat-rxlisten \
lanstream-join5 ffmpeg-av-nut-lowlat-rxlisten lanstream-insecure lanstream-pacat lanstream-h264 lanstream-h264-gst"
FLOOR=1
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_WIN=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --systems) SYSTEMS=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --no-floor) FLOOR=0; shift ;;
    --results) RESULTS=$2; shift 2 ;;
    --report-only) REPORT_ONLY=$2; shift 2 ;;
    --until) UNTIL=(--until "$2"); shift 2 ;;
    --warmup|--settle|--gen-fps|--probe-fps|--scene) EXTRA+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ -n "$REPORT_ONLY" ]; then
  exec node scripts/bench-report.mjs --results "$RESULTS" --config "$CONFIG" --since "$REPORT_ONLY" ${UNTIL[@]+"${UNTIL[@]}"}
fi

if [ "$(id -u)" != 0 ]; then
  echo "bench: run as root (the rig starts Xvfb and a private PulseAudio, and may apt-get install its packages)" >&2
  exit 1
fi
if [ ! -f "$BENCH_DIR/lib/bench.py" ]; then
  echo "bench: the rig is not at $BENCH_DIR (set BENCH_DIR to the bench checkout)" >&2
  exit 1
fi

# The rig's Debian packages (same way as scripts/system-deps.sh). gstreamer1.0-x holds ximagesink, which the
# GStreamer peers display with; the bench README's list omits it.
PKGS=(xvfb xdotool x11-utils ffmpeg pulseaudio pulseaudio-utils alsa-utils libasound2-plugins gstreamer1.0-tools
      gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-x netcat-openbsd iproute2 python3-numpy)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  # python3-numpy may come from pip instead of Debian: accept any importable numpy.
  if [ "${missing[*]}" = "python3-numpy" ] && python3 -c 'import numpy' 2>/dev/null; then
    missing=()
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || { echo "bench: please install: ${missing[*]}" >&2; exit 1; }
  echo "bench: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$BUILD" = 1 ]; then npm run --silent build; fi

# The systems file refers to these: where bin/lanstream.js is, a throw-away config dir (certificate,
# known hosts) and an access key given to both ends.
export LANSTREAM_ROOT=$ROOT
LANSTREAM_BENCH_CONFIG=$(mktemp -d /tmp/lanstream-bench-config.XXXXXX)
export LANSTREAM_BENCH_CONFIG
LANSTREAM_BENCH_KEY=$(node -e "process.stdout.write(require('node:crypto').randomBytes(16).toString('base64url'))")
export LANSTREAM_BENCH_KEY
trap 'rm -rf "$LANSTREAM_BENCH_CONFIG"' EXIT
mkdir -p "$RESULTS/logs"

BATCH=$(date +%Y%m%d-%H%M%S)
echo "bench: batch $BATCH: $REPEAT round(s) of: $SYSTEMS (${SECONDS_WIN} s window each); load: $(uptime | sed 's/.*load/load/')" >&2
# Each run is bounded: settle + warm-up + window + stop, plus a generous margin.
RUN_TIMEOUT=$(( ${SECONDS_WIN%.*} + 90 ))
LOG=$RESULTS/logs/$BATCH.log
echo "bench: harness log: $LOG" >&2
failed=0
for round in $(seq 1 "$REPEAT"); do
  list=$SYSTEMS
  if [ "$round" = 1 ] && [ "$FLOOR" = 1 ]; then list="floor $list"; fi
  for sys in $list; do
    echo "bench: round $round/$REPEAT: $sys  ($(uptime | sed 's/.*load/load/'))" >&2
    timeout --signal=TERM --kill-after=15 "$RUN_TIMEOUT" \
      python3 "$BENCH_DIR/lib/bench.py" --config "$CONFIG" --results "$RESULTS" run "$sys" \
      --seconds "$SECONDS_WIN" --repeat 1 ${EXTRA[@]+"${EXTRA[@]}"} 2>>"$LOG" || failed=$((failed + 1))
  done
done
echo "bench: $failed run(s) reported an error" >&2
node scripts/bench-report.mjs --results "$RESULTS" --config "$CONFIG" --since "$BATCH" \
  --command "npm run bench -- --seconds $SECONDS_WIN --repeat $REPEAT"
