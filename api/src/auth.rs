//! Access tokens (JWT, HS256, 12 h) and the actor resolved once per request at the edge.

use chrono::{Duration, Utc};
use domain::ids::{TenantId, UserId};
use domain::users::User;
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
    iat: i64,
    exp: i64,
}

/// Signs and checks access tokens.
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// An issued token and when it expires.
pub struct IssuedToken {
    pub token: String,
    pub expires_at: chrono::DateTime<Utc>,
}

impl Jwt {
    pub fn new(secret: &[u8]) -> Self {
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret) }
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
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| DomainError::Unknown(anyhow::Error::new(e)))?;
        Ok(IssuedToken { token, expires_at })
    }

    /// # Errors
    /// `Unauthenticated` for a bad, expired or foreign token.
    pub fn verify(&self, token: &str) -> DomainResult<Actor> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 30;
        v.set_required_spec_claims(&["exp", "sub"]);
        let data = decode::<Claims>(token, &self.decoding, &v).map_err(|_| DomainError::Unauthenticated)?;
        let c = data.claims;
        let user_id: UserId = c.sub.parse().map_err(|_| DomainError::Unauthenticated)?;
        let tenant_id = match c.tenant {
            Some(t) => Some(t.parse::<TenantId>().map_err(|_| DomainError::Unauthenticated)?),
            None => None,
        };
        // A platform admin has no tenant and a tenant role always has one.
        if (c.role == Role::PlatformAdmin) != tenant_id.is_none() {
            return Err(DomainError::Unauthenticated);
        }
        Ok(Actor { user_id, tenant_id, role: c.role })
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
        let c = decode::<FileClaims>(token, &self.decoding, &v).map_err(|_| DomainError::Unauthenticated)?.claims;
        let tenant = c.tenant.parse().map_err(|_| DomainError::Unauthenticated)?;
        let file = c.file.parse().map_err(|_| DomainError::Unauthenticated)?;
        Ok((tenant, file))
    }
}

/// What the edge learned about the caller: nobody, an actor, or a token that failed.
#[derive(Debug, Clone, Copy)]
pub enum Caller {
    Anonymous,
    Authenticated(Actor),
    BadToken,
}

impl Caller {
    /// Reads `Authorization: Bearer {token}`.
    pub fn from_header(jwt: &Jwt, header: Option<&str>) -> Self {
        match header.map(str::trim) {
            None | Some("") => Self::Anonymous,
            Some(h) => match h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")) {
                Some(token) => jwt.verify(token.trim()).map_or(Self::BadToken, Self::Authenticated),
                None => Self::BadToken,
            },
        }
    }

    /// # Errors
    /// `Unauthenticated` unless a valid token was presented.
    pub fn actor(&self) -> DomainResult<Actor> {
        match self {
            Self::Authenticated(a) => Ok(*a),
            _ => Err(DomainError::Unauthenticated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, tenant: Option<TenantId>) -> User {
        User { id: UserId::new(), tenant_id: tenant, email: "a@b.co".into(), role, created_at: Utc::now() }
    }

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let jwt = Jwt::new(b"0123456789abcdef0123456789abcdef");
        let u = user(Role::Operator, Some(TenantId::new()));
        let t = jwt.issue(&u).expect("issue");
        let actor = jwt.verify(&t.token).expect("verify");
        assert_eq!(actor.user_id, u.id);
        assert_eq!(actor.tenant_id, u.tenant_id);
        assert_eq!(actor.role, Role::Operator);
        let other = Jwt::new(b"another-secret-another-secret-xx");
        assert!(other.verify(&t.token).is_err());
        assert!(matches!(Caller::from_header(&jwt, Some("Bearer nonsense")), Caller::BadToken));
        assert!(matches!(Caller::from_header(&jwt, None), Caller::Anonymous));
        let hdr = format!("Bearer {}", t.token);
        assert!(matches!(Caller::from_header(&jwt, Some(&hdr)), Caller::Authenticated(_)));
    }

    #[test]
    fn token_lives_twelve_hours() {
        let jwt = Jwt::new(b"0123456789abcdef0123456789abcdef");
        let t = jwt.issue(&user(Role::PlatformAdmin, None)).expect("issue");
        let hours = (t.expires_at - Utc::now()).num_minutes();
        assert!((12 * 60 - 1..=12 * 60).contains(&hours));
    }
}
