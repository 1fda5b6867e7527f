//! Dingding callback signs (18.1) and password encryption (18.2), as pinned in
//! `PROTOCOLS.md` section 3b/3a.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine as _;
use md5::{Digest, Md5};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// 18.2: the IV is the 16 ASCII bytes `0123456789ABCDEF`.
const IV: &[u8; 16] = b"0123456789ABCDEF";

/// Why a password cannot be encrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the access token is shorter than 16 bytes")]
    ShortToken,
    #[error("the ciphertext is not valid")]
    BadCiphertext,
}

fn key_of(token: &str) -> Result<[u8; 16], CryptoError> {
    token.as_bytes().get(..16).and_then(|k| <[u8; 16]>::try_from(k).ok()).ok_or(CryptoError::ShortToken)
}

/// `encrypted_password`: AES-128-CBC with the first 16 bytes of the access token as key,
/// PKCS#7 padding, standard base64.
///
/// # Errors
/// `ShortToken` for a token under 16 bytes.
pub fn encrypt_password(token: &str, plaintext: &str) -> Result<String, CryptoError> {
    let key = key_of(token)?;
    let enc = cbc::Encryptor::<aes::Aes128>::new(&key.into(), IV.into());
    let ct = enc.encrypt_padded_vec_mut::<Pkcs7>(plaintext.as_bytes());
    Ok(base64::engine::general_purpose::STANDARD.encode(ct))
}

/// The inverse of [`encrypt_password`] (fake vendors in tests decrypt with it).
///
/// # Errors
/// `ShortToken`, or `BadCiphertext` for bad base64, padding or UTF-8.
pub fn decrypt_password(token: &str, encrypted: &str) -> Result<String, CryptoError> {
    let key = key_of(token)?;
    let ct = base64::engine::general_purpose::STANDARD.decode(encrypted).map_err(|_| CryptoError::BadCiphertext)?;
    let dec = cbc::Decryptor::<aes::Aes128>::new(&key.into(), IV.into());
    let pt = dec.decrypt_padded_vec_mut::<Pkcs7>(&ct).map_err(|_| CryptoError::BadCiphertext)?;
    String::from_utf8(pt).map_err(|_| CryptoError::BadCiphertext)
}

/// JSON text without the whitespace between tokens, keys in the order received.
fn compact(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in raw.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// Why a callback body cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the body is not a JSON object: {0}")]
    NotAnObject(String),
}

/// The string 18.1 hashes: the callback URL, then every top-level field but `sign` whose
/// value is neither null nor "" as `key=value`, sorted by key (byte order), joined by `&`.
/// Strings are used as is, numbers and booleans as their JSON text, objects and arrays as
/// compact JSON in received order.
///
/// # Errors
/// `NotAnObject` when the body is not a JSON object.
pub fn string_to_sign(url: &str, body: &str) -> Result<String, SignError> {
    let fields: BTreeMap<String, &RawValue> =
        serde_json::from_str(body).map_err(|e| SignError::NotAnObject(e.to_string()))?;
    let mut parts = Vec::with_capacity(fields.len());
    for (k, v) in &fields {
        if k == "sign" {
            continue;
        }
        let raw = v.get().trim();
        let value = if raw.starts_with('"') {
            match serde_json::from_str::<String>(raw) {
                Ok(s) => s,
                Err(e) => return Err(SignError::NotAnObject(e.to_string())),
            }
        } else if raw == "null" {
            continue;
        } else {
            compact(raw)
        };
        if value.is_empty() {
            continue;
        }
        parts.push(format!("{k}={value}"));
    }
    Ok(format!("{url}{}", parts.join("&")))
}

/// `sign` of a callback to `url` with this body: hex MD5 of [`string_to_sign`].
///
/// # Errors
/// `NotAnObject`.
pub fn callback_sign(url: &str, body: &str) -> Result<String, SignError> {
    Ok(hex::encode(Md5::digest(string_to_sign(url, body)?.as_bytes())))
}

/// Whether `body` carries the right `sign` for `url` (compared case-insensitively).
pub fn verify(url: &str, body: &str, given: &str) -> bool {
    callback_sign(url, body).is_ok_and(|s| !given.is_empty() && s.eq_ignore_ascii_case(given))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_aes_matches_the_pinned_vector() {
        // PROTOCOLS.md test vectors: token 0123456789abcdefXYZtoken, password 123456.
        let ct = encrypt_password("0123456789abcdefXYZtoken", "123456").expect("encrypt");
        assert_eq!(ct, "K7cBbCjqvlLDj7F8dY8RDA==");
        assert_eq!(decrypt_password("0123456789abcdefXYZtoken", &ct).as_deref(), Ok("123456"));
        assert_eq!(encrypt_password("short", "123456"), Err(CryptoError::ShortToken));
        assert_eq!(decrypt_password("0123456789abcdefXYZtoken", "!!"), Err(CryptoError::BadCiphertext));
    }

    #[test]
    fn callback_sign_matches_the_pinned_vector() {
        let url = "https://example.com/hooks/abc/dingding";
        let body = r#"{"event":"batteryAlarm","time":1467785486059,"uuid":"a78d9d60fb70620a3092e92715ee1e","home_id":"h1","room_id":"","nickname":"lock","detail":{"battery_level":9}}"#;
        assert_eq!(
            string_to_sign(url, body).expect("sign string"),
            "https://example.com/hooks/abc/dingdingdetail={\"battery_level\":9}&event=batteryAlarm&home_id=h1&nickname=lock&time=1467785486059&uuid=a78d9d60fb70620a3092e92715ee1e"
        );
        assert_eq!(callback_sign(url, body).expect("sign"), "10f36e8b98ee35093db9dd2f16510e07");
        let signed = body.replacen('{', r#"{"sign":"10F36E8B98EE35093DB9DD2F16510E07","#, 1);
        assert!(verify(url, &signed, "10F36E8B98EE35093DB9DD2F16510E07"), "case-insensitive, sign excluded");
        assert!(!verify(url, body, "10f36e8b98ee35093db9dd2f16510e08"));
        assert!(!verify("https://example.com/other", body, "10f36e8b98ee35093db9dd2f16510e07"));
        assert!(!verify(url, body, ""));
    }

    #[test]
    fn nested_values_keep_their_order_and_lose_whitespace() {
        let body = r#"{ "z": { "b" : 1, "a": "x y" }, "n": null, "e": "", "t": true, "a": [1, 2] }"#;
        assert_eq!(string_to_sign("U", body).expect("s"), r#"Ua=[1,2]&t=true&z={"b":1,"a":"x y"}"#);
        assert!(string_to_sign("U", "[1]").is_err());
    }
}
