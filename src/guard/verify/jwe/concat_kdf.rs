//! The Concat KDF of NIST SP 800-56A §5.8.1 with SHA-256, as JWE's ECDH-ES uses it
//! (RFC 7518 §4.6.2): the agreed secret `Z` becomes a key of `len` bytes bound to the algorithm
//! and the parties.

use aws_lc_rs::digest;

/// The key derived from the shared secret `z`: `algorithm_id` is the `enc` name (ECDH-ES) or
/// the `alg` name (ECDH-ES+A*KW); `apu` and `apv` are the decoded `apu` / `apv` headers.
/// `out.len()` is the key length (at most 64 bytes).
pub(crate) fn derive(z: &[u8], algorithm_id: &str, apu: &[u8], apv: &[u8], out: &mut [u8]) {
    // SuppPubInfo: the key length in bits, 32-bit big-endian.
    let key_bits = u32::try_from(out.len() * 8).unwrap_or(u32::MAX).to_be_bytes();
    for (round, chunk) in out.chunks_mut(digest::SHA256_OUTPUT_LEN).enumerate() {
        let counter = u32::try_from(round + 1).unwrap_or(u32::MAX);
        let mut hash = digest::Context::new(&digest::SHA256);
        hash.update(&counter.to_be_bytes());
        hash.update(z);
        for field in [algorithm_id.as_bytes(), apu, apv] {
            hash.update(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
            hash.update(field);
        }
        hash.update(&key_bits);
        let block = hash.finish();
        chunk.copy_from_slice(&block.as_ref()[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    /// RFC 7518 Appendix C: the ECDH-ES example's derived key for A128GCM.
    #[test]
    fn rfc_7518_appendix_c() {
        let z = [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49, 110, 163,
            218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
        ];
        let mut key = [0u8; 16];
        derive(&z, "A128GCM", b"Alice", b"Bob", &mut key);
        assert_eq!(URL_SAFE_NO_PAD.encode(key), "VqqN6vgjbSBcIijNcacQGg");
    }

    #[test]
    fn longer_keys_take_several_rounds() {
        let mut long = [0u8; 64];
        derive(b"z", "A256CBC-HS512", b"", b"", &mut long);
        let mut short = [0u8; 32];
        derive(b"z", "A256CBC-HS512", b"", b"", &mut short);
        // The length is an input of every round: a prefix of a longer key is a different key.
        assert_ne!(&long[..32], &short[..]);
        assert_ne!(&long[..32], &long[32..]);
    }
}
