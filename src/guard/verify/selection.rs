//! Issuer selection: which trusted issuer's keys and rules apply to a token.
//!
//! With one issuer there is nothing to select: its keys are asked and its rules check `iss`.
//! With several, the token's unverified `iss` (a JSON string, present: anything else refuses
//! the token) picks the issuer by exact match, before any key is looked up; a token naming no
//! trusted issuer is refused (`INVALID_TOKEN`) without touching any key source. Only the
//! selected issuer's algorithms, keys and rules apply, so a `kid` never crosses issuers.
//!
//! Tenant patterns (feature `jwks`, [`TenantKeys`](crate::guard::keys::TenantKeys)) come after the exact
//! names: a token whose `iss` names no configured issuer, matches a pattern and names an accepted
//! tenant is that pattern's issuer's, with that one tenant's keys (found by its `iss`). A pattern
//! is always selected, even when it is the only issuer: its rules do not check `iss` themselves.

use std::sync::Arc;

use crate::primitives::algorithm::Algorithm;

use super::{AlgorithmSet, ClaimRules};
use crate::guard::keys::{KeyLookup, KeySource};
use crate::primitives::error::{AuthError, ErrorKind};

/// One issuer, frozen: its keys, its algorithm allow-list and its rules (`rules.issuers` are
/// its names; none for the builder's shorthand without `issuer(..)`, which accepts any `iss`).
pub(crate) struct TrustedIssuer {
    pub(crate) keys: Arc<dyn KeySource>,
    pub(crate) algorithms: AlgorithmSet,
    pub(crate) rules: ClaimRules,
    /// A tenant pattern's keys (then `keys` holds none, and `rules.issuers` is empty).
    #[cfg(feature = "jwks")]
    pub(crate) tenants: Option<crate::guard::keys::TenantKeys>,
}

impl TrustedIssuer {
    /// Whether this issuer is a tenant pattern.
    fn is_pattern(&self) -> bool {
        #[cfg(feature = "jwks")]
        return self.tenants.is_some();
        #[cfg(not(feature = "jwks"))]
        false
    }

    /// Whether a tenant pattern accepts `iss` (no fetch).
    #[cfg_attr(not(feature = "jwks"), allow(unused_variables))]
    fn accepts_tenant(&self, iss: &str) -> bool {
        #[cfg(feature = "jwks")]
        return self.tenants.as_ref().is_some_and(|tenants| tenants.accepts(iss));
        #[cfg(not(feature = "jwks"))]
        false
    }

    /// The key for a token of `iss` (the selected issuer's `iss`; the tenant's for a pattern).
    #[cfg_attr(not(feature = "jwks"), allow(unused_variables))]
    pub(crate) fn lookup(&self, iss: Option<&str>, kid: Option<&str>, alg: Algorithm) -> KeyLookup {
        #[cfg(feature = "jwks")]
        if let Some(tenants) = &self.tenants {
            return match iss {
                Some(iss) => tenants.lookup(iss, kid, alg),
                None => KeyLookup::Unknown,
            };
        }
        self.keys.lookup(kid, alg)
    }
}

impl std::fmt::Debug for TrustedIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedIssuer")
            .field("algorithms", &self.algorithms)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// The trusted issuers of a configuration (at least one), and their names for selection.
#[derive(Debug)]
pub(crate) struct Issuers {
    trusted: Box<[TrustedIssuer]>,
    /// Every name of every issuer with the issuer's index, sorted by name (a binary search
    /// selects among thousands of tenants); empty with a single issuer.
    names: Box<[(Box<str>, usize)]>,
    /// The indexes of the tenant patterns, in the order configured.
    patterns: Box<[usize]>,
    /// Whether the first issuer is an introspection endpoint's: the one its answers speak for.
    introspected: bool,
}

impl Issuers {
    /// `trusted` must hold at least one issuer; with several, each must have a name and no
    /// name may appear twice (checked by the builder).
    pub(crate) fn new(trusted: Vec<TrustedIssuer>) -> Self {
        let patterns: Box<[usize]> = trusted
            .iter()
            .enumerate()
            .filter(|(_, issuer)| issuer.is_pattern())
            .map(|(index, _)| index)
            .collect();
        let names = if trusted.len() > 1 {
            let mut names: Vec<(Box<str>, usize)> = trusted
                .iter()
                .enumerate()
                .flat_map(|(index, issuer)| {
                    issuer.rules.issuers.iter().map(move |name| (name.as_str().into(), index))
                })
                .collect();
            // Stable: of two equal names (refused by the builder) the first configured wins.
            names.sort_by(|a, b| a.0.cmp(&b.0));
            names.into_boxed_slice()
        } else {
            Box::default()
        };
        Issuers { trusted: trusted.into_boxed_slice(), names, patterns, introspected: false }
    }

    /// The first issuer is an introspection endpoint's (when `introspected`).
    pub(crate) fn with_introspected(mut self, introspected: bool) -> Self {
        self.introspected = introspected;
        self
    }

    /// The introspection endpoint's issuer (the first), the only one its answers may speak for.
    #[cfg(feature = "introspection")]
    pub(crate) fn introspected(&self) -> Option<&TrustedIssuer> {
        self.introspected.then(|| &self.trusted[0])
    }

    /// The issuer when there is only one and it is no pattern: no selection.
    pub(crate) fn only(&self) -> Option<&TrustedIssuer> {
        match &*self.trusted {
            [one] if !one.is_pattern() => Some(one),
            _ => None,
        }
    }

    /// The issuer at `index` (of a token verified by it).
    pub(crate) fn get(&self, index: usize) -> &TrustedIssuer {
        &self.trusted[index]
    }

    /// The issuer whose name is exactly `iss`, else the first tenant pattern that accepts it.
    pub(crate) fn select(&self, iss: Option<&str>) -> Result<(usize, &TrustedIssuer), AuthError> {
        let iss = iss.ok_or_else(|| refused("the token names no issuer"))?;
        let exact =
            self.names.binary_search_by(|(name, _)| (**name).cmp(iss)).ok().map(|at| self.names[at].1);
        exact
            .or_else(|| self.patterns.iter().copied().find(|index| self.trusted[*index].accepts_tenant(iss)))
            .map(|index| (index, &self.trusted[index]))
            .ok_or_else(|| refused("the token's issuer is not accepted"))
    }

    /// The union of the issuers' allow-lists (the header check before selection).
    pub(crate) fn algorithms(&self) -> AlgorithmSet {
        self.trusted.iter().fold(AlgorithmSet::default(), |mut all, issuer| {
            all.union(issuer.algorithms);
            all
        })
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &TrustedIssuer> {
        self.trusted.iter()
    }
}

fn refused(message: &'static str) -> AuthError {
    AuthError::with_message(ErrorKind::InvalidToken, message)
}
