//! The registered claims (RFC 7519 §4.1) and authentication claims, parsed strictly.
//!
//! `exp`, `nbf`, `iat` and `auth_time` must be JSON numbers (a string is a rejection, not an
//! absent claim: CVE-2026-25537), within year 0..9999; fractions are truncated.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::primitives::claims::{Confirmation, TokenFacts};

/// 9999-12-31T23:59:59Z: later NumericDates are refused as nonsense.
const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

#[derive(Deserialize)]
pub(crate) struct RegisteredClaims<'a> {
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    auth_time: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    iss: Option<String>,
    #[serde(default, deserialize_with = "present")]
    sub: Option<String>,
    #[serde(default, deserialize_with = "present")]
    jti: Option<String>,
    #[serde(default, deserialize_with = "present")]
    aud: Option<OneOrMany>,
    #[serde(default, deserialize_with = "present")]
    amr: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    acr: Option<String>,
    #[serde(default, deserialize_with = "present")]
    mfa_verified: Option<bool>,
    #[serde(borrow, default, deserialize_with = "scope_claim")]
    scope: Option<ScopeClaim<'a>>,
    #[serde(borrow, default, deserialize_with = "scope_claim")]
    scp: Option<ScopeClaim<'a>>,
    #[serde(default, deserialize_with = "present")]
    cnf: Option<Confirmation>,
    #[serde(default, deserialize_with = "string_or_nothing")]
    client_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

impl RegisteredClaims<'_> {
    pub(crate) fn into_facts(self, token_type: Option<&str>) -> TokenFacts {
        let mut scopes: Vec<String> = self.scope.map(ScopeClaim::into_vec).unwrap_or_default();
        if let Some(scp) = self.scp {
            scopes.extend(scp.into_vec());
        }
        TokenFacts {
            subject: self.sub,
            jti: self.jti,
            issuer: self.iss,
            audience: self.aud.map(OneOrMany::into_vec).unwrap_or_default(),
            expires_at: self.exp,
            not_before: self.nbf,
            issued_at: self.iat,
            amr: self.amr.unwrap_or_default(),
            acr: self.acr,
            auth_time: self.auth_time,
            mfa_verified: self.mfa_verified,
            scopes,
            confirmation: self.cnf,
            token_type: token_type.map(str::to_owned),
            kind: None,
            client_id: self.client_id,
        }
    }
}

/// `client_id`: a string, or nothing (another type is no client; a policy that needs one refuses).
fn string_or_nothing<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(text) => Some(text),
        _ => None,
    })
}

/// A claim that, when present, has its type: `null` is refused, not read as absent.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// `scope` and `scp`: an RFC 8693 space-separated string (borrowed from the payload when it has
/// no escapes; Entra ID writes `"scp": "User.Read Mail.Read"`), or an array of strings as some
/// issuers write it (each item one scope, as it is).
enum ScopeClaim<'a> {
    Joined(Cow<'a, str>),
    List(Vec<String>),
}

impl ScopeClaim<'_> {
    fn into_vec(self) -> Vec<String> {
        match self {
            ScopeClaim::Joined(joined) => joined.split_ascii_whitespace().map(str::to_owned).collect(),
            ScopeClaim::List(list) => list,
        }
    }
}

/// [`present`] for the `scope` and `scp` claims: a string or an array of strings, nothing else.
fn scope_claim<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ScopeClaim<'a>>, D::Error> {
    struct Scope<'a>(std::marker::PhantomData<&'a ()>);

    impl<'de: 'a, 'a> Visitor<'de> for Scope<'a> {
        type Value = ScopeClaim<'a>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a space-separated string or an array of strings")
        }

        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(ScopeClaim::Joined(Cow::Borrowed(v)))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(ScopeClaim::Joined(Cow::Owned(v.to_owned())))
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
            while let Some(scope) = seq.next_element::<String>()? {
                list.push(scope);
            }
            Ok(ScopeClaim::List(list))
        }
    }

    deserializer.deserialize_any(Scope(std::marker::PhantomData)).map(Some)
}

