//! `@query-param` values (RFC 9421 §2.2.8): the query parsed as
//! `application/x-www-form-urlencoded`, names and values percent-decoded, the value re-encoded.

use super::input::Reason;

/// The re-encoded value of the one parameter whose re-encoded name is `wanted` (the `name`
/// parameter holds the encoded name, RFC 9421 §2.2.8). A parameter that is missing, or present
/// twice, is refused.
pub(crate) fn single_param(query: &str, wanted: &str) -> Result<String, Reason> {
    let mut found = None;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(name).is_some_and(|name| encode(&name) == wanted) {
            if found.is_some() {
                return Err("a covered query parameter is present twice");
            }
            found = Some(encode(&decode(value).ok_or("a query parameter is not valid percent-encoding")?));
        }
    }
    found.ok_or("a covered query parameter is missing")
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|digit| digit as u8)
}

fn decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let high = hex(*bytes.get(i + 1)?)?;
                let low = hex(*bytes.get(i + 2)?)?;
                out.push(high << 4 | low);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    Some(out)
}

/// The `application/x-www-form-urlencoded` percent-encode set, space as `%20` (RFC 9421 §2.2.8).
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'*' | b'-' | b'.' | b'_') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_9421_section_2_2_8() {
        let query = "param=value&foo=bar&baz=batman&qux=";
        assert_eq!(single_param(query, "baz").unwrap(), "batman");
        assert_eq!(single_param(query, "qux").unwrap(), "");
        let query = "var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something";
        assert_eq!(single_param(query, "var").unwrap(), "this%20is%20a%20big%0Amultiline%20value");
        assert_eq!(single_param(query, "bar").unwrap(), "with%20plus%20whitespace");
        assert_eq!(single_param(query, "fa%C3%A7ade%22%3A%20").unwrap(), "something");
        assert!(single_param("a=1&a=2", "a").is_err());
        assert!(single_param("a=1", "b").is_err());
    }
}
