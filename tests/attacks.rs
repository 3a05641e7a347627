//! The known JWT attacks, each played against a real axum server on loopback with the layer,
//! in HS256, RS256, ES256 and mixed-key configurations. Every attack must end in the exact
//! status and JSON `code` written next to it: never a 200, a panic or a 500.
//!
//! Tokens are crafted by hand (tests/craft): base64url and signatures from aws-lc-rs directly.

mod craft;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_lc_rs::signature::KeyPair;
use axum::routing::get;
use axum::{Json, Router};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tower_jwt_guard::{
    Algorithm, Claims, ConfigError, ErrorKind, JwtAuth, JwtAuthBuilder, TokenSource, VerificationKey,
};

use craft::{b64, good_claims, keys, now, signing_input, with_signature};

/// The claims shape of the quickstart: a subject, and whatever else the token carries.
#[derive(Debug, Serialize, Deserialize)]
struct User {
    sub: String,
    #[serde(flatten)]
    other: Map<String, Value>,
}

async fn me(Claims(user): Claims<User>) -> Json<Value> {
    Json(json!(*user))
}

struct Server {
    base: String,
    client: reqwest::Client,
}

async fn serve(auth: JwtAuth) -> Server {
    serve_app(Router::new().route("/me", get(me)).route_layer(auth.layer::<User>())).await
}

/// A server whose claims type is any JSON value (arrays and strings included).
async fn serve_untyped(auth: JwtAuth) -> Server {
    let handler =
        |Claims(claims): Claims<Value>| async move { Json(json!({"sub":"untyped","claims":*claims})) };
    serve_app(Router::new().route("/me", get(handler)).route_layer(auth.layer::<Value>())).await
}

async fn serve_app(app: Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { base: format!("http://{addr}"), client: reqwest::Client::new() }
}

fn hs_builder() -> JwtAuthBuilder {
    JwtAuth::builder().hmac_secret(keys().hmac)
}

fn rs_builder() -> JwtAuthBuilder {
    JwtAuth::builder().try_key(VerificationKey::from_pem(keys().rsa_pem().as_bytes(), None))
}

fn es_builder() -> JwtAuthBuilder {
    JwtAuth::builder().try_key(VerificationKey::from_pem(keys().ec_pem().as_bytes(), None))
}

/// HS256, RS256 and ES256 keys side by side, each named by `kid` and bound to its algorithm.
fn mixed_builder() -> JwtAuthBuilder {
    let k = keys();
    JwtAuth::builder()
        .try_key(VerificationKey::hmac(Algorithm::HS256, k.hmac).map(|key| key.with_kid("hmac")))
        .try_key(VerificationKey::from_pem(k.rsa_pem().as_bytes(), None).map(|key| key.with_kid("rsa")))
        .try_key(VerificationKey::from_pem(k.ec_pem().as_bytes(), None).map(|key| key.with_kid("ec")))
}

/// What an attack must end in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Ok,
    Refused(u16, &'static str),
}

const INVALID_TOKEN: Expect = Expect::Refused(401, "INVALID_TOKEN");
const INVALID_REQUEST: Expect = Expect::Refused(400, "INVALID_REQUEST");
const MISSING_TOKEN: Expect = Expect::Refused(401, "MISSING_TOKEN");
const EXPIRED: Expect = Expect::Refused(401, "TOKEN_EXPIRED");
const NOT_YET_VALID: Expect = Expect::Refused(401, "TOKEN_NOT_YET_VALID");

