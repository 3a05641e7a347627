//! The HTTP server of the end-to-end benchmark (`benches/http.sh` drives it with wrk).
//!
//! `http_server --serve <addr> <alg>` serves `/bare` (no layer), `/cached` and `/uncached`
//! (the layer with and without the verified-token cache) and prints one line: a valid token
//! for `<alg>`. Without `--serve` it exits at once, so that `cargo bench` passes over it.

#[path = "../tests/harness/mod.rs"]
mod harness;
mod routers;

use axum::routing::get;
use axum::Router;
use routers::{bare, guard_router, key_and_bearer};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(position) = args.iter().position(|a| a == "--serve") else { return };
    let addr = args.get(position + 1).expect("an address").clone();
    let alg = args.get(position + 2).expect("an algorithm").parse().expect("an algorithm name");
    let (key, bearer) = key_and_bearer(alg);
    let app = Router::new()
        .route("/bare", get(bare))
        .nest("/cached", guard_router(&key, true))
        .nest("/uncached", guard_router(&key, false));
    println!("{}", bearer.to_str().unwrap().trim_start_matches("Bearer "));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        axum::serve(listener, app).await.unwrap();
    });
}
