//! Issuer selection: which trusted issuer's keys and rules apply to a token.
//!
//! With one issuer there is nothing to select: its keys are asked and its rules check `iss`.
//! With several, the token's unverified `iss` (a JSON string, present: anything else refuses
//! the token) picks the issuer by exact match, before any key is looked up; a token naming no
//! trusted issuer is refused (`INVALID_TOKEN`) without touching any key source. Only the
//! selected issuer's algorithms, keys and rules apply, so a `kid` never crosses issuers.

use std::sync::Arc;

use super::{AlgorithmSet, ClaimRules};
use crate::error::{AuthError, ErrorKind};
use crate::keys::KeySource;

/// One issuer, frozen: its keys, its algorithm allow-list and its rules (`rules.issuers` are
/// its names; none for the builder's shorthand without `issuer(..)`, which accepts any `iss`).
pub(crate) struct TrustedIssuer {
    pub(crate) keys: Arc<dyn KeySource>,
    pub(crate) algorithms: AlgorithmSet,
    pub(crate) rules: ClaimRules,
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
    /// Every name of every issuer with the issuer's index; empty with a single issuer.
    names: Box<[(Box<str>, usize)]>,
}

impl Issuers {
    /// `trusted` must hold at least one issuer; with several, each must have a name and no
    /// name may appear twice (checked by the builder).
    pub(crate) fn new(trusted: Vec<TrustedIssuer>) -> Self {
        let names = if trusted.len() > 1 {
            trusted
                .iter()
                .enumerate()
                .flat_map(|(index, issuer)| {
                    issuer.rules.issuers.iter().map(move |name| (name.as_str().into(), index))
                })
                .collect()
        } else {
            Box::default()
        };
        Issuers { trusted: trusted.into_boxed_slice(), names }
    }

    /// The issuer when there is only one: no selection.
    pub(crate) fn only(&self) -> Option<&TrustedIssuer> {
        match &*self.trusted {
            [one] => Some(one),
            _ => None,
        }
    }

    /// The issuer at `index` (of a token verified by it).
    pub(crate) fn get(&self, index: usize) -> &TrustedIssuer {
        &self.trusted[index]
    }

    /// The issuer whose name is exactly `iss`.
    pub(crate) fn select(&self, iss: Option<&str>) -> Result<(usize, &TrustedIssuer), AuthError> {
        let iss = iss.ok_or_else(|| refused("the token names no issuer"))?;
        self.names
            .iter()
            .find(|(name, _)| **name == *iss)
            .map(|(_, index)| (*index, &self.trusted[*index]))
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