impl Server {
    /// Sends `GET /me` with each `Authorization` value given and returns (status, code or sub).
    async fn get(&self, path: &str, authorization: &[&[u8]]) -> (StatusCode, Value) {
        let mut request = self.client.get(format!("{}{path}", self.base));
        for value in authorization {
            request =
                request.header("authorization", reqwest::header::HeaderValue::from_bytes(value).unwrap());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn outcome(&self, path: &str, authorization: &[&[u8]]) -> Expect {
        let (status, body) = self.get(path, authorization).await;
        if status == StatusCode::OK {
            assert!(body["sub"].is_string(), "a 200 must come from the handler: {body}");
            return Expect::Ok;
        }
        let code = body["code"].as_str().unwrap_or_default();
        let known = ErrorKind::ALL.iter().map(|kind| kind.code()).find(|known| *known == code);
        Expect::Refused(status.as_u16(), known.unwrap_or("(not a known code)"))
    }

    /// Plays every case, then fails listing every case that did not end as expected.
    async fn play(&self, cases: &[(String, String, Expect)]) {
        let mut wrong = Vec::new();
        for (name, token, expected) in cases {
            let value = format!("Bearer {token}");
            let got = self.outcome("/me", &[value.as_bytes()]).await;
            if got != *expected {
                wrong.push(format!("{name}: expected {expected:?}, got {got:?}"));
            }
        }
        assert!(
            wrong.is_empty(),
            "{} of {} attacks misbehaved:\n{}",
            wrong.len(),
            cases.len(),
            wrong.join("\n")
        );
    }
}

fn case(name: impl Into<String>, token: impl Into<String>, expect: Expect) -> (String, String, Expect) {
    (name.into(), token.into(), expect)
}

/// Every upper/lower-case spelling of `none`.
fn none_casings() -> Vec<String> {
    (0..16u8)
        .map(|mask| {
            "none"
                .chars()
                .enumerate()
                .map(|(i, c)| if mask & (1 << i) != 0 { c.to_ascii_uppercase() } else { c })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn baseline_tokens_are_accepted_so_every_refusal_below_means_something() {
    let k = keys();
    let claims = good_claims("alice");
    let hs = serve(hs_builder().build().unwrap()).await;
    let rs = serve(rs_builder().build().unwrap()).await;
    let es = serve(es_builder().build().unwrap()).await;
    let mixed = serve(mixed_builder().build().unwrap()).await;
    hs.play(&[case("HS256", k.hs256(r#"{"alg":"HS256","typ":"JWT"}"#, &claims), Expect::Ok)]).await;
    rs.play(&[case("RS256", k.rs256(r#"{"alg":"RS256"}"#, &claims), Expect::Ok)]).await;
    es.play(&[case("ES256", k.es256(r#"{"alg":"ES256"}"#, &claims), Expect::Ok)]).await;
    mixed
        .play(&[
            case("mixed HS256", k.hs256(r#"{"alg":"HS256","kid":"hmac"}"#, &claims), Expect::Ok),
            case("mixed RS256", k.rs256(r#"{"alg":"RS256","kid":"rsa"}"#, &claims), Expect::Ok),
            case("mixed ES256", k.es256(r#"{"alg":"ES256","kid":"ec"}"#, &claims), Expect::Ok),
        ])
        .await;
}

#[tokio::test]
async fn alg_none_in_every_casing_is_refused() {
    let k = keys();
    let claims = good_claims("alice");
    let mut cases = Vec::new();
    for none in none_casings() {
        let header = format!(r#"{{"alg":"{none}","typ":"JWT"}}"#);
        cases.push(case(
            format!("{none}, empty signature"),
            format!("{}.", signing_input(&header, &claims)),
            INVALID_TOKEN,
        ));
        cases.push(case(
            format!("{none}, no signature part"),
            signing_input(&header, &claims),
            INVALID_TOKEN,
        ));
        cases.push(case(format!("{none}, HMAC signature"), k.hs256(&header, &claims), INVALID_TOKEN));
    }
    for builder in [hs_builder(), rs_builder(), es_builder(), mixed_builder()] {
        serve(builder.build().unwrap()).await.play(&cases).await;
    }
}

#[tokio::test]
async fn public_keys_used_as_hmac_secrets_are_refused() {
    // RS→HS and EC→HS key confusion: the attacker signs HS256 with the server's public key bytes.
    let k = keys();
    let claims = good_claims("mallory");
    let public_forms: [(&str, Vec<u8>); 6] = [
        ("RSA PEM", k.rsa_pem().into_bytes()),
        ("RSA SPKI DER", k.rsa_spki_der()),
        ("RSA PKCS#1 DER", k.rsa_pkcs1_der()),
        ("EC PEM", k.ec_pem().into_bytes()),
        ("EC SPKI DER", k.ec_spki_der()),
        ("EC point", k.ec_point()),
    ];
    let mut single = Vec::new();
    let mut mixed = Vec::new();
    for (form, secret) in &public_forms {
        for alg in ["HS256", "HS384", "HS512"] {
            let header = format!(r#"{{"alg":"{alg}"}}"#);
            single.push(case(
                format!("{alg} keyed with {form}"),
                craft::hs256(secret, &header, &claims),
                INVALID_TOKEN,
            ));
        }
        // In a configuration that does allow HS256, the token names the public key's kid.
        for kid in ["rsa", "ec"] {
            let header = format!(r#"{{"alg":"HS256","kid":"{kid}"}}"#);
            let token = craft::hs256(secret, &header, &claims);
            mixed.push(case(format!("HS256 keyed with {form}, kid {kid}"), token, INVALID_TOKEN));
        }
    }
    serve(rs_builder().build().unwrap()).await.play(&single).await;
    serve(es_builder().build().unwrap()).await.play(&single).await;
    serve(mixed_builder().build().unwrap()).await.play(&mixed).await;
    // And the other way: an RS256 token naming the HMAC key's kid.
    let token = k.rs256(r#"{"alg":"RS256","kid":"hmac"}"#, &claims);
    serve(mixed_builder().build().unwrap())
        .await
        .play(&[case("RS256 with the HMAC kid", token, INVALID_TOKEN)])
        .await;
}

#[test]
fn two_keys_with_one_kid_are_refused_at_build_time() {
    // Wycheproof "DuplicateKid": a lookup by kid would silently pick the first key.
    let k = keys();
    let err = JwtAuth::builder()
        .try_key(VerificationKey::hmac(Algorithm::HS256, k.hmac).map(|key| key.with_kid("a")))
        .try_key(VerificationKey::from_pem(k.rsa_pem().as_bytes(), None).map(|key| key.with_kid("a")))
        .build()
        .unwrap_err();
    assert_eq!(err, ConfigError::Invalid("two keys share a kid"));
}

#[tokio::test]
async fn blank_and_short_hmac_secrets_are_refused() {
    for secret in [&b""[..], b"secret", &[0u8; 31]] {
        let err = JwtAuth::builder().hmac_secret(secret).build().unwrap_err();
        assert!(matches!(err, ConfigError::WeakSecret { .. }), "{} bytes: {err:?}", secret.len());
    }
    let claims = good_claims("mallory");
    let header = r#"{"alg":"HS256"}"#;
    let cases = [
        case("signed with an empty secret", craft::hs256(b"", header, &claims), INVALID_TOKEN),
        case("signed with 32 zero bytes", craft::hs256(&[0; 32], header, &claims), INVALID_TOKEN),
        case("signed with 'secret'", craft::hs256(b"secret", header, &claims), INVALID_TOKEN),
    ];
    serve(hs_builder().build().unwrap()).await.play(&cases).await;
}

#[tokio::test]
async fn null_stripped_and_forged_signatures_are_refused() {
    let k = keys();
    let claims = good_claims("mallory");
    let mut hs_cases = Vec::new();
    let mut rs_cases = Vec::new();
    let mut es_cases = Vec::new();
    for (alg, len, cases) in
        [("HS256", 32, &mut hs_cases), ("RS256", 256, &mut rs_cases), ("ES256", 64, &mut es_cases)]
    {
        let header = format!(r#"{{"alg":"{alg}"}}"#);
        let input = signing_input(&header, &claims);
        cases.push(case(format!("{alg} stripped signature"), format!("{input}."), INVALID_TOKEN));
        cases.push(case(format!("{alg} no signature part"), input.clone(), INVALID_TOKEN));
        cases.push(case(
            format!("{alg} all-zero signature"),
            with_signature(&header, &claims, &vec![0; len]),
            INVALID_TOKEN,
        ));
        cases.push(case(
            format!("{alg} one zero byte"),
            with_signature(&header, &claims, &[0]),
            INVALID_TOKEN,
        ));
        cases.push(case(format!("{alg} signature 'null'"), format!("{input}.null"), INVALID_TOKEN));
        cases.push(case(format!("{alg} signature 'AA'"), format!("{input}.AA"), INVALID_TOKEN));
        cases.push(case(
            format!("{alg} 2 KiB signature"),
            with_signature(&header, &claims, &[1; 2048]),
            INVALID_TOKEN,
        ));
    }
    // A valid signature moved onto other claims.
    let good = k.hs256(r#"{"alg":"HS256"}"#, &claims);
    let signature = good.rsplit('.').next().unwrap();
    let forged = format!("{}.{signature}", signing_input(r#"{"alg":"HS256"}"#, &good_claims("admin")));
    hs_cases.push(case("signature of other claims", forged, INVALID_TOKEN));
    // A truncated or extended MAC.
    let mac = craft::hs256(&k.hmac, r#"{"alg":"HS256"}"#, &claims);
    hs_cases.push(case("truncated MAC", &mac[..mac.len() - 4], INVALID_TOKEN));
    hs_cases.push(case("extended MAC", format!("{mac}AAAA"), INVALID_TOKEN));
    // ES256 signed in DER form instead of r||s.
    es_cases.push(case("ES256 DER signature", k.es256_der(r#"{"alg":"ES256"}"#, &claims), INVALID_TOKEN));
    // RS256 signed by another RSA key.
    rs_cases.push(case(
        "RS256 by an unknown key",
        k.rs256_with(&k.rogue_rsa, r#"{"alg":"RS256"}"#, &claims),
        INVALID_TOKEN,
    ));
    serve(hs_builder().build().unwrap()).await.play(&hs_cases).await;
    serve(rs_builder().build().unwrap()).await.play(&rs_cases).await;
    serve(es_builder().build().unwrap()).await.play(&es_cases).await;
}

/// P-256 group order n, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc,
    0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

#[tokio::test]
async fn psychic_signatures_are_refused() {
    // CVE-2022-21449: ECDSA with r = s = 0 (and its cousins r or s = n) must never verify.
    let claims = good_claims("mallory");
    let header = r#"{"alg":"ES256"}"#;
    let zero = [0u8; 32];
    let mut one = [0u8; 32];
    one[31] = 1;
    let mut cases = Vec::new();
    for (rname, r) in [("0", zero), ("1", one), ("n", P256_N)] {
        for (sname, s) in [("0", zero), ("1", one), ("n", P256_N)] {
            let sig = [r, s].concat();
            cases.push(case(
                format!("r={rname} s={sname}"),
                with_signature(header, &claims, &sig),
                INVALID_TOKEN,
            ));
        }
    }
    // DER-encoded r = s = 0, the form Java's verifier was fooled by.
    cases.push(case(
        "DER r=s=0",
        with_signature(header, &claims, &[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]),
        INVALID_TOKEN,
    ));
    serve(es_builder().build().unwrap()).await.play(&cases).await;
    serve(mixed_builder().build().unwrap()).await.play(&cases).await;
}

/// A TCP listener that counts every connection made to it.
async fn recorder() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (format!("http://{addr}"), hits)
}

#[tokio::test]
async fn key_references_in_the_header_are_never_followed() {
    let k = keys();
    let (url, hits) = recorder().await;
    let claims = good_claims("mallory");
    let rogue = &k.rogue_rsa;
    let rogue_n = {
        // PKCS#1 DER: SEQUENCE { INTEGER n, INTEGER e }; for the JWK only the modulus matters here.
        let der = rogue.public_key().as_ref().to_vec();
        b64(&der[9..9 + 256])
    };
    let rogue_jwk = json!({"kty":"RSA","e":"AQAB","n":rogue_n});
    let attacker_secret = [9u8; 32];
    let oct_jwk = json!({"kty":"oct","k":b64(attacker_secret)});
    let rs_headers = [
        ("jwk", json!({"alg":"RS256","jwk":rogue_jwk})),
        ("jku", json!({"alg":"RS256","jku":format!("{url}/jwks.json")})),
        ("x5u", json!({"alg":"RS256","x5u":format!("{url}/cert.pem")})),
        ("x5c", json!({"alg":"RS256","x5c":[craft::b64(k.rogue_rsa.public_key().as_ref())]})),
        ("jku with kid", json!({"alg":"RS256","kid":"rogue","jku":format!("{url}/jwks.json")})),
    ];
    let mut rs_cases = Vec::new();
    for (name, header) in &rs_headers {
        let token = k.rs256_with(rogue, &header.to_string(), &claims);
        rs_cases.push(case(format!("{name}, signed by the attacker's key"), token, INVALID_TOKEN));
    }
    let hs_headers = [
        ("oct jwk", json!({"alg":"HS256","jwk":oct_jwk})),
        ("jku", json!({"alg":"HS256","jku":format!("{url}/jwks.json")})),
        ("x5u", json!({"alg":"HS256","x5u":format!("{url}/cert.pem")})),
    ];
    let mut hs_cases = Vec::new();
    for (name, header) in &hs_headers {
        let token = craft::hs256(&attacker_secret, &header.to_string(), &claims);
        hs_cases.push(case(format!("{name}, signed by the attacker's secret"), token, INVALID_TOKEN));
    }
    // A genuine token that merely carries the parameters is fine, and still nothing is fetched.
    let genuine =
        k.rs256(&json!({"alg":"RS256","jku":format!("{url}/jwks.json"),"x5u":url}).to_string(), &claims);
    rs_cases.push(case("genuine token carrying jku/x5u", genuine, Expect::Ok));
    serve(rs_builder().build().unwrap()).await.play(&rs_cases).await;
    serve(mixed_builder().build().unwrap()).await.play(&rs_cases[..rs_cases.len() - 1]).await;
    serve(hs_builder().build().unwrap()).await.play(&hs_cases).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the layer connected to a URL named in a token");
}

#[tokio::test]
async fn hostile_kids_select_no_key() {
    let k = keys();
    let claims = good_claims("mallory");
    let kids = [
        "../../../../../../dev/null",
        "/dev/null",
        "..\\..\\..\\windows\\win.ini",
        "' OR '1'='1",
        "x' UNION SELECT 'secret' --",
        "$(touch /tmp/pwned)",
        "`id`",
        "| cat /etc/passwd",
        "a\u{0}b",
        "\u{0}",
        "hmac\u{0}",
        "",
    ];
    let mut cases = Vec::new();
    for kid in kids {
        let header = json!({"alg":"HS256","kid":kid}).to_string();
        // Signed with what the path would point at (an empty file) and with the real secret:
        // no configured key has such an id, so both are refused.
        cases.push(case(
            format!("kid {kid:?}, empty key"),
            craft::hs256(b"", &header, &claims),
            INVALID_TOKEN,
        ));
        cases.push(case(format!("kid {kid:?}, real key"), k.hs256(&header, &claims), INVALID_TOKEN));
    }
    cases.push(case("kid as a number", k.hs256(r#"{"alg":"HS256","kid":1}"#, &claims), INVALID_TOKEN));
    cases.push(case("kid as an object", k.hs256(r#"{"alg":"HS256","kid":{}}"#, &claims), INVALID_TOKEN));
    serve(hs_builder().build().unwrap()).await.play(&cases).await;
    serve(mixed_builder().build().unwrap()).await.play(&cases).await;
}

#[tokio::test]
async fn unknown_crit_encrypted_and_nested_tokens_are_refused() {
    let k = keys();
    let claims = good_claims("mallory");
    let inner = k.hs256(r#"{"alg":"HS256"}"#, &claims);
    let cases = [
        case("crit [exp]", k.hs256(r#"{"alg":"HS256","crit":["exp"],"exp":1}"#, &claims), INVALID_TOKEN),
        case(
            "crit [b64] with b64 false",
            k.hs256(r#"{"alg":"HS256","crit":["b64"],"b64":false}"#, &claims),
            INVALID_TOKEN,
        ),
        case("crit empty", k.hs256(r#"{"alg":"HS256","crit":[]}"#, &claims), INVALID_TOKEN),
        case("crit null-ish string", k.hs256(r#"{"alg":"HS256","crit":"x"}"#, &claims), INVALID_TOKEN),
        case(
            "JWE, five parts",
            format!(
                "{}.{}.{}.{}.{}",
                b64(r#"{"alg":"dir","enc":"A256GCM"}"#),
                "",
                b64([1; 12]),
                b64([2; 40]),
                b64([3; 16])
            ),
            INVALID_TOKEN,
        ),
        case("JWE header in a JWS", k.hs256(r#"{"alg":"HS256","enc":"A256GCM"}"#, &claims), INVALID_TOKEN),
        case("four parts", format!("{inner}.AAAA"), INVALID_TOKEN),
        case("six parts", format!("{inner}.AAAA.AAAA.AAAA"), INVALID_TOKEN),
        case("nested JWT as the payload", k.hs256(r#"{"alg":"HS256","cty":"JWT"}"#, &inner), INVALID_TOKEN),
        case(
            "nested JWT as a JSON string payload",
            k.hs256(r#"{"alg":"HS256","cty":"JWT"}"#, &format!("\"{inner}\"")),
            INVALID_TOKEN,
        ),
    ];
    serve(hs_builder().build().unwrap()).await.play(&cases).await;
}

#[tokio::test]
async fn duplicate_json_keys_are_refused() {
    let k = keys();
    let exp = now() + 600;
    let past = now() - 3600;
    let cases = [
        case(
            "header alg twice",
            k.hs256(r#"{"alg":"HS256","alg":"none"}"#, &good_claims("a")),
            INVALID_TOKEN,
        ),
        case(
            "header kid twice",
            k.hs256(r#"{"alg":"HS256","kid":"a","kid":"b"}"#, &good_claims("a")),
            INVALID_TOKEN,
        ),
        case(
            "sub twice",
            k.hs256(r#"{"alg":"HS256"}"#, &format!(r#"{{"sub":"alice","sub":"admin","exp":{exp}}}"#)),
            INVALID_TOKEN,
        ),
        case(
            "exp twice",
            k.hs256(r#"{"alg":"HS256"}"#, &format!(r#"{{"sub":"a","exp":{past},"exp":{exp}}}"#)),
            INVALID_TOKEN,
        ),
        case(
            "aud twice",
            k.hs256(r#"{"alg":"HS256"}"#, &format!(r#"{{"sub":"a","exp":{exp},"aud":"x","aud":"api"}}"#)),
            INVALID_TOKEN,
        ),
    ];
    serve(hs_builder().audience("api").build().unwrap()).await.play(&cases).await;
}

#[tokio::test]
async fn numeric_dates_must_be_sane_json_numbers() {
    let k = keys();
    let header = r#"{"alg":"HS256"}"#;
    let soon = now() + 600;
    let claims = |extra: &str| format!(r#"{{"sub":"alice",{extra}}}"#);
    let mut cases = Vec::new();
    for name in ["exp", "nbf", "iat"] {
        let exp = if name == "exp" { String::new() } else { format!(r#","exp":{soon}"#) };
        for (what, value) in [
            ("a string", format!("\"{soon}\"")),
            ("an empty string", "\"\"".into()),
            ("negative", "-1".into()),
            ("a negative float", "-1.5".into()),
            ("1e300", "1e300".into()),
            ("beyond u64", "18446744073709551616".into()),
            ("after year 9999", "253402300800".into()),
            ("null", "null".into()),
            ("true", "true".into()),
            ("an array", format!("[{soon}]")),
            ("an object", format!(r#"{{"n":{soon}}}"#)),
        ] {
            let token = k.hs256(header, &claims(&format!(r#""{name}":{value}{exp}"#)));
            cases.push(case(format!("{name} {what}"), token, INVALID_TOKEN));
        }
    }
    let past = now() - 3600;
    cases.extend([
        case("exp absent", k.hs256(header, &claims(r#""iat":1"#)), INVALID_TOKEN),
        case("exp in the past", k.hs256(header, &claims(&format!(r#""exp":{past}"#))), EXPIRED),
        case("exp a past float", k.hs256(header, &claims(&format!(r#""exp":{past}.5"#))), EXPIRED),
        case("exp zero", k.hs256(header, &claims(r#""exp":0"#)), EXPIRED),
        case("exp -0.0", k.hs256(header, &claims(r#""exp":-0.0"#)), EXPIRED),
        case("exp a future float", k.hs256(header, &claims(&format!(r#""exp":{soon}.25"#))), Expect::Ok),
        case("exp in exponent form", k.hs256(header, &claims(&format!(r#""exp":{soon}e0"#))), Expect::Ok),
        case(
            "nbf in an hour",
            k.hs256(header, &claims(&format!(r#""exp":{soon},"nbf":{}"#, now() + 3600))),
            NOT_YET_VALID,
        ),
        case(
            "iat in an hour",
            k.hs256(header, &claims(&format!(r#""exp":{soon},"iat":{}"#, now() + 3600))),
            NOT_YET_VALID,
        ),
    ]);
    serve(hs_builder().build().unwrap()).await.play(&cases).await;
}

#[tokio::test]
async fn claims_of_the_wrong_type_are_refused() {
    let k = keys();
    let header = r#"{"alg":"HS256"}"#;
    let exp = now() + 600;
    let mut cases: Vec<_> = [
        ("sub a number", r#""sub":123"#),
        ("sub null", r#""sub":null"#),
        ("sub an array", r#""sub":["alice"]"#),
        ("iss a number", r#""sub":"a","iss":1"#),
        ("aud a number", r#""sub":"a","aud":1"#),
        ("aud an array of numbers", r#""sub":"a","aud":[1]"#),
        ("jti an object", r#""sub":"a","jti":{}"#),
        ("amr a string", r#""sub":"a","amr":"pwd""#),
        ("acr a number", r#""sub":"a","acr":2"#),
        ("mfa_verified a string", r#""sub":"a","mfa_verified":"true""#),
        ("scope a number", r#""sub":"a","scope":5"#),
        ("scp a number", r#""sub":"a","scp":5"#),
        ("cnf a string", r#""sub":"a","cnf":"x""#),
        ("auth_time a string", r#""sub":"a","auth_time":"1""#),
    ]
    .into_iter()
    .map(|(name, fields)| case(name, k.hs256(header, &format!(r#"{{{fields},"exp":{exp}}}"#)), INVALID_TOKEN))
    .collect();
    for (name, payload) in [
        ("claims an array", format!("[\"alice\",{exp}]")),
        ("claims an array of registered claims", format!("[{exp}]")),
        ("claims a string", "\"alice\"".to_string()),
        ("claims a number", exp.to_string()),
        ("claims null", "null".to_string()),
        ("claims not JSON", "alice".to_string()),
        ("claims with trailing data", format!(r#"{{"sub":"a","exp":{exp}}} {{"sub":"admin"}}"#)),
        ("claims empty", String::new()),
        ("claims with a raw control character", format!("{{\"sub\":\"a\u{0}b\",\"exp\":{exp}}}")),
    ] {
        cases.push(case(name, k.hs256(header, &payload), INVALID_TOKEN));
    }
    let invalid_utf8 = {
        let input = format!(
            "{}.{}",
            b64(header),
            b64([&b"{\"sub\":\"\xff\xfe\",\"exp\":"[..], exp.to_string().as_bytes(), b"}"].concat())
        );
        let tag = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &k.hmac),
            input.as_bytes(),
        );
        format!("{input}.{}", b64(tag.as_ref()))
    };
    cases.push(case("claims with invalid UTF-8 bytes", invalid_utf8, INVALID_TOKEN));
    cases.push(case("header not JSON", k.hs256("HS256", &good_claims("a")), INVALID_TOKEN));
    cases.push(case("header an array", k.hs256(r#"["HS256"]"#, &good_claims("a")), INVALID_TOKEN));
    cases.push(case("alg a number", k.hs256(r#"{"alg":256}"#, &good_claims("a")), INVALID_TOKEN));
    cases.push(case("alg null", k.hs256(r#"{"alg":null}"#, &good_claims("a")), INVALID_TOKEN));
    cases.push(case("alg with a space", k.hs256(r#"{"alg":"HS256 "}"#, &good_claims("a")), INVALID_TOKEN));
    cases.push(case("alg lower case", k.hs256(r#"{"alg":"hs256"}"#, &good_claims("a")), INVALID_TOKEN));
    serve(hs_builder().build().unwrap()).await.play(&cases).await;
    // With claims decoded into any JSON value, the claims set must still be a JSON object.
    serve_untyped(hs_builder().build().unwrap()).await.play(&cases).await;
}

#[tokio::test]
async fn deeply_nested_json_never_crashes() {
    let k = keys();
    let exp = now() + 600;
    let depth = 2500;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(800), "}".repeat(800));
    let header = r#"{"alg":"HS256"}"#;
    let cases = [
        case(
            "nested arrays in a claim",
            k.hs256(header, &format!(r#"{{"sub":"a","exp":{exp},"x":{nested}}}"#)),
            INVALID_TOKEN,
        ),
        case(
            "nested objects in a claim",
            k.hs256(header, &format!(r#"{{"sub":"a","exp":{exp},"x":{objects}}}"#)),
            INVALID_TOKEN,
        ),
        case("nested arrays as the payload", k.hs256(header, &nested), INVALID_TOKEN),
        case(
            "unclosed nesting",
            k.hs256(header, &format!(r#"{{"sub":"a","exp":{exp},"x":{}}}"#, "[".repeat(depth))),
            INVALID_TOKEN,
        ),
    ];
    // Claims decoded into a struct with a catch-all map, and into any JSON value: both hit
    // serde_json's recursion limit, a clean refusal.
    serve(hs_builder().build().unwrap()).await.play(&cases).await;
    serve_untyped(hs_builder().build().unwrap()).await.play(&cases).await;
    // In the header, unknown members are skipped without recursion, and the 512-byte header
    // cap bounds them: a genuine token with such a member is simply accepted.
    let deep_header = format!(r#"{{"alg":"HS256","x":{}}}"#, &nested[depth - 200..depth + 200]);
    let server = serve(hs_builder().build().unwrap()).await;
    server
        .play(&[case("nested arrays in the header", k.hs256(&deep_header, &good_claims("a")), Expect::Ok)])
        .await;
}

#[tokio::test]
async fn padding_and_characters_outside_base64url_are_refused() {
    let k = keys();
    let good = k.hs256(r#"{"alg":"HS256"}"#, &good_claims("alice"));
    let parts: Vec<&str> = good.split('.').collect();
    let (h, p, s) = (parts[0], parts[1], parts[2]);
    let cases = [
        case("signature with = padding", format!("{h}.{p}.{s}="), INVALID_TOKEN),
        case("signature with == padding", format!("{h}.{p}.{s}=="), INVALID_TOKEN),
        case("header with padding", format!("{h}=.{p}.{s}"), INVALID_TOKEN),
        case("payload with padding", format!("{h}.{p}=.{s}"), INVALID_TOKEN),
        case(
            "standard alphabet +",
            format!("{h}.{p}.{}", s.replace('-', "+").replace('_', "/") + "+/"),
            INVALID_TOKEN,
        ),
        case("a * in the payload", format!("{h}.{p}*.{s}"), INVALID_TOKEN),
        case("a ! in the header", format!("!{h}.{p}.{s}"), INVALID_TOKEN),
        case("a % escape", format!("{h}.{p}.{s}%3D"), INVALID_TOKEN),
        case("leading dot", format!(".{h}.{p}.{s}"), INVALID_TOKEN),
        case("only dots", "...", INVALID_TOKEN),
        case("two dots", "..", INVALID_TOKEN),
        case("a single dot", ".", INVALID_TOKEN),
        case("not a JWT", "hello", INVALID_TOKEN),
        case("a ; in the token", format!("{h}.{p}.{s};"), INVALID_REQUEST),
        case("a \" in the token", format!("\"{h}.{p}.{s}\""), INVALID_REQUEST),
        case("a , in the token", format!("{h}.{p}.{s},x"), INVALID_REQUEST),
        case("a \\ in the token", format!("{h}\\.{p}.{s}"), INVALID_REQUEST),
    ];
    let server = serve(hs_builder().build().unwrap()).await;
    server.play(&cases).await;
    // Bytes that are not visible ASCII, straight in the header value.
    for (name, value) in [
        ("tab inside", format!("Bearer {h}.{p}\t.{s}").into_bytes()),
        (
            "non-ASCII",
            [b"Bearer ".as_slice(), h.as_bytes(), "é".as_bytes(), b".", p.as_bytes(), b".", s.as_bytes()]
                .concat(),
        ),
        ("obs-text byte", [b"Bearer ".as_slice(), good.as_bytes(), &[0xff]].concat()),
        ("space inside", format!("Bearer {h}. {p}.{s}").into_bytes()),
    ] {
        let got = server.outcome("/me", &[&value]).await;
        assert_eq!(got, INVALID_REQUEST, "{name}");
    }
    assert_eq!(server.outcome("/me", &[format!("Bearer {good}").as_bytes()]).await, Expect::Ok);
}

#[tokio::test]
async fn oversized_headers_and_tokens_are_refused() {
    let k = keys();
    let claims = good_claims("alice");
    let big_kid = "k".repeat(600);
    let big_claim = format!(r#"{{"sub":"alice","exp":{},"pad":"{}"}}"#, now() + 600, "x".repeat(7000));
    let cases = [
        case(
            "JOSE header over 512 bytes",
            k.hs256(&format!(r#"{{"alg":"HS256","kid":"{big_kid}"}}"#), &claims),
            INVALID_TOKEN,
        ),
        case(
            "x5c chain in the header",
            k.hs256(&json!({"alg":"HS256","x5c":["A".repeat(2000)]}).to_string(), &claims),
            INVALID_TOKEN,
        ),
        case("token over 8 KiB", k.hs256(r#"{"alg":"HS256"}"#, &big_claim), INVALID_TOKEN),
        case("64 KiB of garbage", "a".repeat(64 * 1024), INVALID_TOKEN),
    ];
    let server = serve(hs_builder().build().unwrap()).await;
    server.play(&cases).await;
    // Under the cap, a large payload (heap-decoded) still verifies.
    let medium = format!(r#"{{"sub":"alice","exp":{},"pad":"{}"}}"#, now() + 600, "x".repeat(3000));
    server.play(&[case("3 KiB of claims", k.hs256(r#"{"alg":"HS256"}"#, &medium), Expect::Ok)]).await;
    // A smaller configured cap is honoured.
    let small = serve(hs_builder().max_token_len(100).build().unwrap()).await;
    small
        .play(&[case("token over a 100-byte cap", k.hs256(r#"{"alg":"HS256"}"#, &claims), INVALID_TOKEN)])
        .await;
}

#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let k = keys();
    let good = format!("Bearer {}", k.hs256(r#"{"alg":"HS256"}"#, &good_claims("alice")));
    let other = format!("Bearer {}", k.hs256(r#"{"alg":"HS256"}"#, &good_claims("admin")));
    let server = serve(hs_builder().build().unwrap()).await;
    assert_eq!(server.outcome("/me", &[good.as_bytes(), other.as_bytes()]).await, INVALID_REQUEST);
    assert_eq!(server.outcome("/me", &[good.as_bytes(), good.as_bytes()]).await, INVALID_REQUEST);
    assert_eq!(server.outcome("/me", &[good.as_bytes(), b"Basic YTpi"]).await, INVALID_REQUEST);
    let two_in_one = format!("{good}, {other}");
    assert_eq!(server.outcome("/me", &[two_in_one.as_bytes()]).await, INVALID_REQUEST);
    assert_eq!(server.outcome("/me", &[b"Bearer"]).await, INVALID_REQUEST);
    assert_eq!(server.outcome("/me", &[b"Basic YTpi"]).await, MISSING_TOKEN);
    assert_eq!(server.outcome("/me", &[]).await, MISSING_TOKEN);
    assert_eq!(server.outcome("/me", &[good.as_bytes()]).await, Expect::Ok);
}

#[tokio::test]
async fn a_token_in_the_query_string_is_ignored_unless_configured() {
    let k = keys();
    let token = k.hs256(r#"{"alg":"HS256"}"#, &good_claims("alice"));
    let bearer = format!("Bearer {token}");
    let default = serve(hs_builder().build().unwrap()).await;
    assert_eq!(default.outcome(&format!("/me?access_token={token}"), &[]).await, MISSING_TOKEN);
    assert_eq!(default.outcome("/me?access_token=garbage", &[bearer.as_bytes()]).await, Expect::Ok);
    let with_query =
        serve(hs_builder().sources([TokenSource::Bearer, TokenSource::query()]).build().unwrap()).await;
    assert_eq!(with_query.outcome(&format!("/me?access_token={token}"), &[]).await, Expect::Ok);
    assert_eq!(
        with_query.outcome(&format!("/me?access_token={token}"), &[bearer.as_bytes()]).await,
        INVALID_REQUEST
    );
    assert_eq!(
        with_query.outcome(&format!("/me?access_token={token}&access_token={token}"), &[]).await,
        INVALID_REQUEST
    );
}

#[tokio::test]
async fn key_bound_algorithms_refuse_cross_family_tokens() {
    // A key verifies exactly one algorithm: the same RSA key with PS256, an EdDSA token on an
    // ES256 server, an HS384 token with the HS256 secret.
    let k = keys();
    let claims = good_claims("mallory");
    let rs = serve(rs_builder().algorithms([Algorithm::RS256, Algorithm::PS256]).build().unwrap()).await;
    let header_ps = r#"{"alg":"PS256"}"#;
    let rs_token = k.rs256(r#"{"alg":"RS256"}"#, &claims);
    let ps_relabelled =
        format!("{}.{}", signing_input(header_ps, &claims), rs_token.rsplit('.').next().unwrap());
    rs.play(&[case("RS256 signature relabelled PS256", ps_relabelled, INVALID_TOKEN)]).await;
    let es = serve(es_builder().build().unwrap()).await;
    es.play(&[case("EdDSA token", k.eddsa(r#"{"alg":"EdDSA"}"#, &claims), INVALID_TOKEN)]).await;
    let input = signing_input(r#"{"alg":"HS384"}"#, &claims);
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA384, &k.hmac),
        input.as_bytes(),
    );
    let hs = serve(hs_builder().build().unwrap()).await;
    hs.play(&[case("HS384 with the HS256 secret", format!("{input}.{}", b64(tag.as_ref())), INVALID_TOKEN)])
        .await;
}

/// The quickstart's own configuration code (examples/support), as `cargo run --example quickstart`
/// builds it from the environment.
#[path = "../examples/support/mod.rs"]
mod support;

/// A playbook in the manner of JWT attack tools' "all tests" mode, built for a server whose
/// genuine token is `genuine` (signed by the server's key): every line must be refused.
fn playbook(genuine: &str, public_key_forms: &[(&str, Vec<u8>)]) -> Vec<(String, String, Expect)> {
    let k = keys();
    let (h, p) = {
        let mut parts = genuine.split('.');
        (parts.next().unwrap(), parts.next().unwrap())
    };
    let header: Value = serde_json::from_slice(&base64_decode(h)).unwrap();
    let claims = String::from_utf8(base64_decode(p)).unwrap();
    let with_header = |extra: Value| {
        let mut header = header.clone();
        header.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        header.to_string()
    };
    let tampered = claims.replacen("alice", "admin", 1);
    let sig = genuine.rsplit('.').next().unwrap();
    let mut cases = vec![
        case(
            "claims tampered, signature kept",
            format!("{}.{sig}", signing_input(&header.to_string(), &tampered)),
            INVALID_TOKEN,
        ),
        case(
            "signed with a random key",
            craft::hs256(&[0x42; 32], &with_header(json!({"alg":"HS256"})), &claims),
            INVALID_TOKEN,
        ),
        case("null signature", format!("{h}.{p}."), INVALID_TOKEN),
        case(
            "blank password",
            craft::hs256(b"", &with_header(json!({"alg":"HS256"})), &tampered),
            INVALID_TOKEN,
        ),
        case(
            "psychic signature",
            with_signature(&with_header(json!({"alg":"ES256"})), &tampered, &[0; 64]),
            INVALID_TOKEN,
        ),
        case(
            "embedded jwk",
            k.rs256_with(
                &k.rogue_rsa,
                &with_header(json!({"alg":"RS256","jwk":{"kty":"RSA","e":"AQAB","n":"AQAB"}})),
                &tampered,
            ),
            INVALID_TOKEN,
        ),
        case(
            "spoofed jku",
            k.rs256_with(
                &k.rogue_rsa,
                &with_header(json!({"alg":"RS256","jku":"http://127.0.0.1:9/jwks.json"})),
                &tampered,
            ),
            INVALID_TOKEN,
        ),
        case(
            "spoofed x5u",
            k.rs256_with(
                &k.rogue_rsa,
                &with_header(json!({"alg":"RS256","x5u":"http://127.0.0.1:9/cert.pem"})),
                &tampered,
            ),
            INVALID_TOKEN,
        ),
        case(
            "kid /dev/null, blank key",
            craft::hs256(
                b"",
                &with_header(json!({"alg":"HS256","kid":"../../../../../../dev/null"})),
                &tampered,
            ),
            INVALID_TOKEN,
        ),
        case(
            "kid SQL injection",
            craft::hs256(
                b"zzz",
                &with_header(json!({"alg":"HS256","kid":"x' UNION SELECT 'zzz';--"})),
                &tampered,
            ),
            INVALID_TOKEN,
        ),
        case(
            "kid command injection",
            craft::hs256(b"", &with_header(json!({"alg":"HS256","kid":"/dev/null; sleep 5"})), &tampered),
            INVALID_TOKEN,
        ),
        case("genuine, unchanged", genuine, Expect::Ok),
    ];
    for none in none_casings() {
        cases.push(case(
            format!("alg {none}"),
            format!("{}.", signing_input(&with_header(json!({"alg":none})), &tampered)),
            INVALID_TOKEN,
        ));
    }
    for (form, bytes) in public_key_forms {
        for alg in ["HS256", "HS384", "HS512"] {
            let input = signing_input(&with_header(json!({"alg":alg})), &tampered);
            let hash = match alg {
                "HS256" => aws_lc_rs::hmac::HMAC_SHA256,
                "HS384" => aws_lc_rs::hmac::HMAC_SHA384,
                _ => aws_lc_rs::hmac::HMAC_SHA512,
            };
            let tag = aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(hash, bytes), input.as_bytes());
            cases.push(case(
                format!("key confusion {alg} with {form}"),
                format!("{input}.{}", b64(tag.as_ref())),
                INVALID_TOKEN,
            ));
        }
    }
    cases
}

fn base64_decode(segment: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment).unwrap()
}

/// The quickstart's router around a configuration made by its own settings code.
async fn serve_quickstart(settings: &support::Settings) -> Server {
    serve(settings.auth_builder().build().unwrap()).await
}

#[tokio::test]
async fn the_quickstart_resists_the_playbook_with_hs256_and_rs256() {
    let k = keys();
    let bind = "127.0.0.1:0".parse().unwrap();
    // HS256, as with `JWT_SECRET`.
    let hs = support::Settings {
        bind,
        keys: support::KeyConfig::Secret {
            secret: k.hmac.to_vec(),
            algorithm: Algorithm::HS256,
            generated: false,
        },
        issuer: None,
        audience: None,
        #[cfg(feature = "introspection")]
        introspection: None,
        #[cfg(feature = "jwe")]
        jwe: None,
    };
    let genuine = k.hs256(r#"{"alg":"HS256","typ":"JWT"}"#, &good_claims("alice"));
    serve_quickstart(&hs).await.play(&playbook(&genuine, &[])).await;
    // RS256, as with `JWT_PUBLIC_KEY` pointing at a PEM file.
    let rs = support::Settings {
        bind,
        keys: support::KeyConfig::PublicKey {
            key: VerificationKey::from_pem(k.rsa_pem().as_bytes(), None).unwrap(),
        },
        issuer: None,
        audience: None,
        #[cfg(feature = "introspection")]
        introspection: None,
        #[cfg(feature = "jwe")]
        jwe: None,
    };
    let genuine = k.rs256(r#"{"alg":"RS256","typ":"JWT"}"#, &good_claims("alice"));
    let forms = [
        ("PEM", k.rsa_pem().into_bytes()),
        ("SPKI DER", k.rsa_spki_der()),
        ("PKCS#1 DER", k.rsa_pkcs1_der()),
    ];
    serve_quickstart(&rs).await.play(&playbook(&genuine, &forms)).await;
}

#[tokio::test]
async fn optional_mode_never_downgrades_a_bad_token_to_anonymous() {
    let k = keys();
    let claims = good_claims("mallory");
    let auth = hs_builder().optional(true).build().unwrap();
    let handler = |claims: Option<Claims<Value>>| async move {
        Json(
            json!({"sub": claims.map_or("anonymous".to_owned(), |c| c["sub"].as_str().unwrap_or("?").to_owned())}),
        )
    };
    let server = serve_app(Router::new().route("/me", get(handler)).route_layer(auth.layer::<Value>())).await;
    let cases = [
        case("alg none", format!("{}.", signing_input(r#"{"alg":"none"}"#, &claims)), INVALID_TOKEN),
        case("blank secret", craft::hs256(b"", r#"{"alg":"HS256"}"#, &claims), INVALID_TOKEN),
        case(
            "expired",
            k.hs256(r#"{"alg":"HS256"}"#, &format!(r#"{{"sub":"a","exp":{}}}"#, now() - 3600)),
            EXPIRED,
        ),
        case("garbage", "garbage", INVALID_TOKEN),
    ];
    server.play(&cases).await;
    let (status, body) = server.get("/me", &[]).await;
    assert_eq!((status.as_u16(), body["sub"].as_str()), (200, Some("anonymous")));
    assert_eq!(server.outcome("/me", &[b"Bearer"]).await, INVALID_REQUEST);
}

const BINDING_MISMATCH: Expect = Expect::Refused(401, "BINDING_MISMATCH");

/// A signed token whose `cnf` is the JSON text `cnf`.
fn with_cnf(cnf: &str) -> String {
    let claims = format!(r#"{{"sub":"a","exp":{},"cnf":{cnf}}}"#, now() + 600);
    keys().hs256(r#"{"alg":"HS256"}"#, &claims)
}

/// Every confirmation method of RFC 7800 §3 and of the IANA "JWT Confirmation Methods" registry,
/// and one nobody registered: `(case, cnf, the binding the refusal names)`.
fn confirmation_methods() -> Vec<(&'static str, String, &'static str)> {
    let point = keys().ec_point();
    let jwk =
        format!(r#"{{"kty":"EC","crv":"P-256","x":"{}","y":"{}"}}"#, b64(&point[1..33]), b64(&point[33..]));
    vec![
        ("jwk (RFC 7800 §3.2)", format!(r#"{{"jwk":{jwk}}}"#), "jwk"),
        ("jwe (RFC 7800 §3.3)", r#"{"jwe":"eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d"}"#.into(), "jwe"),
        ("kid (RFC 7800 §3.4)", r#"{"kid":"dfd1aa97-6d8d-4575-a0fe-34b96de2bfad"}"#.into(), "kid"),
        ("jku (RFC 7800 §3.5)", r#"{"jku":"https://client.example.com/keys.jwks"}"#.into(), "jku"),
        ("osc (RFC 9203)", r#"{"osc":{"ms":"f9af838368e353e78888e1426bd94e6f","id":"AQ"}}"#.into(), "osc"),
        ("jkt (RFC 9449)", r#"{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}"#.into(), "jkt"),
        (
            "x5t#S256 (RFC 8705)",
            r#"{"x5t#S256":"bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}"#.into(),
            "x5t#S256",
        ),
        ("an invented member", r#"{"attacker-binding":"x"}"#.into(), "cnf"),
        ("an invented member of any type", r#"{"attacker-binding":[{"a":null}]}"#.into(), "cnf"),
        ("known and invented members", r#"{"kid":"k","attacker-binding":1}"#.into(), "kid"),
    ]
}

/// Sends `token` as a plain bearer token; returns (status, body, WWW-Authenticate).
async fn bearer(server: &Server, token: &str) -> (u16, Value, String) {
    let response = server.client.get(format!("{}/me", server.base)).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, response.json().await.unwrap_or(Value::Null), challenge)
}

#[tokio::test]
async fn proof_of_possession_tokens_never_pass_as_bearer_tokens() {
    // Nothing configured checks any binding: every confirmation method is one this service
    // cannot verify, so the token must not pass as a bearer token (twice: the second request
    // is answered from the verified-token cache, and must be refused all the same).
    let server = serve(hs_builder().build().unwrap()).await;
    for (name, cnf, named) in confirmation_methods() {
        let token = with_cnf(&cnf);
        for attempt in ["first", "cached"] {
            let (status, body, challenge) = bearer(&server, &token).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (401, Some("BINDING_MISMATCH")),
                "{name} ({attempt})"
            );
            assert_eq!(body["binding"], named, "{name}: the refusal names the member ({attempt})");
            let shown = format!("{body} {challenge}");
            assert!(!shown.contains("attacker"), "{name}: a member's name is never echoed: {shown}");
        }
    }
}

#[tokio::test]
async fn a_checked_binding_does_not_cover_an_unchecked_one() {
    use std::net::SocketAddr;
    use tower_jwt_guard::binding::ClientIpBinding;

    // The client IP policy checks `cip` (loopback here, so it matches); any other member is
    // still one nothing checks.
    let auth = hs_builder().binding(ClientIpBinding::new()).build().unwrap();
    let app = Router::new().route("/me", get(me)).route_layer(auth.layer::<User>());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap()
    });
    let server = Server { base: format!("http://{addr}"), client: reqwest::Client::new() };
    let mut cases = vec![case("cip alone", with_cnf(r#"{"cip":"127.0.0.1"}"#), Expect::Ok)];
    for (name, cnf, _) in confirmation_methods() {
        let both = format!(r#"{{"cip":"127.0.0.1",{}"#, &cnf[1..]);
        cases.push(case(format!("cip and {name}"), with_cnf(&both), BINDING_MISMATCH));
    }
    server.play(&cases).await;
}

#[tokio::test]
async fn malformed_confirmations_are_invalid_tokens() {
    let mut cases = Vec::new();
    // RFC 7800 §3.1: `cnf` is a JSON object naming the confirmation method; an empty one
    // confirms nothing and is no proof-of-possession token either.
    for cnf in ["{}", r#""jkt""#, "5", "true", "null", "[]", r#"["x"]"#, r#"[{"jkt":"a"}]"#] {
        cases.push(case(format!("cnf {cnf}"), with_cnf(cnf), INVALID_TOKEN));
    }
    // A known member of the wrong JSON type.
    for cnf in [
        r#"{"jkt":5}"#,
        r#"{"jkt":null}"#,
        r#"{"x5t#S256":["a"]}"#,
        r#"{"dfp":null}"#,
        r#"{"cfp":1}"#,
        r#"{"cip":{}}"#,
        r#"{"jwk":"a key"}"#,
        r#"{"jwk":null}"#,
        r#"{"jwe":{}}"#,
        r#"{"kid":5}"#,
        r#"{"jku":["https://client.example.com/keys.jwks"]}"#,
        r#"{"osc":"ms"}"#,
    ] {
        cases.push(case(format!("cnf {cnf}"), with_cnf(cnf), INVALID_TOKEN));
    }
    // Duplicate members, known or not (as duplicate claims are), and a flood of members.
    for cnf in [r#"{"jkt":"a","jkt":"b"}"#, r#"{"kid":"a","kid":"b"}"#, r#"{"xyz":1,"xyz":2}"#] {
        cases.push(case(format!("cnf {cnf}"), with_cnf(cnf), INVALID_TOKEN));
    }
    let flood = (0..64).map(|i| format!(r#""m{i}":{i}"#)).collect::<Vec<_>>().join(",");
    cases.push(case("cnf with 64 invented members", with_cnf(&format!("{{{flood}}}")), INVALID_TOKEN));
    serve(hs_builder().build().unwrap()).await.play(&cases).await;
}
/// What a client reads of a refusal over HTTP (status, JSON body, challenge) and over gRPC
/// (`grpc-status`, `grpc-message`).
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    status: u16,
    body: Value,
    challenge: String,
    grpc: (String, String),
}

impl Server {
    async fn refusal(&self, token: &str) -> Refusal {
        let response = self.client.get(format!("{}/me", self.base)).bearer_auth(token).send().await.unwrap();
        let status = response.status().as_u16();
        let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
        let body = response.json().await.unwrap();
        let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
        let grpc = h2
            .post(format!("{}/me", self.base))
            .header("content-type", "application/grpc")
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(grpc.status(), StatusCode::OK, "a gRPC refusal is trailers-only");
        let header = |name: &str| grpc.headers()[name].to_str().unwrap().to_owned();
        Refusal { status, body, challenge, grpc: (header("grpc-status"), header("grpc-message")) }
    }
}

/// Review finding: "no key is known", "the signature is invalid" and "the algorithm is not
/// allowed" told a forger, try after try, which keys and algorithms the server has. Clients now
/// read one text per code; the audit event keeps the precise reason; a service in development
/// may opt in to send it.
#[tokio::test]
async fn refusals_do_not_tell_the_client_why_unless_the_service_opts_in() {
    let k = keys();
    let claims = good_claims("mallory");
    let tokens = [
        (
            "bad signature",
            craft::hs256(b"not the server's secret, 32 bytes", r#"{"alg":"HS256","kid":"hmac"}"#, &claims),
            "the token signature is invalid",
        ),
        (
            "unknown kid",
            k.hs256(r#"{"alg":"HS256","kid":"nope"}"#, &claims),
            "no key is known for this token",
        ),
        (
            "algorithm not allowed",
            craft::hs256(&k.hmac, r#"{"alg":"HS512","kid":"hmac"}"#, &claims),
            "the token's algorithm is not allowed",
        ),
    ];
    for expose in [false, true] {
        let reasons = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&reasons);
        let auth = mixed_builder()
            .expose_error_details(expose)
            .on_audit(move |event| sink.lock().unwrap().push(event.reason.map(str::to_owned)))
            .build()
            .unwrap();
        let server = serve(auth).await;
        let mut refusals = Vec::new();
        for (name, token, reason) in &tokens {
            let refusal = server.refusal(token).await;
            let text = if expose { reason } else { "the token is not valid" };
            let expected = Refusal {
                status: 401,
                body: json!({"error": text, "code": "INVALID_TOKEN"}),
                challenge: format!(
                    r#"Bearer realm="api", error="invalid_token", error_description="{text}""#
                ),
                grpc: ("16".into(), format!("INVALID_TOKEN: {text}")),
            };
            assert_eq!(refusal, expected, "{name}, details exposed: {expose}");
            refusals.push(refusal);
        }
        if !expose {
            assert!(refusals.windows(2).all(|pair| pair[0] == pair[1]), "{refusals:#?}");
        }
        // The operators always read the reason: one audit event per request, HTTP and gRPC.
        let reasons = reasons.lock().unwrap().clone();
        let expected: Vec<_> = tokens
            .iter()
            .flat_map(|(_, _, reason)| [Some(reason.to_string()), Some(reason.to_string())])
            .collect();
        assert_eq!(reasons, expected, "details exposed: {expose}");
    }
}
