//! Access tokens (JWT, HS256, 12 h) and the actor resolved once per request at the edge.
//! A token carries its user's token version; the edge checks it against the stored account
//! on every request (one primary-key read), so logout, a password change or disabling the
//! user ends its tokens at once on every instance. During a secret rotation tokens signed
//! with the previous secret still verify; new ones are signed with the current secret.

use chrono::{Duration, Utc};
use domain::ids::{TenantId, UserId};
use domain::users::{User, UserService};
use domain::{Actor, DomainError, DomainResult, Role};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

/// How long an access token lives.
pub const TOKEN_TTL_HOURS: i64 = 12;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    tenant: Option<String>,
    role: Role,
    /// The user's token version when the token was issued.
    #[serde(default)]
    ver: i64,
    iat: i64,
    exp: i64,
}

/// Signs and checks access tokens.
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The secret being rotated out: still accepted, never used to sign.
    previous: Option<DecodingKey>,
}

/// What a well-signed, unexpired access token claims; the account still has to agree
/// (`UserService::session`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenClaims {
    pub user_id: UserId,
    pub tenant_id: Option<TenantId>,
    pub version: i64,
}

/// An issued token and when it expires.
pub struct IssuedToken {
    pub token: String,
    pub expires_at: chrono::DateTime<Utc>,
}

impl Jwt {
    pub fn new(secret: &[u8]) -> Self {
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), previous: None }
    }

    /// Also accepts tokens and links signed with `previous` (a secret being rotated out).
    #[must_use]
    pub fn with_previous(mut self, previous: Option<&[u8]>) -> Self {
        self.previous = previous.map(DecodingKey::from_secret);
        self
    }

    /// Decodes with the current secret, then the previous one.
    fn decode<T: serde::de::DeserializeOwned>(&self, token: &str, v: &Validation) -> DomainResult<T> {
        decode::<T>(token, &self.decoding, v)
            .or_else(|e| match &self.previous {
                Some(previous) => decode::<T>(token, previous, v),
                None => Err(e),
            })
            .map(|d| d.claims)
            .map_err(|_| DomainError::Unauthenticated)
    }

    /// # Errors
    /// `Unknown` when signing fails.
    pub fn issue(&self, user: &User) -> DomainResult<IssuedToken> {
        let now = Utc::now();
        let expires_at = now + Duration::hours(TOKEN_TTL_HOURS);
        let claims = Claims {
            sub: user.id.to_string(),
            tenant: user.tenant_id.map(|t| t.to_string()),
            role: user.role,
            ver: user.token_version,
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| DomainError::Unknown(anyhow::Error::new(e)))?;
        Ok(IssuedToken { token, expires_at })
    }

    /// The claims of a well-signed, unexpired token; the account is checked by the caller.
    ///
    /// # Errors
    /// `Unauthenticated` for a bad, expired or foreign token.
    pub fn verify(&self, token: &str) -> DomainResult<TokenClaims> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 30;
        v.set_required_spec_claims(&["exp", "sub"]);
        let c: Claims = self.decode(token, &v)?;
        let user_id: UserId = c.sub.parse().map_err(|_| DomainError::Unauthenticated)?;
        let tenant_id = match c.tenant {
            Some(t) => Some(t.parse::<TenantId>().map_err(|_| DomainError::Unauthenticated)?),
            None => None,
        };
        // A platform admin has no tenant and a tenant role always has one.
        if (c.role == Role::PlatformAdmin) != tenant_id.is_none() {
            return Err(DomainError::Unauthenticated);
        }
        Ok(TokenClaims { user_id, tenant_id, version: c.ver })
    }
}

/// What a device file's download link grants: one file of one tenant, until `exp`.
#[derive(Debug, Serialize, Deserialize)]
struct FileClaims {
    aud: String,
    tenant: String,
    file: String,
    exp: i64,
}

/// The audience of download links (never valid as an access token: no role, no subject).
const FILE_AUDIENCE: &str = "linkyard:device-file";

/// How long a download link works.
pub const FILE_LINK_TTL_MINUTES: i64 = 15;

impl Jwt {
    /// A signed capability to download one device file until it expires; any changed
    /// character breaks it.
    ///
    /// # Errors
    /// `Unknown` when signing fails.
    pub fn file_link(&self, tenant: TenantId, file: domain::ids::FileId) -> DomainResult<String> {
        let claims = FileClaims {
            aud: FILE_AUDIENCE.into(),
            tenant: tenant.to_string(),
            file: file.to_string(),
            exp: (Utc::now() + Duration::minutes(FILE_LINK_TTL_MINUTES)).timestamp(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| DomainError::Unknown(anyhow::Error::new(e)))
    }

    /// The tenant and file a download link grants.
    ///
    /// # Errors
    /// `Unauthenticated` for a bad, expired or foreign link.
    pub fn open_file_link(&self, token: &str) -> DomainResult<(TenantId, domain::ids::FileId)> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 0;
        v.set_audience(&[FILE_AUDIENCE]);
        v.set_required_spec_claims(&["exp", "aud"]);
        let c: FileClaims = self.decode(token, &v)?;
        let tenant = c.tenant.parse().map_err(|_| DomainError::Unauthenticated)?;
        let file = c.file.parse().map_err(|_| DomainError::Unauthenticated)?;
        Ok((tenant, file))
    }
}

