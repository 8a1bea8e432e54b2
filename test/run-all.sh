#!/usr/bin/env bash
# The whole suite: typecheck (src and tests), then unit, golden, end-to-end
# (and, as they land, integration tests against real services, which this
# script installs and starts). Ends with vitest's "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent typecheck
npx vitest run --config test/vitest.config.ts "$@"
