// The web page of the full_flow example: the JWT guide's whole flow in a browser, with DPoP
// (RFC 9449) from a key this page can use but never read. One ES module; no framework, no build
// step, nothing from another origin (the Content-Security-Policy forbids it anyway).
//
// Where things live:
// - the access token: in this module's memory only (never localStorage, sessionStorage or a
//   cookie script can read): a reload loses it, and the page gets a new one by refreshing;
// - the refresh token: in the server's HttpOnly, SameSite=Strict cookie for /auth, which this
//   script never sees;
// - the DPoP key: an ECDSA P-256 key pair made by WebCrypto with `extractable: false`, kept in
//   IndexedDB (CryptoKey objects survive structured cloning, their private half stays inside the
//   browser): script injected into the page could sign with it while the page is open, but cannot
//   carry it away.

const DB_NAME = 'full_flow';
const DB_STORE = 'keys';
const KEY_NAME = 'dpop';
const encoder = new TextEncoder();

// The session, in memory only.
let accessToken = null;
let tokenType = null; // 'DPoP' or 'Bearer', as the server said
let subject = null;
let dpopNonce = null; // the latest DPoP-Nonce the server sent (DPOP_NONCE=1)
let keyPair = null; // { privateKey, publicKey }
let publicJwk = null;
let refreshing = null; // the refresh in flight: a refresh token is good once, so one at a time

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// The DPoP key, in IndexedDB

function openDb() {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(DB_NAME, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(DB_STORE);
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

/** Runs `work(store)` in one transaction and answers its request's result. */
async function inStore(mode, work) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const transaction = db.transaction(DB_STORE, mode);
      const request = work(transaction.objectStore(DB_STORE));
      transaction.oncomplete = () => resolve(request.result);
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error);
    });
  } finally {
    db.close();
  }
}

/** The key pair of this browser's session: the stored one, or a new non-extractable one. */
async function dpopKey() {
  if (keyPair) return keyPair;
  let stored = await inStore('readonly', (store) => store.get(KEY_NAME));
  if (!stored) {
    stored = await crypto.subtle.generateKey(
      { name: 'ECDSA', namedCurve: 'P-256' },
      false, // the private key can sign, never be exported
      ['sign', 'verify'],
    );
    await inStore('readwrite', (store) => store.put(stored, KEY_NAME));
  }
  // A public key is always exportable: the proofs carry it as a JWK.
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', stored.publicKey);
  publicJwk = { kty, crv, x, y };
  keyPair = stored;
  return keyPair;
}

/** After a logout: the next session gets a new key. */
async function forgetKey() {
  keyPair = null;
  publicJwk = null;
  await inStore('readwrite', (store) => store.delete(KEY_NAME));
}

// ---------------------------------------------------------------------------------------------
// DPoP proofs (RFC 9449 §4)

function base64url(bytes) {
  let binary = '';
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const base64urlJson = (value) => base64url(encoder.encode(JSON.stringify(value)));

/**
 * A proof for `method` on `path` of this origin: `htu` is the page's own origin, which is the
 * server's (its PUBLIC_URL, or the address it listens on). With `token`, `ath` binds the proof
 * to it.
 */
async function proof(method, path, token) {
  const { privateKey } = await dpopKey();
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: publicJwk };
  const claims = {
    jti: crypto.randomUUID(),
    htm: method,
    htu: location.origin + path,
    iat: Math.floor(Date.now() / 1000),
  };
  if (token) claims.ath = base64url(await crypto.subtle.digest('SHA-256', encoder.encode(token)));
  if (dpopNonce) claims.nonce = dpopNonce;
  const input = `${base64urlJson(header)}.${base64urlJson(claims)}`;
  // WebCrypto's ECDSA signature is r || s, exactly the JWS form (RFC 7518 §3.4).
  const signature = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, encoder.encode(input));
  return `${input}.${base64url(signature)}`;
}

// ---------------------------------------------------------------------------------------------
// Talking to the server

