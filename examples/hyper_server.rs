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
//! binding looks for it.

mod support;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_jwt_guard::{AuthContext, Claims, PeerAddr, RequireMfaLayer};

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

    // The guarded part: the JWT layer, then (inside it) a second factor for /admin.
    let guarded = ServiceBuilder::new()
        .layer(auth.layer::<User>())
        .layer(RequireMfaLayer::for_paths(["/admin"]))
        .service_fn(protected);

    let (listener, addr) = settings.listen().await;
    println!("hyper_server listening on http://{addr} (HTTP/1.1 and HTTP/2; {})", settings.describe_keys());
    println!("  curl -i http://{addr}/health");
    match settings.demo_tokens() {
        Some(tokens) => {
            let (plain, mfa) = (tokens.password_only, tokens.second_factor);
            println!("  curl -i http://{addr}/me -H 'Authorization: Bearer {plain}'");
            println!("  curl -i --http2-prior-knowledge http://{addr}/me -H 'Authorization: Bearer {plain}'");
            println!(
                "  curl -i http://{addr}/admin -H 'Authorization: Bearer {plain}'   # 401: no second factor"
            );
            println!("  curl -i http://{addr}/admin -H 'Authorization: Bearer {mfa}'");
        }
        None => {
            println!("  curl -i http://{addr}/me -H \"Authorization: Bearer $TOKEN\"");
            println!("  curl -i http://{addr}/admin -H \"Authorization: Bearer $TOKEN\"   # needs amr with a second factor");
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
        let guarded = guarded.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            // ── PEER ADDRESS ───────────────────────────────────────────────────────────────
            // The connection's peer address, where client-IP binding (`ClientIpBinding`,
            // `TrustedProxies`) looks for it.
            request.extensions_mut().insert(PeerAddr(peer));
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
        let connection = server.serve_connection(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!("connection from {peer} ended: {err}");
            }
        });
    }

    // Let requests in flight finish, for at most a few seconds.
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await.is_err() {
        eprintln!("some connections were still open after 5 s");
    }
}
