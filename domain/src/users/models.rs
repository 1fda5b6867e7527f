use crate::ids::{TenantId, UserId};
use crate::{DomainError, DomainResult, Role};
use chrono::{DateTime, Utc};

/// A normalised (trimmed, lower-cased) email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// # Errors
    /// `Invalid { field: "email" }` unless the text looks like `local@domain.tld`.
    pub fn parse(s: &str) -> DomainResult<Self> {
        let s = s.trim().to_lowercase();
        let valid = s.len() <= 254
            && !s.chars().any(char::is_whitespace)
            && s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
            })
            && s.matches('@').count() == 1;
        if valid { Ok(Self(s)) } else { Err(DomainError::invalid("email", "not a valid email address")) }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The smallest password a user may set.
pub const MIN_PASSWORD_LEN: usize = 10;

/// Input to create a user; the password is already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub password_hash: String,
    pub role: Role,
}

/// A stored user, as shown to clients.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub tenant_id: Option<TenantId>,
    pub email: String,
    pub role: Role,
    /// A disabled user cannot log in and their tokens are refused.
    pub disabled: bool,
    /// Carried by every access token issued to the user; raising it (logout, password
    /// change, disabling) revokes every token issued before, at once.
    pub token_version: i64,
    pub created_at: DateTime<Utc>,
}

/// What `updateUser` may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserChange {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

/// A user with the hash to check a login against; never leaves the auth use case.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
}

/// # Errors
/// `Invalid { field: "password" }` on a too short or too long password.
pub fn check_password_rules(password: &str) -> DomainResult<()> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_LEN..=256).contains(&n) {
        return Err(DomainError::invalid("password", format!("must be {MIN_PASSWORD_LEN} to 256 characters")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse(" Ops@Acme.COM ").map(|e| e.0).ok(), Some("ops@acme.com".into()));
        for bad in ["", "a", "a@b", "@acme.com", "a@@acme.com", "a b@acme.com", "a@acme."] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_password_rules("short").is_err());
        assert!(check_password_rules("long-enough-pw").is_ok());
    }
}