/** Status, JSON (or text) body, challenge and Retry-After of a response. */
async function readAnswer(response) {
  const text = await response.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  return {
    status: response.status,
    body,
    challenge: response.headers.get('WWW-Authenticate') ?? '',
    retryAfter: response.headers.get('Retry-After'),
  };
}

/** The server wants a proof with its nonce (RFC 9449 §8: 400 at the token endpoints, 401 elsewhere). */
function wantsNonce(answer) {
  return (
    (answer.status === 400 && answer.body?.error === 'use_dpop_nonce') ||
    (answer.status === 401 && answer.challenge.includes('use_dpop_nonce'))
  );
}

/**
 * One call: `auth` sends the access token (with a proof bound to it when it is a DPoP token);
 * without it, a proof of the key alone (login, refresh). Retries once with the server's nonce
 * when it asks for one, and once after a silent refresh when the access token is refused
 * (expired, say).
 */
async function send(method, path, { body, auth = false } = {}) {
  let retriedNonce = false;
  let refreshed = false;
  for (;;) {
    const headers = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (auth && accessToken) {
      headers.Authorization = `${tokenType} ${accessToken}`;
      if (tokenType === 'DPoP') headers.DPoP = await proof(method, path, accessToken);
    } else {
      headers.DPoP = await proof(method, path, null);
    }
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
      redirect: 'error',
    });
    const nonce = response.headers.get('DPoP-Nonce');
    if (nonce) dpopNonce = nonce;
    const answer = await readAnswer(response);
    if (!retriedNonce && nonce && wantsNonce(answer)) {
      retriedNonce = true;
      continue;
    }
    if (auth && !refreshed && answer.status === 401 && answer.challenge.includes('error="invalid_token"')) {
      refreshed = true;
      if (await refresh()) continue;
    }
    return answer;
  }
}

/** The `sub` of a signed token (a JWE's claims are not for the page to read: null). */
function subjectOf(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const bytes = Uint8Array.from(atob(parts[1].replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes)).sub ?? null;
  } catch {
    return null;
  }
}

/** Takes the access token of a token response. */
function adopt(body) {
  accessToken = body.access_token;
  tokenType = body.token_type === 'DPoP' ? 'DPoP' : 'Bearer';
  subject = subjectOf(accessToken) ?? subject;
}

function forgetSession() {
  accessToken = null;
  tokenType = null;
  subject = null;
}

/**
 * A new access token from the refresh cookie (rotated by the server), asked with a proof by this
 * browser's key (the refresh token is bound to the login's key). True when it worked; a refused
 * refresh ends the session. Concurrent callers share one refresh.
 */
