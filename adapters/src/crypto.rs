//! Password hashing (argon2id) and secrets at rest (AES-256-GCM).

use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use domain::security::{PasswordHasher, SecretBox};
use domain::{DomainError, DomainResult};
use rand::Rng as _;
use rand::distributions::Alphanumeric;
use secrecy::{ExposeSecret, SecretSlice};
use sha2::{Digest, Sha256};

/// argon2id with the crate's recommended parameters.
pub struct Argon2Hasher {
    dummy_hash: String,
}

impl Argon2Hasher {
    /// # Errors
    /// When the hasher cannot hash (it can always, but the API says it may fail).
    pub fn new() -> anyhow::Result<Self> {
        let salt = SaltString::generate(&mut OsRng);
        let dummy_hash = Argon2::default()
            .hash_password(b"linkyard-dummy-password", &salt)
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
            .to_string();
        Ok(Self { dummy_hash })
    }
}

impl PasswordHasher for Argon2Hasher {
    fn hash(&self, password: &str) -> DomainResult<String> {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| DomainError::Unknown(anyhow::anyhow!("argon2: {e}")))
    }

    fn verify(&self, password: &str, hash: &str) -> bool {
        PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
    }

    fn verify_dummy(&self, password: &str) {
        let _ = self.verify(password, &self.dummy_hash);
    }
}

/// The version tag in front of every sealed value, so the scheme can change later.
const SEALED_PREFIX: &str = "v1:";

/// AES-256-GCM with a random 96-bit nonce per value: `v1:` + base64(nonce || ciphertext).
/// Seals with the current key; opens with the current key or, during a rotation, the
/// previous one (`LINKYARD_SECRET_KEY_PREVIOUS`).
pub struct AesGcmSecretBox {
    key: SecretSlice<u8>,
    previous: Option<SecretSlice<u8>>,
}

impl AesGcmSecretBox {
    /// # Errors
    /// When the key is not 32 bytes.
    pub fn new(key: Vec<u8>) -> anyhow::Result<Self> {
        anyhow::ensure!(key.len() == 32, "LINKYARD_SECRET_KEY must be 32 bytes (base64 or hex)");
        Ok(Self { key: key.into(), previous: None })
    }

    /// Also opens values sealed under `previous` (the key being rotated out).
    ///
    /// # Errors
    /// When the key is not 32 bytes.
    pub fn with_previous(mut self, previous: Option<Vec<u8>>) -> anyhow::Result<Self> {
        if let Some(p) = previous {
            anyhow::ensure!(p.len() == 32, "LINKYARD_SECRET_KEY_PREVIOUS must be 32 bytes (base64 or hex)");
            self.previous = Some(p.into());
        }
        Ok(self)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.key.expose_secret()))
    }

    fn previous_cipher(&self) -> Option<Aes256Gcm> {
        self.previous.as_ref().map(|k| Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(k.expose_secret())))
    }

    /// The value sealed again under the current key when it was sealed under the previous
    /// one; `None` when it is under the current key already (left as it is).
    ///
    /// # Errors
    /// `Unknown` when it opens under neither key.
    pub fn reseal(&self, sealed: &str) -> DomainResult<Option<String>> {
        let (nonce, ct) = split_sealed(sealed)?;
        if self.cipher().decrypt(Nonce::from_slice(&nonce), ct.as_slice()).is_ok() {
            return Ok(None);
        }
        let plain = self
            .previous_cipher()
            .and_then(|c| c.decrypt(Nonce::from_slice(&nonce), ct.as_slice()).ok())
            .ok_or_else(corrupt)?;
        self.seal(&plain).map(Some)
    }
}

fn corrupt() -> DomainError {
    DomainError::Unknown(anyhow::anyhow!("sealed secret is corrupt or under another key"))
}

/// Nonce and ciphertext of a sealed value.
fn split_sealed(sealed: &str) -> DomainResult<(Vec<u8>, Vec<u8>)> {
    let raw = sealed.strip_prefix(SEALED_PREFIX).ok_or_else(corrupt)?;
    let mut bytes = STANDARD.decode(raw).map_err(|_| corrupt())?;
    if bytes.len() < 12 {
        return Err(corrupt());
    }
    let ct = bytes.split_off(12);
    Ok((bytes, ct))
}

/// Whether a text looks like a sealed value (the re-encryption looks for these in JSON).
pub fn looks_sealed(text: &str) -> bool {
    text.starts_with(SEALED_PREFIX)
}

impl SecretBox for AesGcmSecretBox {
    fn seal(&self, plaintext: &[u8]) -> DomainResult<String> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct = self
            .cipher()
            .encrypt(&nonce, plaintext)
            .map_err(|_| DomainError::Unknown(anyhow::anyhow!("encryption failed")))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!("{SEALED_PREFIX}{}", STANDARD.encode(out)))
    }

    fn open(&self, sealed: &str) -> DomainResult<Vec<u8>> {
        let (nonce, ct) = split_sealed(sealed)?;
        let nonce = Nonce::from_slice(&nonce);
        match self.cipher().decrypt(nonce, ct.as_slice()) {
            Ok(plain) => Ok(plain),
            Err(_) => self.previous_cipher().and_then(|c| c.decrypt(nonce, ct.as_slice()).ok()).ok_or_else(corrupt),
        }
    }

    fn random_secret(&self, len: usize) -> String {
        OsRng.sample_iter(&Alphanumeric).take(len).map(char::from).collect()
    }

    fn digest(&self, key: &str) -> String {
        hex::encode(Sha256::digest(key.as_bytes()))
    }

    /// HMAC-SHA256 under the secret key of `purpose`, a NUL and `seed`; 32 characters of
    /// URL-safe base64 (192 bits).
    fn derive(&self, purpose: &str, seed: &str) -> String {
        use hmac::Mac as _;
        let Ok(mut mac) = <hmac::Hmac<Sha256> as hmac::Mac>::new_from_slice(self.key.expose_secret()) else {
            // HMAC takes a key of any length; unreachable.
            return String::new();
        };
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(seed.as_bytes());
        let mut out = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        out.truncate(DERIVED_LEN);
        out
    }

    fn matches_derived(&self, purpose: &str, seed: &str, given: &str) -> bool {
        let expected = self.derive(purpose, seed);
        !expected.is_empty() && constant_time_eq(expected.as_bytes(), given.as_bytes())
    }
}

