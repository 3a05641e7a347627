// The full_flow example's web page, driven in the system's Chromium by playwright-core
// (tests/browser.rs starts the servers and runs this script).
//
//   node flow.mjs <main url> <plain url> <screenshot path> <https url>
//
// <main url>: full_flow with DPOP_NONCE=1 and ACCESS_TOKEN_TTL=1: the whole flow (wrong password,
// log in, /protected, the /admin step-up, a reload, other origins, an expired token, log out).
// <plain url>: full_flow with its defaults, in a fresh browser context: log in, /protected, then
// wrong passwords until the rate limit answers.
// <https url>: full_flow with TLS_CERT (self-signed, accepted by this browser): log in, the
// cookie's attributes over HTTPS, a reload, log out.
//
// The page is found by role and accessible name only (the contract of EXAMPLES.md). Each check
// prints one line; the first failure ends the script with a non-zero status.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname } from 'node:path';
import { chromium } from 'playwright-core';

const [mainUrl, plainUrl, screenshotPath, httpsUrl] = process.argv.slice(2);
assert.ok(mainUrl && plainUrl && screenshotPath && httpsUrl, 'usage: node flow.mjs <main url> <plain url> <screenshot path> <https url>');

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TOTP_SECRET = 'JBSWY3DPEHPK3PXP';
const REFRESH_COOKIE = process.env.REFRESH_COOKIE ?? 'refresh_token';
/** The layer's default leeway on `exp`, plus a margin: how long an access token of 1 s is still accepted. */
const EXPIRY_WAIT_MS = 33_000;

const step = (text) => console.log(`ok: ${text}`);

// ---------------------------------------------------------------------------------------------
// RFC 6238 (SHA-1, 6 digits, 30 s), as an authenticator app computes it.

function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const char of text.replace(/=+$/, '')) bits += alphabet.indexOf(char).toString(2).padStart(5, '0');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

function totp(secret, unixSeconds) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(value).padStart(6, '0');
}

// ---------------------------------------------------------------------------------------------
// Pages of other origins: 127.0.0.2 is another site; another port of 127.0.0.1 is the same site
// (SameSite=Strict sends the cookie there) but another origin.

async function otherOrigin(host) {
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end('<!doctype html><title>another origin</title><p>Not the application.</p>');
  });
  await new Promise((resolve) => server.listen(0, host, resolve));
  return { server, url: `http://${host}:${server.address().port}/` };
}

// ---------------------------------------------------------------------------------------------
// Helpers on the page

/** Clicks a button and waits until the page is idle again (it disables its buttons while busy). */
async function click(page, name) {
  await page.getByRole('button', { name, exact: true }).click();
  await page.waitForFunction(() => !document.querySelector('button:disabled'));
}

