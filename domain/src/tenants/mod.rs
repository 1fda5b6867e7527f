//! Tenants: the operator companies that use Linkyard. Onboarded by platform admins.

mod models;
mod ports;
mod service;

pub use models::{NewTenant, Slug, Tenant};
pub use ports::TenantRepo;
pub use service::TenantService;
