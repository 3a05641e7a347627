//! When a token counts as multi-factor: the [`MfaPolicy`] behind [`RequireMfa`](crate::RequireMfa).

use std::time::Duration;

use crate::primitives::claims::TokenFacts;
use crate::primitives::error::AuthError;

/// RFC 8176 method values that are a second factor on their own.
const SECOND_FACTORS: &[&str] =
    &["mfa", "otp", "hwk", "swk", "sms", "tel", "sc", "pop", "fpt", "face", "iris", "retina", "vbm"];

/// RFC 8176 methods by factor class: something known, something held, something the user is.
const FACTOR_CLASSES: [&[&str]; 3] = [
    &["pwd", "pin", "kba"],
    &["otp", "hwk", "swk", "sms", "tel", "sc", "pop"],
    &["fpt", "face", "iris", "retina", "vbm"],
];

/// When a token counts as multi-factor authenticated.
///
/// A token satisfies the policy when any of these holds, and (when a maximum age is set)
/// its `auth_time` is recent enough:
/// - `mfa_verified` is the JSON boolean `true` (the JWT guides' claim; a string does not count);
/// - its `amr` contains a second factor (RFC 8176: `mfa`, `otp`, `hwk`, `swk`, `sms`, ...);
/// - its `acr` is one of the configured `acr` values.
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_guard::MfaPolicy;
///
/// let policy = MfaPolicy::default()
///     .accept_acr(["urn:example:mfa"])
///     .max_auth_age(Duration::from_secs(600));
/// assert_eq!(policy.acr_values(), Some("urn:example:mfa".to_string()));
/// ```
#[derive(Debug, Clone)]
pub struct MfaPolicy {
    accept_mfa_verified: bool,
    two_factor_classes: bool,
    acr: Vec<String>,
    max_auth_age: Option<Duration>,
}

impl Default for MfaPolicy {
    fn default() -> Self {
        MfaPolicy {
            accept_mfa_verified: true,
            two_factor_classes: false,
            acr: Vec::new(),
            max_auth_age: None,
        }
    }
}

impl MfaPolicy {
    /// `acr` values that count as multi-factor (and are asked for in the step-up challenge).
    pub fn accept_acr<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.acr = values.into_iter().map(Into::into).collect();
        self
    }

    /// Whether `mfa_verified: true` counts (default: yes).
    pub fn accept_mfa_verified_claim(mut self, accept: bool) -> Self {
        self.accept_mfa_verified = accept;
        self
    }

    /// The second factor must be at most this old (from `auth_time`).
    pub fn max_auth_age(mut self, age: Duration) -> Self {
        self.max_auth_age = Some(age);
        self
    }

    /// Read `amr` strictly: it must say `mfa`, or name methods of two different factor classes
    /// (something known: `pwd`, `pin`, `kba`; something held: `otp`, `hwk`, `swk`, `sms`,
    /// `tel`, `sc`, `pop`; something the user is: `fpt`, `face`, `iris`, `retina`, `vbm`).
    /// By default one second-factor method is enough (an OTP-only login then counts as MFA).
    ///
    /// ```
    /// use tower_jwt_guard::{MfaPolicy, TokenFacts};
    ///
    /// let strict = MfaPolicy::default().require_two_factor_classes(true);
    /// let mut facts = TokenFacts::default();
    /// facts.amr = vec!["otp".into()];
    /// assert!(!strict.is_satisfied(&facts, 0));
    /// facts.amr = vec!["pwd".into(), "otp".into()];
    /// assert!(strict.is_satisfied(&facts, 0));
    /// ```
    pub fn require_two_factor_classes(mut self, strict: bool) -> Self {
        self.two_factor_classes = strict;
        self
    }

    /// The space-separated `acr_values` of the step-up challenge, if any are configured.
    pub fn acr_values(&self) -> Option<String> {
        (!self.acr.is_empty()).then(|| self.acr.join(" "))
    }

    /// Whether `facts` satisfy the policy at `now` (seconds since the epoch).
    pub fn is_satisfied(&self, facts: &TokenFacts, now: u64) -> bool {
        let factor = (self.accept_mfa_verified && facts.mfa_verified == Some(true))
            || self.amr_satisfies(&facts.amr)
            || facts.acr.as_ref().is_some_and(|acr| self.acr.iter().any(|a| a == acr));
        let recent = match self.max_auth_age {
            None => true,
            Some(age) => facts.auth_time.is_some_and(|t| now <= t.saturating_add(age.as_secs())),
        };
        factor && recent
    }

    fn amr_satisfies(&self, amr: &[String]) -> bool {
        if !self.two_factor_classes {
            return amr.iter().any(|m| SECOND_FACTORS.contains(&m.as_str()));
        }
        if amr.iter().any(|m| m == "mfa") {
            return true;
        }
        let classes = FACTOR_CLASSES.iter().filter(|class| amr.iter().any(|m| class.contains(&m.as_str())));
        classes.count() >= 2
    }

    /// The RFC 9470 step-up rejection for this policy.
    pub fn challenge(&self) -> AuthError {
        AuthError::mfa_required(self.acr_values(), self.max_auth_age.map(|a| a.as_secs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> TokenFacts {
        TokenFacts::default()
    }

    #[test]
    fn strict_amr_needs_two_factor_classes() {
        let strict = MfaPolicy::default().require_two_factor_classes(true);
        let mut f = facts();
        for (amr, expected) in [
            (vec!["otp"], false),
            (vec!["otp", "sms"], false),
            (vec!["pwd", "pin"], false),
            (vec!["pwd", "fpt"], true),
            (vec!["hwk", "face"], true),
            (vec!["mfa"], true),
        ] {
            f.amr = amr.iter().map(|m| m.to_string()).collect();
            assert_eq!(strict.is_satisfied(&f, 0), expected, "{amr:?}");
        }
        f.amr = vec!["otp".into()];
        assert!(MfaPolicy::default().is_satisfied(&f, 0), "the default takes one second factor");
    }

    #[test]
    fn mfa_verified_must_be_true() {
        let policy = MfaPolicy::default();
        let mut f = facts();
        assert!(!policy.is_satisfied(&f, 0));
        f.mfa_verified = Some(false);
        assert!(!policy.is_satisfied(&f, 0));
        f.mfa_verified = Some(true);
        assert!(policy.is_satisfied(&f, 0));
        assert!(!MfaPolicy::default().accept_mfa_verified_claim(false).is_satisfied(&f, 0));
    }

    #[test]
    fn amr_second_factor_counts_password_alone_does_not() {
        let policy = MfaPolicy::default();
        let mut f = facts();
        f.amr = vec!["pwd".into()];
        assert!(!policy.is_satisfied(&f, 0));
        f.amr.push("otp".into());
        assert!(policy.is_satisfied(&f, 0));
    }

    #[test]
    fn acr_and_max_age() {
        let policy = MfaPolicy::default().accept_acr(["gold"]).max_auth_age(Duration::from_secs(60));
        let mut f = facts();
        f.acr = Some("gold".into());
        assert!(!policy.is_satisfied(&f, 1000), "auth_time missing");
        f.auth_time = Some(950);
        assert!(policy.is_satisfied(&f, 1000));
        assert!(!policy.is_satisfied(&f, 1011));
        let challenge = policy.challenge();
        assert_eq!(challenge.acr_values(), Some("gold"));
        assert_eq!(challenge.max_age(), Some(60));
    }
}