fn numeric_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    struct NumericDate;

    impl Visitor<'_> for NumericDate {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a NumericDate (a JSON number of seconds)")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            if v <= MAX_NUMERIC_DATE {
                Ok(Some(v))
            } else {
                Err(E::custom("NumericDate out of range"))
            }
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v).map_err(|_| E::custom("negative NumericDate")).and_then(|v| self.visit_u64(v))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.is_finite() && (0.0..=MAX_NUMERIC_DATE as f64).contains(&v) {
                Ok(Some(v as u64))
            } else {
                Err(E::custom("NumericDate out of range"))
            }
        }
    }

    deserializer.deserialize_any(NumericDate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<TokenFacts, serde_json::Error> {
        serde_json::from_str::<RegisteredClaims>(json).map(|c| c.into_facts(None))
    }

    #[test]
    fn numeric_dates_are_numbers() {
        assert_eq!(parse(r#"{"exp":1700000000}"#).unwrap().expires_at, Some(1_700_000_000));
        assert_eq!(parse(r#"{"exp":1700000000.9}"#).unwrap().expires_at, Some(1_700_000_000));
        for bad in [r#""1700000000""#, "-1", "1e300", "null", "true", "[1]", "{}", "18446744073709551616"] {
            assert!(parse(&format!(r#"{{"exp":{bad}}}"#)).is_err(), "exp {bad} must be refused");
            assert!(parse(&format!(r#"{{"nbf":{bad}}}"#)).is_err(), "nbf {bad} must be refused");
            assert!(parse(&format!(r#"{{"iat":{bad}}}"#)).is_err(), "iat {bad} must be refused");
        }
    }

    #[test]
    fn audience_scope_and_types() {
        let facts = parse(r#"{"aud":"a","scope":"read write","amr":["pwd","otp"]}"#).unwrap();
        assert_eq!(facts.audience, ["a"]);
        assert_eq!(facts.scopes, ["read", "write"]);
        let facts = parse(r#"{"aud":["a","b"],"scp":["x"]}"#).unwrap();
        assert_eq!(facts.audience, ["a", "b"]);
        assert_eq!(facts.scopes, ["x"]);
        assert!(parse(r#"{"sub":123}"#).is_err());
        assert!(parse(r#"{"mfa_verified":"true"}"#).is_err());
        for claim in ["sub", "iss", "jti", "aud", "amr", "acr", "mfa_verified", "scope", "scp", "cnf"] {
            assert!(parse(&format!(r#"{{"{claim}":null}}"#)).is_err(), "{claim} null must be refused");
        }
        assert_eq!(parse(r#"{"scope":"a\u0020b"}"#).unwrap().scopes, ["a", "b"], "escaped scope");
        assert_eq!(parse(r#"{"scope":["read:orders","write"]}"#).unwrap().scopes, ["read:orders", "write"]);
        for bad in ["1", "true", "{}", r#"["a",1]"#, "[null]"] {
            assert!(parse(&format!(r#"{{"scope":{bad}}}"#)).is_err(), "scope {bad} must be refused");
        }
        assert!(parse(r#"{"sub":"a","sub":"b"}"#).is_err(), "duplicate claims are refused");
    }

    #[test]
    fn client_id_is_read_when_it_is_a_string() {
        assert_eq!(parse(r#"{"client_id":"s6BhdRkqt3"}"#).unwrap().client_id.as_deref(), Some("s6BhdRkqt3"));
        // Another type names no client, and does not refuse the token by itself.
        for other in ["1", "null", "[\"a\"]", "{}"] {
            assert_eq!(parse(&format!(r#"{{"client_id":{other}}}"#)).unwrap().client_id, None, "{other}");
        }
        assert_eq!(parse("{}").unwrap().client_id, None);
    }

    #[test]
    fn scp_is_split_on_spaces_like_scope() {
        assert_eq!(parse(r#"{"scp":"User.Read  Mail.Read"}"#).unwrap().scopes, ["User.Read", "Mail.Read"]);
        assert_eq!(parse(r#"{"scp":"User.Read"}"#).unwrap().scopes, ["User.Read"]);
        assert_eq!(parse(r#"{"scp":["a b","c"]}"#).unwrap().scopes, ["a b", "c"], "arrays stay as they are");
        assert_eq!(parse(r#"{"scope":"a b","scp":"c d"}"#).unwrap().scopes, ["a", "b", "c", "d"]);
        for bad in ["1", "true", "{}", r#"["a",1]"#] {
            assert!(parse(&format!(r#"{{"scp":{bad}}}"#)).is_err(), "scp {bad} must be refused");
        }
    }
}
