//! The cost of an encrypted token (JWE) per request, uncached and cached, against a signed
//! token (JWS) of the same claims, next to a bare route: the guide's A256KW / A256GCM claims
//! set against HS256, a nested RSA-OAEP-256 / A256GCM token (an RS256 JWS inside) against the
//! RS256 JWS alone, and a nested ECDH-ES+A256KW (P-256) / A256GCM token against its ES256 JWS.
//!
//! `cargo bench --bench jwe`

#[path = "../tests/harness/mod.rs"]
mod harness;
mod routers;

use std::time::Duration;

use aws_lc_rs::agreement;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeySize, PrivateDecryptingKey};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::HeaderValue;
use routers::{bare_router, guard_router_for, key_and_bearer, request};
use tower::ServiceExt as _;
use tower_jwt_guard::jwe::{ContentEncryption, DecryptionKey, EncryptionKey, KeyManagement};
use tower_jwt_guard::{Algorithm, JwtAuth};

const SECRET: [u8; 32] = [0x42; 32];

fn pem(label: &str, der: &[u8]) -> String {
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", STANDARD.encode(der))
}

fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
}

fn jwe(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let gcm = ContentEncryption::A256Gcm;
    let rsa = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
    let rsa_private: Pkcs8V1Der = rsa.as_der().unwrap();
    let rsa_public: PublicKeyX509Der = rsa.public_key().as_der().unwrap();
    let rsa_private = pem("PRIVATE KEY", rsa_private.as_ref());
    let to_rsa = EncryptionKey::from_pem(
        KeyManagement::RsaOaep256,
        gcm,
        pem("PUBLIC KEY", rsa_public.as_ref()).as_bytes(),
    )
    .unwrap();
    let shared = EncryptionKey::secret(KeyManagement::A256Kw, gcm, SECRET).unwrap();
    let ec = agreement::PrivateKey::generate(&agreement::ECDH_P256).unwrap();
    let ec_private: Pkcs8V1Der = ec.as_der().unwrap();
    let ec_public: PublicKeyX509Der = ec.compute_public_key().unwrap().as_der().unwrap();
    let ec_private = pem("PRIVATE KEY", ec_private.as_ref());
    let to_ec = EncryptionKey::from_pem(
        KeyManagement::EcdhEsA256Kw,
        gcm,
        pem("PUBLIC KEY", ec_public.as_ref()).as_bytes(),
    )
    .unwrap();

    let mut claims = harness::claims("bench");
    claims["aud"] = "bench".into();
    let (hs256, hs256_bearer) = key_and_bearer(Algorithm::HS256);
    let (rs256, rs256_bearer) = key_and_bearer(Algorithm::RS256);
    let (es256, es256_bearer) = key_and_bearer(Algorithm::ES256);
    let a256kw_bearer = bearer(&shared.encrypt(claims.to_string().as_bytes(), false).unwrap());
    let nested_bearer = bearer(&to_rsa.encrypt(rs256.sign(&claims).as_bytes(), true).unwrap());
    let ecdh_bearer = bearer(&to_ec.encrypt(es256.sign(&claims).as_bytes(), true).unwrap());

    let router = |key: &harness::TestKey, cache: bool| {
        let mut builder = JwtAuth::builder()
            .key(key.verification_key())
            .audience("bench")
            .decryption_key(DecryptionKey::secret(KeyManagement::A256Kw, gcm, SECRET).unwrap())
            .decryption_key(
                DecryptionKey::from_pem(KeyManagement::RsaOaep256, gcm, rsa_private.as_bytes()).unwrap(),
            )
            .decryption_key(
                DecryptionKey::from_pem(KeyManagement::EcdhEsA256Kw, gcm, ec_private.as_bytes()).unwrap(),
            );
        if !cache {
            builder = builder.cache_capacity(0);
        }
        guard_router_for(&builder.build().unwrap())
    };
    let bare = bare_router();
    let cases = [
        ("JWS HS256", router(&hs256, false), router(&hs256, true), &hs256_bearer),
        ("JWE A256KW+A256GCM claims", router(&hs256, false), router(&hs256, true), &a256kw_bearer),
        ("JWS RS256", router(&rs256, false), router(&rs256, true), &rs256_bearer),
        (
            "JWE RSA-OAEP-256+A256GCM nested RS256",
            router(&rs256, false),
            router(&rs256, true),
            &nested_bearer,
        ),
        ("JWS ES256", router(&es256, false), router(&es256, true), &es256_bearer),
        (
            "JWE ECDH-ES+A256KW+A256GCM nested ES256",
            router(&es256, false),
            router(&es256, true),
            &ecdh_bearer,
        ),
    ];
    for (name, uncached, cached, bearer) in &cases {
        for router in [uncached, cached] {
            let status = runtime.block_on(router.clone().oneshot(request(bearer))).unwrap().status();
            assert_eq!(status, 200, "{name}");
        }
        println!("{name}: token of {} bytes", bearer.len() - "Bearer ".len());
    }

    let mut group = c.benchmark_group("jwe");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    let bearer = &hs256_bearer;
    group.bench_function(BenchmarkId::new("bare route", ""), |b| {
        b.to_async(&runtime).iter(|| bare.clone().oneshot(request(bearer)))
    });
    for (name, uncached, cached, bearer) in &cases {
        group.bench_function(BenchmarkId::new(*name, "uncached"), |b| {
            b.to_async(&runtime).iter(|| uncached.clone().oneshot(request(bearer)))
        });
        group.bench_function(BenchmarkId::new(*name, "cached"), |b| {
            b.to_async(&runtime).iter(|| cached.clone().oneshot(request(bearer)))
        });
    }
    group.finish();
}

criterion_group!(benches, jwe);
criterion_main!(benches);
