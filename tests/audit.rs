//! Audit events over loopback: every decision of the layer reaches the `tracing` log and the
//! audit hook with its code, the subject and jti when the token verified, the client address,
//! the method and the path — and never the token, the query string or a fingerprint value.

mod craft;

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request};
use axum::routing::get;
use axum::Router;
use futures_util::future::BoxFuture;
use serde_json::Value;
use tower_jwt_guard::audit::{AuditEvent, AuditOutcome};
use tower_jwt_guard::binding::{BindingPolicy, RequestHead};
use tower_jwt_guard::revocation::{RevocationCheck, RevocationStore};
use tower_jwt_guard::{AuthError, Claims, Confirmation, ErrorKind, JwtAuth, TokenFacts};

use craft::{keys, now};

/// What the hook saw, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    outcome: AuditOutcome,
    code: &'static str,
    subject: Option<String>,
    jti: Option<String>,
    client_ip: Option<IpAddr>,
    method: String,
    path: String,
}

impl Seen {
    fn of(event: &AuditEvent<'_>) -> Self {
        Seen {
            outcome: event.outcome,
            code: event.code,
            subject: event.subject.map(str::to_owned),
            jti: event.jti.map(str::to_owned),
            client_ip: event.client_ip,
            method: event.method.to_string(),
            path: event.path.to_owned(),
        }
    }
}

/// Refuses tokens whose device fingerprint claim is not `expected` (never logs either value).
struct DeviceBinding;

impl BindingPolicy for DeviceBinding {
    fn name(&self) -> &'static str {
        "fingerprint"
    }

    fn check(&self, _: &RequestHead<'_>, confirmation: Option<&Confirmation>) -> Result<(), AuthError> {
        match confirmation.and_then(|c| c.device_fingerprint.as_deref()) {
            Some("fp-of-the-right-device") | None => Ok(()),
            Some(_) => Err(AuthError::binding_mismatch(self.name())),
        }
    }
}

/// Revokes the jti `revoked-jti`, answering asynchronously like a remote store.
struct Revocations;

impl RevocationStore for Revocations {
    fn check(&self, token: &TokenFacts) -> RevocationCheck {
        let revoked = token.jti.as_deref() == Some("revoked-jti");
        let answer: BoxFuture<'static, RevocationCheck> = Box::pin(async move {
            tokio::task::yield_now().await;
            if revoked {
                RevocationCheck::Revoked
            } else {
                RevocationCheck::Valid
            }
        });
        RevocationCheck::Pending(answer)
    }
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Puts the connection's peer address where the audit looks for it.
async fn peer_address(ConnectInfo(peer): ConnectInfo<SocketAddr>, mut request: Request) -> Request {
    request.extensions_mut().insert(peer);
    request
}

fn token(sub: &str, jti: &str, exp: u64, extra: &str) -> String {
    let claims = format!(r#"{{"sub":"{sub}","jti":"{jti}","exp":{exp}{extra}}}"#);
    keys().hs256(r#"{"alg":"HS256"}"#, &claims)
}

#[tokio::test]
async fn every_decision_is_audited_without_secrets() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread runtime: the server's tasks run on this thread, under this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let auth = JwtAuth::builder()
        .hmac_secret(keys().hmac)
        .binding(DeviceBinding)
        .revocation(Revocations)
        .on_audit(move |event| sink.lock().unwrap().push(Seen::of(event)))
        .build()
        .unwrap();
    let me = |Claims(claims): Claims<Value>| async move { axum::Json((*claims).clone()) };
    let app = Router::new()
        .route("/me", get(me).post(|| async { "posted" }))
        .route_layer(auth.layer::<Value>())
        .layer(axum::middleware::map_request(peer_address));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap()
    });
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/me");

    let later = now() + 600;
    let good = token("alice", "jti-alice", later, "");
    let expired = token("bob", "jti-bob", now() - 3600, "");
    let revoked = token("carol", "revoked-jti", later, "");
    let stolen = token("dave", "jti-dave", later, r#","cnf":{"dfp":"fp-of-another-device"}"#);
    let forged = format!("{}x", &good[..good.len() - 1]);
    let answers = [
        client
            .get(format!("{url}?access_token=query-secret"))
            .bearer_auth(&good)
            .send()
            .await
            .unwrap()
            .status(),
        client.get(&url).send().await.unwrap().status(),
        client.get(&url).bearer_auth(&forged).send().await.unwrap().status(),
        client.get(&url).bearer_auth(&expired).send().await.unwrap().status(),
        client.get(&url).bearer_auth(&revoked).send().await.unwrap().status(),
        client.post(&url).bearer_auth(&stolen).send().await.unwrap().status(),
    ];
    assert_eq!(answers.map(|s| s.as_u16()), [200, 401, 401, 401, 401, 401]);

    let local = Some(IpAddr::from([127, 0, 0, 1]));
    let event = |outcome, code, subject: Option<&str>, jti: Option<&str>, method: &str| Seen {
        outcome,
        code,
        subject: subject.map(str::to_owned),
        jti: jti.map(str::to_owned),
        client_ip: local,
        method: method.to_owned(),
        path: "/me".to_owned(),
    };
    let expected = [
        event(AuditOutcome::Accepted, "OK", Some("alice"), Some("jti-alice"), "GET"),
        event(AuditOutcome::Rejected, "MISSING_TOKEN", None, None, "GET"),
        // A token that did not verify names no one: its claims are the attacker's words.
        event(AuditOutcome::Rejected, "INVALID_TOKEN", None, None, "GET"),
        event(AuditOutcome::Rejected, "TOKEN_EXPIRED", Some("bob"), Some("jti-bob"), "GET"),
        event(AuditOutcome::Rejected, "TOKEN_REVOKED", Some("carol"), Some("revoked-jti"), "GET"),
        event(AuditOutcome::Rejected, "BINDING_MISMATCH", Some("dave"), Some("jti-dave"), "POST"),
    ];
    assert_eq!(*seen.lock().unwrap(), expected);

    let counts = auth.audit_counts();
    assert_eq!(counts.accepted, 1);
    for kind in [
        ErrorKind::MissingToken,
        ErrorKind::InvalidToken,
        ErrorKind::TokenExpired,
        ErrorKind::TokenRevoked,
        ErrorKind::BindingMismatch,
    ] {
        assert_eq!(counts.rejected(kind), 1, "{kind}");
    }
    assert_eq!(counts.total_rejected(), 5);

    let log = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let audit_lines: Vec<&str> = log.lines().filter(|line| line.contains("tower_jwt_guard::audit")).collect();
    assert_eq!(audit_lines.len(), 6, "one event per decision:\n{log}");
    for (line, code) in audit_lines.iter().zip(["OK", "MISSING_TOKEN", "INVALID_TOKEN", "TOKEN_EXPIRED"]) {
        assert!(line.contains(&format!("code=\"{code}\"")), "{line}");
        assert!(line.contains("client_ip=127.0.0.1"), "{line}");
        assert!(line.contains("path=\"/me\""), "{line}");
    }
    assert!(audit_lines[0].contains("subject=\"alice\"") && audit_lines[0].contains("jti=\"jti-alice\""));
    for secret in [&good, &expired, &revoked, &stolen, &forged] {
        for part in secret.split('.') {
            assert!(!log.contains(part), "a token part reached the log:\n{log}");
        }
    }
    for secret in ["query-secret", "fp-of-another-device", "fp-of-the-right-device"] {
        assert!(!log.contains(secret), "{secret} reached the log:\n{log}");
    }
}
