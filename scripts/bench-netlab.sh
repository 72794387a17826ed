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
load-module module-null-sink sink_name=mic channels=1 rate=48000 format=s16le
set-default-sink spk
EOF
  HOME="$dir/pulse" XDG_RUNTIME_DIR="$dir/pulse" timeout $((dur + 120)) pulseaudio -n -F "$dir/pulse/default.pa" \
    --daemonize=no --exit-idle-time=-1 --use-pid-file=no --log-target=stderr --log-level=error 2> "$dir/pulse.log" &
  pids+=($!)
  local pulse="unix:$dir/pulse/native" i
  for i in $(seq 1 50); do PULSE_SERVER="$pulse" pactl info >/dev/null 2>&1 && break; sleep 0.1; done
  # The microphone (SOAK_MIC=pulse, the default): the monitor of a second null sink that a 440 Hz tone
  # plays into, captured by serve through PulseAudio with its 5 ms fragments, as a real microphone is
  # (and as the rig's is). SOAK_MIC=test: lavfi's tone from --source test instead, paced by ffmpeg.
  # The picture is the test source's either way.
  local source_args=(--source test) mic="${SOAK_MIC:-pulse}"
  if [ "$mic" = pulse ]; then
    PULSE_SERVER="$pulse" timeout $((dur + 100)) ffmpeg -hide_banner -nostdin -loglevel error -re -f lavfi \
      -i sine=frequency=440:sample_rate=48000 -ac 1 -f pulse -device mic soak-tone 2> "$dir/tone.log" &
    pids+=($!)
    source_args=(--video-input "-f lavfi -i testsrc2=size=1280x720:rate=30,realtime" --audio-backend pulse --audio-device mic.monitor)
  fi
  printf '{"type":"meta","scenario":"soak-mic","mic":"%s"}\n' "$mic" >> "$OUT/meta.jsonl"
  PULSE_SERVER="$pulse" timeout $((dur + 90)) "${LS[@]}" serve "${source_args[@]}" --port "$port" --host 127.0.0.1 --config-dir "$dir/cfg" \
    --json --duration "$((dur + 30))s" > "$dir/serve.jsonl" 2> "$dir/serve.log" &
  local spid=$!; pids+=($spid)
  for i in $(seq 1 100); do ss -Hltn "sport = :$port" | grep -q . && break; sleep 0.1; done
  # Viewer 1: video latency without a window (ffplay under Xvfb would cost ~half a core for hours).
  timeout $((dur + 60)) "${LS[@]}" watch 127.0.0.1 --port "$port" --config-dir "$dir/cfg" --json --no-playback \
    --duration "${dur}s" > "$dir/watch-video.jsonl" 2> "$dir/watch-video.log" &
  local wv=$!; pids+=($wv)
  # Viewer 2: sound only, through watch's default output (audio-io: jitter buffer + drift control + a
  # pull callback) into the null sink; ALSA's default device is the pulse plugin of this daemon.
  # LANSTREAM_AUDIO_OUTPUT=pulse in the environment soaks the PulseAudio native output instead.
  # SOAK_AUDIO_LOG_LEVEL=debug logs each gap (underrun) with its context in watch-audio.log.
  printf '</usr/share/alsa/alsa.conf>\npcm.!default { type pulse }\nctl.!default { type pulse }\n' > "$dir/pulse/asound.conf"
  # audio_viewer NAME [WATCH ARGS...]: a sound-only viewer into the null sink, $dir/NAME.jsonl / .log
  audio_viewer() {
    local name=$1; shift
    PULSE_SERVER="$pulse" ALSA_CONFIG_PATH="$dir/pulse/asound.conf" timeout $((dur + 60)) "${LS[@]}" watch 127.0.0.1 --port "$port" \
      --config-dir "$dir/cfg" --json --no-video --duration "${dur}s" ${SOAK_AUDIO_LOG_LEVEL:+--log-level "$SOAK_AUDIO_LOG_LEVEL"} "$@" \
      > "$dir/$name.jsonl" 2> "$dir/$name.log" &
  }
  audio_viewer watch-audio
  local wa=$!; pids+=($wa)
  # SOAK_EXTRA_AUDIO="pulse:35 audio-io:30": more sound-only viewers beside viewer 2, each with its
  # own output and --audio-buffer-ms, fed by the same serve under the same load, so their gaps can be
  # compared side by side (watch-audio-<n>-<output>-<ms>.jsonl / .log, n from 1).
  local extra n=0
  for extra in ${SOAK_EXTRA_AUDIO:-}; do
    n=$((n + 1))
    audio_viewer "watch-audio-$n-${extra%%:*}-${extra#*:}" --audio-output "${extra%%:*}" --audio-buffer-ms "${extra#*:}"
    pids+=($!)
  done
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
    # what PulseAudio itself holds for the viewer's stream, beside the viewer's own jitter-buffer level
    PULSE_SERVER="$pulse" pactl list sink-inputs 2>/dev/null | awk -v t="$(date +%s%3N)" '/Buffer Latency/{b=$3} /Sink Latency/{s=$3}
      END{ if (b!="") printf "{\"type\":\"pulse\",\"atMs\":%s,\"bufferUs\":%s,\"sinkUs\":%s}\n", t, b, s }' >> "$dir/pulse.jsonl"
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

