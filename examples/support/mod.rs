//! Configuration shared by the examples: one set of environment variables, one behaviour
//! (see the table in the README). Bad configuration ends the process with exit code 2 and a
//! one-line message naming the variable; nothing here panics.

#![allow(dead_code)] // each example uses the part it needs

pub mod tls;

use std::net::SocketAddr;
use std::process::exit;

use tower_jwt_guard::binding::TrustedProxies;
use tower_jwt_guard::issue::{SigningKey, TokenIssuer, TokenIssuerBuilder};
use tower_jwt_guard::{Algorithm, JwtAuth, JwtAuthBuilder, VerificationKey};

/// A comma-separated list, its entries trimmed, empty ones dropped.
fn list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|entry| !entry.is_empty()).map(str::to_owned).collect()
}

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
    /// Several issuers, each trusted only with its own keys (feature `jwks`): the comma lists of
    /// `JWT_OIDC_ISSUER`, or of `JWT_JWKS_URL` paired in order with `JWT_ISSUER`.
    #[cfg(feature = "jwks")]
    Issuers {
        issuers: Vec<(String, tower_jwt_guard::keys::JwksKeys)>,
        variable: &'static str,
        algorithms: Vec<Algorithm>,
    },
}

/// Everything the examples read from the environment.
pub struct Settings {
    pub bind: SocketAddr,
    pub keys: KeyConfig,
    /// `JWT_ISSUER` (or the discovered issuer); with several issuers, the first.
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Opaque tokens checked at `JWT_INTROSPECTION_URL` (feature `introspection`), with the
    /// client id and secret of `JWT_INTROSPECTION_CLIENT_ID` / `JWT_INTROSPECTION_CLIENT_SECRET`.
    #[cfg(feature = "introspection")]
    pub introspection: Option<tower_jwt_guard::keys::Introspector>,
    /// The decryption key of encrypted tokens (feature `jwe`): `JWE_KEY` with `JWE_ALG`.
    #[cfg(feature = "jwe")]
    pub jwe: Option<JweConfig>,
}

/// `JWE_KEY` (a secret's raw bytes, or a path to a PEM private key) for the key management
/// algorithm `JWE_ALG` (default `A256KW`) and the content encryption `JWE_ENC` (default `A256GCM`).
#[cfg(feature = "jwe")]
pub struct JweConfig {
    pub alg: tower_jwt_guard::jwe::KeyManagement,
    pub enc: tower_jwt_guard::jwe::ContentEncryption,
    /// The secret, or the PEM read from the path.
    key: Vec<u8>,
}

#[cfg(feature = "jwe")]
impl JweConfig {
    fn from_env() -> Option<JweConfig> {
        use tower_jwt_guard::jwe::{ContentEncryption, KeyManagement};
        let key = var("JWE_KEY");
        let alg = match var("JWE_ALG") {
            Some(name) => name.parse::<KeyManagement>().unwrap_or_else(|_| {
                fail("JWE_ALG", format!("unsupported or refused JWE algorithm {name:?}"))
            }),
            None => KeyManagement::A256Kw,
        };
        let enc = match var("JWE_ENC") {
            Some(name) => name
                .parse::<ContentEncryption>()
                .unwrap_or_else(|_| fail("JWE_ENC", format!("unsupported content encryption {name:?}"))),
            None => ContentEncryption::A256Gcm,
        };
        let Some(key) = key else {
            if var("JWE_ALG").is_some() {
                fail("JWE_KEY", "is required with JWE_ALG");
            }
            return None;
        };
        let key = if alg.is_shared_secret() {
            key.into_bytes()
        } else {
            std::fs::read(&key).unwrap_or_else(|err| fail("JWE_KEY", format!("cannot read {key}: {err}")))
        };
        let config = JweConfig { alg, enc, key };
        if let Err(err) = config.decryption_key() {
            fail("JWE_KEY", err);
        }
        Some(config)
    }

    /// The layer's decryption key.
    pub fn decryption_key(
        &self,
    ) -> Result<tower_jwt_guard::jwe::DecryptionKey, tower_jwt_guard::ConfigError> {
        use tower_jwt_guard::jwe::DecryptionKey;
        if self.alg.is_shared_secret() {
            DecryptionKey::secret(self.alg, self.enc, &self.key)
        } else {
            DecryptionKey::from_pem(self.alg, self.enc, &self.key)
        }
    }

