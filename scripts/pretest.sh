#!/usr/bin/env bash
# `npm test`, first half (npm runs it as `pretest`): what a fresh clone is missing, then build and
# checks. System packages come first: `npm ci` builds speaker's addon against the ALSA headers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build
npm run check
