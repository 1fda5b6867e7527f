//! Who is acting: resolved once at the edge (JWT) and passed to every use case.

use crate::ids::{TenantId, UserId};
use crate::{DomainError, DomainResult};
use serde::{Deserialize, Serialize};

/// The four roles of the contract, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// Operates the platform: onboards tenants; belongs to no tenant.
    PlatformAdmin,
    /// Administers one tenant: users, integrations, API keys.
    TenantAdmin,
    /// Runs a tenant's day-to-day operations (alarms, tickets, commands).
    Operator,
    /// Reads a tenant's data; changes nothing.
    Viewer,
}

impl Role {
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::PlatformAdmin => "PLATFORM_ADMIN",
            Self::TenantAdmin => "TENANT_ADMIN",
            Self::Operator => "OPERATOR",
            Self::Viewer => "VIEWER",
        }
    }

    /// # Errors
    /// `DomainError::Invalid` on an unknown role name.
    pub fn parse(s: &str) -> DomainResult<Self> {
        match s {
            "PLATFORM_ADMIN" => Ok(Self::PlatformAdmin),
            "TENANT_ADMIN" => Ok(Self::TenantAdmin),
            "OPERATOR" => Ok(Self::Operator),
            "VIEWER" => Ok(Self::Viewer),
            other => Err(DomainError::invalid("role", format!("unknown role {other:?}"))),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub user_id: UserId,
    pub tenant_id: Option<TenantId>,
    pub role: Role,
}

impl Actor {
    /// The actor's tenant, for tenant-scoped work; platform admins have none.
    ///
    /// # Errors
    /// `Forbidden` when the actor belongs to no tenant.
    pub fn tenant(&self) -> DomainResult<TenantId> {
        self.tenant_id.ok_or(DomainError::Forbidden)
    }

    /// # Errors
    /// `Forbidden` unless the actor is a platform admin.
    pub fn require_platform_admin(&self) -> DomainResult<()> {
        if self.role == Role::PlatformAdmin { Ok(()) } else { Err(DomainError::Forbidden) }
    }

    /// The actor's tenant, when the actor administers it.
    ///
    /// # Errors
    /// `Forbidden` unless the actor is the admin of a tenant.
    pub fn require_tenant_admin(&self) -> DomainResult<TenantId> {
        match self.role {
            Role::TenantAdmin => self.tenant(),
            _ => Err(DomainError::Forbidden),
        }
    }

    /// The actor's tenant, when the actor may change things in it (admin or operator).
    ///
    /// # Errors
    /// `Forbidden` for viewers and for actors without a tenant.
    pub fn require_operator(&self) -> DomainResult<TenantId> {
        match self.role {
            Role::TenantAdmin | Role::Operator => self.tenant(),
            _ => Err(DomainError::Forbidden),
        }
    }

    /// The actor's tenant, for reads (every tenant role).
    ///
    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub fn require_reader(&self) -> DomainResult<TenantId> {
        self.tenant()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(role: Role, tenant: bool) -> Actor {
        Actor { user_id: UserId::new(), tenant_id: tenant.then(TenantId::new), role }
    }

    #[test]
    fn viewer_cannot_operate() {
        assert!(matches!(actor(Role::Viewer, true).require_operator(), Err(DomainError::Forbidden)));
        assert!(actor(Role::Viewer, true).require_reader().is_ok());
        assert!(actor(Role::Operator, true).require_operator().is_ok());
        assert!(matches!(actor(Role::Operator, true).require_tenant_admin(), Err(DomainError::Forbidden)));
    }

    #[test]
    fn platform_admin_has_no_tenant() {
        let a = actor(Role::PlatformAdmin, false);
        assert!(a.require_platform_admin().is_ok());
        assert!(matches!(a.require_reader(), Err(DomainError::Forbidden)));
    }

    #[test]
    fn roles_round_trip() {
        for r in [Role::PlatformAdmin, Role::TenantAdmin, Role::Operator, Role::Viewer] {
            assert_eq!(Role::parse(r.as_str()).ok(), Some(r));
        }
        assert!(Role::parse("ROOT").is_err());
    }
}