    /// The same secret as the demo tokens' encryption key (a shared-secret algorithm only).
    pub fn encryption_key(&self) -> Option<tower_jwt_guard::jwe::EncryptionKey> {
        tower_jwt_guard::jwe::EncryptionKey::secret(self.alg, self.enc, &self.key).ok()
    }
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
        #[cfg(not(feature = "introspection"))]
        if var("JWT_INTROSPECTION_URL").is_some() {
            fail(
                "JWT_INTROSPECTION_URL",
                "needs the `introspection` feature: run with `cargo run --features introspection --example <name>`",
            );
        }
        Settings {
            bind,
            keys,
            issuer,
            audience: var("JWT_AUDIENCE"),
            #[cfg(feature = "introspection")]
            introspection: introspector(),
            #[cfg(feature = "jwe")]
            jwe: JweConfig::from_env(),
        }
    }

    /// A verifier configuration with the keys, issuer and audience set, which takes
    /// certificate-bound tokens beside bearer tokens ([`certificate_binding`]).
    pub fn auth_builder(&self) -> JwtAuthBuilder {
        let mut builder = profile_builder().binding(certificate_binding());
        builder = match &self.keys {
            KeyConfig::Secret { secret, algorithm, .. } => {
                builder.try_key(VerificationKey::hmac(*algorithm, secret))
            }
            KeyConfig::PublicKey { key } => builder.key(key.clone()),
            #[cfg(feature = "jwks")]
            KeyConfig::Jwks { source, algorithms, .. } => {
                builder.key_source(source.clone()).algorithms(algorithms.iter().copied())
            }
            // Each issuer with its own keys and rules: the audience is set on each.
            #[cfg(feature = "jwks")]
            KeyConfig::Issuers { issuers, algorithms, .. } => {
                for (name, source) in issuers {
                    let mut issuer = tower_jwt_guard::Issuer::new(name.clone())
                        .key_source(source.clone())
                        .algorithms(algorithms.iter().copied());
                    if let Some(audience) = &self.audience {
                        issuer = issuer.audience(audience.clone());
                    }
                    builder = builder.trust(issuer);
                }
                return self.with_decryption(builder);
            }
        };
        if let Some(issuer) = &self.issuer {
            builder = builder.issuer(issuer.clone());
        }
        if let Some(audience) = &self.audience {
            builder = builder.audience(audience.clone());
        }
        #[cfg(feature = "introspection")]
        if let Some(introspector) = &self.introspection {
            builder = builder.introspection(introspector.clone());
        }
        self.with_decryption(builder)
    }

    /// Adds the `JWE_KEY` decryption key (feature `jwe`).
    pub fn with_decryption(&self, builder: JwtAuthBuilder) -> JwtAuthBuilder {
        #[cfg(feature = "jwe")]
        if let Some(jwe) = &self.jwe {
            return builder.try_decryption_key(jwe.decryption_key());
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
        // With a shared JWE secret, the demo tokens are encrypted too (as the guide's are).
        #[cfg(feature = "jwe")]
        if let Some(encryption) = self.jwe.as_ref().and_then(JweConfig::encryption_key) {
            builder = builder.encrypt_to(encryption);
        }
        Some(builder)
    }

    /// The environment variable that chose the key source.
    pub fn key_variable(&self) -> &'static str {
        match &self.keys {
            KeyConfig::Secret { .. } => "JWT_SECRET",
            KeyConfig::PublicKey { .. } => "JWT_PUBLIC_KEY",
            #[cfg(feature = "jwks")]
            KeyConfig::Jwks { variable, .. } | KeyConfig::Issuers { variable, .. } => variable,
        }
    }

    /// A line that says where the keys come from, without revealing them.
    pub fn describe_keys(&self) -> String {
        #[allow(unused_mut)]
        let mut keys = self.describe_local_keys();
        #[cfg(feature = "jwe")]
        if let Some(jwe) = &self.jwe {
            keys = format!("{keys}; encrypted tokens {}/{} with JWE_KEY", jwe.alg, jwe.enc);
        }
        #[cfg(feature = "introspection")]
        if self.introspection.is_some() {
            return format!("{keys}; opaque tokens introspected at JWT_INTROSPECTION_URL");
        }
        keys
    }

    fn describe_local_keys(&self) -> String {
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
            #[cfg(feature = "jwks")]
            KeyConfig::Issuers { issuers, variable, algorithms } => {
                let each: Vec<String> = issuers
                    .iter()
                    .map(|(name, source)| {
                        let state = if source.status().usable { "keys loaded" } else { "no keys yet" };
                        format!("{name}: {state}")
                    })
                    .collect();
                format!(
                    "{algorithms:?} with keys from {variable}, {} issuers each with its own keys ({})",
                    issuers.len(),
                    each.join("; ")
                )
            }
        }
    }
}

