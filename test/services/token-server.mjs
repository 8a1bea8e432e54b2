#!/usr/bin/env node
// A test token service for docker-registry's token auth (distribution's
// docs/spec/auth/token.md and registry/auth/token/token.go): GET /token with
// ?service=&scope=repository:NAME:ACTIONS (repeatable), optional HTTP basic
// credentials; answers {"token": JWT, "access_token": JWT} signed RS256 with
// the test key, the certificate in the JWS x5c header (the registry's
// rootcertbundle holds the same certificate, so it trusts the chain).
//
// Scope policy, for the tests to check: the test user gets what it asks for
// on any repository; anonymous callers get `pull` on repositories under
// public/ and nothing else; a wrong password gets 401. Loopback only.
//
// usage: token-server.mjs --port P --key KEY.pem --cert CERT.pem --issuer I
//        --service S --user U --password-file F [--pid-file F]
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const key = createPrivateKey(readFileSync(args.key));
const certDer = Buffer.from(readFileSync(args.cert, 'utf8').replace(/-----[^-]+-----|\s/g, ''), 'base64');
const password = readFileSync(args['password-file'], 'utf8').trim();
const b64url = (b) => Buffer.from(b).toString('base64url');

function jwt(claims) {
  const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname !== '/token') return res.writeHead(404).end();
  let user = '';
  const auth = req.headers.authorization ?? '';
  if (auth.startsWith('Basic ')) {
    const [u, ...rest] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
    if (u !== args.user || rest.join(':') !== password) {
      res.writeHead(401, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'wrong user name or password' }] }));
    }
    user = u;
  }
  const access = [];
  for (const scope of url.searchParams.getAll('scope')) {
    const m = /^repository:([^:]+):(.+)$/.exec(scope);
    if (!m) continue;
    const wanted = m[2].split(',');
    const actions = user ? wanted : m[1].startsWith('public/') ? wanted.filter((a) => a === 'pull') : [];
    access.push({ type: 'repository', name: m[1], actions });
  }
  const now = Math.floor(Date.now() / 1000);
  const token = jwt({ iss: args.issuer, sub: user, aud: url.searchParams.get('service') ?? args.service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access });
  const line = `${new Date().toISOString()} token for ${user || '(anonymous)'}: ${JSON.stringify(access)}\n`;
  process.stderr.write(line);
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
});
server.listen(Number(args.port), '127.0.0.1', () => {
  if (args['pid-file']) writeFileSync(args['pid-file'], String(process.pid));
});
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => server.close(() => process.exit(0)));
