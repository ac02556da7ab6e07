// A real OAuth2 authorization server (oauth2-mock-server) on loopback for postured's
// client-credentials integration test. Started by scripts/test.sh; prints its base URL.
//
// Behaviour on top of the package's defaults:
// - access tokens carry aud=https://graph.microsoft.com and sub=<client_id>, like Entra's;
// - the client id "revoked-client" is refused with 401 invalid_client and an Entra-shaped
//   AADSTS7000222 (expired secret) body, as Entra answers for an expired client secret;
// - a token request with a `postured_claims` parameter (a JSON object) gets those claims
//   merged over the defaults (aud, sub, roles, exp ...): the OpenID Connect tests of
//   tests/auth.rs sign tokens with chosen claims this way;
// - the authorization-code flow (its /authorize approves at once and redirects with a code):
//   a `postured_claims` query parameter on /authorize (a JSON object: the person who signs
//   in, as chosen at a real provider's login page) is merged over both tokens the code is
//   exchanged for; those tokens keep the package's own `aud` (the ID token's is the client
//   id) and `nonce`. The dashboard's OpenID Connect sign-in test (tests/dashboard_oidc.rs)
//   drives it;
// - the issuer (`iss`, discovery document, JWKS URL) is the printed loopback URL;
// - `GET /postured/requests` answers how many requests each `METHOD /path` received so far
//   (a JSON object, e.g. {"GET /.well-known/openid-configuration": 1}; itself not counted):
//   tests/dashboard_oidc.rs checks that sign-ins share one cached discovery document.
//
// Usage: node server.mjs [port]   (port 0 or absent: a free port)
import { HttpServer, OAuth2Issuer, OAuth2Service } from 'oauth2-mock-server';
import basicAuth from 'basic-auth';

const port = Number(process.argv[2] ?? 0);
const issuer = new OAuth2Issuer();
const service = new OAuth2Service(issuer);
await issuer.keys.generate('RS256');

// Requests received, by `METHOD /path`.
const counts = new Map();
const server = new HttpServer((req, res) => {
  const path = new URL(req.url, 'http://127.0.0.1').pathname;
  if (req.method === 'GET' && path === '/postured/requests') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(Object.fromEntries(counts)));
    return;
  }
  const key = `${req.method} ${path}`;
  counts.set(key, (counts.get(key) ?? 0) + 1);
  service.requestHandler(req, res);
});

function clientOf(req) {
  const basic = basicAuth(req);
  return basic ? basic.name : req.body?.client_id;
}

// Claims chosen at /authorize, by the code it issued (dropped once the code is exchanged).
const claimsByCode = new Map();

service.on('beforeAuthorizeRedirect', (redirect, req) => {
  const extra = req.query?.postured_claims;
  const code = redirect.url.searchParams.get('code');
  if (typeof extra === 'string' && code) {
    claimsByCode.set(code, JSON.parse(extra));
  }
});

service.on('beforeTokenSigning', (token, req) => {
  if (req.body?.grant_type === 'authorization_code') {
    Object.assign(token.payload, claimsByCode.get(req.body.code) ?? {});
    return;
  }
  token.payload.aud = 'https://graph.microsoft.com';
  token.payload.sub = clientOf(req);
  const extra = req.body?.postured_claims;
  if (typeof extra === 'string') {
    Object.assign(token.payload, JSON.parse(extra));
  }
});

service.on('beforeResponse', (response, req) => {
  if (req.body?.grant_type === 'authorization_code') {
    claimsByCode.delete(req.body.code);
  }
  if (clientOf(req) === 'revoked-client') {
    response.statusCode = 401;
    response.body = {
      error: 'invalid_client',
      error_description:
        'AADSTS7000222: The provided client secret keys for app are expired.\r\nTrace ID: 00000000-0000-0000-0000-000000000000\r\nCorrelation ID: 00000000-0000-0000-0000-000000000000\r\nTimestamp: 2026-11-21 10:00:00Z',
      error_codes: [7000222],
      timestamp: '2026-11-21 10:00:00Z',
      trace_id: '00000000-0000-0000-0000-000000000000',
      correlation_id: '00000000-0000-0000-0000-000000000000',
      error_uri: 'https://login.microsoftonline.com/error?code=7000222',
    };
  }
});

await server.start(port, '127.0.0.1');
const address = server.address();
issuer.url = `http://127.0.0.1:${address.port}`;
console.log(issuer.url);

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    await server.stop();
    process.exit(0);
  });
}