/// Characters of a derived secret.
const DERIVED_LEN: usize = 32;

/// Reads a 32-byte key written as base64 or hex.
///
/// # Errors
/// When the text is neither, or not 32 bytes.
pub fn parse_key(text: &str) -> anyhow::Result<Vec<u8>> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text)?
    } else {
        STANDARD.decode(text).map_err(|_| anyhow::anyhow!("key is neither base64 nor hex"))?
    };
    anyhow::ensure!(bytes.len() == 32, "key must be 32 bytes, got {}", bytes.len());
    Ok(bytes)
}

/// A fresh random 32-byte key, base64.
pub fn generate_key() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill(&mut key);
    STANDARD.encode(key)
}

/// Hex SHA-256 of `bytes` (dedup keys of inbound requests).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Byte-equal in time independent of where the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_differs_each_time() {
        let b = AesGcmSecretBox::new(parse_key(&generate_key()).expect("key")).expect("box");
        let a1 = b.seal(b"top secret").expect("seal");
        let a2 = b.seal(b"top secret").expect("seal");
        assert_ne!(a1, a2);
        assert!(!a1.contains("top secret"));
        assert_eq!(b.open(&a1).expect("open"), b"top secret");
    }

    #[test]
    fn another_key_cannot_open() {
        let b1 = AesGcmSecretBox::new(parse_key(&generate_key()).expect("key")).expect("box");
        let b2 = AesGcmSecretBox::new(parse_key(&generate_key()).expect("key")).expect("box");
        let sealed = b1.seal(b"x").expect("seal");
        assert!(b2.open(&sealed).is_err());
        assert!(b1.open("v1:AAAA").is_err());
    }

    #[test]
    fn a_rotation_opens_old_values_seals_new_ones_and_reseals() {
        let (old_key, new_key) = (parse_key(&generate_key()).expect("key"), parse_key(&generate_key()).expect("key"));
        let old = AesGcmSecretBox::new(old_key.clone()).expect("box");
        let sealed_old = old.seal(b"credentials").expect("seal");
        let rotating = AesGcmSecretBox::new(new_key.clone()).and_then(|b| b.with_previous(Some(old_key))).expect("box");
        assert_eq!(rotating.open(&sealed_old).expect("open"), b"credentials");
        // New values are sealed under the current key only.
        let sealed_new = rotating.seal(b"fresh").expect("seal");
        assert!(old.open(&sealed_new).is_err());
        let current_only = AesGcmSecretBox::new(new_key).expect("box");
        assert!(current_only.open(&sealed_old).is_err());
        assert_eq!(current_only.open(&sealed_new).expect("open"), b"fresh");
        // Resealing moves old values to the current key and leaves current ones alone.
        let moved = rotating.reseal(&sealed_old).expect("reseal").expect("was under the previous key");
        assert_eq!(current_only.open(&moved).expect("open"), b"credentials");
        assert!(rotating.reseal(&sealed_new).expect("reseal").is_none());
        assert!(current_only.reseal(&sealed_old).is_err());
    }

    #[test]
    fn derived_secrets_are_keyed_stable_and_url_safe() {
        let b1 = AesGcmSecretBox::new(parse_key(&generate_key()).expect("key")).expect("box");
        let b2 = AesGcmSecretBox::new(parse_key(&generate_key()).expect("key")).expect("box");
        let t = b1.derive("hook-token", "seed-1");
        assert_eq!(t.len(), DERIVED_LEN);
        assert!(t.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'), "{t}");
        assert_eq!(t, b1.derive("hook-token", "seed-1"), "the same seed, the same secret");
        assert_ne!(t, b1.derive("hook-token", "seed-2"));
        assert_ne!(t, b1.derive("other", "seed-1"));
        assert_ne!(t, b2.derive("hook-token", "seed-1"), "another key, another secret");
        assert!(b1.matches_derived("hook-token", "seed-1", &t));
        assert!(!b2.matches_derived("hook-token", "seed-1", &t));
        assert!(!b1.matches_derived("hook-token", "seed-1", &t[..31]));
        assert!(!b1.matches_derived("hook-token", "seed-1", ""));
    }

    #[test]
    fn passwords_verify() {
        let h = Argon2Hasher::new().expect("hasher");
        let hash = h.hash("correct horse battery").expect("hash");
        assert!(h.verify("correct horse battery", &hash));
        assert!(!h.verify("wrong horse battery", &hash));
        assert!(!h.verify("x", "not a hash"));
    }

    #[test]
    fn keys_parse_from_hex_or_base64() {
        assert_eq!(parse_key(&"ab".repeat(32)).map(|k| k.len()).ok(), Some(32));
        assert!(parse_key("short").is_err());
    }
}
