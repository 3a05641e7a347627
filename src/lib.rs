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
//! Read the modules in this order; each is one step:
//!
//! 1. [`source`](TokenSource): where the token comes from (bearer header, cookie, custom header);
//! 2. `verify`: with several trusted issuers ([`Issuer`]), the token's `iss` picks the one whose
//!    keys and rules apply; the algorithm allow-list, the key ([`keys`]), the signature, the
//!    registered claims (exp/nbf/iat with leeway, iss, aud, max age, `typ`), custom checks, the cache;
//! 3. [`binding`]: each configured policy compares the caller with the token;
//! 4. [`revocation`]: is the `jti` or the subject revoked;
//! 5. the layer ([`JwtLayer`]) inserts [`Claims<C>`] and [`AuthContext`] into the request's
//!    extensions and calls the inner service.
//!
//! `pipeline.rs` runs steps 1 to 4 in that order, synchronously unless a key must be fetched or
//! the revocation store must ask a remote server.
//!
//! Every refusal is one [`AuthError`] with a stable [`code`](ErrorKind::code), rendered as an
//! RFC 6750 answer for HTTP or a trailers-only status for gRPC ([`rejection`]).
//!
//! ## Microservices
//!
//! [`TokenKind`] keeps user tokens and service tokens apart (RFC 8725 §3.12), a
//! [`RequireScopeLayer`] (or the [`Scoped<T>`](Scoped) extractor) demands scopes per route,
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
//! | `redis` | revocation and refresh-token stores shared through Redis |
//! | `tonic` | `GrpcAuth`: claims and [`AuthContext`] from a `tonic::Request`, `AuthError` → `tonic::Status`; the client-IP binding reads tonic's peer address (`TcpConnectInfo`) |
//! | `full` | all of the above |
//!
//! [tower]: https://docs.rs/tower
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
mod check_future;
mod clock;
mod config;
mod context;
mod error;
mod layer;
mod mfa;
mod mfa_layer;
mod outgoing;
mod pipeline;
mod profile;
mod propagate;
mod scope;
mod source;
mod verify;

pub mod audit;
pub mod binding;
pub mod issue;
pub mod keys;
pub mod refresh;
pub mod rejection;
pub mod revocation;

#[cfg(feature = "axum")]
mod extract;
#[cfg(feature = "tonic")]
mod grpc;

pub use binding::PeerAddr;
/// Entry points for the fuzz targets (`fuzz/`); not a public API.
#[doc(hidden)]
pub mod __fuzz {
    pub use crate::fuzzing::{extract, parse_header, verify};
}
mod fuzzing;

pub use body::JwtBody;
pub use check_future::CheckFuture;
pub use config::{
    ConfigError, JwtAuth, JwtAuthBuilder, DEFAULT_CACHE_CAPACITY, DEFAULT_MAX_CACHED_TOKEN_LEN,
    DEFAULT_MAX_TOKEN_LEN,
};
pub use context::{AuthContext, Claims, Confirmation, TokenFacts};
pub use error::{AuthError, ErrorKind};
pub use issue::{MintedToken, SigningKey, TokenIssuer};
pub use keys::{Issuer, StaticKeys, VerificationKey};
pub use layer::{JwtLayer, JwtService, ResponseFuture};
pub use mfa::MfaPolicy;
pub use mfa_layer::{RequireMfaFuture, RequireMfaLayer, RequireMfaService};
pub use outgoing::{
    BoxError, ServiceTokenFuture, ServiceTokenLayer, ServiceTokenService, ServiceTokens, ServiceTokensBuilder,
};
pub use profile::TokenKind;
pub use propagate::{ClaimHeaders, ClaimHeadersLayer, ClaimHeadersService};
pub use rejection::Protocol;
#[cfg(feature = "axum")]
pub use scope::Scoped;
pub use scope::{RequireScopeFuture, RequireScopeLayer, RequireScopeService, ScopeSet};
pub use source::TokenSource;
pub use verify::{CacheStats, RequiredClaim};

#[cfg(feature = "axum")]
pub use extract::{ExtractRejection, RequireMfa, RequireScope};
#[cfg(feature = "tonic")]
pub use grpc::GrpcAuth;

/// The JWS algorithms (re-exported from `jsonwebtoken`).
pub use jsonwebtoken::Algorithm;
