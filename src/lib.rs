//! # tower-jwt-guard
//!
//! A [tower] layer that lets a request through only with a valid JWT bearer token, and hands
//! the handler typed claims. It works the same under axum, tonic and bare hyper.
//!
//! ```
//! use axum::{routing::get, Router};
//! use serde::Deserialize;
//! use tower_jwt_guard::{Claims, JwtAuth};
//!
//! #[derive(Debug, Deserialize)]
//! struct User {
//!     sub: String,
//! }
//!
//! async fn me(Claims(user): Claims<User>) -> String {
//!     format!("hello {}", user.sub)
//! }
//!
//! # fn main() -> Result<(), tower_jwt_guard::ConfigError> {
//! let auth = JwtAuth::builder()
//!     .hmac_secret("a secret of at least thirty-two bytes!!")
//!     .issuer("https://auth.example.com")
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .route_layer(auth.layer::<User>())
//!     .route("/health", get(|| async { "ok" }));
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! ## tonic and hyper
//!
//! The same layer goes into tonic's `Server::builder().layer(..)` or a `tower::ServiceBuilder`
//! in front of a hyper service; a refused gRPC call gets a gRPC status (trailers-only), never a
//! bare HTTP 401. [`RequireMfaLayer`] demands a second factor for chosen paths or gRPC methods
//! of services whose handlers you cannot change; with the `tonic` feature, `GrpcAuth` reads the
//! claims in your own handlers. See the `tonic_server` and `hyper_server` examples.
//!
//! ## The request path
//!
//! The source tree has three parts, and dependencies point down: `authorize` and `issue` use the
//! guard's types; the guard uses neither. Read the guard first, in the order a request meets it.
//!
//! **`guard/`**: the request path of [`JwtLayer`]. `pipeline.rs` runs steps 1 to 4 in order,
//! synchronously unless a key must be fetched or the revocation store must ask a remote server:
//!
//! 1. `source.rs` ([`TokenSource`]): where the token comes from (bearer header, cookie, custom
//!    header);
//! 2. `verify/`: with several trusted issuers ([`Issuer`]), the token's `iss` picks the one whose
//!    keys and rules apply; then the algorithm allow-list, the key ([`keys`]), the signature, the
//!    registered claims (exp/nbf/iat with leeway, iss, aud, max age, `typ`, the [`TokenKind`]),
//!    custom checks, the cache;
//! 3. [`binding`]: each configured policy compares the caller with the token;
//! 4. [`revocation`]: is the `jti` or the subject revoked;
//! 5. `layer.rs` ([`JwtLayer`]) inserts [`Claims<C>`] (`primitives/claims.rs`) and [`AuthContext`]
//!    (`context.rs`, which consults the [`MfaPolicy`]) into the request's extensions and calls
//!    the inner service.
//!
//! `config.rs` holds [`JwtAuth`], the configuration every step reads. Every refusal is one
//! [`AuthError`] with a stable [`code`](ErrorKind::code) (`primitives/error.rs`, with [`ConfigError`]),
//! rendered as an RFC 6750 answer for HTTP or a trailers-only status for gRPC ([`rejection`]) and
//! recorded as an [`audit`] event.
//!
//! Under the guard, `primitives/` holds what every part shares (errors, claims, the clock, the
//! `Authorization` header, URLs); `guard/observe/` holds the [`audit`], the metrics and the
//! [`readiness`]. Each floor imports only the ones below it (README, "How it is built").
//!
//! **`authorize/`**: what runs after the guard: the axum extractors, `GrpcAuth` (tonic), the
//! checks [`RequireMfaLayer`] and [`RequireScopeLayer`] (both return a [`CheckFuture`]),
//! [`ClaimHeaders`], the RFC 9728 metadata [`ProtectedResource`] that tells clients (MCP
//! clients among them) where to get a token, and [`SameOriginLayer`], which keeps other origins'
//! pages away from the endpoints a cookie authenticates (refresh, logout).
//!
//! **`issue/`** ([`issue`]): the issuing side: [`TokenIssuer`] and [`SigningKey`], minting a
//! [`TokenKind`], [`refresh`] tokens, and the service-token client layer [`ServiceTokenLayer`].
//!
//! ## Microservices
//!
//! [`TokenKind`] keeps user tokens and service tokens apart (RFC 8725 §3.12), a
//! [`RequireScopeLayer`] (or, with the feature `axum`, the `Scoped<T>` extractor) demands scopes per route,
//! [`ServiceTokenLayer`] puts a cached, renewed service token on a client's requests, and
//! [`ClaimHeaders`] passes the verified user on to the services behind a gateway. See the
//! `microservices` example.
//!
//! ## Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `axum` (default) | the extractors [`Claims<C>`], `Option<Claims<C>>`, [`AuthContext`], `RequireMfa` |
//! | `jwks` | keys from a JWKS URL or OIDC discovery |
//! | `introspection` | opaque access tokens checked at an RFC 7662 introspection endpoint ([`keys::Introspector`]), cached |
//! | `redis` | revocation and refresh-token stores shared through Redis |
//! | `tonic` | `GrpcAuth`: claims and [`AuthContext`] from a `tonic::Request`, `AuthError` → `tonic::Status`; the client-IP binding reads tonic's peer address (`TcpConnectInfo`), the certificate binding its TLS client certificate (`TlsConnectInfo`) |
//! | `rustls` | [`ClientCertificate::from_rustls`][`binding::ClientCertificate::from_rustls`]: a rustls server connection's client certificate, for [`CertificateBound`] (RFC 8705) |
//! | `metrics` | counters, gauges and histograms through the `metrics` facade (any exporter): see [`metrics`] |
//! | `jwe` (default) | encrypted tokens (JWE): [`DecryptionKey`]s for the layer, [`jwe::EncryptionKey`] for the issuer; see [`jwe`] |
//! | `full` | all of the above |
//!
//! [tower]: https://docs.rs/tower
// A link to an item of a feature that is off goes to the docs of every feature (docs.rs), so the
// docs build without broken links with any one feature (CI: `.ci/run`).
#![cfg_attr(
    not(feature = "introspection"),
    doc = "[`keys::Introspector`]: https://docs.rs/tower-jwt-guard/latest/tower_jwt_guard/keys/struct.Introspector.html"
)]
#![cfg_attr(
    not(feature = "rustls"),
    doc = "[`binding::ClientCertificate::from_rustls`]: https://docs.rs/tower-jwt-guard/latest/tower_jwt_guard/binding/struct.ClientCertificate.html#method.from_rustls"
)]
#![cfg_attr(
    not(feature = "metrics"),
    doc = "[`metrics`]: https://docs.rs/tower-jwt-guard/latest/tower_jwt_guard/metrics/index.html"
)]
#![cfg_attr(
    not(feature = "jwe"),
    doc = "[`DecryptionKey`]: https://docs.rs/tower-jwt-guard/latest/tower_jwt_guard/struct.DecryptionKey.html"
)]
#![cfg_attr(
    not(feature = "jwe"),
    doc = "[`jwe::EncryptionKey`]: https://docs.rs/tower-jwt-guard/latest/tower_jwt_guard/jwe/struct.EncryptionKey.html"
)]
#![cfg_attr(
    not(feature = "jwe"),
    doc = "[`jwe`]: https://docs.rs/tower-jwt-guard/latest/tower_jwt_guard/jwe/index.html"
)]
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod primitives;

