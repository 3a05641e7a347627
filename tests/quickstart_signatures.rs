//! Issue #27, "Done when": the quickstart process accepts a request signed by the npm
//! `http-message-signatures` library with a key the token is bound to (`cnf.jwk`), and refuses
//! each alteration of the issue's list of attacks, with its code.
//!
//! The npm library signs (tests/interop/httpsig.mjs, mode `sign`); the test then alters what it
//! sends. Needs node and `npm ci --prefix tests/interop`: run in CI (`CI` set), skipped with a
//! message elsewhere when they are missing.

mod example_process;
mod harness;
#[cfg(feature = "redis")]
#[allow(dead_code)]
#[path = "common/redis_server.rs"]
mod redis_server;

use std::path::{Path, PathBuf};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use example_process::Example;
use harness::{answer, b64, claims, client, now, Answer, TestKey};
use serde_json::{json, Value};
use tower_jwt_guard::binding::ContentDigest;
use tower_jwt_guard::Algorithm;

const SECRET: &str = "quickstart-test-secret-of-32-bytes!!";

/// An Ed25519 client key: its private JWK (for the npm library), its public JWK, its raw public key.
struct ClientKey {
    private: Value,
    public: Value,
    raw: Vec<u8>,
}

impl ClientKey {
    fn generate(kid: &str) -> ClientKey {
        let mut seed = [0u8; 32];
        aws_lc_rs::rand::fill(&mut seed).unwrap();
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        let raw = pair.public_key().as_ref().to_vec();
        let public = json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(&raw), "kid": kid });
        let mut private = public.clone();
        private["d"] = json!(b64(seed));
        ClientKey { private, public, raw }
    }
}

/// Where the npm library is, or `None` (after saying why) outside CI when it is missing.
fn interop() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if node && dir.join("node_modules/http-message-signatures/package.json").exists() {
        return Some(dir);
    }
    assert!(std::env::var_os("CI").is_none(), "CI is set but node or http-message-signatures is missing");
    eprintln!("skipped: node or http-message-signatures is missing (npm ci --prefix tests/interop)");
    None
}

