//! tonic_client — calls `grpc.health.v1.Health` on `tonic_server` with a bearer token.
//!
//! ```sh
//! cargo run --example tonic_client -- <token>           # Health/Check
//! cargo run --example tonic_client -- --watch <token>   # Health/Watch (needs a second factor)
//! TOKEN=<token> cargo run --example tonic_client        # the token from the environment
//! ```
//!
//! `SERVER` sets the server's URL (default `http://127.0.0.1:50051`). Prints the serving status
//! and exits 0, or prints the gRPC status and exits 1 (2 for bad usage).
//!
//! An `https://` server (`tonic_server` with `TLS_CERT`/`TLS_KEY`): `TLS_CA` is the PEM of the CA
//! that signed its certificate; `TLS_CLIENT_CERT` and `TLS_CLIENT_KEY` (PEM) are the client
//! identity to present, for certificate-bound tokens (RFC 8705).

use std::process::exit;

use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::Request;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

fn usage(message: &str) -> ! {
    eprintln!("error: {message}");
    eprintln!(
        "usage: tonic_client [--watch] [TOKEN]   (or TOKEN in the environment; SERVER=http://host:port)"
    );
    exit(2)
}

/// `TLS_CA`, and `TLS_CLIENT_CERT` + `TLS_CLIENT_KEY` when set (exit 2 naming the variable).
fn tls_config() -> ClientTlsConfig {
    let read = |name: &str| {
        std::env::var(name).ok().filter(|path| !path.trim().is_empty()).map(|path| {
            std::fs::read(&path).unwrap_or_else(|err| usage(&format!("{name}: cannot read {path}: {err}")))
        })
    };
    let ca = read("TLS_CA")
        .unwrap_or_else(|| usage("TLS_CA: the CA of the server's certificate is needed for https"));
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    match (read("TLS_CLIENT_CERT"), read("TLS_CLIENT_KEY")) {
        (Some(cert), Some(key)) => config = config.identity(Identity::from_pem(cert, key)),
        (None, None) => {}
        _ => usage("TLS_CLIENT_CERT and TLS_CLIENT_KEY go together"),
    }
    config
}

#[tokio::main]
async fn main() {
    let mut watch = false;
    let mut token = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--watch" => watch = true,
            "-h" | "--help" => {
                println!("usage: tonic_client [--watch] [TOKEN]   (or TOKEN in the environment; SERVER=http://host:port)");
                return;
            }
            other if other.starts_with('-') => usage(&format!("unknown option {other}")),
            _ if token.is_some() => usage("more than one token"),
            _ => token = Some(arg),
        }
    }
    let token = token.or_else(|| std::env::var("TOKEN").ok().filter(|t| !t.trim().is_empty()));
    let server = std::env::var("SERVER").unwrap_or_else(|_| "http://127.0.0.1:50051".into());

    let mut endpoint = Endpoint::from_shared(server.clone()).unwrap_or_else(|_| usage("SERVER is not a URL"));
    if server.starts_with("https://") {
        endpoint = endpoint.tls_config(tls_config()).unwrap_or_else(|err| usage(&format!("TLS: {err}")));
    }
    let channel = match endpoint.connect().await {
        Ok(channel) => channel,
        Err(err) => {
            eprintln!("error: cannot connect to {server}: {err}");
            exit(1)
        }
    };
    let mut client = HealthClient::new(channel);

    let mut request = Request::new(HealthCheckRequest { service: String::new() });
    match &token {
        Some(token) => match MetadataValue::try_from(format!("Bearer {token}")) {
            Ok(value) => {
                request.metadata_mut().insert("authorization", value);
            }
            Err(_) => usage("the token contains characters a header cannot carry"),
        },
        None => eprintln!("note: no token given: expect UNAUTHENTICATED"),
    }

    let answer = if watch {
        match client.watch(request).await {
            Ok(response) => match response.into_inner().message().await {
                Ok(Some(first)) => Ok(first.status),
                Ok(None) => {
                    eprintln!("error: the stream ended without a status");
                    exit(1)
                }
                Err(status) => Err(status),
            },
            Err(status) => Err(status),
        }
    } else {
        client.check(request).await.map(|response| response.into_inner().status)
    };
    match answer {
        Ok(status) => {
            let name = ServingStatus::try_from(status).map(|s| s.as_str_name()).unwrap_or("UNKNOWN_VALUE");
            println!("{name}");
        }
        Err(status) => {
            println!("{:?} ({}): {}", status.code(), status.code() as i32, status.message());
            exit(1)
        }
    }
}
