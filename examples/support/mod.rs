//! Configuration shared by the examples: one set of environment variables, one behaviour
//! (see the table in the README). Bad configuration ends the process with exit code 2 and a
//! one-line message naming the variable; nothing here panics.

#![allow(dead_code)] // each example uses the part it needs

use std::net::SocketAddr;
use std::process::exit;

use tower_jwt_guard::binding::TrustedProxies;
use tower_jwt_guard::issue::{SigningKey, TokenIssuer, TokenIssuerBuilder};
use tower_jwt_guard::{Algorithm, JwtAuth, JwtAuthBuilder, VerificationKey};

/// Where the keys come from.
pub enum KeyConfig {
    /// An HMAC secret: from `JWT_SECRET`, or generated at start (never printed).
    Secret { secret: Vec<u8>, algorithm: Algorithm, generated: bool },
    /// A PEM public key read from `JWT_PUBLIC_KEY`; this process cannot mint tokens.
    PublicKey { key: VerificationKey },
    /// Keys fetched from `JWT_JWKS_URL`, or found by OIDC discovery from `JWT_OIDC_ISSUER`
    /// (feature `jwks`); the algorithms allowed are `JWT_ALG`, or every asymmetric one.
    #[cfg(feature = "jwks")]
    Jwks { source: tower_jwt_guard::keys::JwksKeys, variable: &'static str, algorithms: Vec<Algorithm> },
}

/// Everything the examples read from the environment.
pub struct Settings {
    pub bind: SocketAddr,
    pub keys: KeyConfig,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// The demo tokens printed in the examples' banners.
pub struct DemoTokens {
    /// A token after a password only.
    pub password_only: String,
    /// A token after a second factor.
    pub second_factor: String,
}

/// Prints `variable: message` and exits with code 2.
pub fn fail(variable: &str, message: impl std::fmt::Display) -> ! {
    eprintln!("error: {variable}: {message}");
    exit(2)
}

fn var(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Some(value),
        Ok(_) => None,
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => fail(name, "is not valid UTF-8"),
    }
}

fn algorithm(name: &str) -> Option<Algorithm> {
    var(name)
        .map(|value| value.parse().unwrap_or_else(|_| fail(name, format!("unknown algorithm {value:?}"))))
}

impl Settings {
    /// Reads the environment; `default_bind` is the example's default listening address.
    pub fn from_env(default_bind: &str) -> Settings {
        let bind = var("BIND")
            .unwrap_or_else(|| default_bind.to_string())
            .parse()
            .unwrap_or_else(|_| fail("BIND", "expected an address like 127.0.0.1:3000"));
        let selectors: Vec<&str> = ["JWT_SECRET", "JWT_PUBLIC_KEY", "JWT_JWKS_URL", "JWT_OIDC_ISSUER"]
            .into_iter()
            .filter(|name| var(name).is_some())
            .collect();
        if selectors.len() > 1 {
            fail(selectors[1], format!("set only one of {}", selectors.join(", ")));
        }
        let alg = algorithm("JWT_ALG");
        let keys = match selectors.first().copied() {
            None => {
                let mut secret = vec![0u8; 32];
                aws_lc_rs::rand::fill(&mut secret).unwrap_or_else(|_| fail("JWT_SECRET", "no randomness"));
                KeyConfig::Secret { secret, algorithm: alg.unwrap_or(Algorithm::HS256), generated: true }
            }
            Some("JWT_SECRET") => {
                let secret = var("JWT_SECRET").unwrap_or_default().into_bytes();
                let algorithm = alg.unwrap_or(Algorithm::HS256);
                if let Err(err) = VerificationKey::hmac(algorithm, &secret) {
                    fail("JWT_SECRET", err);
                }
                KeyConfig::Secret { secret, algorithm, generated: false }
            }
            Some("JWT_PUBLIC_KEY") => {
                let path = var("JWT_PUBLIC_KEY").unwrap_or_default();
                let pem = std::fs::read(&path)
                    .unwrap_or_else(|err| fail("JWT_PUBLIC_KEY", format!("cannot read {path}: {err}")));
                let key =
                    VerificationKey::from_pem(&pem, alg).unwrap_or_else(|err| fail("JWT_PUBLIC_KEY", err));
                KeyConfig::PublicKey { key }
            }
            #[cfg(feature = "jwks")]
            Some(variable @ ("JWT_JWKS_URL" | "JWT_OIDC_ISSUER")) => jwks_keys(variable, alg),
            Some(other) => {
                fail(other, "needs the `jwks` feature: run with `cargo run --features jwks --example <name>`")
            }
        };
        let issuer = var("JWT_ISSUER");
        #[cfg(feature = "jwks")]
        let issuer = discovered_issuer(&keys, issuer);
        Settings { bind, keys, issuer, audience: var("JWT_AUDIENCE") }
    }

