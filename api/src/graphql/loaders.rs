//! Per-request batch loaders (async-graphql `DataLoader`): a lookup that each item of a list
//! makes (an alarm's device, a device's home and room, a home's rooms, a delivery's
//! attempts ...) is gathered across the items and answered by one `WHERE ... IN (...)`
//! query of a tenant-scoped repository method, instead of one query per item.
//!
//! A loader is made per request (per connection for subscriptions) with that request's
//! caller, so every load goes through the services' tenant checks; it caches nothing
//! beyond one batch, so nothing read for one caller is ever answered to another.

use super::state;
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::GqlResultExt;
use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, Loader};
use domain::alarms::TimelineEntry;
use domain::deliveries::Attempt;
use domain::devices::Device;
use domain::homes::{Home, Room};
use domain::ids::{AlarmId, DeliveryId, DeviceId, HomeId, RoomId, TicketId};
use domain::tickets::{SyncView, Ticket, TicketFile};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

/// Ids one batch query may carry (bound parameters stay far below every database's limit).
const MAX_BATCH: usize = 500;

/// What the loaders read with: the services, and the caller of this request.
pub struct Lookups {
    state: AppState,
    caller: Caller,
}

/// The request's loader (in the request data).
pub type Loaders = DataLoader<Lookups>;

/// The loader of one request or one subscription connection.
pub fn for_request(state: AppState, caller: Caller) -> Loaders {
    // Batches load on tasks of their own: they keep the caller's row-level-security scope.
    let tenant = caller.actor().ok().and_then(|a| a.tenant().ok());
    let spawner = move |batch: futures::future::BoxFuture<'static, ()>| match tenant {
        Some(t) => tokio::spawn(adapters::db::with_tenant(t, batch)),
        None => tokio::spawn(batch),
    };
    DataLoader::new(Lookups { state, caller }, spawner).max_batch_size(MAX_BATCH)
}

/// The rooms of a home.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoomsOf(pub HomeId);
/// The attempts of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttemptsOf(pub DeliveryId);
/// The files of a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FilesOf(pub TicketId);
/// Where a ticket stands with the system it is uploaded to (the rule needs the ticket).
#[derive(Debug, Clone)]
pub struct SyncOf(pub Arc<Ticket>);

impl PartialEq for SyncOf {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for SyncOf {}

impl Hash for SyncOf {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
    }
}

/// The timeline of an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimelineOf(pub AlarmId);

/// Loads one value through the request's loader (batched with the other items' loads).
///
/// # Errors
/// The services' errors (`UNAUTHENTICATED`, `FORBIDDEN`, `INTERNAL`).
pub async fn load<K>(ctx: &Context<'_>, key: K) -> async_graphql::Result<Option<<Lookups as Loader<K>>::Value>>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
    Lookups: Loader<K, Error = async_graphql::Error>,
{
    if let Some(loaders) = ctx.data_opt::<Loaders>() {
        return loaders.load_one(key).await;
    }
    // A schema run without the HTTP or WebSocket edge (no loader in the data): no batching.
    let caller = ctx.data_opt::<Caller>().copied().unwrap_or(Caller::Anonymous);
    let lookups = Lookups { state: state(ctx).clone(), caller };
    Ok(lookups.load(std::slice::from_ref(&key)).await?.remove(&key))
}

/// Loads the children of one parent (none when it has none).
///
/// # Errors
/// As `load`.
pub async fn load_all<K, V>(ctx: &Context<'_>, key: K) -> async_graphql::Result<Vec<V>>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
    V: Send + Sync + Clone + 'static,
    Lookups: Loader<K, Value = Vec<V>, Error = async_graphql::Error>,
{
    Ok(load(ctx, key).await?.unwrap_or_default())
}

fn by_key<K: Hash + Eq, V>(rows: Vec<V>, key: impl Fn(&V) -> K) -> HashMap<K, V> {
    rows.into_iter().map(|v| (key(&v), v)).collect()
}

fn grouped<K: Hash + Eq, V>(rows: Vec<V>, key: impl Fn(&V) -> K) -> HashMap<K, Vec<V>> {
    let mut out: HashMap<K, Vec<V>> = HashMap::new();
    for v in rows {
        out.entry(key(&v)).or_default().push(v);
    }
    out
}

impl Lookups {
    fn actor(&self) -> async_graphql::Result<domain::Actor> {
        self.caller.actor().gql()
    }
}

impl Loader<DeviceId> for Lookups {
    type Value = Device;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[DeviceId]) -> Result<HashMap<DeviceId, Device>, Self::Error> {
        let rows = self.state.devices.get_many(&self.actor()?, keys).await.gql()?;
        Ok(by_key(rows, |d| d.id))
    }
}

impl Loader<HomeId> for Lookups {
    type Value = Home;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[HomeId]) -> Result<HashMap<HomeId, Home>, Self::Error> {
        let rows = self.state.homes.get_many(&self.actor()?, keys).await.gql()?;
        Ok(by_key(rows, |h| h.id))
    }
}

