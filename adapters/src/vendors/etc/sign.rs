//! The two headers of every ETC request, both ways (seed 001 1.5, 3.3.3): `binfile-md5`,
//! the MD5 of the raw body in hex (compared case-insensitively), and `binfile-auth`, the
//! gantry's auth code.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use md5::{Digest, Md5};

/// Lower-case hex MD5 of `bytes`.
pub(crate) fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// Whether `header` is the MD5 of `bytes`.
pub(crate) fn md5_matches(header: Option<&str>, bytes: &[u8]) -> bool {
    header.is_some_and(|h| h.trim().eq_ignore_ascii_case(&md5_hex(bytes)))
}

/// Whether `header` is the auth code, compared in time independent of where they differ.
pub(crate) fn auth_matches(header: Option<&str>, code: &str) -> bool {
    let Some(h) = header.map(str::trim) else { return false };
    if code.is_empty() || h.len() != code.len() {
        return false;
    }
    h.bytes().zip(code.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_is_compared_in_any_case_and_auth_exactly() {
        let body = br#"{"gantryId":"G000211001002110010","method":"computerControl","timeStamp":"1564734526","version":"1001","computerControl":{"updateNow":"1"}}"#;
        assert_eq!(md5_hex(body), "2d0289bdb69305618fea47d7dc2249dd");
        assert!(md5_matches(Some("2D0289BDB69305618FEA47D7DC2249DD"), body));
        assert!(!md5_matches(Some("2d0289bdb69305618fea47d7dc2249de"), body));
        assert!(!md5_matches(None, body));
        assert!(auth_matches(Some("123456"), "123456"));
        assert!(!auth_matches(Some("123457"), "123456"));
        assert!(!auth_matches(Some("12345"), "123456"));
        assert!(!auth_matches(Some(""), ""));
    }
}
