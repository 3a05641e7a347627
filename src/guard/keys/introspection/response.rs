//! What an introspection answer says (RFC 7662 §2.2), read strictly: a JSON object whose
//! `active` is the JSON boolean `true` is an active token, `false` an inactive one; anything
//! else (`"true"` as a string, `1`, `null`, no `active`, `active` twice, not an object, not
//! JSON) is no answer at all, and the request is refused with 503 (the endpoint is broken, the
//! token is not known to be good). The claims of an active answer are read later, by the same
//! code that reads a JWT's claims.

use serde::Deserialize;

use super::client::CallError;

/// An answer of the endpoint.
#[derive(Debug)]
pub(crate) enum Answer {
    /// `active: true`, with the answer's JSON object (its claims).
    Active(Box<[u8]>),
    /// `active: false`: the token is unknown, expired, revoked or not for this client.
    Inactive,
}

#[derive(Deserialize)]
struct Status {
    active: bool,
}

/// Reads the answer's `active` member.
pub(super) fn parse(body: Vec<u8>) -> Result<Answer, CallError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(CallError::Malformed("not a JSON object"));
    }
    let status: Status =
        serde_json::from_slice(&body).map_err(|_| CallError::Malformed("no JSON boolean `active`"))?;
    Ok(if status.active { Answer::Active(body.into_boxed_slice()) } else { Answer::Inactive })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<bool, CallError> {
        parse(json.as_bytes().to_vec()).map(|answer| matches!(answer, Answer::Active(_)))
    }

    #[test]
    fn active_is_a_json_boolean() {
        assert_eq!(read(r#"{"active":true,"sub":"a"}"#), Ok(true));
        assert_eq!(read(r#" {"sub":"a","active":false}"#), Ok(false));
        for bad in [
            r#"{"active":"true"}"#,
            r#"{"active":1}"#,
            r#"{"active":null}"#,
            r#"{"sub":"a"}"#,
            r#"{"active":true,"active":true}"#,
            r#"[true]"#,
            "true",
            "",
            "<html>",
            r#"{"active":true"#,
        ] {
            assert!(read(bad).is_err(), "{bad} must be refused");
        }
    }
}
