use crate::ids::TenantId;
use crate::{DomainError, DomainResult};
use chrono::{DateTime, Utc};

/// A tenant's URL-safe unique handle: 3-63 chars of `a-z`, `0-9`, `-`, not starting or
/// ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    /// # Errors
    /// `Invalid { field: "slug" }` when the text breaks the rule above.
    pub fn parse(s: &str) -> DomainResult<Self> {
        let ok_chars = s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !(3..=63).contains(&s.len()) || !ok_chars || s.starts_with('-') || s.ends_with('-') {
            return Err(DomainError::invalid(
                "slug",
                "3-63 characters of a-z, 0-9 and '-', not starting or ending with '-'",
            ));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Input to create a tenant.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: Slug,
    pub name: String,
}

impl NewTenant {
    /// # Errors
    /// `Invalid` naming `slug` or `name`.
    pub fn parse(slug: &str, name: &str) -> DomainResult<Self> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(DomainError::invalid("name", "1-200 characters"));
        }
        Ok(Self { slug: Slug::parse(slug)?, name: name.to_owned() })
    }
}

/// A stored tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_rules() {
        assert!(Slug::parse("acme-gas").is_ok());
        assert!(Slug::parse("ab").is_err());
        assert!(Slug::parse("-acme").is_err());
        assert!(Slug::parse("Acme").is_err());
        assert!(Slug::parse("acme gas").is_err());
        assert!(NewTenant::parse("acme", "  ").is_err());
    }
}
