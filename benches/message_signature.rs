//! The per-request cost of HTTP Message Signatures (RFC 9421): the whole policy check (the two
//! structured fields parsed, the label picked, coverage and time checked, the signature base
//! rebuilt, the key found by `keyid`, the signature verified, the nonce recorded in the memory
//! replay store) against the verification of the same signature base alone (aws-lc-rs, the key
//! parsed beforehand), for Ed25519 and ECDSA P-256. Goal: at most the signature + 15 %, the
//! body's digest excluded (the request carries a `content-digest` header, covered, but no body).
//!
//! Then the throughput of the body's `Content-Digest` check (RFC 9530): sha-256 and sha-512 over
//! a 1 MiB body fed in 16 KiB chunks, in bytes per second.
//!
//! Each iteration gets a fresh signature with a fresh nonce (made outside the measurement): a
//! replayed one would be refused after its signature is checked.
//!
//! `cargo bench --bench message_signature`
//!
//! Criterion's timings move with the load of a shared machine; instruction counts do not. With
//! `MESSAGE_SIGNATURE_CALLGRIND=<variant>` (`ed25519-signature`, `ed25519-check`,
//! `es256-signature`, `es256-check`) the binary runs 1,000 of them in one function for callgrind:
//!
//! ```text
//! cargo bench --bench message_signature --no-run
//! MESSAGE_SIGNATURE_CALLGRIND=ed25519-check valgrind --tool=callgrind \
//!     --toggle-collect='*measured_*' target/release/deps/message_signature-<hash>
//! ```

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ParsedPublicKey};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use serde_json::json;
use tower_jwt_guard::binding::{BindingPolicy, ContentDigest, MessageSignature, RequestHead, SignatureKey};
use tower_jwt_guard::revocation::MemoryReplayStore;

const URL: &str = "https://api.example.com";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A signing client: Ed25519 or ECDSA P-256.
enum Signer {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair),
}

impl Signer {
    fn sign(&self, base: &[u8]) -> Vec<u8> {
        match self {
            Signer::Ed25519(pair) => pair.sign(base).as_ref().to_vec(),
            Signer::P256(pair) => pair.sign(&SystemRandom::new(), base).unwrap().as_ref().to_vec(),
        }
    }

    fn jwk(&self) -> String {
        match self {
            Signer::Ed25519(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())})
            }
            Signer::P256(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])})
            }
        }
        .to_string()
    }

    fn parsed(&self) -> ParsedPublicKey {
        match self {
            Signer::Ed25519(pair) => ParsedPublicKey::new(&signature::ED25519, pair.public_key().as_ref()),
            Signer::P256(pair) => {
                ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref())
            }
        }
        .unwrap()
    }
}

/// A token-shaped bearer credential (opaque to the binding step).
fn token() -> String {
    format!(
        "eyJhbGciOiJIUzI1NiJ9.{}.{}",
        URL_SAFE_NO_PAD.encode([7u8; 180]),
        URL_SAFE_NO_PAD.encode([9u8; 32])
    )
}

/// A signed request (a fresh nonce), its signature base and its signature.
fn signed_request(signer: &Signer, token: &str) -> (http::Request<()>, Vec<u8>, Vec<u8>) {
    let mut nonce = [0u8; 16];
    aws_lc_rs::rand::fill(&mut nonce).unwrap();
    let digest = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:";
    let params = format!(
        r#"("@method" "@target-uri" "authorization" "content-digest");created={};keyid="client-1";nonce="{}""#,
        now(),
        URL_SAFE_NO_PAD.encode(nonce)
    );
    let base = format!(
        "\"@method\": POST\n\"@target-uri\": {URL}/orders?page=2\n\"authorization\": Bearer {token}\n\"content-digest\": {digest}\n\"@signature-params\": {params}"
    );
    let signature = signer.sign(base.as_bytes());
    let request = http::Request::post("/orders?page=2")
        .header("host", "api.example.com")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("content-digest", digest)
        .header("signature-input", format!("sig={params}"))
        .header("signature", format!("sig=:{}:", STANDARD.encode(&signature)))
        .body(())
        .unwrap();
    (request, base.into_bytes(), signature)
}

