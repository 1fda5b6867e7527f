//! Subscriptions: `alarmChanged` and `deviceChanged`, scoped to the subscriber's tenant.
//! The bus carries ids only; each event is reloaded through the tenant-scoped services, so
//! a subscriber never receives another tenant's data.

use super::alarms::AlarmGql;
use super::devices::DeviceGql;
use super::enums::AlarmActionGql;
use super::{actor, state};
use crate::error::GqlResultExt;
use async_graphql::{Context, SimpleObject, Subscription};
use domain::bus::Change;
use futures::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

/// An alarm and the step it just took.
#[derive(SimpleObject)]
pub struct AlarmChange {
    pub action: AlarmActionGql,
    pub alarm: AlarmGql,
}

#[derive(Default)]
pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Every alarm raised, repeated, acknowledged, cleared or commented in the tenant.
    async fn alarm_changed(&self, ctx: &Context<'_>) -> async_graphql::Result<impl Stream<Item = AlarmChange>> {
        let actor = actor(ctx)?;
        let tenant = actor.require_reader().gql()?;
        let st = state(ctx).clone();
        let rx = BroadcastStream::new(st.bus.subscribe());
        Ok(rx.filter_map(move |ev| {
            let st = st.clone();
            async move {
                let ev = ev.ok().filter(|e| e.tenant_id == tenant)?;
                let Change::AlarmChanged { alarm_id, action } = ev.change else { return None };
                let alarm = st.alarms.get(&actor, alarm_id).await.ok()?;
                Some(AlarmChange { action: action.into(), alarm: alarm.into() })
            }
        }))
    }

    /// Every device created or changed in the tenant.
    async fn device_changed(&self, ctx: &Context<'_>) -> async_graphql::Result<impl Stream<Item = DeviceGql>> {
        let actor = actor(ctx)?;
        let tenant = actor.require_reader().gql()?;
        let st = state(ctx).clone();
        let rx = BroadcastStream::new(st.bus.subscribe());
        Ok(rx.filter_map(move |ev| {
            let st = st.clone();
            async move {
                let ev = ev.ok().filter(|e| e.tenant_id == tenant)?;
                let Change::DeviceChanged { device_id } = ev.change else { return None };
                st.devices.get(&actor, device_id).await.ok().map(Into::into)
            }
        }))
    }
}
