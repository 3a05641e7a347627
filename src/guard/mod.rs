//! The guard: the request path of [`JwtLayer`](crate::JwtLayer), in the order it runs.
//!
//! [`layer`] is the tower plumbing and [`config`] the configuration it is built from, which
//! hands the request path its [`settings`]; [`pipeline`] runs the steps, each in its own module:
//! 1 [`source`], 2 [`verify`] (with the [`keys`]), 3 [`binding`], 4 [`revocation`]; then the
//! layer puts the token's claims and the [`context`] (which consults the [`mfa_policy`]) into
//! the request. A refusal becomes a response in [`rejection`] (naming the
//! [`resource_metadata`], RFC 9728) and an event in the audit; [`observe`] holds what operators
//! see (audit, metrics, readiness). Nothing here knows the code that runs after the guard
//! (`authorize`) or the issuing side (`issue`).
//!
//! The floors (DESIGN.md; checked by `tests/floors.rs`): the subsystems ([`verify`], [`keys`],
//! [`binding`], [`revocation`], [`observe`]) on the primitives (`crate::primitives`); the request
//! path ([`source`], [`settings`], [`pipeline`], [`rejection`], [`context`]) on them; the layer and
//! [`config`] on top.

// In the order a request meets them (one group each, so that rustfmt keeps the order).
pub(crate) mod layer;

pub(crate) mod config;

// the FAPI 2.0 profile: configuration that sets and checks what the floors below offer
pub(crate) mod profile;

pub(crate) mod settings;

pub(crate) mod pipeline;

// 1 extract
pub(crate) mod source;

// 2 verify
pub(crate) mod verify;

pub mod keys;

// 3 bind
pub mod binding;

// the body a message signature covers through its Content-Digest (RFC 9530)
pub(crate) mod content_digest;

// 4 revocation
pub mod revocation;

#[cfg(feature = "redis")]
pub(crate) mod redis_cluster;
#[cfg(feature = "redis")]
pub(crate) mod redis_connection;
#[cfg(feature = "redis")]
pub(crate) mod redis_sentinel;

// 5 what the layer puts into the request: the context that consults the multi-factor policy
pub(crate) mod mfa_policy;

pub(crate) mod context;

// what a refusal becomes (its challenge names the protected-resource metadata, RFC 9728); what
// operators see
pub mod rejection;

pub(crate) mod resource_metadata;

pub(crate) mod observe;
