//! Repositories: each implements one domain port. Tenant-owned tables are only ever read
//! through a `scoped(tenant)` builder that filters on the tenant first.

mod alarms;
mod api_keys;
mod audit;
mod deliveries;
mod device_files;
mod devices;
mod dingding;
mod escalation;
mod events;
mod homes;
mod huzhou;
mod integrations;
mod retention;
mod schedules;
mod tariffs;
mod tenants;
mod ticket_syncs;
mod tickets;
mod units;
mod users;

pub use alarms::SqlAlarmRepo;
pub use api_keys::SqlApiKeyRepo;
pub use audit::SqlAuditRepo;
pub use deliveries::SqlDeliveryRepo;
pub use device_files::SqlDeviceFileRepo;
pub use devices::SqlDeviceRepo;
pub use dingding::SqlDingdingRepo;
pub use escalation::SqlEscalationRepo;
pub use events::SqlInboundEventRepo;
pub use homes::SqlHomeRepo;
pub use huzhou::SqlHuzhouRepo;
pub use integrations::SqlIntegrationRepo;
pub use retention::SqlRetentionRepo;
pub use schedules::SqlScheduledRunRepo;
pub use tariffs::SqlTariffRepo;
pub use tenants::SqlTenantRepo;
pub use ticket_syncs::SqlTicketSyncRepo;
pub use tickets::SqlTicketRepo;
pub use units::SqlUnitOfWork;
pub use users::SqlUserRepo;