impl Loader<RoomId> for Lookups {
    type Value = Room;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[RoomId]) -> Result<HashMap<RoomId, Room>, Self::Error> {
        let rows = self.state.homes.get_rooms(&self.actor()?, keys).await.gql()?;
        Ok(by_key(rows, |r| r.id))
    }
}

impl Loader<RoomsOf> for Lookups {
    type Value = Vec<Room>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[RoomsOf]) -> Result<HashMap<RoomsOf, Vec<Room>>, Self::Error> {
        let homes: Vec<HomeId> = keys.iter().map(|k| k.0).collect();
        let rows = self.state.homes.rooms_of(&self.actor()?, &homes).await.gql()?;
        Ok(grouped(rows, |r| RoomsOf(r.home_id)))
    }
}

impl Loader<AttemptsOf> for Lookups {
    type Value = Vec<Attempt>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[AttemptsOf]) -> Result<HashMap<AttemptsOf, Vec<Attempt>>, Self::Error> {
        let ids: Vec<DeliveryId> = keys.iter().map(|k| k.0).collect();
        let rows = self.state.deliveries.attempts_of(&self.actor()?, &ids).await.gql()?;
        Ok(grouped(rows, |a| AttemptsOf(a.delivery_id)))
    }
}

impl Loader<FilesOf> for Lookups {
    type Value = Vec<TicketFile>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[FilesOf]) -> Result<HashMap<FilesOf, Vec<TicketFile>>, Self::Error> {
        let ids: Vec<TicketId> = keys.iter().map(|k| k.0).collect();
        let rows = self.state.tickets.files_of(&self.actor()?, &ids).await.gql()?;
        Ok(grouped(rows, |f| FilesOf(f.ticket_id)))
    }
}

impl Loader<TimelineOf> for Lookups {
    type Value = Vec<TimelineEntry>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[TimelineOf]) -> Result<HashMap<TimelineOf, Vec<TimelineEntry>>, Self::Error> {
        let ids: Vec<AlarmId> = keys.iter().map(|k| k.0).collect();
        let rows = self.state.alarms.timelines(&self.actor()?, &ids).await.gql()?;
        Ok(grouped(rows, |e| TimelineOf(e.alarm_id)))
    }
}

impl Loader<SyncOf> for Lookups {
    type Value = SyncView;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[SyncOf]) -> Result<HashMap<SyncOf, SyncView>, Self::Error> {
        let tickets: Vec<Ticket> = keys.iter().map(|k| (*k.0).clone()).collect();
        let views = self.state.tickets.syncs(&self.actor()?, &tickets).await.gql()?;
        let by_id: HashMap<TicketId, &SyncOf> = keys.iter().map(|k| (k.0.id, k)).collect();
        Ok(views.into_iter().filter_map(|(id, v)| by_id.get(&id).map(|k| ((*k).clone(), v))).collect())
    }
}
