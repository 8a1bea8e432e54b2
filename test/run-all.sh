#!/usr/bin/env bash
# The whole suite, as CI runs it: install the real services the integration
# tests use (Debian packages; needs root), start them on loopback in a temp
# dir, typecheck, run every test, stop the services whatever happened.
# Ends with the "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."

bash test/services/install.sh
STATE=$(mktemp -d "${TMPDIR:-/tmp}/sifpack-services.XXXXXX")
trap 'bash test/services/stop.sh "$STATE"' EXIT
bash test/services/start.sh "$STATE"
set -a
# shellcheck disable=SC1091
. "$STATE/services.env"
set +a
export SIFPACK_TEST_SERVICES="$STATE"

npm run --silent typecheck
npx vitest run --config test/vitest.config.ts "$@"
