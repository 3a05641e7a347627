// The crate's signatures verified by another implementation of RFC 9421 (the npm
// `http-message-signatures`), with the Content-Digest (RFC 9530) checked against the body.
//
//   node httpsig_verify.mjs responses <url> <HS256 secret> <server public JWK>
//     Calls <url> as a client and verifies each signed answer (@status, content-digest, and the
//     request's components with ;req): unsigned with a bearer token; signed by this library with
//     a key the token is bound to (the answer then covers "signature";req;key="sig"); a POST with
//     a body; no token (the guard's refusal, signed too); and the first answer with its status
//     changed (must not verify). Prints one JSON line per case: {case, status, verified, digest}.
//
//   node httpsig_verify.mjs serve <client public JWK>
//     A server on 127.0.0.1 (prints {"port"} first) that verifies every request's signature by
//     the client key, covering @method, @target-uri and authorization (and content-digest, checked
//     against the body, when there is one): 200 {"verified":true}, else 401 {"verified":false,"error"}.
import { createHash, createHmac, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import { httpbis, createSigner, createVerifier } from 'http-message-signatures';

const [mode, ...args] = process.argv.slice(2);
const b64 = (value) => Buffer.from(value).toString('base64url');

const ALG = { OKP: 'ed25519', EC: 'ecdsa-p256-sha256', RSA: 'rsa-pss-sha512' };
const verifierOf = (jwk) => {
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const alg = jwk.alg ?? ALG[jwk.kty];
  return async () => ({ id: jwk.kid, algs: [alg], verify: createVerifier(key, alg) });
};

// The Content-Digest field's sha-256 or sha-512 member matches the body.
const digestMatches = (field, body) => {
  if (!field) return false;
  for (const member of field.split(',')) {
    const text = member.trim();
    const [name, value] = [text.slice(0, text.indexOf('=')), text.slice(text.indexOf('=') + 1)];
    const algorithm = { 'sha-256': 'sha256', 'sha-512': 'sha512' }[name];
    if (algorithm && value === `:${createHash(algorithm).update(body).digest('base64')}:`) return true;
  }
  return false;
};

const headersOf = (headers) => Object.fromEntries(headers.entries());

async function verifyResponse(keyLookup, request, response, body) {
  try {
    const verified = await httpbis.verifyMessage(
      { keyLookup, requiredFields: ['@status', 'content-digest', '@method', '@target-uri'] },
      response,
      request,
    );
    return { verified: verified === true, digest: digestMatches(response.headers['content-digest'], body) };
  } catch (error) {
    return { verified: false, error: String(error) };
  }
}

if (mode === 'responses') {
  const [url, secret, serverJwk] = args;
  const keyLookup = verifierOf(JSON.parse(serverJwk));
  const mint = (claims) => {
    const now = Math.floor(Date.now() / 1000);
    const input = `${b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64(
      JSON.stringify({ sub: 'alice', iat: now, exp: now + 300, ...claims }),
    )}`;
    return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
  };
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const bound = mint({ cnf: { jwk: publicKey.export({ format: 'jwk' }) } });
  const cases = [
    ['unsigned', { method: 'GET', url, headers: { authorization: `Bearer ${mint({})}` } }],
    ['signed', { method: 'GET', url, headers: { authorization: `Bearer ${bound}` } }, true],
    ['post', { method: 'POST', url, headers: { authorization: `Bearer ${mint({})}` }, body: '{"hello": "world"}' }],
    ['refused', { method: 'GET', url, headers: {} }],
  ];
  let first;
  for (const [name, plain, sign] of cases) {
    const request = sign
      ? await httpbis.signMessage(
          {
            key: createSigner(privateKey, 'ed25519', 'client'),
            name: 'sig',
            fields: ['@method', '@target-uri', 'authorization'],
            params: ['created', 'keyid', 'nonce'],
            paramValues: { nonce: `n-${Date.now()}` },
          },
          plain,
        )
      : plain;
    const answer = await fetch(url, { method: request.method, headers: request.headers, body: request.body });
    const body = Buffer.from(await answer.arrayBuffer());
    const response = { status: answer.status, headers: headersOf(answer.headers) };
    first ??= { request, response, body };
    const result = await verifyResponse(keyLookup, request, response, body);
    console.log(JSON.stringify({ case: name, status: answer.status, signatureInput: response.headers['signature-input'], ...result }));
  }
  const tampered = { ...first.response, status: first.response.status === 200 ? 201 : 200 };
  const result = await verifyResponse(keyLookup, first.request, tampered, first.body);
  console.log(JSON.stringify({ case: 'tampered', status: tampered.status, ...result }));
} else if (mode === 'serve') {
  const keyLookup = verifierOf(JSON.parse(args[0]));
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const headers = {};
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const name = req.rawHeaders[i].toLowerCase();
        headers[name] = headers[name] ? `${headers[name]}, ${req.rawHeaders[i + 1]}` : req.rawHeaders[i + 1];
      }
      const request = { method: req.method, url: `http://${req.headers.host}${req.url}`, headers };
      const fields = ['@method', '@target-uri', 'authorization'];
      if (body.length > 0) fields.push('content-digest');
      let answer;
      try {
        const verified = await httpbis.verifyMessage(
          { keyLookup, requiredFields: fields, requiredParams: ['created', 'keyid', 'nonce'], maxAge: 60 },
          request,
        );
        if (verified !== true) throw new Error('the signature does not verify');
        if (body.length > 0 && !digestMatches(headers['content-digest'], body)) {
          throw new Error('the body does not match its Content-Digest');
        }
        answer = [200, { verified: true }];
      } catch (error) {
        answer = [401, { verified: false, error: String(error) }];
      }
      res.writeHead(answer[0], { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer[1]));
    });
  });
  server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
} else {
  console.error('usage: httpsig_verify.mjs responses <url> <secret> <jwk> | serve <jwk>');
  process.exit(2);
}
