//! gRPC over HTTP/2 against the real `tonic_server` example, with tonic's generated health
//! client and a raw HTTP/2 client: every refusal is a gRPC status (trailers-only, HTTP 200),
//! never a bare HTTP 400/401, which gRPC clients would turn into INTERNAL.

mod example_process;

use std::time::{SystemTime, UNIX_EPOCH};

use example_process::Example;
use serde_json::json;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower_jwt_guard::issue::SigningKey;
use tower_jwt_guard::{Algorithm, TokenIssuer};

const SECRET: &str = "grpc-test-secret-of-at-least-32-bytes!";

fn issuer() -> TokenIssuer {
    TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap()).build()
}

fn token() -> String {
    issuer().mint("alice", &json!({})).unwrap().token
}

fn mfa_token() -> String {
    let amr = |claims: &mut serde_json::Map<String, serde_json::Value>| {
        claims.insert("amr".into(), json!(["pwd", "otp"]));
    };
    issuer().mint_with("alice", &json!({}), amr).unwrap().token
}

fn expired_token() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    issuer()
        .mint_with("alice", &json!({}), |claims| {
            claims.insert("iat".into(), json!(now - 7200));
            claims.insert("nbf".into(), json!(now - 7200));
            claims.insert("exp".into(), json!(now - 3600));
        })
        .unwrap()
        .token
}

fn server() -> Example {
    Example::start("tonic_server", &[("JWT_SECRET", SECRET)])
}

async fn client(server: &Example) -> HealthClient<Channel> {
    let channel = Channel::from_shared(server.url()).unwrap().connect().await.expect("connects");
    HealthClient::new(channel)
}

