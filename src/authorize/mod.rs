//! After the guard: what reads the [`AuthContext`](crate::AuthContext) the
//! [`JwtLayer`](crate::JwtLayer) put into the request.
//!
//! The axum extractors ([`extract`]), the tonic helpers ([`grpc`]), the checks that refuse a
//! verified request ([`mfa`]: a second factor; [`scope`]: OAuth scopes; both share [`check`]),
//! the headers that pass the verified user on ([`propagate`]), and the cross-origin check in front of
//! cookie-authenticated endpoints ([`same_origin`]).

pub(crate) mod check;
#[cfg(feature = "axum")]
pub(crate) mod extract;
#[cfg(feature = "tonic")]
pub(crate) mod grpc;
pub(crate) mod mfa;
pub(crate) mod propagate;
pub(crate) mod same_origin;
pub(crate) mod scope;
