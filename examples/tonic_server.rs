//! tonic_server — the standard gRPC health service (`grpc.health.v1.Health`, from tonic-health,
//! no protoc needed) behind `JwtLayer`.
//!
//! ```sh
//! cargo run --example tonic_server                  # listens on 127.0.0.1:50051
//! cargo run --example tonic_client -- <token>       # in another terminal: SERVING
//! ```
//!
//! Configured like every example (`BIND`, `JWT_SECRET`, `JWT_PUBLIC_KEY`, `JWT_ALG`,
//! `JWT_ISSUER`, `JWT_AUDIENCE`; see the README). At start it prints ready-to-paste
//! `tonic_client` commands with tokens it minted.
//!
//! | method | behaviour |
//! |---|---|
//! | `Health/Check` | SERVING with a valid token; UNAUTHENTICATED (16) without one, or with a bad or expired one |
//! | `Health/Watch` | also needs a second factor (`RequireMfaLayer`): PERMISSION_DENIED (7) without |
//!
//! Any gRPC client works: the token goes into the `authorization: Bearer <token>` metadata.
//!
//! With `TLS_CERT` and `TLS_KEY` it serves gRPC over TLS (rustls; `TLS_CLIENT_CA` as in every
//! example): tonic records each connection's client certificate (`TlsConnectInfo`), and
//! certificate-bound tokens (RFC 8705) pass only with theirs; `tonic_client` then takes `TLS_CA`
//! and a client identity (`TLS_CLIENT_CERT`, `TLS_CLIENT_KEY`).

mod support;

use serde_json::Value;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tower_jwt_guard::RequireMfaLayer;

use support::Settings;

/// The method that needs a second factor.
const WATCH: &str = "/grpc.health.v1.Health/Watch";

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_target(true).init();
    let settings = Settings::from_env("127.0.0.1:50051");
    let auth = settings.auth_builder().build().unwrap_or_else(|err| support::fail("configuration", err));
    let tls = support::tls::Tls::from_env();

    // Reports SERVING for the server as a whole (service name "").
    let (_reporter, health) = tonic_health::server::health_reporter();

    let (listener, addr) = settings.listen().await;
    let transport = tls.as_ref().map_or("plain HTTP/2", support::tls::Tls::describe);
    println!(
        "tonic_server listening on {}://{addr} ({}; {transport})",
        support::scheme(),
        settings.describe_keys()
    );
    let client = match (addr.to_string().as_str(), &tls) {
        ("127.0.0.1:50051", None) => "cargo run --example tonic_client --".to_string(),
        (_, None) => format!("SERVER=http://{addr} cargo run --example tonic_client --"),
        // Over TLS: the CA of TLS_CERT, and a client identity for certificate-bound tokens.
        (_, Some(_)) => format!(
            "SERVER=https://{addr} TLS_CA=ca.pem [TLS_CLIENT_CERT=client.pem TLS_CLIENT_KEY=client-key.pem] cargo run --example tonic_client --"
        ),
    };
    match settings.demo_tokens() {
        Some(tokens) => {
            let (plain, mfa) = (tokens.password_only, tokens.second_factor);
            println!("  {client} {plain}");
            println!("  {client} --watch {plain}   # PERMISSION_DENIED: no second factor");
            println!("  {client} --watch {mfa}");
        }
        None => {
            println!("  {client} \"$TOKEN\"");
            println!("  {client} --watch \"$TOKEN\"   # needs amr with a second factor");
        }
    }

    let router = Server::builder()
        .layer(auth.layer::<Value>())
        // Inside the JWT layer: it reads the AuthContext the JWT layer put into the request.
        .layer(RequireMfaLayer::for_paths([WATCH]))
        .add_service(health);
    let served = match &tls {
        // tonic takes the TLS streams and records their client certificates (TlsConnectInfo).
        Some(tls) => {
            router
                .serve_with_incoming_shutdown(
                    support::tls::incoming(listener, tls),
                    support::shutdown_signal(),
                )
                .await
        }
        None => {
            router.serve_with_incoming_shutdown(TcpIncoming::from(listener), support::shutdown_signal()).await
        }
    };
    if let Err(err) = served {
        support::fail("server", err);
    }
}