    /// A verifier configuration with the keys, issuer and audience set.
    pub fn auth_builder(&self) -> JwtAuthBuilder {
        let mut builder = JwtAuth::builder();
        builder = match &self.keys {
            KeyConfig::Secret { secret, algorithm, .. } => {
                builder.try_key(VerificationKey::hmac(*algorithm, secret))
            }
            KeyConfig::PublicKey { key } => builder.key(key.clone()),
            #[cfg(feature = "jwks")]
            KeyConfig::Jwks { source, algorithms, .. } => {
                builder.key_source(source.clone()).algorithms(algorithms.iter().copied())
            }
        };
        if let Some(issuer) = &self.issuer {
            builder = builder.issuer(issuer.clone());
        }
        if let Some(audience) = &self.audience {
            builder = builder.audience(audience.clone());
        }
        builder
    }

    /// An issuer for demo tokens, when this process holds the secret.
    pub fn token_issuer(&self) -> Option<TokenIssuer> {
        self.token_issuer_builder().map(TokenIssuerBuilder::build)
    }

    /// Two demo tokens for `alice`, when this process holds the secret: one after a password
    /// only, one after a second factor (`amr: ["pwd", "otp"]`).
    pub fn demo_tokens(&self) -> Option<DemoTokens> {
        let issuer = self.token_issuer()?;
        let claims = serde_json::json!({ "name": "Alice" });
        let password_only = issuer.mint("alice", &claims).ok()?.token;
        let second_factor = issuer
            .mint_with("alice", &claims, |set| {
                set.insert("amr".into(), serde_json::json!(["pwd", "otp"]));
            })
            .ok()?
            .token;
        Some(DemoTokens { password_only, second_factor })
    }

    /// Listens on `BIND` (exit 2 naming it when that fails) and says where.
    pub async fn listen(&self) -> (tokio::net::TcpListener, SocketAddr) {
        let listener = tokio::net::TcpListener::bind(self.bind)
            .await
            .unwrap_or_else(|err| fail("BIND", format!("cannot listen on {}: {err}", self.bind)));
        let addr = listener.local_addr().unwrap_or(self.bind);
        (listener, addr)
    }

    /// The settings of [`token_issuer`](Self::token_issuer), still open (for binding policies).
    pub fn token_issuer_builder(&self) -> Option<TokenIssuerBuilder> {
        let KeyConfig::Secret { secret, algorithm, .. } = &self.keys else { return None };
        let key = SigningKey::hmac(*algorithm, secret).unwrap_or_else(|err| fail("JWT_SECRET", err));
        let mut builder = TokenIssuer::builder(key);
        if let Some(issuer) = &self.issuer {
            builder = builder.issuer(issuer.clone());
        }
        if let Some(audience) = &self.audience {
            builder = builder.audience(audience.clone());
        }
        Some(builder)
    }

    /// The environment variable that chose the key source.
    pub fn key_variable(&self) -> &'static str {
        match &self.keys {
            KeyConfig::Secret { .. } => "JWT_SECRET",
            KeyConfig::PublicKey { .. } => "JWT_PUBLIC_KEY",
            #[cfg(feature = "jwks")]
            KeyConfig::Jwks { variable, .. } => variable,
        }
    }

    /// A line that says where the keys come from, without revealing them.
    pub fn describe_keys(&self) -> String {
        match &self.keys {
            KeyConfig::Secret { algorithm, generated: true, .. } => {
                format!(
                    "{algorithm:?} with a random secret generated at start (set JWT_SECRET to choose one)"
                )
            }
            KeyConfig::Secret { algorithm, generated: false, .. } => format!("{algorithm:?} with JWT_SECRET"),
            KeyConfig::PublicKey { key } => {
                format!("{:?} with the public key in JWT_PUBLIC_KEY", key.algorithm())
            }
            #[cfg(feature = "jwks")]
            KeyConfig::Jwks { source, variable, algorithms } => {
                let status = source.status();
                let state = if status.usable { "keys loaded" } else { "no keys yet: 503 until they arrive" };
                format!("{algorithms:?} with keys from {variable} ({state})")
            }
        }
    }
}

