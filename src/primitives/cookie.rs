//! The one reader of request cookies: the token source, the cookie fingerprint and the refresh
//! cookie all find their cookie here, under the same rules.
//!
//! - **Every `Cookie` field counts.** HTTP/2 and HTTP/3 may split the header into several fields
//!   (RFC 9113 §8.2.3); they are read in order, as if joined with `"; "`. A field that is not
//!   text is read too (byte by byte), so it cannot hide a second cookie of the name.
//! - **Pairs** are separated by `;`; spaces and tabs around a pair, its name and its value are
//!   ignored (RFC 6265 §5.2 trims them, and clients differ in what they send).
//! - **Names** are compared exactly (case-sensitive). A pair without `=` has no name (browsers
//!   send a nameless cookie that way) and never matches.
//! - **Quotes**: a value wrapped in one pair of double quotes (RFC 6265 §4.1.1
//!   `DQUOTE *cookie-octet DQUOTE`) is read without them. A lone or unbalanced quote stays in the
//!   value, where the caller's character checks refuse it.
//! - **Empty**: `name=` and `name=""` mean no cookie.
//! - **Repeated names are refused.** A request that carries the name twice is ambiguous, whatever
//!   the values (an empty one included): the browser sends cookies of one name set for several
//!   paths or domains (RFC 6265 §5.4), and a sibling subdomain can set one beside the genuine
//!   cookie ("cookie tossing"). Taking the first would let that cookie shadow the genuine one, and
//!   a credential must never be chosen by order; the caller refuses the request instead.

use http::header::COOKIE;
use http::HeaderMap;

/// Why the request's cookies give no value for a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CookieError {
    /// The name occurs more than once.
    Repeated,
    /// The value is not UTF-8.
    NotText,
}

/// The value of the cookie `name` in `headers`: `Ok(None)` when it is absent or empty, an error
/// when it is repeated or not text. Allocation-free.
pub(crate) fn find<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, CookieError> {
    let mut found = None;
    for (pair_name, value) in pairs(headers) {
        if pair_name == name.as_bytes() {
            if found.is_some() {
                return Err(CookieError::Repeated);
            }
            found = Some(value);
        }
    }
    match found.map(unquote) {
        None | Some([]) => Ok(None),
        Some(value) => std::str::from_utf8(value).map(Some).map_err(|_| CookieError::NotText),
    }
}

/// Every `name=value` pair of every `Cookie` field, names and values trimmed.
fn pairs(headers: &HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    headers.get_all(COOKIE).iter().flat_map(|field| field.as_bytes().split(|&b| b == b';')).filter_map(
        |pair| {
            let equals = pair.iter().position(|&b| b == b'=')?;
            Some((trim(&pair[..equals]), trim(&pair[equals + 1..])))
        },
    )
}

/// Without the spaces and tabs at either end.
fn trim(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// Without one pair of surrounding double quotes.
fn unquote(value: &[u8]) -> &[u8] {
    match value {
        [b'"', inner @ .., b'"'] => inner,
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(fields: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for field in fields {
            map.append(COOKIE, HeaderValue::from_bytes(field).unwrap());
        }
        map
    }

    fn at(fields: &[&[u8]]) -> Result<Option<String>, CookieError> {
        find(&headers(fields), "at").map(|value| value.map(str::to_owned))
    }

    fn some(value: &str) -> Result<Option<String>, CookieError> {
        Ok(Some(value.to_owned()))
    }

    #[test]
    fn finds_the_named_cookie_among_others() {
        assert_eq!(at(&[b"theme=dark; at=x.y.z; lang=en"]), some("x.y.z"));
        assert_eq!(at(&[b"at=x.y.z"]), some("x.y.z"));
        assert_eq!(at(&[b"theme=dark"]), Ok(None));
        assert_eq!(at(&[]), Ok(None));
    }

    #[test]
    fn names_are_exact() {
        assert_eq!(at(&[b"AT=x; at_=y; xat=z"]), Ok(None));
        assert_eq!(at(&[b"a t=x"]), Ok(None));
    }

    #[test]
    fn whitespace_around_pairs_names_and_values_is_ignored() {
        assert_eq!(at(&[b"theme=dark;at=x"]), some("x"));
        assert_eq!(at(&[b"theme=dark;  \tat = x \t; lang=en"]), some("x"));
        // Inside a value it stays, for the caller to judge.
        assert_eq!(at(&[b"at=x y"]), some("x y"));
    }

    #[test]
    fn one_pair_of_quotes_is_removed() {
        assert_eq!(at(&[br#"at="x.y.z""#]), some("x.y.z"));
        assert_eq!(at(&[br#"at= "x" "#]), some("x"));
        assert_eq!(at(&[br#"at=""x"""#]), some(r#""x""#));
        // Unbalanced quotes stay: the caller's character checks refuse them.
        assert_eq!(at(&[br#"at="x"#]), some(r#""x"#));
        assert_eq!(at(&[br#"at=x""#]), some(r#"x""#));
        assert_eq!(at(&[br#"at="""#]), Ok(None));
        assert_eq!(at(&[br#"at=""#]), some(r#"""#));
    }

    #[test]
    fn empty_values_are_no_cookie() {
        assert_eq!(at(&[b"at="]), Ok(None));
        assert_eq!(at(&[b"at=  ; theme=dark"]), Ok(None));
    }

    #[test]
    fn pairs_without_equals_have_no_name() {
        assert_eq!(at(&[b"at; theme=dark"]), Ok(None));
        assert_eq!(at(&[b"at"]), Ok(None));
        assert_eq!(at(&[b";;; at=x ;;"]), some("x"));
        // The value runs to the next `;`, `=` included (base64 padding).
        assert_eq!(at(&[b"at=a=b=="]), some("a=b=="));
    }

    #[test]
    fn every_cookie_field_counts() {
        assert_eq!(at(&[b"theme=dark", b"at=x"]), some("x"));
        assert_eq!(at(&[b"at=x", b"theme=dark"]), some("x"));
    }

    #[test]
    fn repeated_names_are_refused() {
        assert_eq!(at(&[b"at=x; at=x"]), Err(CookieError::Repeated));
        assert_eq!(at(&[b"at=x; at=y"]), Err(CookieError::Repeated));
        assert_eq!(at(&[b"at=x", b"at=y"]), Err(CookieError::Repeated));
        assert_eq!(at(&[b"at=; at=y"]), Err(CookieError::Repeated));
        assert_eq!(
            at(&[b"at=x", b"\xff; at=y"]),
            Err(CookieError::Repeated),
            "a field that is not text counts"
        );
    }

    #[test]
    fn values_must_be_text() {
        assert_eq!(at(&[b"at=\xff\xfe"]), Err(CookieError::NotText));
        assert_eq!(at(&[b"\xff=1; at=x"]), some("x"));
        assert_eq!(at(&["at=é".as_bytes()]), some("é"));
    }
}
