#!/usr/bin/env bash
# bench-netlab.sh -- lanstream under network faults (../shared/netlab) and a long loopback soak,
# each next to plain ffmpeg in the same run where a peer makes sense. Issue 5, item 8.
#
# usage (root):  scripts/bench-netlab.sh [SCENARIO...]      default: rate cut restart fanout ttfp fw443
#                scripts/bench-netlab.sh soak [SECONDS]      loopback soak (default 1800 s), no netlab
# Raw JSON lines go to $BENCH_NETLAB_OUT (default /tmp/lanstream-netlab/<stamp>); then
#   node scripts/bench-netlab-report.mjs <dir>   writes bench/results/netlab.md (or soak.md).
# Everything is bounded: every process runs under timeout, the lab has a TTL and is brought down on
# exit (also on failure or Ctrl-C).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NLDIR="${NETLAB_DIR:-$HERE/../shared/netlab}"
NL="$NLDIR/netlab.sh"
export NETLAB_PREFIX="${NETLAB_PREFIX:-lsb}" NETLAB_NET="${NETLAB_NET:-10.77.9}"
SRV_IP="$NETLAB_NET.1"
LS=(node "$HERE/bin/lanstream.js")
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT="${BENCH_NETLAB_OUT:-/tmp/lanstream-netlab/$STAMP}"
mkdir -p "$OUT"
log() { echo "[bench-netlab $(date +%T)] $*" >&2; }
now() { date +%s.%N; }
# Every scenario records what else was running: this machine is shared.
meta() { printf '{"type":"meta","scenario":"%s","atMs":%s,"uptime":"%s"}\n' "$1" "$(date +%s%3N)" "$(uptime | sed 's/.*load/load/')" >> "$OUT/meta.jsonl"; }

# ---------------------------------------------------------------- soak (loopback, no netlab)
soak() {
  local dur="${1:-1800}" port=27543 dir="$OUT/soak" pids=()
  mkdir -p "$dir/cfg" "$dir/pulse"
  meta soak
  # A private PulseAudio with a null sink as the speaker (like test/helpers/pulse.ts).
  cat > "$dir/pulse/default.pa" <<EOF
load-module module-native-protocol-unix auth-anonymous=1 socket=$dir/pulse/native
load-module module-null-sink sink_name=spk channels=2 rate=48000 format=s16le
set-default-sink spk
EOF
  HOME="$dir/pulse" XDG_RUNTIME_DIR="$dir/pulse" timeout $((dur + 120)) pulseaudio -n -F "$dir/pulse/default.pa" \
    --daemonize=no --exit-idle-time=-1 --use-pid-file=no --log-target=stderr --log-level=error 2> "$dir/pulse.log" &
  pids+=($!)
  local pulse="unix:$dir/pulse/native" i
  for i in $(seq 1 50); do PULSE_SERVER="$pulse" pactl info >/dev/null 2>&1 && break; sleep 0.1; done
  timeout $((dur + 90)) "${LS[@]}" serve --source test --port "$port" --host 127.0.0.1 --config-dir "$dir/cfg" \
    --json --duration "$((dur + 30))s" > "$dir/serve.jsonl" 2> "$dir/serve.log" &
  local spid=$!; pids+=($spid)
  for i in $(seq 1 100); do ss -Hltn "sport = :$port" | grep -q . && break; sleep 0.1; done
  # Viewer 1: video latency without a window (ffplay under Xvfb would cost ~half a core for hours).
  timeout $((dur + 60)) "${LS[@]}" watch 127.0.0.1 --port "$port" --config-dir "$dir/cfg" --json --no-playback \
    --duration "${dur}s" > "$dir/watch-video.jsonl" 2> "$dir/watch-video.log" &
  local wv=$!; pids+=($wv)
  # Viewer 2: sound only, played into the null sink through pacat (the real jitter buffer + drift control).
  PULSE_SERVER="$pulse" timeout $((dur + 60)) "${LS[@]}" watch 127.0.0.1 --port "$port" --config-dir "$dir/cfg" --json \
    --no-video --audio-output pacat --duration "${dur}s" > "$dir/watch-audio.jsonl" 2> "$dir/watch-audio.log" &
  local wa=$!; pids+=($wa)
  log "soak: ${dur}s, serve pid $spid, watch pids $wv (video) $wa (audio); data in $dir"
  # RSS every 10 s (the timeout wrappers' children are the node processes).
  local t0; t0=$(date +%s)
  while kill -0 "$wv" 2>/dev/null || kill -0 "$wa" 2>/dev/null; do
    local line="{\"type\":\"rss\",\"atMs\":$(date +%s%3N)" name p
    for name in serve:$spid watchVideo:$wv watchAudio:$wa; do
      p=$(pgrep -P "${name#*:}" -x node | head -1)
      [ -n "$p" ] && line+=",\"${name%%:*}KB\":$(awk '/VmRSS/{print $2}' /proc/"$p"/status 2>/dev/null || echo null)"
    done
    # serve's ffmpeg capture children, summed
    p=$(pgrep -P "$spid" -x node | head -1)
    [ -n "$p" ] && line+=",\"ffmpegKB\":$(for c in $(pgrep -P "$p"); do awk '/VmRSS/{print $2}' /proc/"$c"/status 2>/dev/null; done | awk '{s+=$1} END{print s+0}')"
    line+=",\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
    echo "$line" >> "$dir/rss.jsonl"
    [ $(( $(date +%s) - t0 )) -gt $((dur + 90)) ] && break
    sleep 10
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  meta soak-end
  log "soak done: $dir"
}

case "${1:-}" in
  soak) shift; soak "${1:-1800}"; exit 0 ;;
esac
