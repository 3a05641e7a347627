// A whole DPoP session of the full_flow example with panva's `dpop` as the client: log in on
// instance A, call instance B, replay the login's proof on B, refresh with another key and
// without a proof (both must be refused), refresh with the login's key, call with the new
// token, log out, refresh again. Proofs name the instances' one external URL.
//
//   node session.mjs <public url> <base URL of A> <base URL of B> <client address>
//
// Prints one JSON object: for each step its HTTP status and JSON `code` (and for the token
// answers their `token_type` and whether `cnf.jkt` is the key's RFC 7638 thumbprint). The Rust
// test (tests/session_binding.rs) checks them.
import { calculateThumbprint, generateKeyPair, generateProof } from 'dpop';

const [publicUrl, a, b, address] = process.argv.slice(2);
const key = await generateKeyPair('ES256');
const thief = await generateKeyPair('ES256');
const jkt = await calculateThumbprint(key.publicKey);
const proof = (keypair, method, path, accessToken) =>
  generateProof(keypair, `${publicUrl}${path}`, method, undefined, accessToken);
const claims = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url'));

async function call(base, method, path, { dpop, token, cookie, body } = {}) {
  const headers = {
    'user-agent': 'tower-jwt-guard interop (panva/dpop)',
    'accept-language': 'en-GB',
    'x-forwarded-for': address,
  };
  if (dpop) headers.dpop = dpop;
  if (token) headers.authorization = `DPoP ${token}`;
  if (cookie) headers.cookie = `refresh_token=${cookie}`;
  if (body) headers['content-type'] = 'application/json';
  const response = await fetch(`${base}${path}`, { method, headers, body: body && JSON.stringify(body) });
  const text = await response.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = null;
  }
  const set = response.headers
    .getSetCookie()
    .map((value) => value.split(';')[0])
    .find((value) => value.startsWith('refresh_token=') && value !== 'refresh_token=');
  return { status: response.status, json, cookie: set && set.slice('refresh_token='.length) };
}

const steps = {};
const record = (name, answer) => {
  steps[name] = { status: answer.status, code: answer.json?.code ?? null };
  const token = answer.json?.access_token;
  if (token) {
    steps[name].token_type = answer.json.token_type;
    steps[name].jkt_is_the_keys = claims(token).cnf?.jkt === jkt;
  }
  return answer;
};

const credentials = { username: 'alice', password: 'alice-password' };
const loginProof = await proof(key, 'POST', '/auth/login');
const login = record('login', await call(a, 'POST', '/auth/login', { dpop: loginProof, body: credentials }));
const token = login.json?.access_token;
record(
  'call_on_the_other_instance',
  await call(b, 'GET', '/protected', { token, dpop: await proof(key, 'GET', '/protected', token) }),
);
record(
  'login_proof_replayed_on_the_other_instance',
  await call(b, 'POST', '/auth/login', { dpop: loginProof, body: credentials }),
);
record(
  'refresh_with_another_key',
  await call(b, 'POST', '/auth/refresh', { cookie: login.cookie, dpop: await proof(thief, 'POST', '/auth/refresh') }),
);
record('refresh_without_a_proof', await call(b, 'POST', '/auth/refresh', { cookie: login.cookie }));
const refreshed = record(
  'refresh_with_the_key',
  await call(b, 'POST', '/auth/refresh', { cookie: login.cookie, dpop: await proof(key, 'POST', '/auth/refresh') }),
);
const renewed = refreshed.json?.access_token;
record(
  'call_with_the_refreshed_token',
  await call(a, 'GET', '/protected', { token: renewed, dpop: await proof(key, 'GET', '/protected', renewed) }),
);
record(
  'logout',
  await call(a, 'POST', '/auth/logout', {
    token: renewed,
    cookie: refreshed.cookie,
    dpop: await proof(key, 'POST', '/auth/logout', renewed),
  }),
);
record(
  'refresh_after_logout',
  await call(b, 'POST', '/auth/refresh', { cookie: refreshed.cookie, dpop: await proof(key, 'POST', '/auth/refresh') }),
);
console.log(JSON.stringify(steps));
