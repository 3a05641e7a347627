// A FAPI 2.0 authorization server: panva's oidc-provider with its FAPI 2.0 profile
// (`features.fapi.profile: '2.0'`), DPoP (RFC 9449), certificate-bound access tokens (RFC 8705),
// resource indicators (RFC 8707: JWT access tokens, RFC 9068, for the resource
// `https://api.example.com/`: PS256 for most clients, ES256 for `mtls-client`), introspection
// (RFC 7662) answered as signed and encrypted JWTs (RFC 9701, `jwtIntrospection`,
// `encryption`), on an ephemeral loopback port. It is also the clients' side: it asks its own
// token endpoint for tokens with the client_credentials grant and `private_key_jwt` (the FAPI 2.0
// profile's client authentication: the assertion's `aud` must be the issuer), and makes the DPoP
// proofs (panva's `dpop`).
//
//   CLIENT_CERT=client.pem RS_PUBLIC_KEY="$(cat rs.pub.pem)" node fapi_provider.mjs
//
// CLIENT_CERT: the PEM certificate of `mtls-client`. The provider is plain HTTP and reads the
// client certificate from `x-ssl-client-cert` (URL-encoded PEM), as oidc-provider does behind a
// TLS-terminating proxy (its documented `features.mTLS.getCertificate`).
// RS_PUBLIC_KEY: the resource server's public key (PEM, P-256): it authenticates to the
// introspection endpoint with `private_key_jwt` as `api`, `api-enc` or `api-other`.
//
// Prints one JSON line {"issuer", "decryption_jwk"} (the private ECDH-ES key of `api-enc`); then,
// for each line read on stdin, one JSON line:
//   token <client> [jwt|opaque]   {"token", "token_type"} (DPoP proof sent for `dpop-client`)
//   proof <METHOD> <URL> <token>  {"proof"}: a DPoP proof by `dpop-client`'s key with `ath`
// Exits when stdin closes.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import readline from 'node:readline';
import { generateKeyPair as dpopKeyPair, generateProof } from 'dpop';
import { exportJWK, generateKeyPair, importSPKI, SignJWT } from 'jose';
import Provider from 'oidc-provider';

const RESOURCE = 'https://api.example.com/';

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const privateJwk = async (alg, kid, use, options = {}) => {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...options });
  return { ...(await exportJWK(privateKey)), alg, kid, use };
};
const publicOf = ({ d, p, q, dp, dq, qi, ...rest }) => rest;

// The authorization server's signing keys (FAPI 2.0: PS256 and ES256).
const serverKeys = [await privateJwk('PS256', 'as-ps256', 'sig'), await privateJwk('ES256', 'as-es256', 'sig')];
// The clients' keys: one for private_key_jwt (shared by the token clients), the resource
// server's (given), and the resource server's key for encrypted answers.
const clientKey = await generateKeyPair('ES256', { extractable: true });
const clientJwk = { ...(await exportJWK(clientKey.publicKey)), alg: 'ES256', use: 'sig', kid: 'client' };
const rsJwk = {
  ...(await exportJWK(await importSPKI(process.env.RS_PUBLIC_KEY, 'ES256', { extractable: true }))),
  alg: 'ES256',
  use: 'sig',
  kid: 'rs',
};
const decryptionJwk = await privateJwk('ECDH-ES', 'rs-enc', 'enc', { crv: 'P-256' });
const certificate = readFileSync(process.env.CLIENT_CERT, 'utf8');

const tokenClient = (client_id, extra = {}) => ({
  client_id,
  token_endpoint_auth_method: 'private_key_jwt',
  token_endpoint_auth_signing_alg: 'ES256',
  id_token_signed_response_alg: 'ES256',
  introspection_signed_response_alg: 'ES256',
  jwks: { keys: [clientJwk] },
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  scope: 'api:read',
  ...extra,
});
const resourceServer = (client_id, extra = {}) => ({
  client_id,
  token_endpoint_auth_method: 'private_key_jwt',
  token_endpoint_auth_signing_alg: 'ES256',
  id_token_signed_response_alg: 'ES256',
  introspection_signed_response_alg: 'ES256',
  jwks: { keys: [rsJwk] },
  grant_types: [],
  response_types: [],
  redirect_uris: [],
  ...extra,
});