/// The key source of `JWT_JWKS_URL` or `JWT_OIDC_ISSUER`. It never waits for the endpoint:
/// the service starts even while it is down and answers 503 until keys arrive.
///
/// A comma list makes several issuers, each trusted only with its own keys: each issuer of
/// `JWT_OIDC_ISSUER` with its discovered keys, or each URL of `JWT_JWKS_URL` with the issuer at
/// the same place in `JWT_ISSUER` (the two lists must have the same length).
#[cfg(feature = "jwks")]
fn jwks_keys(variable: &'static str, alg: Option<Algorithm>) -> KeyConfig {
    use tower_jwt_guard::keys::JwksKeys;
    let values = list(&var(variable).unwrap_or_default());
    if values.is_empty() {
        fail(variable, "expected a URL, or a comma-separated list of them");
    }
    let algorithms = match alg {
        Some(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) => {
            fail("JWT_ALG", "HMAC keys are never taken from a JWKS; choose an asymmetric algorithm")
        }
        Some(alg) => vec![alg],
        // The profile's algorithms only (FAPI 2.0 §5.4.1: PS256, ES256, EdDSA).
        None if fapi2() => tower_jwt_guard::FAPI2_ALGORITHMS.to_vec(),
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
    let source = |value: &str| {
        let builder =
            if variable == "JWT_OIDC_ISSUER" { JwksKeys::discover(value) } else { JwksKeys::builder(value) };
        builder.build().unwrap_or_else(|err| fail(variable, format!("{value}: {err}")))
    };
    let issuers = var("JWT_ISSUER").map(|value| list(&value)).unwrap_or_default();
    if variable == "JWT_JWKS_URL" && (values.len() > 1 || issuers.len() > 1) && issuers.len() != values.len()
    {
        fail(
            "JWT_ISSUER",
            format!(
                "JWT_JWKS_URL lists {} URLs and JWT_ISSUER {} issuers; give one issuer per URL, in the same order",
                values.len(),
                issuers.len()
            ),
        );
    }
    if let [one] = values.as_slice() {
        return KeyConfig::Jwks { source: source(one), variable, algorithms };
    }
    if variable == "JWT_OIDC_ISSUER" && !issuers.is_empty() && issuers != values {
        fail("JWT_ISSUER", "differs from JWT_OIDC_ISSUER; leave it unset or make them equal");
    }
    let names = if variable == "JWT_OIDC_ISSUER" { &values } else { &issuers };
    let issuers = names.iter().cloned().zip(values.iter().map(|value| source(value))).collect();
    KeyConfig::Issuers { issuers, variable, algorithms }
}

/// The introspector of `JWT_INTROSPECTION_URL`, authenticated with `client_secret_basic`
/// (both credentials are required). Like a JWKS, it never waits for the endpoint at start.
#[cfg(feature = "introspection")]
fn introspector() -> Option<tower_jwt_guard::keys::Introspector> {
    let url = var("JWT_INTROSPECTION_URL")?;
    let client_id = var("JWT_INTROSPECTION_CLIENT_ID")
        .unwrap_or_else(|| fail("JWT_INTROSPECTION_CLIENT_ID", "is required with JWT_INTROSPECTION_URL"));
    let secret = var("JWT_INTROSPECTION_CLIENT_SECRET")
        .unwrap_or_else(|| fail("JWT_INTROSPECTION_CLIENT_SECRET", "is required with JWT_INTROSPECTION_URL"));
    let mut introspector =
        tower_jwt_guard::keys::Introspector::builder(url).client_secret_basic(client_id, secret);
    if fapi2() {
        introspector = signed_introspection(introspector);
    }
    Some(introspector.build().unwrap_or_else(|err| fail("JWT_INTROSPECTION_URL", err)))
}

/// `PROFILE=fapi2`: introspection answers must be signed (RFC 9701), by a key of the issuer's JWKS
/// (found by discovery from `JWT_OIDC_ISSUER`, or else `JWT_ISSUER`; feature `jwks`).
#[cfg(feature = "introspection")]
fn signed_introspection(
    introspector: tower_jwt_guard::keys::IntrospectorBuilder,
) -> tower_jwt_guard::keys::IntrospectorBuilder {
    #[cfg(feature = "jwks")]
    {
        let issuer = var("JWT_OIDC_ISSUER")
            .and_then(|issuers| list(&issuers).into_iter().next())
            .or_else(|| var("JWT_ISSUER"))
            .unwrap_or_else(|| {
                fail("JWT_ISSUER", "PROFILE=fapi2 verifies signed introspection answers with the issuer's keys: set JWT_ISSUER or JWT_OIDC_ISSUER")
            });
        let keys = tower_jwt_guard::keys::JwksKeys::discover(issuer.clone())
            .algorithms(tower_jwt_guard::FAPI2_ALGORITHMS)
            .build()
            .unwrap_or_else(|err| fail("JWT_ISSUER", err));
        introspector.signed_responses_from(issuer, keys)
    }
    #[cfg(not(feature = "jwks"))]
    {
        let _ = introspector;
        fail(
            "JWT_INTROSPECTION_URL",
            "PROFILE=fapi2 verifies signed answers with the issuer's JWKS: needs the `jwks` feature",
        )
    }
}

/// With OIDC discovery the token's `iss` must be the discovered issuer; with several issuers,
/// the first names them in the banner.
#[cfg(feature = "jwks")]
fn discovered_issuer(keys: &KeyConfig, issuer: Option<String>) -> Option<String> {
    if let KeyConfig::Issuers { issuers, .. } = keys {
        return issuers.first().map(|(name, _)| name.clone());
    }
    let KeyConfig::Jwks { source, .. } = keys else { return issuer };
    let Some(discovered) = source.issuer() else { return issuer };
    if issuer.as_deref().is_some_and(|set| set != discovered) {
        fail("JWT_ISSUER", "differs from JWT_OIDC_ISSUER; leave it unset or make them equal");
    }
    Some(discovered.to_owned())
}

/// `PUBLIC_URL`: the service's external base URL (no trailing slash); unset: `http://` + the
/// address it listens on (`https://` when `TLS_CERT` makes the example serve HTTPS).
pub fn public_url(listening: SocketAddr) -> String {
    match var("PUBLIC_URL") {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
            url.trim_end_matches('/').to_owned()
        }
        Some(_) => fail("PUBLIC_URL", "expected an http(s) URL like https://api.example.com"),
        None => format!("{}://{listening}", scheme()),
    }
}

