#!/usr/bin/env bash
# token-registry.sh STATE_DIR — a docker-registry with bearer-token auth and
# the Node test token server (token-server.mjs) that issues its tokens, both
# on loopback under STATE_DIR/token-registry; appends their settings to
# STATE_DIR/services.env. start.sh calls it; stop.sh stops the two pids.
set -euo pipefail
STATE=$(realpath -m "${1:?usage: token-registry.sh STATE_DIR}")
HERE=$(cd "$(dirname "$0")" && pwd)
T="$STATE/token-registry"
mkdir -p "$T/data"
ENVF="$STATE/services.env"
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
die() { echo "token-registry.sh: FAILED: $*" >&2; exit 1; }
wait_for() { local end=$(( $(date +%s) + $1 )); shift; until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.3; done; }

# The registry trusts tokens whose x5c chain ends in this self-signed certificate.
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=sifpack-test-token" \
  -keyout "$T/token.key" -out "$T/token.crt" >/dev/null 2>&1 || die "openssl could not make the signing key"
head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/password"
TOKEN_PORT=$(free_port)
REG_PORT=$(free_port)
SERVICE=sifpack-test-registry
ISSUER=sifpack-test-token-server
node "$HERE/token-server.mjs" --port "$TOKEN_PORT" --key "$T/token.key" --cert "$T/token.crt" \
  --issuer "$ISSUER" --service "$SERVICE" --user sifpack --password-file "$T/password" \
  --pid-file "$T/token-server.pid" >"$T/token-server.log" 2>&1 &
cat >"$T/registry.yml" <<YML
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $T/data }, delete: { enabled: true } }
http: { addr: "127.0.0.1:$REG_PORT", secret: "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" }
auth:
  token:
    realm: "http://127.0.0.1:$TOKEN_PORT/token"
    service: "$SERVICE"
    issuer: "$ISSUER"
    rootcertbundle: "$T/token.crt"
YML
docker-registry serve "$T/registry.yml" >"$T/registry.log" 2>&1 & echo $! >"$T/registry.pid"
wait_for 30 curl -fsS "http://127.0.0.1:$TOKEN_PORT/token?service=$SERVICE" || { cat "$T/token-server.log" >&2; die "the token server did not answer"; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
wait_for 30 test "$(code "http://127.0.0.1:$REG_PORT/v2/")" = 401 || { cat "$T/registry.log" >&2; die "the token registry did not answer /v2/ with 401"; }
# The whole chain works: a token for the test user opens /v2/.
TOKEN=$(curl -fsS -u "sifpack:$(cat "$T/password")" "http://127.0.0.1:$TOKEN_PORT/token?service=$SERVICE" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).token))')
[ "$(code -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$REG_PORT/v2/")" = 200 ] || { cat "$T/registry.log" >&2; die "the registry did not accept a token from the token server"; }
{
  echo "SIFPACK_TEST_TOKEN_REGISTRY=127.0.0.1:$REG_PORT"
  echo "SIFPACK_TEST_TOKEN_SERVER=http://127.0.0.1:$TOKEN_PORT/token"
  echo "SIFPACK_TEST_TOKEN_USER=sifpack"
  echo "SIFPACK_TEST_TOKEN_PASSWORD=$(cat "$T/password")"
} >>"$ENVF"
echo "token-registry.sh: token registry on 127.0.0.1:$REG_PORT, tokens from :$TOKEN_PORT" >&2