fn request(authorization: &[&str]) -> Request<HealthCheckRequest> {
    let mut request = Request::new(HealthCheckRequest { service: String::new() });
    for value in authorization {
        request.metadata_mut().append("authorization", MetadataValue::try_from(*value).unwrap());
    }
    request
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn check(client: &mut HealthClient<Channel>, authorization: &[&str]) -> Result<i32, Status> {
    client.check(request(authorization)).await.map(|r| r.into_inner().status)
}

async fn watch_first(client: &mut HealthClient<Channel>, authorization: &[&str]) -> Result<i32, Status> {
    let mut stream = client.watch(request(authorization)).await?.into_inner();
    Ok(stream.message().await?.expect("a first status").status)
}

const SERVING: i32 = ServingStatus::Serving as i32;

#[tokio::test]
async fn without_a_token_the_answer_is_unauthenticated_with_a_clear_message() {
    let server = server();
    let status = check(&mut client(&server).await, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(status.message(), "MISSING_TOKEN: a bearer token is required");
}

#[tokio::test]
async fn a_valid_token_gets_serving() {
    let server = server();
    let mut client = client(&server).await;
    assert_eq!(check(&mut client, &[&bearer(&token())]).await.unwrap(), SERVING);
    // the scheme is case-insensitive
    assert_eq!(check(&mut client, &[&format!("bearer {}", token())]).await.unwrap(), SERVING);
}

#[tokio::test]
async fn an_expired_token_is_unauthenticated_and_the_message_says_expired() {
    let server = server();
    let status = check(&mut client(&server).await, &[&bearer(&expired_token())]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("expired"), "{status:?}");
    assert!(status.message().starts_with("TOKEN_EXPIRED"), "{status:?}");
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_unauthenticated() {
    let server = server();
    let other = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [9u8; 32]).unwrap()).build();
    let forged = other.mint("alice", &json!({})).unwrap().token;
    let status = check(&mut client(&server).await, &[&bearer(&forged)]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().starts_with("INVALID_TOKEN"), "{status:?}");
}

#[tokio::test]
async fn the_mfa_method_is_permission_denied_without_a_second_factor() {
    let server = server();
    let mut client = client(&server).await;
    let status = watch_first(&mut client, &[&bearer(&token())]).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().starts_with("MFA_REQUIRED"), "{status:?}");
    // Check on the same server needs no second factor
    assert_eq!(check(&mut client, &[&bearer(&token())]).await.unwrap(), SERVING);
    // and Watch without any token is a token problem first
    let status = watch_first(&mut client, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[tokio::test]
async fn the_mfa_method_streams_serving_with_a_second_factor() {
    let server = server();
    assert_eq!(watch_first(&mut client(&server).await, &[&bearer(&mfa_token())]).await.unwrap(), SERVING);
}

#[tokio::test]
async fn invalid_requests_are_still_grpc_statuses() {
    let server = server();
    let mut client = client(&server).await;
    let token = token();
    let two = [bearer(&token), bearer(&token)];
    let cases: [(&[&str], &str); 4] = [
        (&[&two[0], &two[1]], "INVALID_REQUEST"),
        (&["Bearer"], "INVALID_REQUEST"),
        (&["Basic YWxpY2U6cGFzc3dvcmQ="], "MISSING_TOKEN"),
        (&["Bearer not.a.jwt"], "INVALID_TOKEN"),
    ];
    for (authorization, code) in cases {
        let status = check(&mut client, authorization).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{authorization:?}: {status:?}");
        assert!(status.message().starts_with(code), "{authorization:?}: {status:?}");
    }
}

/// What a gRPC client sees on the wire: HTTP/2, status 200, a trailers-only answer.
#[tokio::test]
async fn refusals_are_trailers_only_responses_over_http2() {
    let server = server();
    let http = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let url = format!("{}/grpc.health.v1.Health/Check", server.url());
    let token = token();
    let cases: [(Vec<String>, &str); 3] = [
        (vec![], "16"),
        (vec![bearer(&token), bearer(&token)], "16"),
        (vec![bearer(&expired_token())], "16"),
    ];
    for (authorization, grpc_status) in cases {
        let mut request = http
            .post(&url)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(vec![0u8, 0, 0, 0, 0]); // an empty HealthCheckRequest message
        for value in &authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(response.status(), 200, "{authorization:?}");
        assert_eq!(response.headers()["content-type"], "application/grpc");
        assert_eq!(response.headers()["grpc-status"], grpc_status, "{authorization:?}");
        assert!(response.headers().get("www-authenticate").is_none());
        assert!(response.bytes().await.unwrap().is_empty(), "trailers-only: no body");
    }
}

/// The example client, with a token taken from the server's banner, over the same wire.
#[test]
fn the_example_client_gets_serving_with_the_banner_token() {
    let mut server = Example::start("tonic_server", &[("JWT_SECRET", SECRET)]);
    let plain_line = server.next_line();
    let token = plain_line.split_whitespace().last().expect("a token at the end of the line").to_string();
    assert!(plain_line.contains("cargo run --example tonic_client"), "{plain_line}");
    let url = server.url();
    let env = [("SERVER", url.as_str())];

    let ok = example_process::run("tonic_client", &[&token], &env);
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "SERVING");

    let from_env = example_process::run("tonic_client", &[], &[("SERVER", url.as_str()), ("TOKEN", &token)]);
    assert_eq!(String::from_utf8_lossy(&from_env.stdout).trim(), "SERVING", "{from_env:?}");

    let denied = example_process::run("tonic_client", &["--watch", &token], &env);
    assert_eq!(denied.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&denied.stdout).starts_with("PermissionDenied (7)"), "{denied:?}");

    let refused = example_process::run("tonic_client", &[], &env);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stdout).starts_with("Unauthenticated (16)"), "{refused:?}");
}

/// A hand-written tonic service reading the claims with `GrpcAuth` (feature `tonic`).
#[cfg(feature = "tonic")]
mod handlers {
    use super::*;

    use tonic::transport::server::TcpIncoming;
    use tonic::transport::Server;
    use tonic::Response;
    use tonic_health::pb::health_server::{Health, HealthServer};
    use tonic_health::pb::HealthCheckResponse;
    use tower_jwt_guard::{GrpcAuth, JwtAuth, RequireMfaLayer};

    /// `Check` answers SERVING for alice only, and for the service "admin" needs a second factor.
    struct WhoIsServed;

