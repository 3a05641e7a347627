// DPoP proofs made by another implementation (panva's `dpop`): for each algorithm (Ed25519 is
// RFC 9864's name of EdDSA with an Ed25519 key), a key pair,
// its RFC 7638 thumbprint (the library's), an HS256 access token bound to it (`cnf.jkt`), and
// a proof for GET <htu> carrying that token's `ath`.
//
//   node dpop.mjs <htu> <HS256 secret>
//
// Prints one JSON line per algorithm: {"alg", "jkt", "token", "proof"}.
import { createHmac } from 'node:crypto';
import { calculateThumbprint, generateKeyPair, generateProof } from 'dpop';

const [htu, secret] = process.argv.slice(2);
const b64 = (value) => Buffer.from(value).toString('base64url');

for (const alg of ['ES256', 'PS256', 'RS256', 'Ed25519']) {
  const keypair = await generateKeyPair(alg);
  const jkt = await calculateThumbprint(keypair.publicKey);
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64(
    JSON.stringify({ sub: 'alice', iat: now, exp: now + 300, cnf: { jkt } }),
  )}`;
  const token = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
  const proof = await generateProof(keypair, htu, 'GET', undefined, token);
  console.log(JSON.stringify({ alg, jkt, token, proof }));
}
