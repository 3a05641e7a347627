// A real authorization server (panva's oidc-provider) with introspection (RFC 7662) and
// revocation (RFC 7009) enabled, on an ephemeral loopback port. It mints opaque access tokens
// for `alice` on request:
//
//   node provider.mjs
//
// Prints one JSON line {"issuer": ...}; then, for every line `mint` read on stdin, one JSON line
// {"token": ...} (an opaque access token of client `app`). Exits when stdin closes.
import http from 'node:http';
import readline from 'node:readline';
import Provider from 'oidc-provider';

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    // The client the tokens are issued to (it may revoke them).
    { client_id: 'app', client_secret: 'app-secret', grant_types: ['client_credentials'], redirect_uris: [], response_types: [] },
    // The resource server: it authenticates to the introspection endpoint.
    { client_id: 'orders-api', client_secret: 'orders-api-secret', grant_types: [], redirect_uris: [], response_types: [] },
  ],
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    introspection: { enabled: true },
    revocation: { enabled: true },
  },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
});
provider.proxy = false;
server.on('request', provider.callback());

console.log(JSON.stringify({ issuer }));

const input = readline.createInterface({ input: process.stdin });
for await (const line of input) {
  if (line.trim() !== 'mint') continue;
  const client = await provider.Client.find('app');
  const grant = new provider.Grant({ accountId: 'alice', clientId: 'app' });
  grant.addOIDCScope('openid profile');
  const grantId = await grant.save();
  const token = new provider.AccessToken({ accountId: 'alice', client, grantId, scope: 'openid profile' });
  console.log(JSON.stringify({ token: await token.save() }));
}
server.close();
process.exit(0);