/// `https` when `TLS_CERT` is set (the example serves HTTPS, see [`tls`]), else `http`.
pub fn scheme() -> &'static str {
    if var("TLS_CERT").is_some() {
        "https"
    } else {
        "http"
    }
}

/// The start of the printed `curl` commands: with HTTPS, `--cacert` names `TLS_CERT` (right for a
/// self-signed server certificate; otherwise pass the CA that signed it).
pub fn curl() -> String {
    match var("TLS_CERT") {
        Some(path) => format!("curl --cacert {path}"),
        None => "curl".to_owned(),
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

/// Certificate-bound tokens (RFC 8705, `cnf."x5t#S256"`), allowed beside bearer tokens: a token
/// bound to a certificate passes only with it, from the TLS connection (`TLS_CERT`, `TLS_KEY`,
/// `TLS_CLIENT_CA`) or, from the `TRUSTED_PROXIES` only, an RFC 9440 `Client-Cert` header.
fn certificate_binding() -> tower_jwt_guard::CertificateBound {
    tower_jwt_guard::CertificateBound::allowed().trusted_proxies(trusted_proxies())
}

/// `DEMO_CLIENT_CERT`: a PEM client certificate to mint a certificate-bound demo token for; exit
/// 2 naming the variable when it cannot be read.
pub fn demo_client_certificate() -> Option<(String, tower_jwt_guard::ClientCertificate)> {
    use rustls::pki_types::pem::PemObject;
    let path = var("DEMO_CLIENT_CERT")?;
    let pem = std::fs::read(&path)
        .unwrap_or_else(|err| fail("DEMO_CLIENT_CERT", format!("cannot read {path}: {err}")));
    let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem)
        .unwrap_or_else(|err| fail("DEMO_CLIENT_CERT", format!("not a PEM certificate: {err}")));
    Some((path, tower_jwt_guard::ClientCertificate::from_der(der.to_vec())))
}

/// Serves `app` on `listener` until Ctrl-C: HTTPS when `tls` is set (see [`tls`]), plain HTTP
/// otherwise (with the peer address for the client-IP binding and trusted proxies).
pub async fn serve(listener: tokio::net::TcpListener, app: axum::Router, tls: Option<&tls::Tls>) {
    match tls {
        Some(tls) => tls::serve(listener, app, tls).await,
        None => {
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(err) = axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await {
                fail("server", err);
            }
        }
    }
}

/// `PROFILE`: `fapi2` starts from [`JwtAuthBuilder::fapi2`] (the FAPI 2.0 resource-server
/// profile); a setting that breaks one of its rules ends the process at `build`, naming the rule.
fn profile_builder() -> JwtAuthBuilder {
    match var("PROFILE").as_deref() {
        None => JwtAuth::builder(),
        Some("fapi2") => JwtAuth::builder().fapi2(),
        Some(_) => fail("PROFILE", "expected fapi2"),
    }
}

/// Whether `PROFILE=fapi2`.
pub fn fapi2() -> bool {
    var("PROFILE").as_deref() == Some("fapi2")
}

/// `DPOP` (`allowed` by default, `required`, `off`) and `DPOP_NONCE=1`: DPoP (RFC 9449) on
/// `builder`, with `htu` checked against `PUBLIC_URL` (or the listening address) and the replay
/// store in Redis when `REDIS_URL` is set (feature `redis`), in memory otherwise.
pub fn with_dpop(builder: JwtAuthBuilder, listening: SocketAddr) -> JwtAuthBuilder {
    with_dpop_at(builder, public_url(listening))
}

/// Like [`with_dpop`], with `htu` checked against `url`: for a service whose external URL is
/// not `PUBLIC_URL` (an internal listener called by its address).
pub fn with_dpop_at(builder: JwtAuthBuilder, url: String) -> JwtAuthBuilder {
    use tower_jwt_guard::binding::{Dpop, DpopNonces};
    let dpop = match var("DPOP").as_deref() {
        None | Some("allowed") => Dpop::allowed(),
        Some("required") => Dpop::required(),
        Some("off") => return builder,
        Some(_) => fail("DPOP", "expected allowed, required or off"),
    };
    let mut dpop = dpop.public_url(url);
    if fapi2() {
        // The profile's algorithms for the proofs too (FAPI 2.0 §5.4.1).
        dpop = dpop.algorithms(tower_jwt_guard::FAPI2_ALGORITHMS);
    }
    if var("DPOP_NONCE").as_deref() == Some("1") {
        dpop = dpop.nonces(DpopNonces::random());
    }
    #[cfg(feature = "redis")]
    if let Some(url) = var("REDIS_URL") {
        let store = tower_jwt_guard::revocation::RedisReplayStore::new(&url)
            .unwrap_or_else(|err| fail("REDIS_URL", err));
        dpop = dpop.replay_store(store);
    }
    builder.dpop(dpop)
}

/// `HTTP_SIGNATURES` (`allowed` by default, `required`, `off`) and `HTTP_SIGNATURE_KEYS` (a
/// JWKS file path, or an http(s) URL read like `JWT_JWKS_URL` with refresh and rotation, feature
/// `jwks`: clients' keys by `keyid`): RFC 9421 signed requests on `builder`, `@target-uri`
/// checked against `PUBLIC_URL` (or the listening address). A token bound to a key (`cnf.jwk`)
/// needs a signature by it; in `required` mode every request needs one, covering `@method`,
/// `@target-uri` and `authorization`, plus `dpop` when a DPoP proof is sent and
/// `content-digest` when the request has a body (checked against the body by [`content_digest`]).
/// Nonces are remembered in Redis with `REDIS_URL` (feature `redis`), in memory otherwise.
pub fn with_http_signatures(builder: JwtAuthBuilder, listening: SocketAddr) -> JwtAuthBuilder {
    use tower_jwt_guard::binding::MessageSignature;
    let policy = match var("HTTP_SIGNATURES").as_deref() {
        None | Some("allowed") => MessageSignature::allowed(),
        Some("required") => MessageSignature::required(),
        Some("off") => return builder,
        Some(_) => fail("HTTP_SIGNATURES", "expected allowed, required or off"),
    };
    let mut policy = policy
        .cover(["@method", "@target-uri", "authorization"])
        .cover_dpop_when_present()
        .cover_content_digest_with_body()
        .public_url(&public_url(listening));
    // Nonces shared by every instance, like DPoP's replay store.
    #[cfg(feature = "redis")]
    if let Some(url) = var("REDIS_URL") {
        let store = tower_jwt_guard::revocation::RedisReplayStore::new(&url)
            .unwrap_or_else(|err| fail("REDIS_URL", err));
        policy = policy.replay_store(store);
    }
    match var("HTTP_SIGNATURE_KEYS") {
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
            #[cfg(feature = "jwks")]
            {
                let keys = tower_jwt_guard::keys::JwksKeys::builder(&url)
                    .build()
                    .unwrap_or_else(|err| fail("HTTP_SIGNATURE_KEYS", err));
                policy = policy.key_source(keys);
            }
            #[cfg(not(feature = "jwks"))]
            fail(
                "HTTP_SIGNATURE_KEYS",
                "a URL needs the `jwks` feature: run with `cargo run --features jwks --example <name>`",
            )
        }
        Some(path) => {
            let jwks = std::fs::read_to_string(&path)
                .unwrap_or_else(|err| fail("HTTP_SIGNATURE_KEYS", format!("cannot read {path}: {err}")));
            policy = policy.jwks(&jwks).unwrap_or_else(|err| fail("HTTP_SIGNATURE_KEYS", err));
        }
        None => {}
    }
    builder.binding(policy)
}