/// What the edge learned about the caller: nobody, an actor, a token that failed, or a
/// token that could not be checked (the account store did not answer).
#[derive(Debug, Clone, Copy)]
pub enum Caller {
    Anonymous,
    Authenticated(Actor),
    BadToken,
    Unchecked,
}

/// The token of `Authorization: Bearer {token}`: `Ok(None)` without a header, `Err` for
/// another scheme.
fn bearer(header: Option<&str>) -> Result<Option<&str>, ()> {
    match header.map(str::trim) {
        None | Some("") => Ok(None),
        Some(h) => h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")).map(|t| Some(t.trim())).ok_or(()),
    }
}

impl Caller {
    /// Reads `Authorization: Bearer {token}`: verifies the token, then checks it against
    /// the account (exists, enabled, same token version).
    pub async fn resolve(jwt: &Jwt, users: &UserService, header: Option<&str>) -> Self {
        let token = match bearer(header) {
            Ok(None) => return Self::Anonymous,
            Ok(Some(t)) => t,
            Err(()) => return Self::BadToken,
        };
        let Ok(claims) = jwt.verify(token) else { return Self::BadToken };
        match users.session(claims.user_id, claims.tenant_id, claims.version).await {
            Ok(actor) => Self::Authenticated(actor),
            Err(DomainError::Unauthenticated) => Self::BadToken,
            Err(e) => {
                tracing::error!(error = ?e, "checking an access token against its account");
                Self::Unchecked
            }
        }
    }

    /// # Errors
    /// `Unauthenticated` unless a valid token was presented; `Unknown` when it could not
    /// be checked.
    pub fn actor(&self) -> DomainResult<Actor> {
        match self {
            Self::Authenticated(a) => Ok(*a),
            Self::Unchecked => Err(DomainError::Unknown(anyhow::anyhow!("the account store did not answer"))),
            _ => Err(DomainError::Unauthenticated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, tenant: Option<TenantId>) -> User {
        User {
            id: UserId::new(),
            tenant_id: tenant,
            email: "a@b.co".into(),
            role,
            disabled: false,
            token_version: 7,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let jwt = Jwt::new(b"0123456789abcdef0123456789abcdef");
        let u = user(Role::Operator, Some(TenantId::new()));
        let t = jwt.issue(&u).expect("issue");
        let claims = jwt.verify(&t.token).expect("verify");
        assert_eq!(claims, TokenClaims { user_id: u.id, tenant_id: u.tenant_id, version: 7 });
        let other = Jwt::new(b"another-secret-another-secret-xx");
        assert!(other.verify(&t.token).is_err());
        assert_eq!(bearer(Some("Bearer nonsense")), Ok(Some("nonsense")));
        assert_eq!(bearer(Some("Basic abc")), Err(()));
        assert_eq!(bearer(None), Ok(None));
    }

    #[test]
    fn the_previous_secret_verifies_but_never_signs() {
        let (old, new) = (b"old-secret-old-secret-old-secret", b"new-secret-new-secret-new-secret");
        let before = Jwt::new(old);
        let rotating = Jwt::new(new).with_previous(Some(old));
        let u = user(Role::TenantAdmin, Some(TenantId::new()));
        let old_token = before.issue(&u).expect("issue").token;
        assert!(rotating.verify(&old_token).is_ok());
        assert!(Jwt::new(new).verify(&old_token).is_err(), "without the previous secret it is refused");
        let new_token = rotating.issue(&u).expect("issue").token;
        assert!(before.verify(&new_token).is_err(), "new tokens are signed with the current secret");
        assert!(Jwt::new(new).verify(&new_token).is_ok());
        let link = before.file_link(TenantId::new(), domain::ids::FileId::new()).expect("link");
        assert!(rotating.open_file_link(&link).is_ok());
    }

    #[test]
    fn token_lives_twelve_hours() {
        let jwt = Jwt::new(b"0123456789abcdef0123456789abcdef");
        let t = jwt.issue(&user(Role::PlatformAdmin, None)).expect("issue");
        let hours = (t.expires_at - Utc::now()).num_minutes();
        assert!((12 * 60 - 1..=12 * 60).contains(&hours));
    }
}
