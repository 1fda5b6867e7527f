//! Integrations: a tenant's configured connection to one vendor or regulator, with its
//! settings (visible) and credentials (write-only, sealed at rest), and API keys for a
//! tenant's own devices.

mod kind;
mod models;
mod ports;
mod service;

pub use kind::{DeviceKind, IntegrationKind};
pub use models::{
    API_KEY_USE_PRECISION, ApiKey, ConfigureIntegration, CreatedApiKey, HookSeeds, Integration, IntegrationUpdate,
    NewIntegration, RotatedSecret,
};
pub use ports::{ApiKeyRepo, IntegrationRepo};
pub use service::IntegrationService;
