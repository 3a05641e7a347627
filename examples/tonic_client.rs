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

use std::process::exit;

use tonic::metadata::MetadataValue;
use tonic::transport::Endpoint;
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

    let endpoint = Endpoint::from_shared(server.clone()).unwrap_or_else(|_| usage("SERVER is not a URL"));
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
