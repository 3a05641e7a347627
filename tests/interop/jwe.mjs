// Encrypted tokens (JWE) made and read by another implementation (panva's `jose`), with the
// JWT guide's settings: EncryptJWT, alg A256KW, enc A256GCM, iat, exp in two hours, issuer and
// audience, under a 32-byte shared secret; and nested sign-then-encrypt tokens (an ES256 JWS
// inside RSA-OAEP-256 or ECDH-ES+A256KW with A256GCM, cty JWT).
//
//   node jwe.mjs <config.json> encrypt            prints one JSON line per kind: {"kind", "token"}
//   node jwe.mjs <config.json> guide              prints the guide's token only (config: secret, issuer, audience)
//   node jwe.mjs <config.json> decrypt < lines    reads {"kind", "token"} lines, prints {"kind", "claims"}
//
// config.json: {secret, issuer, audience, rsaPublic, rsaPrivate, ecPublic, ecPrivate,
// signingPrivate, signingPublic} (PEM strings; the secret as text, its UTF-8 bytes the key).
import { readFileSync } from 'node:fs';
import {
  CompactEncrypt,
  compactDecrypt,
  EncryptJWT,
  importPKCS8,
  importSPKI,
  jwtDecrypt,
  jwtVerify,
  SignJWT,
} from 'jose';

const [configPath, mode] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const secret = new TextEncoder().encode(config.secret);
const { issuer, audience } = config;
const nested = {
  'RSA-OAEP-256': { publicKey: config.rsaPublic, privateKey: config.rsaPrivate },
  'ECDH-ES+A256KW': { publicKey: config.ecPublic, privateKey: config.ecPrivate },
};

// The guide's example, as written there.
const guide = () =>
  new EncryptJWT({ sub: 'alice', role: 'admin' })
    .setProtectedHeader({ alg: 'A256KW', enc: 'A256GCM' })
    .setIssuedAt()
    .setIssuer(issuer)
    .setAudience(audience)
    .setExpirationTime('2h')
    .encrypt(secret);

if (mode === 'guide') {
  console.log(JSON.stringify({ kind: 'A256KW', token: await guide() }));
} else if (mode === 'encrypt') {
  console.log(JSON.stringify({ kind: 'A256KW', token: await guide() }));
  const signingKey = await importPKCS8(config.signingPrivate, 'ES256');
  for (const [alg, keys] of Object.entries(nested)) {
    const jws = await new SignJWT({ sub: 'bob' })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
      .setIssuedAt()
      .setIssuer(issuer)
      .setAudience(audience)
      .setExpirationTime('2h')
      .sign(signingKey);
    const token = await new CompactEncrypt(new TextEncoder().encode(jws))
      .setProtectedHeader({ alg, enc: 'A256GCM', cty: 'JWT' })
      .encrypt(await importSPKI(keys.publicKey, alg));
    console.log(JSON.stringify({ kind: alg, token }));
  }
} else if (mode === 'decrypt') {
  const verifyKey = await importSPKI(config.signingPublic, 'ES256');
  for (const line of readFileSync(0, 'utf8').split('\n').filter(Boolean)) {
    const { kind, token } = JSON.parse(line);
    let claims;
    if (kind === 'A256KW') {
      ({ payload: claims } = await jwtDecrypt(token, secret, { issuer, audience }));
    } else {
      const privateKey = await importPKCS8(nested[kind].privateKey, kind);
      const { plaintext, protectedHeader } = await compactDecrypt(token, privateKey);
      if (protectedHeader.cty !== 'JWT') throw new Error(`cty ${protectedHeader.cty}`);
      ({ payload: claims } = await jwtVerify(new TextDecoder().decode(plaintext), verifyKey, { issuer, audience }));
    }
    console.log(JSON.stringify({ kind, claims }));
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}
