//! Instructions per request, counted by callgrind: figures that do not move with the load of
//! a shared machine (criterion's timings do).
//!
//! ```text
//! cargo bench --bench instructions --no-run
//! valgrind --tool=callgrind --toggle-collect='*serve_requests*' \
//!     target/release/deps/instructions-<hash> <variant> <alg> <n>
//! ```
//!
//! `variant` is one of `bare`, `cached`, `bound` (cached, with fingerprint + IP binding + memory
//! revocation), `uncached`, `jwt-authorizer`, `axum-jwt-auth`,
//! `signature`; `alg` one of `HS256`, `RS256`, `ES256`, `EdDSA`. Without arguments it runs
//! every combination once (so `cargo bench` checks that it works) and prints nothing else.

#[path = "../tests/harness/mod.rs"]
mod harness;
mod routers;

use std::hint::black_box;

use http::HeaderValue;
use routers::{
    axum_jwt_auth_peer, bare_router, bound_router_and_bearer, guard_router, jwt_authorizer_peer,
    key_and_bearer, request, ALGORITHMS,
};
use tower::ServiceExt as _;
use tower_jwt_guard::Algorithm;

/// The measured loop: `n` requests through `router`, each one checked to be a 200.
#[inline(never)]
fn serve_requests<S, B>(runtime: &tokio::runtime::Runtime, router: &S, bearer: &HeaderValue, n: u32)
where
    S: tower::Service<http::Request<axum::body::Body>, Response = http::Response<B>> + Clone,
    S::Error: std::fmt::Debug,
{
    for _ in 0..n {
        let response = runtime.block_on(router.clone().oneshot(request(bearer))).unwrap();
        assert_eq!(response.status(), 200);
        black_box(response);
    }
}

/// The requests before the measured ones (a cache to fill): the same loop under another name,
/// outside `--toggle-collect='*serve_requests*'`.
#[inline(never)]
fn warm_up<S, B>(runtime: &tokio::runtime::Runtime, router: &S, bearer: &HeaderValue)
where
    S: tower::Service<http::Request<axum::body::Body>, Response = http::Response<B>> + Clone,
    S::Error: std::fmt::Debug,
{
    let response = runtime.block_on(router.clone().oneshot(request(bearer))).unwrap();
    assert_eq!(response.status(), 200);
}

#[inline(never)]
fn serve_signatures(key: &harness::TestKey, token: &str, n: u32) {
    let verification = key.verification_key();
    let (input, signature) = token.rsplit_once('.').unwrap();
    let signature = harness::b64_decode(signature);
    for _ in 0..n {
        assert!(black_box(verification.verify(input.as_bytes(), &signature)));
    }
}

fn run(variant: &str, alg: Algorithm, n: u32) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (key, bearer) = key_and_bearer(alg);
    match variant {
        "bare" => serve_requests(&runtime, &bare_router(), &bearer, n),
        "cached" => {
            let router = guard_router(&key, true);
            // The first request fills the cache; it is not what is measured.
            warm_up(&runtime, &router, &bearer);
            serve_requests(&runtime, &router, &bearer, n)
        }
        "uncached" => serve_requests(&runtime, &guard_router(&key, false), &bearer, n),
        "bound" => {
            let (router, bound_bearer) = bound_router_and_bearer(&key);
            warm_up(&runtime, &router, &bound_bearer);
            serve_requests(&runtime, &router, &bound_bearer, n)
        }
        "jwt-authorizer" => {
            let router = runtime.block_on(jwt_authorizer_peer::router(&key));
            serve_requests(&runtime, &router, &bearer, n)
        }
        "axum-jwt-auth" => serve_requests(&runtime, &axum_jwt_auth_peer::router(&key), &bearer, n),
        "signature" => {
            let token = bearer.to_str().unwrap().trim_start_matches("Bearer ").to_string();
            serve_signatures(&key, &token, n)
        }
        other => panic!("unknown variant {other}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    match args.as_slice() {
        [variant, alg, n] => run(variant, alg.parse().expect("an algorithm"), n.parse().expect("a count")),
        _ => {
            for alg in ALGORITHMS {
                for variant in
                    ["bare", "cached", "bound", "uncached", "jwt-authorizer", "axum-jwt-auth", "signature"]
                {
                    run(variant, alg, 1);
                }
            }
        }
    }
}
