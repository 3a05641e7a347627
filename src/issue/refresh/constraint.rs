//! [`SenderConstraint`]: the key a refresh-token family is bound to (RFC 9449 §5, RFC 8705 §4).
//!
//! A login that binds its access token to a DPoP key (`cnf.jkt`) or a client certificate
//! (`cnf.x5t#S256`) hands the same constraint to its refresh-token family. Each rotation then
//! presents the constraint of the refresh request; the store compares it with the family's,
//! atomically with the rotation, and refuses a mismatch without rotating
//! ([`RefreshError::SenderMismatch`](super::RefreshError::SenderMismatch)). A family without a
//! constraint (a bearer login) takes any request, as before.

use std::fmt;

use crate::primitives::claims::Confirmation;

/// What a refresh-token family is bound to: the DPoP key's thumbprint (`jkt`, RFC 7638) and
/// the client certificate's (`x5t#S256`, RFC 8705), each optional.
///
/// A family's constraint admits a presented one when every member the family has is present
/// and equal; members the family lacks are not compared.
///
/// ```
/// use tower_jwt_guard::refresh::SenderConstraint;
///
/// let login = SenderConstraint::none().with_jkt("key-1");
/// assert!(login.admits(&SenderConstraint::none().with_jkt("key-1")));
/// assert!(!login.admits(&SenderConstraint::none().with_jkt("key-2")));
/// assert!(!login.admits(&SenderConstraint::none()));
/// // A bearer login's family takes any request.
/// assert!(SenderConstraint::none().admits(&SenderConstraint::none().with_jkt("key-2")));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SenderConstraint {
    jkt: Option<String>,
    certificate: Option<String>,
}

impl fmt::Debug for SenderConstraint {
    /// Says which members are set, not their values (thumbprints stay out of logs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderConstraint")
            .field("jkt", &self.jkt.is_some())
            .field("x5t#S256", &self.certificate.is_some())
            .finish()
    }
}

impl SenderConstraint {
    /// No constraint: a bearer session, or a refresh request without a proof or a certificate.
    pub fn none() -> Self {
        SenderConstraint::default()
    }

    /// The sender constraint of a token's `cnf` claims: its `jkt` and `x5t#S256` (the other
    /// members, fingerprints and addresses, are not sender constraints).
    ///
    /// ```
    /// use tower_jwt_guard::refresh::SenderConstraint;
    /// use tower_jwt_guard::Confirmation;
    ///
    /// let mut cnf = Confirmation::default();
    /// cnf.jkt = Some("key-1".into());
    /// cnf.client_ip = Some("192.0.2.1".into());
    /// assert_eq!(SenderConstraint::of(&cnf), SenderConstraint::none().with_jkt("key-1"));
    /// ```
    pub fn of(confirmation: &Confirmation) -> Self {
        let constraint = SenderConstraint::none();
        let constraint = match &confirmation.jkt {
            Some(jkt) => constraint.with_jkt(jkt.as_str()),
            None => constraint,
        };
        match &confirmation.certificate_thumbprint {
            Some(x5t) => constraint.with_certificate(x5t.as_str()),
            None => constraint,
        }
    }

    /// With the DPoP key's thumbprint (`cnf.jkt`).
    pub fn with_jkt(mut self, jkt: impl Into<String>) -> Self {
        self.jkt = Some(jkt.into()).filter(|jkt| !jkt.is_empty());
        self
    }

    /// With the client certificate's thumbprint (`cnf.x5t#S256`).
    pub fn with_certificate(mut self, thumbprint: impl Into<String>) -> Self {
        self.certificate = Some(thumbprint.into()).filter(|x5t| !x5t.is_empty());
        self
    }

    /// The DPoP key's thumbprint.
    pub fn jkt(&self) -> Option<&str> {
        self.jkt.as_deref()
    }

    /// The client certificate's thumbprint.
    pub fn certificate(&self) -> Option<&str> {
        self.certificate.as_deref()
    }

    /// Whether there is no constraint at all.
    pub fn is_none(&self) -> bool {
        self.jkt.is_none() && self.certificate.is_none()
    }

    /// Whether a family bound to `self` may be refreshed by a request that presents
    /// `presented`: each member of `self` is in `presented`, equal (compared in constant time).
    pub fn admits(&self, presented: &SenderConstraint) -> bool {
        let member = |want: &Option<String>, got: &Option<String>| match (want, got) {
            (None, _) => true,
            (Some(want), Some(got)) => crate::guard::binding::same(want.as_bytes(), got.as_bytes()),
            (Some(_), None) => false,
        };
        member(&self.jkt, &presented.jkt) & member(&self.certificate, &presented.certificate)
    }
}

/// The audit event of a refused rotation, and its error: one place for both stores. The family
/// id is not secret (it says which session); no token or thumbprint is logged.
pub(crate) fn sender_mismatch(family: &str) -> super::RefreshError {
    tracing::warn!(
        target: "tower_jwt_guard",
        family,
        "refresh token presented without the key or certificate its family is bound to: refused, not rotated"
    );
    super::RefreshError::SenderMismatch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_of_the_family_must_match() {
        let both = SenderConstraint::none().with_jkt("k").with_certificate("c");
        assert!(both.admits(&both.clone()));
        assert!(!both.admits(&SenderConstraint::none().with_jkt("k")));
        assert!(!both.admits(&SenderConstraint::none().with_certificate("c")));
        assert!(!both.admits(&SenderConstraint::none().with_jkt("k").with_certificate("d")));
        let certificate = SenderConstraint::none().with_certificate("c");
        assert!(certificate.admits(&SenderConstraint::none().with_jkt("any").with_certificate("c")));
        assert!(SenderConstraint::none().with_jkt("").is_none());
        assert_eq!(format!("{both:?}"), "SenderConstraint { jkt: true, x5t#S256: true }");
    }
}
