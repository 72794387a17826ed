#!/usr/bin/env bash
# `npm run demo`: on a fresh Debian/Ubuntu with Node 20 this installs what is missing, builds, then
# runs the main job for DEMO_SECONDS (default 15): `lanstream serve` (the camera and microphone if
# /dev/video0 exists, else the built-in test picture + tone) and `lanstream watch localhost` with
# its window and sound. Without a display or a sound server it makes virtual ones (Xvfb, a private
# PulseAudio with a null sink) and stops them at the end. Prints what the viewer received.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${DEMO_SECONDS:-15}"
PORT="${DEMO_PORT:-8443}"
bash scripts/system-deps.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
[ -f dist/bundle/main.js ] && [ -z "$(find src -newer dist/bundle/main.js -print -quit)" ] || npm run build >/dev/null

TMP="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM

if [ -z "${DISPLAY:-}" ]; then
  Xvfb :77 -screen 0 1280x720x24 -nolisten tcp >/dev/null 2>&1 & PIDS+=($!)
  export DISPLAY=:77; sleep 0.5
  echo "demo: no display, using a virtual one (Xvfb $DISPLAY)"
fi
if ! pactl info >/dev/null 2>&1; then
  export XDG_RUNTIME_DIR="$TMP/run" HOME_PULSE="$TMP/pulse"; mkdir -p "$XDG_RUNTIME_DIR" "$HOME_PULSE"
  printf 'load-module module-null-sink sink_name=spk\nset-default-sink spk\nload-module module-native-protocol-unix auth-anonymous=1 socket=%s/pulse.sock\n' "$TMP" > "$TMP/default.pa"
  HOME="$HOME_PULSE" pulseaudio -n -F "$TMP/default.pa" --daemonize=no --exit-idle-time=-1 >/dev/null 2>&1 & PIDS+=($!)
  export PULSE_SERVER="unix:$TMP/pulse.sock"
  printf '</usr/share/alsa/alsa.conf>\npcm.!default { type pulse }\nctl.!default { type pulse }\n' > "$TMP/asound.conf"
  export ALSA_CONFIG_PATH="$TMP/asound.conf"
  for _ in $(seq 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
  echo "demo: no sound server, using a private PulseAudio with a virtual speaker"
fi

SOURCE=test; [ -e /dev/video0 ] && SOURCE=device
export LANSTREAM_CONFIG_DIR="$TMP/config"
echo "demo: lanstream serve --source $SOURCE --port $PORT, then lanstream watch localhost for ${SECONDS_TO_RUN}s"
node bin/lanstream.js serve --source "$SOURCE" --port "$PORT" --size 1280x720 --log-level warn > "$TMP/serve.out" & SERVE=$!; PIDS+=($SERVE)
for _ in $(seq 100); do grep -q 'lanstream watch' "$TMP/serve.out" 2>/dev/null && break; kill -0 $SERVE 2>/dev/null || break; sleep 0.1; done
cat "$TMP/serve.out"
set +e
node bin/lanstream.js watch localhost --port "$PORT" --duration "${SECONDS_TO_RUN}s" --json --log-level warn > "$TMP/watch.jsonl"
CODE=$?
set -e
node -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
const stats = lines.filter((l) => l.event === "stats" && l.state === "live");
const stop = lines.find((l) => l.event === "stopped");
const med = (xs) => { xs = xs.filter((x) => x !== null).sort((a, b) => a - b); return xs.length ? xs[Math.floor(xs.length / 2)] : "n/a"; };
console.log(`demo: received ${stop?.totals?.videoFrames ?? 0} video frames and ${stop?.totals?.audioPackets ?? 0} audio packets (${((stop?.totals?.bytes ?? 0) / 1e6).toFixed(1)} MB)`);
console.log(`demo: median fps ${med(stats.map((s) => s.fps))}, video latency ${med(stats.map((s) => s.videoLatencyMs))} ms, audio latency ${med(stats.map((s) => s.audioLatencyMs))} ms (capture to arrival/speaker, server clock)`);
' "$TMP/watch.jsonl"
echo "demo: watch exited with $CODE"
exit $CODE
