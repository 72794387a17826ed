#!/usr/bin/env bash
# `npm test`: all tiers of tests with node-tap. npm runs `pretest` (scripts/pretest.sh) first:
# system packages and npm dependencies if missing, build, checks.
set -euo pipefail
cd "$(dirname "$0")/.."
exec npx tap "$@"