    #[tonic::async_trait]
    impl Health for WhoIsServed {
        async fn check(
            &self,
            request: Request<HealthCheckRequest>,
        ) -> Result<Response<HealthCheckResponse>, Status> {
            let claims = request.claims::<serde_json::Value>()?;
            if request.get_ref().service == "admin" {
                request.require_mfa()?;
            }
            let status = match (claims["sub"].as_str(), request.auth_context()?.subject()) {
                (Some("alice"), Some("alice")) => ServingStatus::Serving,
                _ => ServingStatus::NotServing,
            };
            Ok(Response::new(HealthCheckResponse { status: status as i32 }))
        }

        type WatchStream = futures_util::stream::Empty<Result<HealthCheckResponse, Status>>;

        async fn watch(&self, _: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
            Err(Status::unimplemented("not in this test"))
        }
    }

    /// Serves `WhoIsServed` behind the layer (optional mode when `optional`), with a second
    /// factor demanded by `RequireMfaLayer` for Watch.
    async fn serve(optional: bool) -> HealthClient<Channel> {
        let auth = JwtAuth::builder().hmac_secret(SECRET).optional(optional).build().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            Server::builder()
                .layer(auth.layer::<serde_json::Value>())
                .layer(RequireMfaLayer::for_paths(["/grpc.health.v1.Health/Watch"]))
                .add_service(HealthServer::new(WhoIsServed))
                .serve_with_incoming(TcpIncoming::from(listener)),
        );
        HealthClient::new(Channel::from_shared(url).unwrap().connect().await.unwrap())
    }

    fn for_service(service: &str, authorization: Option<String>) -> Request<HealthCheckRequest> {
        let mut request = Request::new(HealthCheckRequest { service: service.into() });
        if let Some(value) = authorization {
            request.metadata_mut().insert("authorization", MetadataValue::try_from(value).unwrap());
        }
        request
    }

    #[tokio::test]
    async fn handlers_read_the_claims_and_demand_mfa_per_call() {
        let mut client = serve(false).await;
        let bob = issuer().mint("bob", &json!({})).unwrap().token;
        let answer = |r: Response<HealthCheckResponse>| r.into_inner().status;

        let alice = client.check(for_service("", Some(bearer(&token())))).await.map(answer);
        assert_eq!(alice.unwrap(), SERVING);
        let bob = client.check(for_service("", Some(bearer(&bob)))).await.map(answer);
        assert_eq!(bob.unwrap(), ServingStatus::NotServing as i32);

        let status = client.check(for_service("admin", Some(bearer(&token())))).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert_eq!(status.message(), "MFA_REQUIRED: a stronger authentication is required");
        let admin = client.check(for_service("admin", Some(bearer(&mfa_token())))).await.map(answer);
        assert_eq!(admin.unwrap(), SERVING);
    }

    #[tokio::test]
    async fn anonymous_calls_in_optional_mode_are_unauthenticated_not_internal() {
        let mut client = serve(true).await;
        // the layer lets it through; the handler's `claims()` refuses it
        let status = client.check(for_service("", None)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert!(status.message().starts_with("MISSING_TOKEN"), "{status:?}");
        // RequireMfaLayer refuses it too, as a token problem
        let status = client.watch(for_service("", None)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        // a bad token is still refused by the layer in optional mode
        let status = client.check(for_service("", Some(bearer(&expired_token())))).await.unwrap_err();
        assert!(status.message().starts_with("TOKEN_EXPIRED"), "{status:?}");
        // a good one passes
        let alice = client.check(for_service("", Some(bearer(&token())))).await.unwrap();
        assert_eq!(alice.into_inner().status, SERVING);
    }
}

/// The asynchronous path (a revocation store that must ask a remote server) under tonic:
/// a revoked token is 16 UNAUTHENTICATED, a store that is down is 14 UNAVAILABLE (fail closed).
mod revocation {
    use super::*;

    use tonic::transport::server::TcpIncoming;
    use tonic::transport::Server;
    use tower_jwt_guard::revocation::{RevocationCheck, RevocationStore};
    use tower_jwt_guard::{JwtAuth, TokenFacts};

    /// Answers after a round trip through the runtime, like a remote store: subject `mallory`
    /// is revoked, and for subject `outage` the store's server does not answer.
    struct RemoteStore;

    impl RevocationStore for RemoteStore {
        fn check(&self, token: &TokenFacts) -> RevocationCheck {
            let subject = token.subject.clone().unwrap_or_default();
            RevocationCheck::Pending(Box::pin(async move {
                tokio::task::yield_now().await;
                match subject.as_str() {
                    "mallory" => RevocationCheck::Revoked,
                    "outage" => RevocationCheck::Unavailable,
                    _ => RevocationCheck::Valid,
                }
            }))
        }
    }

    #[tokio::test]
    async fn revoked_is_unauthenticated_and_a_store_outage_is_unavailable() {
        let auth = JwtAuth::builder().hmac_secret(SECRET).revocation(RemoteStore).build().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (_reporter, health) = tonic_health::server::health_reporter();
        tokio::spawn(
            Server::builder()
                .layer(auth.layer::<serde_json::Value>())
                .add_service(health)
                .serve_with_incoming(TcpIncoming::from(listener)),
        );
        let mut client = HealthClient::new(Channel::from_shared(url).unwrap().connect().await.unwrap());
        let token_of = |sub: &str| bearer(&issuer().mint(sub, &json!({})).unwrap().token);

        assert_eq!(check(&mut client, &[&token_of("alice")]).await.unwrap(), SERVING);

        let status = check(&mut client, &[&token_of("mallory")]).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert!(status.message().starts_with("TOKEN_REVOKED"), "{status:?}");

        let status = check(&mut client, &[&token_of("outage")]).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(status.message().starts_with("AUTH_UNAVAILABLE"), "{status:?}");
    }
}

/// A refusal's `grpc-message` is one text per code: a bad signature, an unknown `kid` and a
/// refused algorithm read the same, unless the service opts in to expose the reason; the audit
/// event always has it.
mod refusal_texts {
    use std::sync::{Arc, Mutex};

    use super::*;

    use tonic::transport::server::TcpIncoming;
    use tonic::transport::Server;
    use tower_jwt_guard::{JwtAuth, VerificationKey};

    fn signed_by(key: SigningKey) -> String {
        let token = TokenIssuer::builder(key).build().mint("mallory", &json!({})).unwrap().token;
        bearer(&token)
    }

    #[tokio::test]
    async fn refusals_read_the_same_unless_the_details_are_exposed() {
        let other_secret = "another secret of at least thirty-two bytes";
        let tokens = [
            (
                signed_by(SigningKey::hmac(Algorithm::HS256, other_secret).unwrap().with_kid("k")),
                "the token signature is invalid",
            ),
            (
                signed_by(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap().with_kid("nope")),
                "no key is known for this token",
            ),
            (
                signed_by(SigningKey::hmac(Algorithm::HS512, [7u8; 64]).unwrap().with_kid("k")),
                "the token's algorithm is not allowed",
            ),
        ];
        for expose in [false, true] {
            let reasons = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&reasons);
            let auth = JwtAuth::builder()
                .try_key(VerificationKey::hmac(Algorithm::HS256, SECRET).map(|key| key.with_kid("k")))
                .expose_error_details(expose)
                .on_audit(move |event| sink.lock().unwrap().push(event.reason.unwrap_or_default().to_owned()))
                .build()
                .unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let (_reporter, health) = tonic_health::server::health_reporter();
            tokio::spawn(
                Server::builder()
                    .layer(auth.layer::<serde_json::Value>())
                    .add_service(health)
                    .serve_with_incoming(TcpIncoming::from(listener)),
            );
            let mut client = HealthClient::new(Channel::from_shared(url).unwrap().connect().await.unwrap());
            for (token, reason) in &tokens {
                let status = check(&mut client, &[token]).await.unwrap_err();
                let text = if expose { reason } else { "the token is not valid" };
                assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
                assert_eq!(status.message(), format!("INVALID_TOKEN: {text}"), "exposed: {expose}");
            }
            let expected: Vec<_> = tokens.iter().map(|(_, reason)| reason.to_string()).collect();
            assert_eq!(*reasons.lock().unwrap(), expected, "exposed: {expose}");
        }
    }
}

#[test]
fn bad_configuration_ends_with_exit_code_2_naming_the_variable() {
    let output = example_process::expect_exit("tonic_server", &[("BIND", "not an address")]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("error: BIND:"), "{output:?}");
}
