//! The immutable settings one [`JwtAuth`](crate::JwtAuth) shares with every clone of its
//! layers: what the request path reads (sources, verifier, bindings, stores, responder, audit).
//!
//! Built by [`JwtAuthBuilder::build`](crate::JwtAuthBuilder::build) in `config.rs`, one floor up;
//! the pipeline reads it and knows nothing of the builder.

use std::sync::Arc;

use crate::guard::binding::{BindingPolicy, Dpop};
use crate::guard::context::ContextPolicy;
use crate::guard::observe::audit::Audit;
use crate::guard::observe::metrics::GuardMetrics;
use crate::guard::resource_metadata::ProtectedResource;
use crate::guard::revocation::RevocationStore;
use crate::guard::source::TokenSources;
use crate::guard::verify::TokenVerifier;

/// The immutable configuration shared by every clone of the layer.
pub(crate) struct Shared {
    pub(crate) sources: TokenSources,
    pub(crate) verifier: TokenVerifier,
    pub(crate) bindings: Vec<Arc<dyn BindingPolicy>>,
    pub(crate) revocation: Option<Box<dyn RevocationStore>>,
    pub(crate) revocation_fail_open: bool,
    pub(crate) optional: bool,
    pub(crate) cache_capacity: usize,
    pub(crate) cache_max_token_len: usize,
    pub(crate) context: Arc<ContextPolicy>,
    pub(crate) audit: Audit,
    pub(crate) metrics: GuardMetrics,
    pub(crate) resource_metadata: Option<ProtectedResource>,
    pub(crate) dpop: Option<Arc<Dpop>>,
    /// The rules a profile set (FAPI 2.0), for `Debug` only.
    pub(crate) profile: Option<Arc<dyn std::fmt::Debug + Send + Sync>>,
    /// Opaque tokens (or all) go to this introspection endpoint (RFC 7662).
    #[cfg(feature = "introspection")]
    pub(crate) introspection: Option<crate::guard::keys::Introspector>,
}
