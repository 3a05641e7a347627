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

/// What [`RawJwksServer`] does with a request.
#[derive(Clone, Debug)]
pub enum RawMode {
    /// Answers 200 with this document.
    Serve(String),
    /// Reads the request and never answers (until [`RawJwksServer::release`]): a hung endpoint.
    Stall,
    /// Answers one byte of a never-ending header every 100 ms: a slowloris endpoint.
    Drip,
    /// Answers with this document once the wall clock has reached `at` (seconds since the epoch).
    ServeAt { at: u64, body: String },
}

struct RawState {
    mode: Mutex<RawMode>,
    requests: AtomicUsize,
    /// Connections held open without an answer now (stalled or dripping).
    stalled: AtomicUsize,
    release: tokio::sync::watch::Sender<bool>,
}

/// A JWKS endpoint on a bare TCP listener (HTTP/1.1, one request a connection), for what a
/// well-behaved server cannot do: hold connections open without answering, and say how many it
/// holds, so a test can prove a fetch is still pending. It stops when dropped.
pub struct RawJwksServer {
    state: Arc<RawState>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawJwksServer {
    fn drop(&mut self) {
        self.task.abort();
        self.state.release.send_replace(true);
    }
}

impl RawJwksServer {
    /// Starts on 127.0.0.1 (ephemeral port), stalling until told what to serve.
    pub async fn start() -> RawJwksServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the JWKS server");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(RawState {
            mode: Mutex::new(RawMode::Stall),
            requests: AtomicUsize::new(0),
            stalled: AtomicUsize::new(0),
            release: tokio::sync::watch::channel(false).0,
        });
        let serving = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(raw_connection(socket, Arc::clone(&serving)));
            }
        });
        RawJwksServer { state, addr, task }
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    /// Serves `{"keys": keys}`.
    pub fn serve(&self, keys: Vec<Value>) {
        self.set(RawMode::Serve(json!({ "keys": keys }).to_string()));
    }

    /// Serves `{"keys": keys}`, but only once the wall clock reads `at` (seconds since the epoch).
    pub fn serve_at(&self, at: u64, keys: Vec<Value>) {
        self.set(RawMode::ServeAt { at, body: json!({ "keys": keys }).to_string() });
    }

    /// Holds every new request without an answer.
    pub fn stall(&self) {
        self.state.release.send_replace(false);
        self.set(RawMode::Stall);
    }

    /// Answers every new request one header byte at a time, forever.
    pub fn drip(&self) {
        self.state.release.send_replace(false);
        self.set(RawMode::Drip);
    }

    /// Closes the connections held without an answer (their fetches fail).
    pub fn release(&self) {
        self.state.release.send_replace(true);
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Connections held open without an answer now: each is a fetch still pending.
    pub fn stalled(&self) -> usize {
        self.state.stalled.load(Ordering::SeqCst)
    }

    fn set(&self, mode: RawMode) {
        *self.state.mode.lock().unwrap() = mode;
    }
}