fn message_signature(c: &mut Criterion) {
    let token = token();
    let signers = [
        ("Ed25519", Signer::Ed25519(Ed25519KeyPair::generate().unwrap())),
        ("ES256", Signer::P256(EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())),
    ];
    let mut group = c.benchmark_group("message_signature");
    group.measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(2));
    for (name, signer) in &signers {
        let policy = MessageSignature::required()
            .key("client-1", SignatureKey::from_jwk(&signer.jwk()).unwrap())
            .cover(["@method", "@target-uri", "authorization"])
            .cover_content_digest_with_body()
            .public_url(URL)
            .replay_store(MemoryReplayStore::with_capacity(20_000_000));
        let key = signer.parsed();
        // The check passes before anything is measured.
        let (request, _, _) = signed_request(signer, &token);
        policy.check(&RequestHead::of(&request), None).unwrap();
        group.bench_function(format!("{name} signature alone"), |b| {
            b.iter_batched(
                || signed_request(signer, &token),
                |(_, base, sig)| key.verify_sig(black_box(&base), black_box(&sig)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        group.bench_function(format!("{name} policy check (memory replay store)"), |b| {
            b.iter_batched(
                || signed_request(signer, &token),
                |(request, _, _)| policy.check(&RequestHead::of(black_box(&request)), None).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    let body = vec![0x5au8; 1 << 20];
    let mut group = c.benchmark_group("content_digest");
    group.throughput(Throughput::Bytes(body.len() as u64));
    for (name, field) in [
        ("sha-256, 1 MiB in 16 KiB chunks", ContentDigest::header_value_sha256(&body)),
        ("sha-512, 1 MiB in 16 KiB chunks", ContentDigest::header_value_sha512(&body)),
    ] {
        let mut headers = http::HeaderMap::new();
        headers.insert("content-digest", field.parse().unwrap());
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut check = ContentDigest::from_headers(&headers, 2 << 20).unwrap().unwrap();
                for chunk in black_box(&body).chunks(16 * 1024) {
                    check.update(chunk).unwrap();
                }
                check.finish().unwrap()
            })
        });
    }
    group.finish();
}

/// The signatures alone, over bases made beforehand.
#[inline(never)]
fn measured_signatures(key: &ParsedPublicKey, signed: &[(http::Request<()>, Vec<u8>, Vec<u8>)]) {
    for (_, base, sig) in signed {
        key.verify_sig(black_box(base), black_box(sig)).unwrap();
    }
}

/// The policy checks of requests made beforehand.
#[inline(never)]
fn measured_checks(policy: &MessageSignature, signed: &[(http::Request<()>, Vec<u8>, Vec<u8>)]) {
    for (request, _, _) in signed {
        policy.check(&RequestHead::of(black_box(request)), None).unwrap();
    }
}

/// One variant, 1,000 times, for callgrind (see the module documentation).
fn callgrind(variant: &str) {
    let (alg, what) = variant.split_once('-').expect("<alg>-<signature|check>");
    let signer = match alg {
        "ed25519" => Signer::Ed25519(Ed25519KeyPair::generate().unwrap()),
        "es256" => Signer::P256(EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap()),
        other => panic!("unknown algorithm {other}"),
    };
    let token = token();
    let policy = MessageSignature::required()
        .key("client-1", SignatureKey::from_jwk(&signer.jwk()).unwrap())
        .cover(["@method", "@target-uri", "authorization"])
        .cover_content_digest_with_body()
        .public_url(URL)
        .replay_store(MemoryReplayStore::with_capacity(100_000));
    // One check before, so that lazily built state is not counted.
    policy.check(&RequestHead::of(&signed_request(&signer, &token).0), None).unwrap();
    let signed: Vec<_> = (0..1_000).map(|_| signed_request(&signer, &token)).collect();
    match what {
        "signature" => measured_signatures(&signer.parsed(), &signed),
        "check" => measured_checks(&policy, &signed),
        other => panic!("unknown variant {other}"),
    }
}

criterion_group!(benches, message_signature);

fn main() {
    if let Ok(variant) = std::env::var("MESSAGE_SIGNATURE_CALLGRIND") {
        callgrind(&variant);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
