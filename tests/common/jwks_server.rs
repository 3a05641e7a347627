//! A real JWKS (and OIDC discovery) server on loopback for the tests: the test swaps the
//! document it serves, switches it to fail, and reads how many times it was asked.
//!
//! Include it with `#[path = "common/jwks_server.rs"] mod jwks_server;`.

#![allow(dead_code)] // each test file uses the part it needs

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// What the JWKS endpoint answers.
#[derive(Clone, Debug)]
pub enum Mode {
    /// 200 with this document and optional `Cache-Control` value.
    Serve { body: String, cache_control: Option<String> },
    /// This status with an empty body.
    Status(u16),
    /// Never answers.
    Hang,
}

struct ServerState {
    mode: Mutex<Mode>,
    /// The `issuer` the discovery document claims (`None`: the server's own URL).
    discovery_issuer: Mutex<Option<String>>,
    jwks_requests: AtomicUsize,
    discovery_requests: AtomicUsize,
    addr: SocketAddr,
}

/// The running server; it stops when dropped.
pub struct JwksServer {
    state: Arc<ServerState>,
    _stop: oneshot::Sender<()>,
}

impl JwksServer {
    /// Starts on 127.0.0.1 (ephemeral port), answering 503 until told what to serve.
    pub async fn start() -> JwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the JWKS server");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(ServerState {
            mode: Mutex::new(Mode::Status(503)),
            discovery_issuer: Mutex::new(None),
            jwks_requests: AtomicUsize::new(0),
            discovery_requests: AtomicUsize::new(0),
            addr,
        });
        let app = Router::new()
            .route("/jwks.json", get(jwks))
            .route("/.well-known/openid-configuration", get(discovery))
            .with_state(Arc::clone(&state));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        JwksServer { state, _stop: stop }
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("http://{}/jwks.json", self.state.addr)
    }

    /// The issuer URL whose discovery document this server publishes.
    pub fn issuer(&self) -> String {
        format!("http://{}", self.state.addr)
    }

    /// Serves `{"keys": keys}`.
    pub fn serve(&self, keys: Vec<Value>) {
        self.set(Mode::Serve { body: json!({ "keys": keys }).to_string(), cache_control: None });
    }

    /// Serves `{"keys": keys}` with a `Cache-Control` header.
    pub fn serve_with_cache_control(&self, keys: Vec<Value>, cache_control: &str) {
        let body = json!({ "keys": keys }).to_string();
        self.set(Mode::Serve { body, cache_control: Some(cache_control.to_owned()) });
    }

    /// Serves this exact body (malformed documents).
    pub fn serve_raw(&self, body: &str) {
        self.set(Mode::Serve { body: body.to_owned(), cache_control: None });
    }

    /// Answers every JWKS request with `status`.
    pub fn fail(&self, status: u16) {
        self.set(Mode::Status(status));
    }

    /// Never answers JWKS requests.
    pub fn hang(&self) {
        self.set(Mode::Hang);
    }

    /// Makes the discovery document claim another issuer.
    pub fn claim_issuer(&self, issuer: &str) {
        *self.state.discovery_issuer.lock().unwrap() = Some(issuer.to_owned());
    }

    /// JWKS requests received so far.
    pub fn jwks_requests(&self) -> usize {
        self.state.jwks_requests.load(Ordering::SeqCst)
    }

    /// Discovery requests received so far.
    pub fn discovery_requests(&self) -> usize {
        self.state.discovery_requests.load(Ordering::SeqCst)
    }

    fn set(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }
}

async fn jwks(State(state): State<Arc<ServerState>>) -> Response {
    state.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let mode = state.mode.lock().unwrap().clone();
    match mode {
        Mode::Serve { body, cache_control } => {
            let mut response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
            if let Some(value) = cache_control {
                response.headers_mut().insert(header::CACHE_CONTROL, value.parse().unwrap());
            }
            response
        }
        Mode::Status(status) => StatusCode::from_u16(status).unwrap().into_response(),
        Mode::Hang => std::future::pending().await,
    }
}

async fn discovery(State(state): State<Arc<ServerState>>) -> Json<Value> {
    state.discovery_requests.fetch_add(1, Ordering::SeqCst);
    let own = format!("http://{}", state.addr);
    let issuer = state.discovery_issuer.lock().unwrap().clone().unwrap_or_else(|| own.clone());
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{own}/jwks.json"),
        "authorization_endpoint": format!("{own}/authorize"),
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
    }))
}
