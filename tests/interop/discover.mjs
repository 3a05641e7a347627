// An OAuth client (oauth4webapi) discovers a protected resource from its 401, as RFC 9728 §5
// describes: the challenge names the metadata, the metadata names the authorization server,
// whose own metadata (RFC 8414) the client then reads.
//
//   node discover.mjs <resource URL> <a stale access token>
//
// Prints one JSON line with what it learnt; exits non-zero when a step fails.
import * as oauth from 'oauth4webapi';

const [resourceArg, staleToken] = process.argv.slice(2);
const resource = new URL(resourceArg);
const insecure = { [oauth.allowInsecureRequests]: true }; // the test servers speak plain HTTP on loopback

// 1. A call with a token the resource refuses: the library parses the challenge.
let challenge;
try {
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
  const headers = new Headers({ 'content-type': 'application/json' });
  await oauth.protectedResourceRequest(staleToken, 'POST', resource, headers, body, insecure);
  throw new Error('the resource accepted a stale token');
} catch (err) {
  if (!(err instanceof oauth.WWWAuthenticateChallengeError)) throw err;
  challenge = err.cause.find((c) => c.scheme === 'bearer');
}
const resourceMetadata = challenge?.parameters?.resource_metadata;
if (!resourceMetadata) throw new Error('no resource_metadata in the challenge');

// 2. The protected resource metadata, fetched and validated (§3.3: resource matches).
const response = await oauth.resourceDiscoveryRequest(resource, insecure);
if (response.url !== resourceMetadata) {
  throw new Error(`the challenge names ${resourceMetadata}, the well-known URL is ${response.url}`);
}
const metadata = await oauth.processResourceDiscoveryResponse(resource, response);

// 3. The authorization server it names.
const issuer = new URL(metadata.authorization_servers[0]);
const asResponse = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure });
const as = await oauth.processDiscoveryResponse(issuer, asResponse);

console.log(JSON.stringify({
  error: challenge.parameters.error,
  resource_metadata: resourceMetadata,
  resource: metadata.resource,
  scopes_supported: metadata.scopes_supported,
  issuer: as.issuer,
  token_endpoint: as.token_endpoint,
}));