/// Signs each spec with the npm library: `(Signature-Input, Signature)` in order.
async fn npm_sign(dir: &Path, specs: &[Value]) -> Vec<(String, String)> {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new("node")
        .current_dir(dir)
        .args(["httpsig.mjs", "sign"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(Value::from(specs.to_vec()).to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let signed: Vec<(String, String)> = stdout
        .lines()
        .map(|line| {
            let line: Value = serde_json::from_str(line).unwrap();
            (
                line["signatureInput"].as_str().unwrap().to_owned(),
                line["signature"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(signed.len(), specs.len(), "{stdout}");
    signed
}

/// What one case works with.
struct Ctx {
    /// The URL the signature names (`PUBLIC_URL`, or the quickstart's address).
    public: String,
    /// A token bound to `client`'s key (`cnf.jwk`), for `alice`; another for `mallory`.
    token: String,
    other_token: String,
    client: ClientKey,
    /// Another client's key, published in `HTTP_SIGNATURE_KEYS` as `client-b`.
    other: ClientKey,
    now: i64,
}

/// A request as it is sent.
#[derive(Clone)]
struct Sent {
    method: String,
    /// The path and query, sent to the quickstart's address.
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl Sent {
    fn set(&mut self, name: &str, value: impl Into<String>) {
        self.remove(name);
        self.headers.push((name.to_owned(), value.into()));
    }

    fn remove(&mut self, name: &str) {
        self.headers.retain(|(header, _)| header != name);
    }

    async fn send(&self, base: &str) -> Answer {
        let method = self.method.parse::<reqwest::Method>().unwrap();
        let mut request = client().request(method, format!("{base}{}", self.path));
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(body) = &self.body {
            request = request.body(body.clone());
        }
        answer(request).await
    }
}

const BODY: &str = r#"{"amount": 10, "to": "bob"}"#;
const OTHER_BODY: &str = r#"{"amount": 10000, "to": "mallory"}"#;

/// The spec the npm library signs by default: GET /me by `client`, covering `@method`,
/// `@target-uri` and `authorization`, with `created`, `keyid` and a nonce of the case's own.
fn spec(ctx: &Ctx, name: &str) -> Value {
    json!({
        "key": { "jwk": ctx.client.private },
        "alg": "ed25519",
        "keyid": "client-a",
        "label": "sig",
        "request": {
            "method": "GET",
            "url": format!("{}/me", ctx.public),
            "headers": { "authorization": format!("Bearer {}", ctx.token) },
        },
        "fields": ["@method", "@target-uri", "authorization"],
        "params": ["created", "keyid", "nonce"],
        "paramValues": { "nonce": format!("n-{name}-{}", ctx.now) },
    })
}

/// The spec with `body` and its `Content-Digest`, covered.
fn with_body(spec: &mut Value, body: &str) {
    spec["body"] = json!(body);
    spec["request"]["headers"]["content-digest"] = json!(ContentDigest::header_value_sha256(body.as_bytes()));
    spec["fields"].as_array_mut().unwrap().push(json!("content-digest"));
}

/// What the spec's request sends, with the library's signature fields.
fn sent(spec: &Value, (input, signature): &(String, String)) -> Sent {
    let url = spec["request"]["url"].as_str().unwrap();
    let path = url.find("/me").map_or("/me", |at| &url[at..]).to_owned();
    let mut headers: Vec<(String, String)> = spec["request"]["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
        .collect();
    headers.push(("signature-input".into(), input.clone()));
    headers.push(("signature".into(), signature.clone()));
    Sent {
        method: "GET".into(),
        path,
        headers,
        body: spec.get("body").and_then(Value::as_str).map(str::to_owned),
    }
}

/// One row: how the library's request is made (from the default spec), how it is altered
/// before it is sent, and the answer expected (status, code; 200 with `sub`).
struct Case {
    name: &'static str,
    sign: fn(&Ctx, &mut Value),
    /// Signed twice (two signatures under the same label).
    twice: bool,
    send: fn(&Ctx, &mut Sent),
    expect: (u16, &'static str),
}

fn same(_: &Ctx, _: &mut Value) {}
fn unaltered(_: &Ctx, _: &mut Sent) {}

const INVALID: (u16, &str) = (401, "INVALID_SIGNATURE");

fn cases() -> Vec<Case> {
    let case = |name, sign, send, expect| Case { name, sign, twice: false, send, expect };
    vec![
        // Accepted: signed by the key the token is bound to, without and with a body.
        case("signed", same, unaltered, (200, "alice")),
        case("signed with a body", |_, spec| with_body(spec, BODY), unaltered, (200, "alice")),
        // A token bound to the key, sent unsigned.
        case(
            "unsigned",
            same,
            |_, sent| {
                sent.remove("signature-input");
                sent.remove("signature");
            },
            (401, "SIGNATURE_REQUIRED"),
        ),
        // Each covered component altered.
        case("@method altered", |_, spec| spec["request"]["method"] = json!("POST"), unaltered, INVALID),
        case(
            "@target-uri altered",
            |ctx, spec| spec["request"]["url"] = json!(format!("{}/me?account=1", ctx.public)),
            |_, sent| sent.path = "/me?account=2".into(),
            INVALID,
        ),
        case(
            "authorization altered",
            same,
            |ctx, sent| sent.set("authorization", format!("Bearer {}", ctx.other_token)),
            INVALID,
        ),
        case(
            "content-digest altered",
            |_, spec| with_body(spec, BODY),
            |_, sent| {
                sent.set("content-digest", ContentDigest::header_value_sha256(OTHER_BODY.as_bytes()));
                sent.body = Some(OTHER_BODY.into());
            },
            INVALID,
        ),
        // A required component not covered.
        case(
            "authorization not covered",
            |_, spec| spec["fields"] = json!(["@method", "@target-uri"]),
            unaltered,
            INVALID,
        ),
        case(
            "content-digest not covered",
            |_, spec| {
                with_body(spec, BODY);
                spec["fields"] = json!(["@method", "@target-uri", "authorization"]);
            },
            unaltered,
            INVALID,
        ),
        // The body changed under a valid digest header; the digest header removed.
        case(
            "body changed",
            |_, spec| with_body(spec, BODY),
            |_, sent| sent.body = Some(OTHER_BODY.into()),
            INVALID,
        ),
        case(
            "digest header removed",
            |_, spec| with_body(spec, BODY),
            |_, sent| sent.remove("content-digest"),
            INVALID,
        ),
        // created too old or in the future; expires past.
        case(
            "created too old",
            |ctx, spec| spec["paramValues"]["created"] = json!(ctx.now - 3600),
            unaltered,
            INVALID,
        ),
        case(
            "created in the future",
            |ctx, spec| spec["paramValues"]["created"] = json!(ctx.now + 3600),
            unaltered,
            INVALID,
        ),
        case(
            "expires past",
            |ctx, spec| {
                spec["params"] = json!(["created", "expires", "keyid", "nonce"]);
                spec["paramValues"]["created"] = json!(ctx.now - 20);
                spec["paramValues"]["expires"] = json!(ctx.now - 10);
            },
            unaltered,
            INVALID,
        ),
        // alg chosen by the attacker: HMAC keyed with the public key, named or not.
        case(
            "hmac with the public key",
            |ctx, spec| {
                spec["key"] = json!({ "hmac": b64(&ctx.client.raw) });
                spec["alg"] = json!("hmac-sha256");
                spec["params"] = json!(["created", "keyid", "alg", "nonce"]);
            },
            unaltered,
            INVALID,
        ),
        case(
            "hmac with the public key, alg not named",
            |ctx, spec| {
                spec["key"] = json!({ "hmac": b64(&ctx.client.raw) });
                spec["alg"] = json!("hmac-sha256");
            },
            unaltered,
            INVALID,
        ),
        // A keyid naming another client's key (published in HTTP_SIGNATURE_KEYS), signed by it.
        case(
            "another client's key",
            |ctx, spec| {
                spec["key"] = json!({ "jwk": ctx.other.private });
                spec["keyid"] = json!("client-b");
            },
            unaltered,
            INVALID,
        ),
        // Two signatures with the same label.
        Case {
            name: "two signatures labelled sig",
            sign: same,
            twice: true,
            send: unaltered,
            expect: INVALID,
        },
        // Malformed structured fields.
        case(
            "Signature-Input not closed",
            same,
            |_, sent| {
                let input =
                    sent.headers.iter().find(|(name, _)| name == "signature-input").unwrap().1.clone();
                sent.set("signature-input", input.replacen(')', "", 1));
            },
            INVALID,
        ),
        case(
            "Signature not a byte sequence",
            same,
            |_, sent| sent.set("signature", "sig=\"not bytes\""),
            INVALID,
        ),
        case("Signature not base64", same, |_, sent| sent.set("signature", "sig=:not*base64:"), INVALID),
        case(
            "Signature-Input a token list",
            same,
            |_, sent| sent.set("signature-input", "sig=@method;created=1"),
            INVALID,
        ),
    ]
}

fn mint(sub: &str, client: &ClientKey) -> String {
    let mut claims = claims(sub);
    claims["cnf"] = json!({ "jwk": client.public });
    TestKey::hmac(Algorithm::HS256, SECRET.as_bytes()).sign(&claims)
}

/// Writes the JWKS of `HTTP_SIGNATURE_KEYS` (another client's key) and returns its path.
fn clients_jwks(other: &ClientKey, name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("quickstart-{name}-{}.json", std::process::id()));
    std::fs::write(&path, json!({ "keys": [other.public] }).to_string()).unwrap();
    path
}

/// The quickstart accepts the npm library's request signed by the key the token is bound to, and
/// refuses each alteration with its code (the issue's attacks, one row each).
#[tokio::test]
async fn quickstart_accepts_the_npm_signature_by_the_bound_key_and_refuses_each_alteration() {
    let Some(dir) = interop() else { return };
    let (client, other) = (ClientKey::generate("client-a"), ClientKey::generate("client-b"));
    let jwks = clients_jwks(&other, "npm-signatures");
    // HTTP_SIGNATURES left at its default (`allowed`): the binding alone demands the signature.
    let running = Example::start(
        "quickstart",
        &[("JWT_SECRET", SECRET), ("HTTP_SIGNATURE_KEYS", jwks.to_str().unwrap())],
    );
    let base = running.url();
    let ctx = Ctx {
        public: base.clone(),
        token: mint("alice", &client),
        other_token: mint("mallory", &client),
        client,
        other,
        now: now() as i64,
    };
    let cases = cases();
    let mut specs = Vec::new();
    for case in &cases {
        let mut spec = spec(&ctx, case.name);
        (case.sign)(&ctx, &mut spec);
        if case.twice {
            let mut second = spec.clone();
            second["paramValues"]["nonce"] = json!(format!("n-second-{}", ctx.now));
            specs.push(second);
        }
        specs.push(spec);
    }
    let mut signed = npm_sign(&dir, &specs).await.into_iter();
    let mut specs = specs.iter();

    let mut failures = Vec::new();
    let mut accepted = None;
    for case in &cases {
        let first = case.twice.then(|| (specs.next().unwrap(), signed.next().unwrap()));
        let spec = specs.next().unwrap();
        let mut request = sent(spec, &signed.next().unwrap());
        if let Some((_, (input, signature))) = first {
            request.headers.push(("signature-input".into(), input));
            request.headers.push(("signature".into(), signature));
        }
        (case.send)(&ctx, &mut request);
        let answer = request.send(&base).await;
        let got =
            if answer.status == 200 { answer.body["sub"].as_str().unwrap_or("") } else { answer.code() };
        if (answer.status, got) != case.expect {
            failures.push(format!(
                "{}: expected {:?}, got {} {}",
                case.name, case.expect, answer.status, answer.body
            ));
        }
        if case.name == "signed" {
            accepted = Some(request);
        }
    }
    // The accepted request sent again: its nonce is replayed.
    let replayed = accepted.unwrap().send(&base).await;
    if (replayed.status, replayed.code()) != INVALID {
        failures.push(format!("nonce replayed: got {} {}", replayed.status, replayed.body));
    }
    let _ = std::fs::remove_file(&jwks);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len() + 1,
        failures.join("\n")
    );
}

/// Two quickstarts behind one public URL share their nonces through Redis (`REDIS_URL`): a
/// request the npm library signed, accepted by one, is refused when replayed on the other.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_nonce_replayed_on_another_quickstart_is_refused_over_redis() {
    let test = "a_nonce_replayed_on_another_quickstart_is_refused_over_redis";
    let Some(dir) = interop() else { return };
    let Some(redis) = redis_server::Redis::for_test(test) else { return };
    let (client, other) = (ClientKey::generate("client-a"), ClientKey::generate("client-b"));
    let jwks = clients_jwks(&other, "npm-redis");
    let public = "http://api.example.test";
    let env = [
        ("JWT_SECRET", SECRET),
        ("HTTP_SIGNATURE_KEYS", jwks.to_str().unwrap()),
        ("PUBLIC_URL", public),
        ("REDIS_URL", &redis.url()),
    ];
    let (a, b) = (Example::start("quickstart", &env), Example::start("quickstart", &env));
    let ctx = Ctx {
        public: public.to_owned(),
        token: mint("alice", &client),
        other_token: mint("mallory", &client),
        client,
        other,
        now: now() as i64,
    };
    let specs = [spec(&ctx, "shared"), spec(&ctx, "fresh")];
    let signed = npm_sign(&dir, &specs).await;
    let request = sent(&specs[0], &signed[0]);
    let first = request.send(&a.url()).await;
    assert_eq!((first.status, first.body["sub"].clone()), (200, json!("alice")), "{}", first.body);
    let replayed = request.send(&b.url()).await;
    assert_eq!((replayed.status, replayed.code()), INVALID, "{}", replayed.body);
    // A fresh nonce passes on the other instance.
    let fresh = sent(&specs[1], &signed[1]).send(&b.url()).await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    let _ = std::fs::remove_file(&jwks);
}
