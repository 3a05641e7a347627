//! RFC 9421 message signatures on arbitrary `Signature-Input`, `Signature` and covered fields:
//! the structured-field parsing, the signature base and the refusal, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_jwt_guard::binding::{MessageSignature, RequestHead, SignatureKey};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|byte| *byte == 0);
    let mut request = http::Request::post("https://example.com/foo?a=1&b=%20");
    for name in ["signature-input", "signature", "content-digest", "example-dict"] {
        if let Some(value) = parts.next().and_then(|value| http::HeaderValue::from_bytes(value).ok()) {
            request = request.header(name, value);
        }
    }
    let Ok(request) = request.body(()) else { return };
    let policy = MessageSignature::allowed()
        .cover(Vec::<String>::new())
        .key("k", SignatureKey::hmac_sha256([7u8; 32]).unwrap());
    let head = RequestHead::of(&request);
    let _ = policy.signature_base(&head, "sig");
    if let Err(err) = policy.check_at(&head, None, 1_618_884_473) {
        assert!(matches!(err.code(), "INVALID_SIGNATURE" | "SIGNATURE_REQUIRED"), "{err:?}");
    }
});
