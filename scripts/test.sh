#!/usr/bin/env bash
# `npm test`: system packages (if missing), then all three tiers of tests with node-tap.
# (npm runs `pretest` first: build + strict type check.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
exec npx tap "$@"