function refresh() {
  refreshing ??= (async () => {
    try {
      const answer = await send('POST', '/auth/refresh');
      if (answer.status === 200) {
        adopt(answer.body);
        return true;
      }
      // 401: the refresh token is spent, revoked or unknown; 400: it is bound to another key
      // (invalid_grant). Either way this session is over; a 5xx may pass.
      if (answer.status >= 400 && answer.status < 500) {
        forgetSession();
        showSignedOut();
      }
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

// ---------------------------------------------------------------------------------------------
// The page

function messageOf(answer) {
  const body = answer.body;
  let message =
    (body && typeof body === 'object' && (body.error_description || body.error)) ||
    (typeof body === 'string' && body) ||
    `HTTP ${answer.status}`;
  if (answer.status === 429 && answer.retryAfter) message += ` (retry after ${answer.retryAfter} s)`;
  if (body?.error === 'invalid_dpop_proof') {
    // The usual cause for a newcomer: the page opened under another name than the server's.
    message += ` (the proofs name ${location.origin}: open the page at the server's PUBLIC_URL, as its banner prints it)`;
  }
  return message;
}

function showError(message) {
  const error = $('error');
  error.textContent = message;
  error.hidden = false;
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

function setBusy(text) {
  $('busy').textContent = text;
  for (const button of document.querySelectorAll('button')) button.disabled = Boolean(text);
}

function showSignedOut() {
  $('session').hidden = true;
  $('signed-in').textContent = '';
  $('step-up').hidden = true;
  $('login').hidden = false;
  $('result-text').textContent = 'No call yet.';
}

/** Focus follows the flow, so that a keyboard or screen-reader user lands where the page went. */
function focusSignedIn() {
  $('signed-in').focus();
}

async function showSignedIn() {
  if (!subject) {
    // An encrypted token: ask the server who this is.
    const answer = await send('GET', '/protected', { auth: true });
    subject = answer.body?.sub ?? '?';
  }
  $('signed-in').textContent = `Signed in as ${subject}`;
  $('token-kind').textContent =
    tokenType === 'DPoP'
      ? 'The access token is bound to this browser’s DPoP key (RFC 9449), and kept in memory only.'
      : 'The access token is a bearer token (DPoP is off on the server), kept in memory only.';
  $('login').hidden = true;
  $('session').hidden = false;
}

function showResult(path, answer) {
  const lines = [`${path}: HTTP ${answer.status}`];
  if (answer.challenge) lines.push(`WWW-Authenticate: ${answer.challenge}`);
  if (answer.body !== null) lines.push(JSON.stringify(answer.body, null, 2));
  $('result-text').textContent = lines.join('\n');
}

/** Runs `work` with the buttons disabled, showing its failure in the alert. */
async function action(text, work) {
  clearError();
  setBusy(text);
  try {
    await work();
  } catch (error) {
    showError(`${text.replace(/…$/, '')} failed: ${error.message}`);
  } finally {
    setBusy('');
  }
}

async function logIn(event) {
  event.preventDefault();
  const username = $('username').value;
  const password = $('password').value;
  await action('Logging in…', async () => {
    const answer = await send('POST', '/auth/login', { body: { username, password } });
    $('password').value = '';
    if (answer.status !== 200) {
      showError(messageOf(answer));
      return;
    }
    adopt(answer.body);
    subject = subjectOf(accessToken);
    await showSignedIn();
    focusSignedIn();
  });
}

async function callProtected() {
  await action('Calling /protected…', async () => {
    const answer = await send('GET', '/protected', { auth: true });
    if (accessToken) showResult('/protected', answer);
  });
}

async function callAdmin() {
  const answer = await send('GET', '/admin', { auth: true });
  if (!accessToken) return;
  showResult('/admin', answer);
  // RFC 9470: the token is fine, the authentication behind it is not enough.
  const stepUp = answer.status === 401 && answer.challenge.includes('insufficient_user_authentication');
  $('step-up').hidden = !stepUp;
  if (stepUp) $('code').focus();
}

async function verify(event) {
  event.preventDefault();
  const code = $('code').value.trim();
  await action('Verifying…', async () => {
    const answer = await send('POST', '/auth/mfa/verify', { auth: true, body: { code } });
    $('code').value = '';
    if (answer.status !== 200) {
      showError(messageOf(answer));
      return;
    }
    adopt(answer.body);
    $('step-up').hidden = true;
    await callAdmin(); // the call that asked for the second factor, again
  });
}

async function logOut() {
  await action('Logging out…', async () => {
    const answer = await send('POST', '/auth/logout', { auth: true });
    if (answer.status >= 500) {
      showError(messageOf(answer));
      return;
    }
    forgetSession();
    await forgetKey();
    showSignedOut();
    $('username').focus();
  });
}

async function start() {
  $('login').addEventListener('submit', logIn);
  $('step-up').addEventListener('submit', verify);
  $('call-protected').addEventListener('click', callProtected);
  $('call-admin').addEventListener('click', () => action('Calling /admin…', callAdmin));
  $('logout').addEventListener('click', logOut);
  if (!window.isSecureContext || !globalThis.crypto?.subtle) {
    $('busy').textContent = '';
    showError(
      'This page needs a secure context for WebCrypto: open it as http://127.0.0.1 or http://localhost, or serve HTTPS (TLS_CERT).',
    );
    return;
  }
  // After a reload there is no access token in memory: the refresh cookie, if any, gives one.
  let resumed = false;
  await action('Resuming the session…', async () => {
    resumed = await refresh();
    if (resumed) await showSignedIn();
  });
  // No session, or no way to resume it (the alert says why): the login form.
  if (!resumed) showSignedOut();
}

start();