async fn raw_connection(mut socket: tokio::net::TcpStream, state: Arc<RawState>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // The request head (GET, no body).
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    state.requests.fetch_add(1, Ordering::SeqCst);
    let mode = state.mode.lock().unwrap().clone();
    let body = match mode {
        RawMode::Serve(body) => body,
        RawMode::ServeAt { at, body } => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
            let wait = std::time::Duration::from_secs(at).saturating_sub(now);
            tokio::time::sleep(wait).await;
            body
        }
        RawMode::Stall | RawMode::Drip => {
            let drip = matches!(mode, RawMode::Drip);
            state.stalled.fetch_add(1, Ordering::SeqCst);
            let mut released = state.release.subscribe();
            let header = b"HTTP/1.1 200 OK\r\nx-slow: ".iter().copied().chain(std::iter::repeat(b'a'));
            let mut header = header.take(if drip { usize::MAX } else { 0 });
            loop {
                tokio::select! {
                    () = async { drop(released.wait_for(|released| *released).await) } => break,
                    // The client gave up (its timeout): the connection is closed.
                    read = socket.read(&mut buf) => if matches!(read, Ok(0) | Err(_)) { break },
                    _ = tokio::time::sleep(std::time::Duration::from_millis(100)), if drip => {
                        if let Some(byte) = header.next() {
                            if socket.write_all(&[byte]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            }
            state.stalled.fetch_sub(1, Ordering::SeqCst);
            return;
        }
    };
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

struct TenantState {
    /// The keys each known tenant publishes; other tenants do not exist (404).
    tenants: Mutex<std::collections::HashMap<String, Vec<Value>>>,
    discovery_requests: AtomicUsize,
    jwks_requests: AtomicUsize,
    /// TCP connections accepted.
    connections: AtomicUsize,
    addr: SocketAddr,
}

/// A multi-tenant identity provider on loopback: tenant `t` is the issuer
/// `http://{addr}/t/v2.0`, with its own discovery document and JWKS; a tenant not added answers
/// 404 to both. It counts every request, and stops when dropped.
pub struct TenantServer {
    state: Arc<TenantState>,
    _stop: oneshot::Sender<()>,
}

impl TenantServer {
    /// Starts on 127.0.0.1 (ephemeral port) with no tenants.
    pub async fn start() -> TenantServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the tenant server");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(TenantState {
            tenants: Mutex::default(),
            discovery_requests: AtomicUsize::new(0),
            jwks_requests: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            addr,
        });
        let counted = Arc::clone(&state);
        let listener = axum::serve::ListenerExt::tap_io(listener, move |_| {
            counted.connections.fetch_add(1, Ordering::SeqCst);
        });
        let app = Router::new()
            .route("/{tenant}/v2.0/.well-known/openid-configuration", get(tenant_discovery))
            .route("/{tenant}/v2.0/jwks.json", get(tenant_jwks))
            .with_state(Arc::clone(&state));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        TenantServer { state, _stop: stop }
    }

    /// The issuer pattern, `http://{addr}/{tenant}/v2.0`.
    pub fn pattern(&self) -> String {
        format!("http://{}/{{tenant}}/v2.0", self.state.addr)
    }

    /// The issuer of `tenant`.
    pub fn issuer(&self, tenant: &str) -> String {
        format!("http://{}/{tenant}/v2.0", self.state.addr)
    }

    /// Makes `tenant` exist, publishing `keys`.
    pub fn add_tenant(&self, tenant: &str, keys: Vec<Value>) {
        self.state.tenants.lock().unwrap().insert(tenant.to_owned(), keys);
    }

    /// Discovery requests received so far, for any tenant.
    pub fn discovery_requests(&self) -> usize {
        self.state.discovery_requests.load(Ordering::SeqCst)
    }

    /// JWKS requests received so far, for any tenant.
    pub fn jwks_requests(&self) -> usize {
        self.state.jwks_requests.load(Ordering::SeqCst)
    }

    /// Every request received so far.
    pub fn requests(&self) -> usize {
        self.discovery_requests() + self.jwks_requests()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

async fn tenant_discovery(
    State(state): State<Arc<TenantState>>,
    axum::extract::Path(tenant): axum::extract::Path<String>,
) -> Response {
    state.discovery_requests.fetch_add(1, Ordering::SeqCst);
    if !state.tenants.lock().unwrap().contains_key(&tenant) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let issuer = format!("http://{}/{tenant}/v2.0", state.addr);
    Json(json!({ "issuer": issuer, "jwks_uri": format!("{issuer}/jwks.json") })).into_response()
}

async fn tenant_jwks(
    State(state): State<Arc<TenantState>>,
    axum::extract::Path(tenant): axum::extract::Path<String>,
) -> Response {
    state.jwks_requests.fetch_add(1, Ordering::SeqCst);
    match state.tenants.lock().unwrap().get(&tenant) {
        Some(keys) => Json(json!({ "keys": keys })).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