async function logIn(page, username, password) {
  await page.getByRole('textbox', { name: 'Username' }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await click(page, 'Log in');
}

const result = (page) => page.getByRole('region', { name: 'Result' });

async function alertText(page) {
  const alert = page.getByRole('alert');
  await alert.waitFor({ state: 'visible', timeout: 10_000 });
  return (await alert.textContent()) ?? '';
}

async function assertNoAlert(page) {
  assert.equal(await page.getByRole('alert').count(), 0, `an alert: ${await page.getByRole('alert').allTextContents()}`);
}

/** The refresh cookie as the browser holds it (its own cookie API, not document.cookie). */
async function refreshCookie(context, url) {
  const cookies = await context.cookies(new URL('/auth/refresh', url).href);
  return cookies.find((cookie) => cookie.name === REFRESH_COOKIE);
}

/** What the page's own script can read: storage, cookies, and the DPoP key in IndexedDB. */
function inspect(page) {
  return page.evaluate(async () => {
    const db = await new Promise((resolve, reject) => {
      const open = indexedDB.open('full_flow', 1);
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    const read = (request) =>
      new Promise((resolve, reject) => {
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    const store = db.transaction('keys', 'readonly').objectStore('keys');
    const names = await read(store.getAllKeys());
    const pair = await read(store.get('dpop'));
    db.close();
    const refuses = async (format) => {
      try {
        await crypto.subtle.exportKey(format, pair.privateKey);
        return false;
      } catch {
        return true;
      }
    };
    const storage = (area) => Object.fromEntries(Object.keys(area).map((key) => [key, area.getItem(key)]));
    return {
      local: storage(localStorage),
      session: storage(sessionStorage),
      documentCookie: document.cookie,
      idbNames: names,
      key: pair && {
        type: pair.privateKey.type,
        algorithm: pair.privateKey.algorithm,
        extractable: pair.privateKey.extractable,
        usages: pair.privateKey.usages,
        exportPkcs8Refused: await refuses('pkcs8'),
        exportJwkRefused: await refuses('jwk'),
      },
    };
  });
}

function decodePart(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString());
}

// ---------------------------------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const servers = [];
let failed = false;
try {
  await mainFlow();
  await overHttps();
  await rateLimit();
} catch (error) {
  failed = true;
  console.error(error);
} finally {
  await browser.close();
  for (const server of servers) server.close();
}
process.exit(failed ? 1 : 0);

async function mainFlow() {
  const origin = new URL(mainUrl).origin;
  const context = await browser.newContext({ viewport: { width: 760, height: 600 }, locale: 'en-GB' });
  // Every answer of the main server, in order, and the requests' credentials.
  const exchanges = [];
  const sent = [];
  let lastTokenAt = 0; // when the server last handed out an access token
  context.on('response', (response) => {
    const url = new URL(response.url());
    if (url.origin !== origin) return;
    exchanges.push(`${response.request().method()} ${url.pathname} ${response.status()}`);
    if (url.pathname.startsWith('/auth/') && response.status() === 200) lastTokenAt = Date.now();
  });
  context.on('request', (request) => {
    const url = new URL(request.url());
    if (url.origin === origin) sent.push({ path: url.pathname, headers: request.headers() });
  });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (message) => {
    // The failed refresh on a first visit and the challenges are answers, not errors of the page.
    if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(String(error)));

  const home = await page.goto(mainUrl);
  const headers = home.headers();
  const policy = headers['content-security-policy'] ?? '';
  for (const directive of ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "require-trusted-types-for 'script'"]) {
    assert.ok(policy.includes(directive), `CSP lacks ${directive}: ${policy}`);
  }
  assert.ok(!/unsafe-inline|unsafe-eval/.test(policy), policy);
  assert.equal(headers['x-content-type-options'], 'nosniff');
  assert.equal(headers['referrer-policy'], 'no-referrer');
  step('the page comes with a strict CSP, nosniff and no-referrer');

  // A first visit: no session to resume.
  await page.getByRole('button', { name: 'Log in' }).waitFor();
  await assertNoAlert(page);

  // The wrong password.
  await logIn(page, 'alice', 'not-her-password');
  assert.match(await alertText(page), /invalid username or password/);
  assert.equal(await page.getByText(/Signed in as/).isVisible(), false);
  step('a wrong password shows the server message in an alert');

  // Logging in (DPOP_NONCE=1: the first proof has no nonce, the page retries with the server's).
  await logIn(page, 'alice', 'alice-password');
  await page.getByText('Signed in as alice').waitFor();
  await assertNoAlert(page);
  const logins = exchanges.filter((line) => line.startsWith('POST /auth/login'));
  assert.deepEqual(logins.slice(-2), ['POST /auth/login 400', 'POST /auth/login 200'], exchanges.join('\n'));
  step('log in (after the use_dpop_nonce retry): "Signed in as alice"');

  // Where the tokens live.
  const cookie = await refreshCookie(context, mainUrl);
  assert.ok(cookie, 'no refresh cookie');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.equal(cookie.path, '/auth');
  assert.equal(cookie.secure, true);
  assert.equal((await context.cookies(mainUrl)).length, 0, 'a cookie is sent outside /auth');
  let seen = await inspect(page);
  assert.deepEqual(seen.local, {});
  assert.deepEqual(seen.session, {});
  assert.equal(seen.documentCookie, '');
  assert.deepEqual(seen.idbNames, ['dpop'], 'IndexedDB holds only the key');
  step('refresh cookie HttpOnly, Secure, SameSite=Strict, Path=/auth; no token in storage or document.cookie');

  assert.equal(seen.key.type, 'private');
  assert.equal(seen.key.algorithm.name, 'ECDSA');
  assert.equal(seen.key.algorithm.namedCurve, 'P-256');
  assert.equal(seen.key.extractable, false);
  assert.deepEqual(seen.key.usages, ['sign']);
  assert.equal(seen.key.exportPkcs8Refused, true);
  assert.equal(seen.key.exportJwkRefused, true);
  step('the DPoP private key is non-extractable (exportKey pkcs8 and jwk refused)');

  // /protected, with a DPoP-bound token and a proof bound to it.
  await click(page, 'Call /protected');
  assert.match(await result(page).textContent(), /\/protected: HTTP 200[\s\S]*"sub": "alice"/);
  const call = sent.filter((request) => request.path === '/protected').at(-1);
  const [scheme, token] = call.headers.authorization.split(' ');
  assert.equal(scheme, 'DPoP');
  const [proofHeader, proofClaims] = call.headers.dpop.split('.').slice(0, 2).map(decodePart);
  assert.equal(proofHeader.typ, 'dpop+jwt');
  assert.equal(proofHeader.alg, 'ES256');
  assert.equal(proofHeader.jwk.d, undefined, 'the proof carries a private key');
  assert.equal(proofClaims.htm, 'GET');
  assert.equal(proofClaims.htu, `${origin}/protected`);
  assert.ok(proofClaims.ath && proofClaims.jti && proofClaims.nonce, JSON.stringify(proofClaims));
  assert.equal(decodePart(token.split('.')[1]).cnf.jkt.length, 43, 'the token is bound to the key');
  await assertNoAlert(page);
  step('Call /protected: 200 with a DPoP token (cnf.jkt) and a proof (htu, ath, nonce)');

  // /admin: the RFC 9470 step-up.
  await click(page, 'Call /admin');
  assert.match(await result(page).textContent(), /\/admin: HTTP 401[\s\S]*insufficient_user_authentication/);
  const code = page.getByRole('textbox', { name: 'Code' });
  await code.waitFor();
  await code.fill(totp(TOTP_SECRET, Date.now() / 1000));
  await click(page, 'Verify');
  await assertNoAlert(page);
  assert.match(await result(page).textContent(), /\/admin: HTTP 200[\s\S]*"otp"/);
  assert.equal(await code.count(), 0, 'the Code field stays after the step-up');
  step('Call /admin: step-up challenge, Code + Verify, the retried call answers 200 with amr otp');

  mkdirSync(dirname(screenshotPath), { recursive: true });
  await page.screenshot({ path: screenshotPath });
  step(`screenshot of the signed-in page: ${screenshotPath}`);

  // A reload: the access token was in memory only; the refresh cookie brings a new one.
  const before = (await refreshCookie(context, mainUrl)).value;
  await page.reload();
  await page.getByText('Signed in as alice').waitFor();
  await assertNoAlert(page);
  const afterReload = (await refreshCookie(context, mainUrl)).value;
  assert.notEqual(afterReload, before, 'the refresh token was not rotated');
  await click(page, 'Call /protected');
  assert.match(await result(page).textContent(), /\/protected: HTTP 200/);
  step('a reload keeps the session (refresh on load, rotated cookie)');

  // Script in the page has the cookie's ambient authority, but not the key: a refresh without a
  // proof by the login's key gets nothing once the refresh token is bound to it (RFC 9449 §5,
  // `SENDER_MISMATCH`; before that binding, the server answers a bearer token, noted below).
  const keyless = await page.evaluate(async () => {
    const response = await fetch('/auth/refresh', { method: 'POST' });
    return { status: response.status, body: await response.json() };
  });
  if (keyless.status === 200) {
    assert.equal(keyless.body.token_type, 'Bearer');
    console.log('note: this build does not bind the refresh token to the DPoP key (a keyless refresh got a bearer token)');
  } else {
    assert.equal(keyless.status, 400, JSON.stringify(keyless));
    assert.equal(keyless.body.code, 'SENDER_MISMATCH', JSON.stringify(keyless));
    assert.equal(keyless.body.access_token, undefined);
    step('a refresh without a proof by the login key gets no token (400 SENDER_MISMATCH)');
  }

  // Other origins cannot use the session: not another site (the cookie is not sent), not another
  // port of the same host (same site: the cookie is sent, the server refuses the origin).
  const sessionCookie = (await refreshCookie(context, mainUrl)).value;
  for (const host of ['127.0.0.2', '127.0.0.1']) {
    const { server, url } = await otherOrigin(host);
    servers.push(server);
    const attacker = await context.newPage();
    // The answers are refused to the page (CORS, Cross-Origin-Resource-Policy): the DevTools
    // protocol shows what went over the wire.
    const wire = new Map();
    const entry = (id) => wire.get(id) ?? wire.set(id, {}).get(id);
    const cdp = await context.newCDPSession(attacker);
    await cdp.send('Network.enable');
    cdp.on('Network.requestWillBeSent', (event) => {
      if (new URL(event.request.url).origin === origin) entry(event.requestId).path = new URL(event.request.url).pathname;
    });
    cdp.on('Network.requestWillBeSentExtraInfo', (event) => {
      const cookie = Object.entries(event.headers).find(([name]) => name.toLowerCase() === 'cookie');
      entry(event.requestId).cookieSent = Boolean(cookie && cookie[1].includes(`${REFRESH_COOKIE}=`));
    });
    cdp.on('Network.responseReceivedExtraInfo', (event) => {
      entry(event.requestId).status = event.statusCode;
    });
    await attacker.goto(url);
    const outcome = await attacker.evaluate(async (target) => {
      const out = {};
      for (const path of ['/auth/refresh', '/auth/logout']) {
        // A "simple" cross-origin POST: sent without a preflight; its answer is opaque (and
        // refused outright by Cross-Origin-Resource-Policy: the request was sent all the same).
        try {
          await fetch(target + path, { method: 'POST', credentials: 'include', mode: 'no-cors' });
        } catch {
          // expected
        }
        // Asking to read the answer: CORS refuses (no Access-Control-Allow-Origin).
        try {
          const response = await fetch(target + path, { method: 'POST', credentials: 'include' });
          out[path] = `readable: ${response.status}`;
        } catch (error) {
          out[path] = `refused: ${error.name}`;
        }
      }
      return out;
    }, origin);
    await attacker.close();
    for (const path of ['/auth/refresh', '/auth/logout']) {
      assert.equal(outcome[path], 'refused: TypeError', `${url} read ${path}`);
    }
    const answers = [...wire.values()].filter((request) => request.path);
    const shown = JSON.stringify(answers);
    assert.equal(answers.length, 4, shown);
    // Another site: SameSite=Strict keeps the cookie; the same site: the cookie goes, the
    // server's origin check refuses. Either way the server answers 403 before the handler.
    for (const answer of answers) {
      assert.equal(answer.status, 403, `${url}: ${shown}`);
      assert.equal(answer.cookieSent, host === '127.0.0.1', `${url}: ${shown}`);
    }
    assert.equal((await refreshCookie(context, mainUrl)).value, sessionCookie, `${url} rotated the refresh token`);
    step(`a page of ${url} cannot refresh or log out: ${host === '127.0.0.1' ? 'same site, cookie sent' : 'another site, no cookie'}, 403, unreadable, cookie untouched`);
  }
  await click(page, 'Call /protected');
  assert.match(await result(page).textContent(), /\/protected: HTTP 200/);
  await assertNoAlert(page);
  step('the session still works after the other origins tried');

  // An expired access token (ACCESS_TOKEN_TTL=1, plus the layer's 30 s leeway): the page
  // refreshes and retries without the user noticing.
  const wait = lastTokenAt + EXPIRY_WAIT_MS - Date.now();
  if (wait > 0) await page.waitForTimeout(wait);
  exchanges.length = 0;
  await click(page, 'Call /protected');
  assert.match(await result(page).textContent(), /\/protected: HTTP 200/);
  await assertNoAlert(page);
  await page.getByText('Signed in as alice').waitFor();
  assert.equal(exchanges[0], 'GET /protected 401', exchanges.join('\n'));
  assert.ok(exchanges.includes('POST /auth/refresh 200'), exchanges.join('\n'));
  assert.equal(exchanges.at(-1), 'GET /protected 200', exchanges.join('\n'));
  assert.notEqual((await refreshCookie(context, mainUrl)).value, sessionCookie, 'no refresh happened');
  step(`an expired access token is refreshed silently: ${exchanges.join(', ')}`);

  // Log out: the session ends here and stays ended after a reload.
  await click(page, 'Log out');
  await page.getByRole('button', { name: 'Log in' }).waitFor();
  await assertNoAlert(page);
  assert.ok(exchanges.includes('POST /auth/logout 204'), exchanges.join('\n'));
  assert.equal(await refreshCookie(context, mainUrl), undefined, 'the refresh cookie outlives the logout');
  seen = await inspect(page);
  assert.equal(seen.key, undefined, 'the DPoP key outlives the logout');
  await page.reload();
  await page.getByRole('button', { name: 'Log in' }).waitFor();
  assert.equal(await page.getByText(/Signed in as/).isVisible(), false);
  step('Log out: cookie and key gone, a reload stays signed out');

  assert.deepEqual(consoleErrors, [], 'errors in the page');
  await context.close();
}

async function overHttps() {
  const context = await browser.newContext({ locale: 'en-GB', ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(httpsUrl);
  await page.getByRole('button', { name: 'Log in' }).waitFor();
  await logIn(page, 'alice', 'alice-password');
  await page.getByText('Signed in as alice').waitFor();
  await assertNoAlert(page);
  const cookies = (await context.cookies(new URL('/auth/refresh', httpsUrl).href)).filter((cookie) =>
    cookie.name.endsWith(REFRESH_COOKIE),
  );
  assert.equal(cookies.length, 1, JSON.stringify(cookies));
  const [cookie] = cookies;
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.secure, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.equal(cookie.domain, new URL(httpsUrl).hostname, 'a host-only cookie');
  // A __Host- cookie must have Path=/ (RFC 6265bis); a plain name keeps the /auth scope.
  assert.equal(cookie.path, cookie.name.startsWith('__Host-') ? '/' : '/auth', JSON.stringify(cookie));
  await page.reload();
  await page.getByText('Signed in as alice').waitFor();
  await click(page, 'Call /protected');
  assert.match(await result(page).textContent(), /\/protected: HTTP 200/);
  await click(page, 'Log out');
  await page.getByRole('button', { name: 'Log in' }).waitFor();
  assert.equal((await context.cookies(httpsUrl)).filter((c) => c.name.endsWith(REFRESH_COOKIE)).length, 0);
  step(`over HTTPS: log in, ${cookie.name} (HttpOnly, Secure, SameSite=Strict, Path=${cookie.path}), a reload, log out`);
  await context.close();
}

async function rateLimit() {
  const context = await browser.newContext({ locale: 'en-GB' });
  const page = await context.newPage();
  const origin = new URL(plainUrl).origin;
  const exchanges = [];
  context.on('response', (response) => {
    const url = new URL(response.url());
    if (url.origin === origin) exchanges.push(`${response.request().method()} ${url.pathname} ${response.status()}`);
  });
  await page.goto(plainUrl);
  await logIn(page, 'alice', 'alice-password');
  await page.getByText('Signed in as alice').waitFor();
  await click(page, 'Call /protected');
  assert.match(await result(page).textContent(), /\/protected: HTTP 200/);
  assert.ok(!exchanges.some((line) => / 400$/.test(line)), `a nonce was asked for: ${exchanges.join(', ')}`);
  step('without DPOP_NONCE: log in and /protected at the first try');
  await click(page, 'Log out');
  await page.getByRole('button', { name: 'Log in' }).waitFor();

  let attempts = 0;
  let text = '';
  while (attempts < 12) {
    attempts += 1;
    await logIn(page, 'alice', `wrong-${attempts}`);
    text = await alertText(page);
    if (/too many/i.test(text)) break;
    assert.match(text, /invalid username or password/);
  }
  assert.match(text, /too many failed attempts/i, `no rate limit after ${attempts} failures`);
  assert.match(text, /retry after \d+ s/);
  assert.ok(exchanges.includes('POST /auth/login 429'), exchanges.join('\n'));
  // Locked: even the right password is refused now.
  await logIn(page, 'alice', 'alice-password');
  assert.match(await alertText(page), /too many failed attempts/i);
  assert.equal(await page.getByText(/Signed in as/).isVisible(), false);
  step(`the rate limit after ${attempts - 1} failures: "${text}"`);
  await context.close();
}