mod guard;

mod authorize;

pub mod issue;

/// Entry points for the fuzz targets (`fuzz/`); not a public API. Compiled only under
/// `--cfg fuzzing`, which cargo-fuzz sets: never part of an ordinary build.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod __fuzz {
    pub use crate::fuzzing::{extract, parse_header, verify};
}
#[cfg(any(fuzzing, test))]
#[cfg_attr(not(fuzzing), allow(unreachable_pub))]
mod fuzzing;

// The public modules keep their paths from the crate root.
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub use guard::observe::metrics;
pub use guard::observe::{audit, readiness};
pub use guard::{binding, keys, rejection, revocation};
pub use issue::refresh;
pub use issue::throttle;

pub use binding::{CertificateBound, ClientCertificate, Dpop, DpopMode};
#[cfg(feature = "redis")]
pub use guard::redis_connection::RedisServers;
pub use primitives::error::{AuthError, ConfigError, ErrorKind};

// The guard.
pub use binding::PeerAddr;
pub use guard::config::{JwtAuth, JwtAuthBuilder, DEFAULT_CACHE_CAPACITY, DEFAULT_MAX_CACHED_TOKEN_LEN};
pub use guard::content_digest::{ContentDigestFuture, ContentDigestLayer, ContentDigestService, DigestBody};
pub use guard::context::AuthContext;
pub use guard::layer::{JwtLayer, JwtService, ResponseFuture};
pub use guard::mfa_policy::MfaPolicy;
pub use guard::observe::interaction_id::{
    InteractionId, InteractionIdFuture, InteractionIdLayer, InteractionIdService, INTERACTION_ID,
};
pub use guard::observe::readiness::{Readiness, ReadinessReport, ReadyService};
pub use guard::profile::{Fapi2Rule, FAPI2_ALGORITHMS, FAPI2_LEEWAY};
pub use guard::source::TokenSource;
#[cfg(feature = "jwe")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwe")))]
pub use guard::verify::jwe;
#[cfg(feature = "jwe")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwe")))]
pub use guard::verify::jwe::DecryptionKey;
pub use guard::verify::{CacheStats, RequiredClaim, TokenKind};
pub use keys::{Issuer, StaticKeys, VerificationKey};
pub use primitives::authorization::DEFAULT_MAX_TOKEN_LEN;
pub use primitives::body::{JwtBody, RejectionBody};
pub use primitives::claims::{Claims, Confirmation, TokenFacts};
pub use rejection::Protocol;

// After the guard.
pub use authorize::check::CheckFuture;
#[cfg(feature = "axum")]
pub use authorize::extract::{ExtractRejection, RequireMfa, RequireScope};
#[cfg(feature = "tonic")]
pub use authorize::grpc::GrpcAuth;
pub use authorize::mfa::{RequireMfaLayer, RequireMfaService};
pub use authorize::propagate::{ClaimHeaders, ClaimHeadersLayer, ClaimHeadersService};
pub use authorize::same_origin::{SameOriginLayer, SameOriginService};
#[cfg(feature = "axum")]
pub use authorize::scope::Scoped;
pub use authorize::scope::{RequireScopeLayer, RequireScopeService, ScopeSet};
pub use guard::resource_metadata::{ProtectedResource, ProtectedResourceService};
// The former names of CheckFuture, kept for code that names them.
#[allow(deprecated)]
pub use authorize::{mfa::RequireMfaFuture, scope::RequireScopeFuture};

// The issuing side.
pub use issue::{
    BoxError, MintedToken, ServiceTokenFuture, ServiceTokenLayer, ServiceTokenService, ServiceTokens,
    ServiceTokensBuilder, SignRequest, SignRequestFuture, SignRequestLayer, SignResponse, SignResponseFuture,
    SignResponseLayer, SignedBody, SigningKey, TokenIssuer,
};

pub use primitives::algorithm::{Algorithm, ParseAlgorithmError};