# ---------------------------------------------------------------- netlab helpers
[ "$(id -u)" = 0 ] || { echo "bench-netlab: needs root (network namespaces)" >&2; exit 1; }
PKGS=(iproute2 nftables iptables ethtool iputils-ping netcat-openbsd iperf3 python3 ffmpeg procps)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null || { log "apt-get failed"; exit 1; }
fi
[ -x "$NL" ] || { log "netlab not found at $NL (set NETLAB_DIR)"; exit 1; }
AVMON=(/usr/bin/python3 "$NLDIR/tools/avmon.py")
cleanup() { "$NL" down >/dev/null 2>&1; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
SC=""   # current scenario dir

# run_in HOST NAME TIMEOUT -- CMD...: background in HOST; stdout -> $SC/NAME.jsonl, stderr -> $SC/NAME.err
run_in() {
  local host="$1" name="$2" tmo="$3"; shift 4
  "$NL" spawn "$host" "$name" --timeout "$tmo" -- bash -c 'o=$1; shift; exec "$@" > "$o.jsonl" 2> "$o.err"' _ "$SC/$name" "$@" 2>/dev/null
}
alive() { local p; p=$(cat "/run/netlab/$NETLAB_PREFIX/spawn/$1.pid" 2>/dev/null) && kill -0 "$p" 2>/dev/null; }
wait_gone() { local i; for i in $(seq 1 $(( $2 * 10 ))); do alive "$1" || return 0; sleep 0.1; done; "$NL" stop "$1" >/dev/null 2>&1; }
wait_listen() { local i; for i in $(seq 1 200); do "$NL" exec srv -- ss -Hltn "sport = :$1" | grep -q . && return 0; sleep 0.05; done; return 1; }
mark() { printf '{"event":"mark","what":"%s","atMs":%s}\n' "$1" "$(date +%s%3N)" >> "$SC/marks.jsonl"; }
reap() {  # nothing a previous scenario started may survive into the next (e.g. an orphaned serve on 443)
  local h; for h in srv c1 c2 c3 c4 c5 c6 c7 c8; do
    ip netns pids "$NETLAB_PREFIX-$h" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
  done
}
begin() { reap; SC="$OUT/$1"; mkdir -p "$SC"; meta "$1"; log "=== $1"; for h in $(seq 1 8); do "$NL" unshape "c$h" >/dev/null 2>&1; "$NL" firewall "c$h" open >/dev/null 2>&1; done; "$NL" firewall srv open >/dev/null 2>&1; }
CFG="$OUT/cfg"
serve() {  # serve NAME TIMEOUT [ARGS...]
  local name="$1" tmo="$2"; shift 2
  run_in srv "$name" "$tmo" -- "${LS[@]}" serve --source test --port 443 --config-dir "$CFG" --json --log-level warn "$@"
  wait_listen 443 || log "serve $name not listening"
  mark "serve-up:$name"
  # listening is not enough: an older server could hold the port. Wait for this one's 'ready'.
  local i; for i in $(seq 1 100); do grep -q '"ready"' "$SC/$name.jsonl" 2>/dev/null && return 0; sleep 0.05; done
  log "serve $name did not start: $(head -c 300 "$SC/$name.err")"; return 1
}
KEY="" FP=""
creds() {  # the key file and the fingerprint from serve's 'ready' event (it comes just after listen)
  local i; for i in $(seq 1 100); do grep -q '"fingerprint"' "$SC/$1.jsonl" 2>/dev/null && break; sleep 0.05; done
  KEY=$(cat "$CFG/access-key"); FP=$(grep -o '"fingerprint":"[^"]*"' "$SC/$1.jsonl" | head -1 | cut -d'"' -f4)
}
watch() {  # watch HOST NAME SECONDS [ARGS...]
  local host="$1" name="$2" secs="$3"; shift 3
  mkdir -p "$OUT/cfg-$host"
  mark "watch-start:$name"
  run_in "$host" "$name" $((secs + 30)) -- "${LS[@]}" watch "$SRV_IP" --port 443 --key "$KEY" --fingerprint "$FP" \
    --config-dir "$OUT/cfg-$host" --json --no-playback --log-level warn --duration "${secs}s" "$@"
}
ffsend() {  # ffsend NAME PORT SECONDS Q: -re testsrc2 720p30 MJPEG over plain TCP, like ../shared/netlab/demo.sh
  run_in srv "$1" $(( $3 + 90 )) -- "${AVMON[@]}" --out "$SC/$1.send.jsonl" --port "$2" -- \
    ffmpeg -hide_banner -nostdin -loglevel warning -re -f lavfi -i testsrc2=size=1280x720:rate=30 -t "$3" \
    -c:v mjpeg -q:v "$4" -f nut "tcp://0.0.0.0:$2?listen=1" -progress pipe:1 -stats_period 0.05
  wait_listen "$2" || log "ffmpeg sender $1 not listening"
}
ffrecv() {  # ffrecv HOST NAME PORT TIMEOUT
  run_in "$1" "$2" "$4" -- "${AVMON[@]}" --out "$SC/$2.recv.jsonl" --port "$3" -- \
    ffmpeg -hide_banner -nostdin -loglevel warning -i "tcp://$SRV_IP:$3" -fps_mode passthrough -f null - \
    -progress pipe:1 -stats_period 0.05
}

# ---------------------------------------------------------------- scenarios
sc_rate() {  # 1. ~12 Mbit/s through 10 Mbit/s
  begin rate
  serve serve 300 --size 1280x720 --quality "${RATE_QUALITY:-5}"; creds serve   # q5 measured 12.0-12.6 Mbit/s
  watch c1 base 10; wait_gone base 45                       # unshaped: the stream's real bitrate
  "$NL" shape c1 --rate 10mbit >/dev/null 2>&1; mark shaped
  watch c1 shaped 32; wait_gone shaped 70
  "$NL" stop serve >/dev/null 2>&1
  # peer: plain ffmpeg at the same quality through the same link, 30 s of content
  ffsend ffsend 8443 30 "${RATE_QUALITY:-5}"; ffrecv c1 ffrecv 8443 120
  wait_gone ffsend 100; wait_gone ffrecv 30
  "$NL" unshape c1 >/dev/null 2>&1
}
sc_cut() {  # 2. 3.5 s cuts
  local mode
  for mode in link blackhole; do
    begin "cut-$mode"
    serve serve 120; creds serve
    watch c1 watch 22; sleep 8; mark cut
    "$NL" cut c1 3.5 --mode "$mode" 2> "$SC/watch.cut.log"
    wait_gone watch 45; "$NL" stop serve >/dev/null 2>&1
    ffsend ffsend 8443 25 5; ffrecv c1 ffrecv 8443 120; sleep 8
    "$NL" cut c1 3.5 --mode "$mode" 2> "$SC/ffsend.cut.log"; cp "$SC/ffsend.cut.log" "$SC/ff.cut.log"
    wait_gone ffsend 100; wait_gone ffrecv 30
  done
}
sc_restart() {  # 3. server SIGKILL + restart
  begin restart
  serve serve 120; creds serve
  watch c1 watch 25; sleep 6
  local sp; sp=$(pgrep -s "$(cat "/run/netlab/$NETLAB_PREFIX/spawn/serve.pid")" -x node | head -1)   # the node process itself, not its timeout wrapper
  mark kill; kill -KILL "$sp"; sleep 2
  "$NL" stop serve >/dev/null 2>&1
  serve serve2 120
  wait_gone watch 45; "$NL" stop serve2 >/dev/null 2>&1
}
sc_fanout() {  # 4. 8 viewers, one throttled to 1 Mbit/s
  begin fanout
  serve serve 300; creds serve
  watch c2 single 20; wait_gone single 60
  "$NL" shape c1 --rate 1mbit >/dev/null 2>&1; mark shaped
  local h; for h in 1 2 3 4 5 6 7 8; do watch "c$h" "v$h" 20; done
  for h in 1 2 3 4 5 6 7 8; do wait_gone "v$h" 60; done
  # Control: the same 8 viewers with none throttled, to tell the slow viewer's effect from that of
  # 8 watch processes sharing 2 cores.
  "$NL" unshape c1 >/dev/null 2>&1; mark unshaped
  for h in 1 2 3 4 5 6 7 8; do watch "c$h" "u$h" 20; done
  for h in 1 2 3 4 5 6 7 8; do wait_gone "u$h" 60; done
  "$NL" stop serve >/dev/null 2>&1
}
sc_ttfp() {  # 5. time to first picture: 10 runs with the capture kept warm, 5 cold
  begin ttfp
  serve serve 300 --keep-warm; creds serve
  local i; for i in $(seq 1 10); do
    watch c1 "run$i" 10 --snapshot "$SC/run$i.jpg"; wait_gone "run$i" 20; sleep 1
  done
  "$NL" stop serve >/dev/null 2>&1
  # cold: default serve, runs 3 s apart (past its 2 s capture linger): each viewer waits for ffmpeg to start
  serve serve-cold 300; creds serve-cold
  for i in $(seq 1 5); do
    sleep 3; watch c1 "cold$i" 10 --snapshot "$SC/cold$i.jpg"; wait_gone "cold$i" 20
  done
  "$NL" stop serve-cold >/dev/null 2>&1
}
sc_fw443() {  # 6. strict 443-only firewall on both sides
  begin fw443
  "$NL" firewall srv strict443 >/dev/null 2>&1; "$NL" firewall c1 strict443 >/dev/null 2>&1
  serve serve 120; creds serve
  watch c1 watch 8; wait_gone watch 40; "$NL" stop serve >/dev/null 2>&1
  ffsend ff8443 8443 10 5; ffrecv c1 ffrecv8443 8443 20; wait_gone ffrecv8443 25; "$NL" stop ff8443 >/dev/null 2>&1
  ffsend ff443 443 10 5; ffrecv c1 ffrecv443 443 20; wait_gone ffrecv443 25; "$NL" stop ff443 >/dev/null 2>&1
}

SCEN=("$@"); [ ${#SCEN[@]} -gt 0 ] || SCEN=(rate cut restart fanout ttfp fw443)
"$NL" down >/dev/null 2>&1
"$NL" up --clients 8 --ttl 1800 >/dev/null 2>&1 || { log "netlab up failed"; exit 1; }
mkdir -p "$CFG"
for s in "${SCEN[@]}"; do
  declare -F "sc_$s" >/dev/null || { log "unknown scenario $s"; exit 2; }
  "sc_$s"
done
meta end
log "done: $OUT"
echo "$OUT"
