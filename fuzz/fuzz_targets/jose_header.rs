//! The JOSE header parser on arbitrary decoded bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tower_jwt_guard::__fuzz::parse_header(data);
});
