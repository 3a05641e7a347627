//! The per-request cost of DPoP (RFC 9449): the whole binding check of an ES256 proof (header
//! reads, two JSON parses, thumbprint, `htm`/`htu`/`iat`/`ath`, the key from the cache, the
//! signature, the memory replay store) against the proof's ES256 signature check alone.
//! Goal: at most the signature + 10 %.
//!
//! Each iteration gets a fresh proof (made outside the measurement): a replayed one would be
//! refused before its signature is checked.
//!
//! `cargo bench --bench dpop`

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, ParsedPublicKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::json;
use tower_jwt_guard::binding::{BindingPolicy, Dpop, RequestHead};
use tower_jwt_guard::revocation::MemoryReplayStore;
use tower_jwt_guard::Confirmation;

const URL: &str = "https://api.example.com";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

struct Client {
    pair: EcdsaKeyPair,
    header: String,
    jkt: String,
    token: String,
}

impl Client {
    fn new() -> Client {
        let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let (x, y) = (b64(&point[1..33]), b64(&point[33..]));
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let jkt = b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()));
        let header = b64(json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": { "kty": "EC", "crv": "P-256", "x": x, "y": y } }).to_string());
        // The access token is opaque to the binding step: any token-shaped text.
        let token = format!("eyJhbGciOiJIUzI1NiJ9.{}.{}", b64([7u8; 180]), b64([9u8; 32]));
        Client { pair, header, jkt, token }
    }

    /// A request with a fresh proof, its signing input and its signature.
    fn request(&self) -> (http::Request<()>, Vec<u8>, Vec<u8>) {
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).unwrap();
        let ath = b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.token.as_bytes()));
        let claims = json!({ "jti": b64(jti), "htm": "GET", "htu": format!("{URL}/orders"), "iat": now(), "ath": ath });
        let input = format!("{}.{}", self.header, b64(claims.to_string()));
        let sig = self.pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap().as_ref().to_vec();
        let proof = format!("{input}.{}", b64(&sig));
        let request = http::Request::get("/orders?page=2")
            .header("authorization", format!("DPoP {}", self.token))
            .header("dpop", proof)
            .body(())
            .unwrap();
        (request, input.into_bytes(), sig)
    }
}

fn dpop(c: &mut Criterion) {
    let client = Client::new();
    let policy = Dpop::allowed().public_url(URL).replay_store(MemoryReplayStore::with_capacity(20_000_000));
    let cnf: Confirmation = serde_json::from_str(&format!(r#"{{"jkt":"{}"}}"#, client.jkt)).unwrap();
    let key =
        ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, client.pair.public_key().as_ref()).unwrap();
    // The check passes (and the key is in the cache) before anything is measured.
    let (request, _, _) = client.request();
    policy.check(&RequestHead::of(&request), Some(&cnf)).unwrap();

    let mut group = c.benchmark_group("dpop");
    group.measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(2));
    group.bench_function("ES256 signature alone", |b| {
        b.iter_batched(
            || client.request(),
            |(_, input, sig)| key.verify_sig(black_box(&input), black_box(&sig)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("DPoP check (ES256, memory replay store)", |b| {
        b.iter_batched(
            || client.request(),
            |(request, _, _)| policy.check(&RequestHead::of(black_box(&request)), Some(&cnf)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, dpop);
criterion_main!(benches);
