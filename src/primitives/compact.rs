//! The JOSE compact serialization (RFC 7515 §7.1): a JWS split into its three encoded parts, one
//! splitter for every part that reads one (the token verifier, the DPoP proof check).

/// The three parts of a compact JWS, still encoded, and the bytes the signature covers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JwsParts<'t> {
    /// `header.payload`: what the signature covers.
    pub(crate) signing_input: &'t [u8],
    pub(crate) header: &'t [u8],
    pub(crate) payload: &'t [u8],
    pub(crate) signature: &'t [u8],
}

/// Splits `token` at its dots into a JWS's three parts (any of them may be empty: the caller
/// says what that means). Otherwise the error is the number of parts found (five is a compact
/// JWE, RFC 7516 §7.1).
pub(crate) fn split_jws(token: &[u8]) -> Result<JwsParts<'_>, usize> {
    let mut parts = token.split(|&b| b == b'.');
    let (Some(header), Some(payload), Some(signature)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(token.split(|&b| b == b'.').count());
    };
    match parts.count() {
        0 => Ok(JwsParts {
            signing_input: &token[..header.len() + 1 + payload.len()],
            header,
            payload,
            signature,
        }),
        more => Err(3 + more),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_parts_and_the_signing_input() {
        let parts = split_jws(b"aa.bbb.c").unwrap();
        assert_eq!((parts.header, parts.payload, parts.signature), (&b"aa"[..], &b"bbb"[..], &b"c"[..]));
        assert_eq!(parts.signing_input, b"aa.bbb");
        assert!(split_jws(b"..").is_ok());
        assert_eq!(split_jws(b"a.b").unwrap_err(), 2);
        assert_eq!(split_jws(b"abc").unwrap_err(), 1);
        assert_eq!(split_jws(b"a.b.c.d.e").unwrap_err(), 5);
        assert_eq!(split_jws(b"a.b.c.d").unwrap_err(), 4);
    }
}