/// The key source of `JWT_JWKS_URL` or `JWT_OIDC_ISSUER`. It never waits for the endpoint:
/// the service starts even while it is down and answers 503 until keys arrive.
#[cfg(feature = "jwks")]
fn jwks_keys(variable: &'static str, alg: Option<Algorithm>) -> KeyConfig {
    use tower_jwt_guard::keys::JwksKeys;
    let value = var(variable).unwrap_or_default();
    let builder =
        if variable == "JWT_OIDC_ISSUER" { JwksKeys::discover(value) } else { JwksKeys::builder(value) };
    let source = builder.build().unwrap_or_else(|err| fail(variable, err));
    let algorithms = match alg {
        Some(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) => {
            fail("JWT_ALG", "HMAC keys are never taken from a JWKS; choose an asymmetric algorithm")
        }
        Some(alg) => vec![alg],
        None => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ],
    };
    KeyConfig::Jwks { source, variable, algorithms }
}

/// With OIDC discovery the token's `iss` must be the discovered issuer.
#[cfg(feature = "jwks")]
fn discovered_issuer(keys: &KeyConfig, issuer: Option<String>) -> Option<String> {
    let KeyConfig::Jwks { source, .. } = keys else { return issuer };
    let Some(discovered) = source.issuer() else { return issuer };
    if issuer.as_deref().is_some_and(|set| set != discovered) {
        fail("JWT_ISSUER", "differs from JWT_OIDC_ISSUER; leave it unset or make them equal");
    }
    Some(discovered.to_owned())
}

/// `PUBLIC_URL`: the service's external base URL (no trailing slash); unset: `http://` + the
/// address it listens on.
pub fn public_url(listening: SocketAddr) -> String {
    match var("PUBLIC_URL") {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
            url.trim_end_matches('/').to_owned()
        }
        Some(_) => fail("PUBLIC_URL", "expected an http(s) URL like https://api.example.com"),
        None => format!("http://{listening}"),
    }
}

/// Resolves on Ctrl-C, for graceful shutdown.
pub async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// `TRUSTED_PROXIES`: a comma list of CIDRs (or single addresses) whose `X-Forwarded-For` is
/// believed; unset: none, the connection's peer is the client.
pub fn trusted_proxies() -> TrustedProxies {
    match var("TRUSTED_PROXIES") {
        None => TrustedProxies::none(),
        Some(list) => TrustedProxies::parse(&list).unwrap_or_else(|err| fail("TRUSTED_PROXIES", err)),
    }
}

/// Installs the Prometheus recorder (feature `metrics`): call it first, before the first request,
/// and serve [`operations`]' `/metrics` with what it returns.
pub fn metrics_recorder() -> Metrics {
    #[cfg(feature = "metrics")]
    {
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .unwrap_or_else(|err| fail("metrics", err));
        tower_jwt_guard::metrics::describe();
        Metrics(Some(handle))
    }
    #[cfg(not(feature = "metrics"))]
    Metrics(None)
}

/// The Prometheus recorder's handle, when the `metrics` feature is on.
#[derive(Clone)]
pub struct Metrics(Option<PrometheusHandle>);

#[cfg(feature = "metrics")]
type PrometheusHandle = metrics_exporter_prometheus::PrometheusHandle;
#[cfg(not(feature = "metrics"))]
type PrometheusHandle = std::convert::Infallible;

/// The routes an operator's tools call, outside the layer (no token): `GET /ready` (200 when the
/// layer can answer, 503 with the reasons as JSON) and `GET /metrics` (Prometheus text; 404 when
/// built without the `metrics` feature).
#[cfg(feature = "axum")]
pub fn operations<S: Clone + Send + Sync + 'static>(auth: &JwtAuth, metrics: Metrics) -> axum::Router<S> {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    let render = move || {
        let metrics = metrics.clone();
        async move {
            match &metrics.0 {
                #[cfg(feature = "metrics")]
                Some(handle) => {
                    handle.run_upkeep();
                    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
                }
                _ => (StatusCode::NOT_FOUND, "built without the `metrics` feature\n").into_response(),
            }
        }
    };
    axum::Router::new()
        .route_service("/ready", auth.ready_service())
        .route("/metrics", axum::routing::get(render))
}