/// With `HTTP_SIGNATURES` on (`allowed` or `required`), a request's body is checked against
/// its `Content-Digest` before the handler is called (a handler that never reads the body is
/// covered too): a [`ContentDigestLayer`](tower_jwt_guard::ContentDigestLayer) in buffered mode,
/// up to 1 MiB, for a `route_layer` inside the guard (only verified requests are read). With
/// `required`, every non-empty body needs a `Content-Digest`.
pub fn content_digest() -> Option<tower_jwt_guard::ContentDigestLayer> {
    let required = match var("HTTP_SIGNATURES").as_deref() {
        Some("off") => return None,
        Some("required") => true,
        _ => false,
    };
    Some(tower_jwt_guard::ContentDigestLayer::new().buffered(true).required(required))
}

/// `HTTP_SIGNATURE_RESPONSE_KEY` (a PEM private key: ES256, Ed25519 or RSA-PSS): every answer
/// signed (RFC 9421: `@status`, `content-digest`, `created`, and the request's `@method`,
/// `@target-uri` and signature with `;req`), `@target-uri;req` on `PUBLIC_URL` (or the listening
/// address). With the layer: the public JWK a client verifies with.
pub fn response_signer(
    listening: SocketAddr,
) -> Option<(tower_jwt_guard::SignResponseLayer, Option<serde_json::Value>)> {
    use tower_jwt_guard::binding::MessageSigner;
    let path = var("HTTP_SIGNATURE_RESPONSE_KEY")?;
    let pem = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| fail("HTTP_SIGNATURE_RESPONSE_KEY", format!("cannot read {path}: {err}")));
    let signer = MessageSigner::from_pem(&pem).unwrap_or_else(|err| fail("HTTP_SIGNATURE_RESPONSE_KEY", err));
    let jwk = signer.public_jwk();
    Some((tower_jwt_guard::SignResponseLayer::new(signer).public_url(&public_url(listening)), jwk))
}

/// Whether `DPOP` turns DPoP on (`allowed` or `required`; not `off`).
pub fn dpop_on() -> bool {
    var("DPOP").as_deref() != Some("off")
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
