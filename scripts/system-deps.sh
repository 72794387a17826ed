#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages lanstream's tests and demo need, when they are missing.
# ffmpeg/ffplay (capture, window), libasound2-dev + build tools (the npm `speaker` addon),
# pulseaudio + utils (virtual microphone/speaker), alsa plugins (ALSA -> PulseAudio for `speaker`),
# xvfb + xdotool + x11-utils (virtual display and window checks), GStreamer tools + plugins (the
# `watch --window gstreamer` window: jpegdec in -good, ximagesink in -x, h264parse in -bad, avdec_h264
# in -libav), fonts-dejavu-core (the window's status text: drawtext opens DejaVu Sans by path).
set -euo pipefail
PKGS=(ffmpeg libasound2-dev libasound2-plugins alsa-utils pulseaudio pulseaudio-utils xvfb xdotool x11-utils python3 make g++ procps fonts-dejavu-core
      gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-x gstreamer1.0-plugins-bad gstreamer1.0-libav)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if ! command -v apt-get >/dev/null; then
  echo "lanstream: please install: ${missing[*]} (no apt-get here)" >&2; exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else echo "lanstream: run as root or install: ${missing[*]}" >&2; exit 1; fi
fi
echo "lanstream: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
