//! `@query-param` values (RFC 9421 §2.2.8): the query parsed as
//! `application/x-www-form-urlencoded` (WHATWG URL §5.1: `+` is a space, percent-encoded octets
//! are decoded, a `%` not followed by two hex digits stays as it is, the bytes are read as UTF-8
//! with U+FFFD for what is not), then names and values re-encoded with "percent-encode after
//! encoding" (§5.2), a space as `%20` as the RFC's own example has it.

use super::input::Reason;

/// The re-encoded value of the one parameter whose re-encoded name is `wanted` (the `name`
/// parameter holds the encoded name, RFC 9421 §2.2.8). A parameter that is missing is an error
/// ("this MUST cause an error"), and so is one whose name occurs several times ("the named query
/// parameter MUST NOT be included": a signature covering it cannot verify).
pub(crate) fn single_param(query: &str, wanted: &str) -> Result<String, Reason> {
    let mut found = None;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if encode(&decode(name)) == wanted {
            if found.is_some() {
                return Err("a covered query parameter occurs more than once");
            }
            found = Some(encode(&decode(value)));
        }
    }
    found.ok_or("a covered query parameter is missing")
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|digit| digit as u8)
}

/// WHATWG URL §5.1 for one name or value: `+` to a space, percent-decoding (lenient), then UTF-8
/// decoding without failure.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
                    (Some(high), Some(low)) => {
                        out.push(high << 4 | low);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `application/x-www-form-urlencoded` percent-encode set over the UTF-8 bytes: all but ASCII
/// alphanumerics and `*-._` are encoded, a space as `%20` (RFC 9421 §2.2.8).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
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
        assert!(single_param("a=1", "b").is_err());
    }

    #[test]
    fn a_parameter_that_occurs_twice_is_not_covered() {
        // "If a parameter name occurs multiple times in a request, the named query parameter
        // MUST NOT be included": however it is spelled, after decoding.
        assert!(single_param("a=1&a=2", "a").is_err());
        assert!(single_param("a=1&%61=2", "a").is_err());
        assert!(single_param("a+b=1&a%20b=2", "a%20b").is_err());
        assert_eq!(single_param("a=1&b=2&ab=3", "a").unwrap(), "1");
    }

    #[test]
    fn names_and_values_are_parsed_and_reencoded_as_whatwg_says() {
        // A stray `%` is kept (and re-encoded), not an error.
        assert_eq!(single_param("a=100%&b=%zz", "a").unwrap(), "100%25");
        assert_eq!(single_param("a=100%&b=%zz", "b").unwrap(), "%25zz");
        // Bytes that are not UTF-8 are read as U+FFFD.
        assert_eq!(single_param("a=%FF", "a").unwrap(), "%EF%BF%BD");
        // Characters outside the unreserved set are encoded, lowercase hex read, uppercase written.
        assert_eq!(single_param("q=%7e!'()~", "q").unwrap(), "%7E%21%27%28%29%7E");
        assert_eq!(single_param("%c3%a9t%c3%a9=1", "%C3%A9t%C3%A9").unwrap(), "1");
        // A name given as the RFC encodes it only: another spelling finds nothing.
        assert!(single_param("%c3%a9t%c3%a9=1", "%c3%a9t%c3%a9").is_err());
    }
}
