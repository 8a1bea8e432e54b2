#!/usr/bin/env bash
# The whole suite: unit, golden, end-to-end (and, as they land, the
# integration tests against real services, which this script installs and
# starts). Prints vitest's report and the closing "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."
npx vitest run --config test/vitest.config.ts "$@"