const provider = new Provider(issuer, {
  jwks: { keys: serverKeys },
  scopes: ['api:read'],
  ttl: { ClientCredentials: 600 },
  // An opaque client_credentials token's introspection names its client as `sub`, as RFC 9068
  // §2.2 has its JWT form do (oidc-provider gives the JWT a `sub`, the opaque answer none).
  extraTokenClaims: (_ctx, token) => (token.resourceServer ? undefined : { sub: token.clientId }),
  clients: [
    tokenClient('dpop-client', { dpop_bound_access_tokens: true }),
    tokenClient('mtls-client', { tls_client_certificate_bound_access_tokens: true }),
    tokenClient('bearer-client'),
    // The resource server: signed answers (ES256); signed (PS256) and encrypted ones; and
    // another client (its answers name it in `aud`).
    resourceServer('api'),
    resourceServer('api-other'),
    // The quickstart's introspection client (its examples authenticate with client_secret_basic).
    resourceServer('api-basic', {
      token_endpoint_auth_method: 'client_secret_basic',
      token_endpoint_auth_signing_alg: undefined,
      client_secret: 'api-basic-secret',
    }),
    resourceServer('api-enc', {
      introspection_signed_response_alg: 'PS256',
      introspection_encrypted_response_alg: 'ECDH-ES',
      introspection_encrypted_response_enc: 'A256GCM',
      jwks: { keys: [rsJwk, publicOf(decryptionJwk)] },
    }),
  ],
  features: {
    fapi: { enabled: true, profile: '2.0' },
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    dPoP: { enabled: true },
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      getCertificate: (ctx) => {
        const value = ctx.get('x-ssl-client-cert');
        return value ? decodeURIComponent(value) : undefined;
      },
    },
    introspection: { enabled: true },
    jwtIntrospection: { enabled: true },
    encryption: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (_ctx, _client, oneOf) => oneOf,
      getResourceServerInfo: (_ctx, resource, client) => {
        if (resource !== RESOURCE) throw new Error('unknown resource');
        const alg = client.clientId === 'mtls-client' ? 'ES256' : 'PS256';
        return { scope: 'api:read', audience: RESOURCE, accessTokenFormat: 'jwt', jwt: { sign: { alg } } };
      },
    },
  },
});
provider.proxy = false;
server.on('request', provider.callback());

const tokenEndpoint = `${issuer}/token`;
const dpopKey = await dpopKeyPair('ES256');

/** A client assertion (private_key_jwt) of `clientId` for the issuer. */
const assertion = (clientId) => new SignJWT({})
  .setProtectedHeader({ alg: 'ES256', kid: 'client' })
  .setIssuer(clientId)
  .setSubject(clientId)
  .setAudience(issuer)
  .setJti(crypto.randomUUID())
  .setIssuedAt()
  .setExpirationTime('1m')
  .sign(clientKey.privateKey);

/** A client_credentials token of `clientId`: a JWT for the resource, or opaque without one. */
async function token(clientId, format) {
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    scope: 'api:read',
    client_id: clientId,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: await assertion(clientId),
  });
  if (format !== 'opaque') body.set('resource', RESOURCE);
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (clientId === 'dpop-client') headers.dpop = await generateProof(dpopKey, tokenEndpoint, 'POST');
  if (clientId === 'mtls-client') headers['x-ssl-client-cert'] = encodeURIComponent(certificate);
  const response = await fetch(tokenEndpoint, { method: 'POST', headers, body });
  const answer = await response.json();
  if (!response.ok) return { error: JSON.stringify(answer) };
  return { token: answer.access_token, token_type: answer.token_type };
}

// The certificate must be one X.509 certificate: fail early with a clear message otherwise.
new X509Certificate(certificate);
console.log(JSON.stringify({ issuer, decryption_jwk: decryptionJwk }));

const input = readline.createInterface({ input: process.stdin });
for await (const line of input) {
  const [command, ...args] = line.trim().split(' ');
  try {
    if (command === 'token') {
      console.log(JSON.stringify(await token(args[0], args[1])));
    } else if (command === 'proof') {
      const [method, url, accessToken] = args;
      console.log(JSON.stringify({ proof: await generateProof(dpopKey, url, method, undefined, accessToken) }));
    }
  } catch (err) {
    console.log(JSON.stringify({ error: String(err) }));
  }
}
server.close();
process.exit(0);
