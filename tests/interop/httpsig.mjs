// Requests signed by another implementation of RFC 9421 (the npm `http-message-signatures`):
// for each algorithm, a key pair, an HS256 access token bound to its public key (`cnf.jwk`),
// and the `Signature-Input` / `Signature` of GET <url> covering `@method`, `@target-uri` and
// `authorization`, with a nonce. The library's own RSA-PSS signer uses node's default salt length
// (the longest), not the 64 bytes RFC 9421 §3.3.1 fixes: that key signs with a 64-byte salt here.
//
//   node httpsig.mjs <url> <HS256 secret>
//
// Prints one JSON line per algorithm: {"alg", "token", "signatureInput", "signature"}.
//
//   node httpsig.mjs sign < requests.json
//
// Signs each request of a JSON array with the library, as the caller asks: {"key": {"jwk": <a
// private JWK>} or {"hmac": <base64url secret>}, "alg", "keyid", "label", "request": {"method",
// "url", "headers"}, "fields", "params", "paramValues": {"created", "expires" (seconds), "nonce",
// "alg", ...}}. Prints one JSON line per request, in order: {"signatureInput", "signature"}.
import { constants, createHmac, createPrivateKey, createSign, generateKeyPairSync } from 'node:crypto';
import { httpbis, createSigner } from 'http-message-signatures';

const b64 = (value) => Buffer.from(value).toString('base64url');

if (process.argv[2] === 'sign') {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  for (const spec of JSON.parse(Buffer.concat(chunks).toString('utf8'))) {
    const key = spec.key.jwk
      ? createPrivateKey({ key: spec.key.jwk, format: 'jwk' })
      : Buffer.from(spec.key.hmac, 'base64url');
    const paramValues = { ...spec.paramValues };
    for (const name of ['created', 'expires']) {
      if (typeof paramValues[name] === 'number') paramValues[name] = new Date(paramValues[name] * 1000);
    }
    const signed = await httpbis.signMessage(
      {
        key: createSigner(key, spec.alg, spec.keyid),
        name: spec.label,
        fields: spec.fields,
        params: spec.params,
        paramValues,
      },
      spec.request,
    );
    console.log(JSON.stringify({ signatureInput: signed.headers['Signature-Input'], signature: signed.headers.Signature }));
  }
  process.exit(0);
}

const [url, secret] = process.argv.slice(2);

const keys = {
  'ecdsa-p256-sha256': () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  'ecdsa-p384-sha384': () => generateKeyPairSync('ec', { namedCurve: 'P-384' }),
  ed25519: () => generateKeyPairSync('ed25519'),
  'rsa-pss-sha512': () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
};

for (const [alg, generate] of Object.entries(keys)) {
  const { publicKey, privateKey } = generate();
  const jwk = publicKey.export({ format: 'jwk' });
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64(
    JSON.stringify({ sub: 'alice', iat: now, exp: now + 300, cnf: { jwk } }),
  )}`;
  const token = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
  const request = { method: 'GET', url, headers: { authorization: `Bearer ${token}` } };
  const signed = await httpbis.signMessage(
    {
      key:
        alg === 'rsa-pss-sha512'
          ? {
              id: `client-${alg}`,
              alg,
              sign: async (data) =>
                createSign('sha512')
                  .update(data)
                  .sign({ key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 }),
            }
          : createSigner(privateKey, alg, `client-${alg}`),
      fields: ['@method', '@target-uri', 'authorization'],
      params: ['created', 'keyid', 'alg', 'nonce'],
      paramValues: { nonce: `n-${alg}-${now}` },
    },
    request,
  );
  console.log(
    JSON.stringify({ alg, token, signatureInput: signed.headers['Signature-Input'], signature: signed.headers.Signature }),
  );
}
