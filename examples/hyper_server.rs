//! hyper_server — a bare hyper 1 service (hyper-util, no framework) behind `JwtLayer`,
//! serving HTTP/1.1 and HTTP/2 on one port.
//!
//! ```sh
//! cargo run --example hyper_server      # then paste one of the printed curl commands
//! ```
//!
//! Configured like every example (`BIND`, `JWT_SECRET`, `JWT_PUBLIC_KEY`, `JWT_ALG`,
//! `JWT_ISSUER`, `JWT_AUDIENCE`; see the README).
//!
//! | route | behaviour |
//! |---|---|
//! | `GET /health` | 200, no token needed |
//! | `GET /me` | 200 with the token's claims as JSON |
//! | `GET /admin` | 200 when the token shows a second factor (`RequireMfaLayer`); otherwise 401 with a step-up challenge |
//!
//! Each connection's peer address is put into the request's extensions, where client-IP
//! binding looks for it. With `TLS_CERT` and `TLS_KEY` it serves HTTPS (rustls), and the client
//! certificate of each TLS connection goes into the request's extensions too, where the
//! certificate binding (RFC 8705, certificate-bound tokens allowed beside bearer tokens) looks for it.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_jwt_guard::{AuthContext, Claims, ClientCertificate, PeerAddr, RequireMfaLayer};

use support::Settings;

/// The claims this service reads: a subject, and whatever else the token carries.
#[derive(Debug, Serialize, Deserialize)]
struct User {
    sub: String,
    #[serde(flatten)]
    other: Map<String, Value>,
}

type Body = BoxBody<Bytes, BoxError>;

fn json_response(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

/// The routes behind the layer: the claims are in the request's extensions.
async fn protected(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let extensions = request.extensions();
    let (Some(Claims(user)), Some(context)) =
        (extensions.get::<Claims<User>>(), extensions.get::<AuthContext>())
    else {
        // Only reachable if the layer were removed: refuse rather than serve anonymously.
        return Ok(json_response(StatusCode::INTERNAL_SERVER_ERROR, &json!({ "error": "no claims" })));
    };
    Ok(match request.uri().path() {
        "/me" => json_response(StatusCode::OK, &json!(**user)),
        _ => json_response(StatusCode::OK, &json!({ "admin": true, "sub": user.sub, "amr": context.amr })),
    })
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_target(true).init();
    let settings = Settings::from_env("127.0.0.1:3000");
    let auth = settings.auth_builder().build().unwrap_or_else(|err| support::fail("configuration", err));
    let tls = support::tls::Tls::from_env();
    let acceptor =
        tls.as_ref().map(|tls| tokio_rustls::TlsAcceptor::from(std::sync::Arc::clone(&tls.config)));

    // The guarded part: the JWT layer, then (inside it) a second factor for /admin.
    let guarded = ServiceBuilder::new()
        .layer(auth.layer::<User>())
        .layer(RequireMfaLayer::for_paths(["/admin"]))
        .service_fn(protected);

    let (listener, addr) = settings.listen().await;
    let (curl, base) = (support::curl(), format!("{}://{addr}", support::scheme()));
    let transport = tls.as_ref().map_or("plain HTTP", support::tls::Tls::describe);
    println!(
        "hyper_server listening on {base} (HTTP/1.1 and HTTP/2; {}; {transport})",
        settings.describe_keys()
    );
    println!("  {curl} -i {base}/health");
    match settings.demo_tokens() {
        Some(tokens) => {
            let (plain, mfa) = (tokens.password_only, tokens.second_factor);
            println!("  {curl} -i {base}/me -H 'Authorization: Bearer {plain}'");
            if tls.is_none() {
                println!("  {curl} -i --http2-prior-knowledge {base}/me -H 'Authorization: Bearer {plain}'");
            }
            println!("  {curl} -i {base}/admin -H 'Authorization: Bearer {plain}'   # 401: no second factor");
            println!("  {curl} -i {base}/admin -H 'Authorization: Bearer {mfa}'");
        }
        None => {
            println!("  {curl} -i {base}/me -H \"Authorization: Bearer $TOKEN\"");
            println!("  {curl} -i {base}/admin -H \"Authorization: Bearer $TOKEN\"   # needs amr with a second factor");
        }
    }

    let server = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let shutdown = support::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!("accept failed: {err}");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (guarded, server, watcher) = (guarded.clone(), server.clone(), graceful.watcher());
        let Some(acceptor) = acceptor.clone() else {
            tokio::spawn(serve_connection(TokioIo::new(stream), peer, None, guarded, server, watcher));
            continue;
        };
        // HTTPS: the handshake in the connection's own task, bounded in time.
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                _ => return tracing::debug!("TLS handshake with {peer} failed"),
            };
            // ── CLIENT CERTIFICATE ─────────────────────────────────────────────────────────
            // The leaf certificate the client presented (if any), read once per connection.
            let certificate = tls.get_ref().1.peer_certificates().and_then(ClientCertificate::leaf_of);
            // ────────────────────────────────────────────────────────────────────────────────
            serve_connection(TokioIo::new(tls), peer, certificate, guarded, server, watcher).await;
        });
    }

    // Let requests in flight finish, for at most a few seconds.
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await.is_err() {
        eprintln!("some connections were still open after 5 s");
    }
}

/// One connection (plain or TLS): HTTP/1.1 or HTTP/2, each request with the connection's peer
/// address and client certificate in its extensions.
async fn serve_connection<IO, S, B>(
    io: TokioIo<IO>,
    peer: SocketAddr,
    certificate: Option<ClientCertificate>,
    guarded: S,
    server: auto::Builder<TokioExecutor>,
    watcher: Watcher,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        // ── PEER ADDRESS ───────────────────────────────────────────────────────────────
        // The connection's peer address, where client-IP binding (`ClientIpBinding`,
        // `TrustedProxies`) looks for it; and its client certificate, for `CertificateBound`.
        request.extensions_mut().insert(PeerAddr(peer));
        if let Some(certificate) = &certificate {
            request.extensions_mut().insert(certificate.clone());
        }
        // ────────────────────────────────────────────────────────────────────────────────
        let guarded = guarded.clone();
        async move {
            let response: Response<Body> = match (request.method(), request.uri().path()) {
                (&Method::GET, "/health") => Response::new(Full::from("ok").map_err(Into::into).boxed()),
                (&Method::GET, "/me" | "/admin") => {
                    guarded.oneshot(request).await?.map(|body| body.map_err(Into::into).boxed())
                }
                _ => json_response(StatusCode::NOT_FOUND, &json!({ "error": "not found" }))
                    .map(|body| body.map_err(Into::into).boxed()),
            };
            Ok::<_, Infallible>(response)
        }
    });
    let connection = server.serve_connection(io, service).into_owned();
    if let Err(err) = watcher.watch(connection).await {
        tracing::debug!("connection from {peer} ended: {err}");
    }
}
