//! The GraphQL schema: one file per area, merged here. Limits on depth and complexity
//! refuse abusive queries before they run; every mutation is audited.

mod alarms;
mod audit;
mod connection;
pub(crate) mod deliveries;
pub(crate) mod devices;
mod dingding;
mod enums;
mod escalation;
mod events;
mod gantries;
mod homes;
mod integrations;
mod limits;
pub mod loaders;
mod schedules;
mod snapshots;
mod subscriptions;
mod tariffs;
mod tenants;
mod tickets;
mod users;

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::GqlResultExt;
use async_graphql::{Context, ID, MergedObject, Schema};
use domain::Actor;

pub use connection::Conn;

/// Deepest query accepted (a depth-50 query is refused before it runs).
pub const MAX_DEPTH: usize = 15;
/// Largest query cost accepted: every field costs 1, a list field its selection times its
/// page size (`first`, else 20, at most 100), so `first: 100` lists nested three deep cost
/// over a million and are refused before any resolver runs (`graphql::limits`).
pub const MAX_COMPLEXITY: usize = 10_000;

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    users::UserQuery,
    tenants::TenantQuery,
    integrations::IntegrationQuery,
    devices::DeviceQuery,
    homes::HomeQuery,
    alarms::AlarmQuery,
    escalation::EscalationQuery,
    events::EventQuery,
    tickets::TicketQuery,
    tariffs::TariffQuery,
    deliveries::DeliveryQuery,
    schedules::ScheduleQuery,
    dingding::DingdingQuery,
    gantries::GantryQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    users::UserMutation,
    tenants::TenantMutation,
    integrations::IntegrationMutation,
    devices::DeviceMutation,
    homes::HomeMutation,
    alarms::AlarmMutation,
    escalation::EscalationMutation,
    events::EventMutation,
    tickets::TicketMutation,
    tariffs::TariffMutation,
    deliveries::DeliveryMutation,
    schedules::ScheduleMutation,
    dingding::DingdingMutation,
    gantries::GantryMutation,
);

pub type AppSchema = Schema<QueryRoot, MutationRoot, subscriptions::SubscriptionRoot>;

/// The schema without runtime data (requests carry the `AppState` and the `Caller`).
pub fn schema() -> AppSchema {
    schema_with(true)
}

/// The same, answering introspection queries only when `introspection` is on.
pub fn schema_with(introspection: bool) -> AppSchema {
    let builder = Schema::build(QueryRoot::default(), MutationRoot::default(), subscriptions::SubscriptionRoot)
        .extension(audit::Audit)
        .extension(audit::Codes)
        .extension(limits::Limits)
        .limit_depth(MAX_DEPTH)
        .limit_recursive_depth(256);
    if introspection { builder.finish() } else { builder.disable_introspection().finish() }
}

/// The SDL that `linkyard schema` prints and `schema.graphql` keeps.
pub fn sdl() -> String {
    schema().sdl()
}

/// The application state of this request.
pub(crate) fn state<'a>(ctx: &Context<'a>) -> &'a AppState {
    ctx.data_unchecked::<AppState>()
}

/// The authenticated actor of this request.
pub(crate) fn actor(ctx: &Context<'_>) -> async_graphql::Result<Actor> {
    ctx.data_opt::<Caller>().copied().unwrap_or(Caller::Anonymous).actor().gql()
}

/// Parses an `ID` argument as an entity id.
pub(crate) fn parse_id<T: std::str::FromStr>(field: &str, id: &ID) -> async_graphql::Result<T> {
    id.parse::<T>().map_err(|_| crate::error::bad_input(field, "not a valid id"))
}
