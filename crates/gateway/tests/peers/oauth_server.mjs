// A real OAuth 2.1 authorization server for the gateway's auth tests: `oidc-provider` (npm,
// installed by scripts/install-peers) on 127.0.0.1, configured per test from a JSON file.
//
//     node oauth_server.mjs CONFIG.json [PORT]
//
// oidc-provider is loaded from $PORTCULLIS_NODE_MODULES (default: the workspace's
// .peers/npm/node_modules), as ES modules ignore NODE_PATH.
// The port comes from argv, else $PORTCULLIS_AS_PORT, else the config's `port`, else 0 (a free
// one). Once it listens, the one line `issuer=http://127.0.0.1:PORT` is printed on stdout (the
// Rust side, tests/support/oauth.rs, waits for it). Everything else goes to stderr: one
// `event=...` line per token request and per server error, never a token or a secret.
//
// CONFIG.json (see `AuthServerConfig` in tests/support/oauth.rs, which writes it):
//   {
//     "clients": [{ "client_id": "...", "client_secret": "...",
//                   "grant_types": ["client_credentials"],          // default
//                   "scope": "mcp:tools mcp:admin",                 // scopes it may ask for
//                   "resources": ["http://127.0.0.1:1/mcp/x"],      // optional allowlist
//                   "redirect_uris": [], "token_endpoint_auth_method": "client_secret_basic" }],
//     "resources": { "http://127.0.0.1:1/mcp/x": { "scope": "mcp:tools mcp:admin",
//                    "audience": "<default: the URL>", "accessTokenTTL": 300,
//                    "format": "jwt" | "opaque", "alg": "RS256" } },
//     "scopes": ["mcp:tools"],             // extra static scopes (resource scopes are added)
//     "jwks": { "keys": [<private RSA JWK with kid>] },   // the first key signs
//     "defaultResource": null | "http://...",             // for requests without `resource`
//     "devInteractions": false, "registration": false,
//     "generateKey": false,   // no `jwks`: sign with an RSA key generated at start
//     "refreshTokens": false  // issue refresh tokens to every client allowed the grant
//   }
//
// Features: client credentials, resource indicators (RFC 8707; a resource not in `resources`,
// or not in the client's allowlist, is `invalid_target`), JWT access tokens (RFC 9068,
// `typ: at+jwt`), introspection (RFC 7662) and revocation, PKCE required for every
// authorization code. Discovery is served by oidc-provider at both
// /.well-known/oauth-authorization-server (RFC 8414) and /.well-known/openid-configuration.
// Nothing is fetched from the network: clients and keys are all local.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const modules = process.env.PORTCULLIS_NODE_MODULES
  ?? join(dirname(fileURLToPath(import.meta.url)), '../../../../.peers/npm/node_modules');
const { default: Provider, errors } = await import(
  pathToFileURL(createRequire(join(modules, 'resolve.js')).resolve('oidc-provider')).href
);

const [configPath, portArg] = process.argv.slice(2);
if (!configPath) {
  process.stderr.write('usage: oauth_server.mjs CONFIG.json [PORT]\n');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const port = Number(portArg ?? process.env.PORTCULLIS_AS_PORT ?? config.port ?? 0);

const words = (value) => (Array.isArray(value) ? value : String(value ?? '').split(' ')).filter(Boolean);

// Resource servers by resource indicator. Only these can be the audience of a token.
const resources = new Map(
  Object.entries(config.resources ?? {}).map(([url, rs]) => [url, {
    scope: words(rs.scope).join(' '),
    audience: rs.audience ?? url,
    accessTokenTTL: rs.accessTokenTTL ?? 300,
    accessTokenFormat: rs.format ?? 'jwt',
    jwt: { sign: { alg: rs.alg ?? 'RS256' } },
  }]),
);

// The per-client resource allowlist is ours, not client metadata oidc-provider knows.
const allowedResources = new Map();
const clients = (config.clients ?? []).map(({ resources: allow, scope, ...client }) => {
  if (allow) allowedResources.set(client.client_id, new Set(allow));
  return {
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    ...client,
    ...(scope === undefined ? {} : { scope: words(scope).join(' ') }),
  };
});

const scopes = new Set(['openid', ...words(config.scopes)]);
for (const rs of resources.values()) words(rs.scope).forEach((s) => scopes.add(s));

if (!config.jwks?.keys?.length && config.generateKey === true) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  config.jwks = { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'generated' }] };
}
if (!config.jwks?.keys?.length) {
  process.stderr.write('oauth_server: the config must give `jwks` (a private JWK set)\n');
  process.exit(2);
}

// Bind first, so that port 0 can become the issuer's port before the provider exists.
const server = createServer();
server.on('error', (err) => {
  process.stderr.write(`oauth_server: ${err.message}\n`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const ttl = (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 300;
  const provider = new Provider(issuer, {
    clients,
    jwks: config.jwks,
    scopes: [...scopes],
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true },
    ...(config.refreshTokens === true
      ? { issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token') }
      : {}),
    ttl: { AccessToken: ttl, ClientCredentials: ttl },
    features: {
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      devInteractions: { enabled: config.devInteractions === true },
      registration: { enabled: config.registration === true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, _client, oneOf) => oneOf ?? config.defaultResource ?? undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource, client) => {
          const rs = resources.get(resource);
          const allow = allowedResources.get(client.clientId);
          if (!rs || (allow && !allow.has(resource))) {
            throw new errors.InvalidTarget();
          }
          return rs;
        },
      },
    },
  });

  // One line per token request: enough to count them and to see why one failed.
  provider.on('grant.success', (ctx) => {
    const { params } = ctx.oidc;
    process.stderr.write(`event=grant.success grant_type=${params.grant_type} client_id=${ctx.oidc.client?.clientId} `
      + `resource=${params.resource ?? ''} scope=${params.scope ?? ''}\n`);
  });
  provider.on('grant.error', (ctx, err) => {
    process.stderr.write(`event=grant.error client_id=${ctx.oidc.client?.clientId ?? ''} error=${err.error ?? err.message} `
      + `description=${err.error_description ?? ''}\n`);
  });
  provider.on('server_error', (_ctx, err) => {
    process.stderr.write(`event=server_error ${err.stack ?? err}\n`);
  });

  server.on('request', provider.callback());
  process.stdout.write(`issuer=${issuer}\n`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}
