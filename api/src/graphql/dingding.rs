//! Dingding devices (`PROTOCOLS.md` 3): lock passwords, meter commands, vendor queries and
//! the account sync.

use super::{actor, parse_id, state};
use crate::error::GqlResultExt;
use adapters::vendors::dingding::{
    ActivationCodeInput, AddPasswordInput, DeviceOperation, LockPassword, LockPasswordId, MeterCommand,
    MeterCommandInput, OperationId, PasswordOperation, Query, Reveal, UpdateActivationCodeInput, UpdatePasswordInput,
};
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::ids::{DeviceId, IntegrationId};
use rust_decimal::Decimal;
use serde_json::Value;

macro_rules! gql_enum {
    ($(#[$m:meta])* $gql:ident as $name:literal <=> $dom:path { $($v:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
        #[graphql(name = $name)]
        pub enum $gql { $($v),* }

        impl From<$dom> for $gql {
            fn from(v: $dom) -> Self {
                use $dom as D;
                match v { $(D::$v => Self::$v),* }
            }
        }
    };
}

gql_enum!(
    /// Where a lock password comes from.
    PasswordKindGql as "LockPasswordKind" <=> adapters::vendors::dingding::PasswordKind { Platform, Admin, Local, ActivationCode }
);
gql_enum!(
    /// Dingding's `pwd_state`.
    PwdStateGql as "LockPasswordState" <=> adapters::vendors::dingding::PwdState { Initial, Effective, Upcoming, Expired, Frozen }
);
gql_enum!(
    /// A password operation.
    PasswordOperationGql as "LockPasswordOperation" <=> adapters::vendors::dingding::PasswordOperation {
        Add, Delete, Update, Freeze, Unfreeze
    }
);
gql_enum!(
    /// Where an operation is.
    OperationStageGql as "OperationStage" <=> adapters::vendors::dingding::OperationStage { Pending, Failed, Succeeded }
);

/// A password of a lock; the digits are never shown.
#[derive(SimpleObject)]
#[graphql(name = "LockPassword")]
pub struct LockPasswordGql {
    pub id: ID,
    pub device_id: ID,
    /// The password's id at the lock (3.3), once known.
    pub password_id: Option<i64>,
    pub kind: PasswordKindGql,
    pub name: String,
    /// The recipient (`send_to`).
    pub phone: Option<String>,
    pub begins_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub pwd_state: Option<PwdStateGql>,
    pub operation: Option<PasswordOperationGql>,
    pub stage: Option<OperationStageGql>,
    /// Why the last operation failed (`PROTOCOLS.md` 3.2 code and text).
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<LockPassword> for LockPasswordGql {
    fn from(p: LockPassword) -> Self {
        Self {
            id: ID(p.id.to_string()),
            device_id: ID(p.device_id.to_string()),
            password_id: p.vendor_id,
            kind: p.kind.into(),
            name: p.name,
            phone: p.phone,
            begins_at: p.begins_at,
            ends_at: p.ends_at,
            pwd_state: p.pwd_state.map(Into::into),
            operation: p.operation.map(Into::into),
            stage: p.stage.map(Into::into),
            error: p.error,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A command sent to a meter and where it is.
#[derive(SimpleObject)]
#[graphql(name = "DeviceOperation")]
pub struct DeviceOperationGql {
    pub id: ID,
    pub device_id: ID,
    pub command: String,
    pub params: Json<Value>,
    pub service_id: Option<String>,
    pub trade_no: Option<String>,
    pub stage: OperationStageGql,
    pub error: Option<String>,
    pub result: Json<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<DeviceOperation> for DeviceOperationGql {
    fn from(o: DeviceOperation) -> Self {
        Self {
            id: ID(o.id.to_string()),
            device_id: ID(o.device_id.to_string()),
            command: o.command.as_str().to_owned(),
            params: Json(o.params),
            service_id: o.service_id,
            trade_no: o.trade_no,
            stage: o.stage.into(),
            error: o.error,
            result: Json(o.result),
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

#[derive(InputObject)]
pub struct AddLockPasswordInput {
    pub device_id: ID,
    /// 6 digits; sent encrypted (18.2), never stored in the clear.
    pub password: String,
    pub name: String,
    pub phone: Option<String>,
    pub begins_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct UpdateLockPasswordInput {
    pub id: ID,
    pub password: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub begins_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

/// Who an activation code is for (6.14 `CMD`).
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum ActivationCodeKind {
    Tenant,
    Staff,
    Admin,
}

#[derive(InputObject)]
pub struct AddLockActivationCodeInput {
    pub device_id: ID,
    pub kind: ActivationCodeKind,
    pub name: String,
    pub phone: String,
    pub ends_at: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct UpdateLockActivationCodeInput {
    /// The activation code (a lock password).
    pub id: ID,
    /// Absent: unchanged.
    pub name: Option<String>,
    /// Absent: unchanged.
    pub phone: Option<String>,
    /// Absent: unchanged; at the next full hour but one or later (6.15); the admin code
    /// (3000) has none.
    pub ends_at: Option<DateTime<Utc>>,
}

/// The commands `sendMeterCommand` takes (`CONTRACT.md`, plus Dingding's own).
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum MeterCommandGql {
    ValveOpen,
    ValveClose,
    Recharge,
    Read,
    SwitchOn,
    SwitchOff,
    SetOverdraft,
    SetMaxCapacity,
    Reset,
    ChargeReset,
    SyncData,
    SetPrice,
    SetHomePrice,
    SetPriceWay,
    SetPayType,
    ForceOpen,
    RefreshSignal,
}

#[derive(InputObject)]
pub struct SendMeterCommandInput {
    pub device_id: ID,
    pub command: MeterCommandGql,
    pub amount: Option<Decimal>,
    /// Command specifics, e.g. `{"way": "ROOM"}` for SET_PRICE_WAY.
    pub params: Option<Json<Value>>,
}

/// Which plaintext `revealLockPassword` reads.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum RevealKind {
    /// The admin password (6.5).
    Admin,
    /// The current dynamic password (6.6).
    Dynamic,
}

/// A plaintext password read from Dingding.
#[derive(SimpleObject)]
pub struct RevealedPassword {
    pub password: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// What a sync did.
#[derive(SimpleObject)]
pub struct SyncReportGql {
    pub homes: i32,
    pub rooms: i32,
    pub devices: i32,
    pub passwords: i32,
    pub tickets: i32,
}

/// A read-only meter query.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum MeterQueryKind {
    /// `get_elemeter_info`.
    Info,
    /// `elemeter_get_price_and_way`.
    PriceAndWay,
    /// `elemeter_fetch_power_history` (+ count).
    PowerHistory,
    /// `elemeter_fetch_charge_history` (+ count).
    ChargeHistory,
    /// `elemeter_fetch_power_consumption`.
    PowerConsumption,
    /// `get_meter_record` (+ count), water meters.
    WaterRecords,
    /// `read_watermeter_status`, water meters.
    WaterReadStatus,
    /// `get_device_info`.
    DeviceInfo,
}

/// Bluetooth access kinds (14.1 `auth_type`).
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum BluetoothAccess {
    Manage,
    Open,
}

#[derive(InputObject)]
#[graphql(name = "RoomBluetoothInput")]
pub struct BluetoothInputGql {
    pub home_id: ID,
    pub room_ids: Vec<ID>,
    pub phone: String,
    #[graphql(default_with = "BluetoothAccess::Open")]
    pub access: BluetoothAccess,
    pub begins_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

impl BluetoothInputGql {
    fn into_domain(self) -> async_graphql::Result<adapters::vendors::dingding::BluetoothInput> {
        Ok(adapters::vendors::dingding::BluetoothInput {
            home_id: parse_id("homeId", &self.home_id)?,
            room_ids: self.room_ids.iter().map(|r| parse_id("roomIds", r)).collect::<Result<_, _>>()?,
            phone: self.phone,
            auth_type: if self.access == BluetoothAccess::Manage { 1 } else { 2 },
            begins_at: self.begins_at,
            ends_at: self.ends_at,
        })
    }
}

fn device(id: &ID) -> async_graphql::Result<DeviceId> {
    parse_id("deviceId", id)
}

fn window(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> (Option<i64>, Option<i64>) {
    (from.map(|t| t.timestamp()), to.map(|t| t.timestamp()))
}

/// A text argument, trimmed; blank is absent.
fn given(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// A read-only query on a Dingding integration of the caller's tenant, answered as
/// Dingding answered it.
async fn dingding_query(ctx: &Context<'_>, integration_id: &ID, q: Query) -> async_graphql::Result<Json<Value>> {
    let i: IntegrationId = parse_id("integrationId", integration_id)?;
    state(ctx).dingding.query(&actor(ctx)?, i, &q).await.gql().map(Json)
}

#[derive(Default)]
pub struct DingdingQuery;

#[Object]
impl DingdingQuery {
    /// A lock's passwords.
    async fn lock_passwords(&self, ctx: &Context<'_>, device_id: ID) -> async_graphql::Result<Vec<LockPasswordGql>> {
        let ps = state(ctx).dingding.passwords(&actor(ctx)?, device(&device_id)?).await.gql()?;
        Ok(ps.into_iter().map(Into::into).collect())
    }

    async fn lock_password(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<LockPasswordGql> {
        let id: LockPasswordId = parse_id("id", &id)?;
        Ok(state(ctx).dingding.password(&actor(ctx)?, id).await.gql()?.into())
    }

    /// A device's meter commands and recharges, newest first.
    async fn device_operations(
        &self,
        ctx: &Context<'_>,
        device_id: ID,
    ) -> async_graphql::Result<Vec<DeviceOperationGql>> {
        let ops = state(ctx).dingding.operations(&actor(ctx)?, device(&device_id)?).await.gql()?;
        Ok(ops.into_iter().map(Into::into).collect())
    }

    async fn device_operation(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<DeviceOperationGql> {
        let id: OperationId = parse_id("id", &id)?;
        Ok(state(ctx).dingding.operation(&actor(ctx)?, id).await.gql()?.into())
    }

    /// A lock's door openings at Dingding (`get_lock_events`, 6.12) with `total`.
    async fn lock_events(
        &self,
        ctx: &Context<'_>,
        device_id: ID,
        #[graphql(default = 0)] offset: i64,
        #[graphql(default = 50)] count: i64,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Json<Value>> {
        let (from, to) = window(from, to);
        let q =
            |d: &domain::devices::Device| Query::LockEvents { uuid: d.external_id.clone(), offset, count, from, to };
        state(ctx).dingding.query_device(&actor(ctx)?, device(&device_id)?, q).await.gql().map(Json)
    }

    /// A device's operation log at Dingding (`search_device_op_log`, 7.3) with `total`.
    #[allow(clippy::too_many_arguments)]
    async fn device_operation_log(
        &self,
        ctx: &Context<'_>,
        device_id: ID,
        op_id: Option<String>,
        #[graphql(default = 0)] offset: i64,
        #[graphql(default = 50)] count: i64,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Json<Value>> {
        let (from, to) = window(from, to);
        let q = |d: &domain::devices::Device| Query::OperationLog {
            uuid: d.external_id.clone(),
            op_id,
            offset,
            count,
            from,
            to,
        };
        state(ctx).dingding.query_device(&actor(ctx)?, device(&device_id)?, q).await.gql().map(Json)
    }

    /// A device's exceptions at Dingding (`device_fetch_exceptions`, 17.2; times in ms) with `total`.
    async fn device_exceptions(
        &self,
        ctx: &Context<'_>,
        device_id: ID,
        #[graphql(default = 0)] offset: i64,
        #[graphql(default = 20)] count: i64,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Json<Value>> {
        let (from, to) = (from.map(|t| t.timestamp_millis()), to.map(|t| t.timestamp_millis()));
        let q =
            |d: &domain::devices::Device| Query::Exceptions { uuid: d.external_id.clone(), offset, count, from, to };
        state(ctx).dingding.query_device(&actor(ctx)?, device(&device_id)?, q).await.gql().map(Json)
    }

    /// A meter's state at Dingding (11.x, 15.x).
    #[allow(clippy::too_many_arguments)]
    async fn meter_query(
        &self,
        ctx: &Context<'_>,
        device_id: ID,
        query: MeterQueryKind,
        #[graphql(default = 0)] offset: i64,
        #[graphql(default = 20)] count: i64,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Json<Value>> {
        let (fs, ts) = window(from, to);
        let (fm, tm) = (from.map(|t| t.timestamp_millis()), to.map(|t| t.timestamp_millis()));
        let q = |d: &domain::devices::Device| {
            let uuid = d.external_id.clone();
            let manufactory = d.attributes.get("manufactory").and_then(Value::as_str).unwrap_or("cy").to_owned();
            match query {
                MeterQueryKind::Info => Query::MeterInfo { uuid },
                MeterQueryKind::PriceAndWay => Query::PriceAndWay { uuid },
                MeterQueryKind::PowerHistory => Query::PowerHistory { uuid, offset, count, from: fs, to: ts },
                MeterQueryKind::ChargeHistory => Query::ChargeHistory { uuid, offset, count, from: fs, to: ts },
                MeterQueryKind::PowerConsumption => Query::PowerConsumption { uuid, from: fs, to: ts },
                MeterQueryKind::WaterRecords => {
                    Query::WaterRecords { uuid, manufactory, offset, count, from: fm, to: tm }
                }
                MeterQueryKind::WaterReadStatus => Query::WaterReadStatus { uuid, manufactory },
                MeterQueryKind::DeviceInfo => Query::DeviceInfo { uuid },
            }
        };
        state(ctx).dingding.query_device(&actor(ctx)?, device(&device_id)?, q).await.gql().map(Json)
    }

    /// A Dingding app token for a phone with bluetooth access (`app_token`, 14.3, v2).
    async fn bluetooth_app_token(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        phone: String,
    ) -> async_graphql::Result<Json<Value>> {
        let i: IntegrationId = parse_id("integrationId", &integration_id)?;
        state(ctx).dingding.query(&actor(ctx)?, i, &Query::AppToken { phone }).await.gql().map(Json)
    }

    /// Where a recharge is at Dingding (`elemeter_charge_query`, 11.19).
    async fn meter_charge_status(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        trade_no: String,
    ) -> async_graphql::Result<Json<Value>> {
        let i: IntegrationId = parse_id("integrationId", &integration_id)?;
        state(ctx).dingding.query(&actor(ctx)?, i, &Query::ChargeStatus { trade_no }).await.gql().map(Json)
    }

    /// How many homes the Dingding account has, or how many match the filters (each a
    /// fuzzy match; `count_home_info`, 5.12): `{"count": n}`.
    #[allow(clippy::too_many_arguments)]
    async fn dingding_home_count(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        home_name: Option<String>,
        city: Option<String>,
        zone: Option<String>,
        block: Option<String>,
        location: Option<String>,
    ) -> async_graphql::Result<Json<Value>> {
        let q = Query::CountHomes {
            home_name: given(home_name),
            city: given(city),
            zone: given(zone),
            block: given(block),
            location: given(location),
        };
        dingding_query(ctx, &integration_id, q).await
    }

    /// The devices Dingding has in a home, by the home's Dingding id (`find_home_device`,
    /// 5.4): `{"result": [{type, sn, uuid, room_id}]}`.
    async fn dingding_home_devices(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        home_external_id: String,
    ) -> async_graphql::Result<Json<Value>> {
        let home_id = given(Some(home_external_id))
            .ok_or_else(|| crate::error::bad_input("homeExternalId", "the Dingding home_id is required"))?;
        dingding_query(ctx, &integration_id, Query::HomeDevices { home_id }).await
    }

    /// A home with its rooms and devices as Dingding has it (`get_home_info`, 5.10), by
    /// the home's Dingding id or by one of its devices' uuid (a water meter's with
    /// `manufactory`, e.g. `cy`); with neither, every home.
    async fn dingding_home_info(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        home_external_id: Option<String>,
        device_uuid: Option<String>,
        manufactory: Option<String>,
    ) -> async_graphql::Result<Json<Value>> {
        let q = Query::HomeInfo {
            home_id: given(home_external_id),
            uuid: given(device_uuid),
            manufactory: given(manufactory),
        };
        dingding_query(ctx, &integration_id, q).await
    }

    /// The gateways of a home, by its Dingding id (`get_center_info_arr`, 6.2):
    /// `{"centers": [...]}`.
    async fn dingding_gateways(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        home_external_id: Option<String>,
    ) -> async_graphql::Result<Json<Value>> {
        dingding_query(ctx, &integration_id, Query::Gateways { home_id: given(home_external_id) }).await
    }

    /// The electricity collectors of a home, or one by its uuid
    /// (`get_elecollector_info_arr`, 11.13): `{"elecollectors": [...]}`.
    async fn dingding_collectors(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        home_external_id: Option<String>,
        uuid: Option<String>,
    ) -> async_graphql::Result<Json<Value>> {
        let (home_id, uuid) = (given(home_external_id), given(uuid));
        if home_id.is_none() && uuid.is_none() {
            return Err(crate::error::bad_input("homeExternalId", "homeExternalId or uuid is required"));
        }
        dingding_query(ctx, &integration_id, Query::Collectors { home_id, uuid }).await
    }

    /// A device's uuid by its serial number (`get_device_uuid`, 6.16): `{"result": {uuid,
    /// sn, center_uuid, type}}`; use the uuid to bind it with `upsertDevice`.
    async fn dingding_device_uuid(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        sn: String,
    ) -> async_graphql::Result<Json<Value>> {
        let sn = given(Some(sn)).ok_or_else(|| crate::error::bad_input("sn", "the serial number is required"))?;
        dingding_query(ctx, &integration_id, Query::DeviceUuid { sn }).await
    }

    /// Dingding's work orders of a home (`get_ticket_by_home`, 10.5; `serviceType` 1
    /// installation, 2 repair) or one of them (`get_ticket_by_id`, 10.4).
    async fn dingding_tickets(
        &self,
        ctx: &Context<'_>,
        integration_id: ID,
        home_external_id: Option<String>,
        ticket_id: Option<String>,
        #[graphql(default = 1)] service_type: i64,
    ) -> async_graphql::Result<Json<Value>> {
        let i: IntegrationId = parse_id("integrationId", &integration_id)?;
        let q = match (ticket_id, home_external_id) {
            (Some(ticket_id), _) => Query::Ticket { ticket_id },
            (None, Some(home_id)) => Query::HomeTickets { home_id, service_type },
            (None, None) => {
                return Err(crate::error::bad_input("homeExternalId", "homeExternalId or ticketId is required"));
            }
        };
        state(ctx).dingding.query(&actor(ctx)?, i, &q).await.gql().map(Json)
    }
}

#[derive(Default)]
pub struct DingdingMutation;

#[Object]
impl DingdingMutation {
    /// Sends a new password to a Dingding lock; its stage follows the lock's answer. The 6th
    /// add on one lock within 2 minutes is refused with RATE_LIMITED (3.5).
    async fn add_lock_password(
        &self,
        ctx: &Context<'_>,
        input: AddLockPasswordInput,
    ) -> async_graphql::Result<LockPasswordGql> {
        let input = AddPasswordInput {
            device_id: device(&input.device_id)?,
            password: input.password,
            name: input.name,
            phone: input.phone,
            begins_at: input.begins_at,
            ends_at: input.ends_at,
        };
        Ok(state(ctx).dingding.add_password(&actor(ctx)?, input).await.gql()?.into())
    }

    async fn update_lock_password(
        &self,
        ctx: &Context<'_>,
        input: UpdateLockPasswordInput,
    ) -> async_graphql::Result<LockPasswordGql> {
        let input = UpdatePasswordInput {
            id: parse_id("id", &input.id)?,
            password: input.password,
            name: input.name,
            phone: input.phone,
            begins_at: input.begins_at,
            ends_at: input.ends_at,
        };
        Ok(state(ctx).dingding.update_password(&actor(ctx)?, input).await.gql()?.into())
    }

    async fn delete_lock_password(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<LockPasswordGql> {
        let id = parse_id("id", &id)?;
        Ok(state(ctx).dingding.change_password(&actor(ctx)?, id, PasswordOperation::Delete).await.gql()?.into())
    }

    async fn freeze_lock_password(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<LockPasswordGql> {
        let id = parse_id("id", &id)?;
        Ok(state(ctx).dingding.change_password(&actor(ctx)?, id, PasswordOperation::Freeze).await.gql()?.into())
    }

    async fn unfreeze_lock_password(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<LockPasswordGql> {
        let id = parse_id("id", &id)?;
        Ok(state(ctx).dingding.change_password(&actor(ctx)?, id, PasswordOperation::Unfreeze).await.gql()?.into())
    }

    /// Issues an activation code (`add_password_without_center`, 6.14).
    async fn add_lock_activation_code(
        &self,
        ctx: &Context<'_>,
        input: AddLockActivationCodeInput,
    ) -> async_graphql::Result<LockPasswordGql> {
        let cmd = match input.kind {
            ActivationCodeKind::Tenant => 1,
            ActivationCodeKind::Staff => 2,
            ActivationCodeKind::Admin => 3,
        };
        let input = ActivationCodeInput {
            device_id: device(&input.device_id)?,
            cmd,
            name: input.name,
            phone: input.phone,
            ends_at: input.ends_at,
        };
        Ok(state(ctx).dingding.add_activation_code(&actor(ctx)?, input).await.gql()?.into())
    }

    /// Changes an activation code (`update_password_without_center`, 6.15); Dingding
    /// answers the new code at once (`revealActivationCode`).
    async fn update_lock_activation_code(
        &self,
        ctx: &Context<'_>,
        input: UpdateLockActivationCodeInput,
    ) -> async_graphql::Result<LockPasswordGql> {
        let input = UpdateActivationCodeInput {
            id: parse_id("id", &input.id)?,
            name: input.name,
            phone: input.phone,
            ends_at: input.ends_at,
        };
        Ok(state(ctx).dingding.update_activation_code(&actor(ctx)?, input).await.gql()?.into())
    }

    /// The code of an activation code (tenant admins; audited).
    async fn reveal_activation_code(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<String> {
        let id = parse_id("id", &id)?;
        state(ctx).dingding.activation_code(&actor(ctx)?, id).await.gql()
    }

    /// A lock's admin or dynamic password in plaintext, read from Dingding (tenant admins;
    /// audited).
    async fn reveal_lock_password(
        &self,
        ctx: &Context<'_>,
        device_id: ID,
        which: RevealKind,
    ) -> async_graphql::Result<RevealedPassword> {
        let which = match which {
            RevealKind::Admin => Reveal::Admin,
            RevealKind::Dynamic => Reveal::Dynamic,
        };
        let r = state(ctx).dingding.reveal(&actor(ctx)?, device(&device_id)?, which).await.gql()?;
        Ok(RevealedPassword { password: r.password, expires_at: r.expires_at })
    }

    /// Sends a command to a Dingding meter (11.x, 15.3); RECHARGE goes out with a fresh
    /// `trade_num` (use rechargeMeter to record the payment with your trade number).
    async fn send_meter_command(
        &self,
        ctx: &Context<'_>,
        input: SendMeterCommandInput,
    ) -> async_graphql::Result<DeviceOperationGql> {
        if let valve @ (MeterCommandGql::ValveOpen | MeterCommandGql::ValveClose) = input.command {
            let id = device(&input.device_id)?;
            let d = state(ctx).devices.get(&actor(ctx)?, id).await.gql()?;
            if d.kind == domain::devices::DeviceKind::GasMeter {
                // A gas meter's valve: a 1004 through its DAS (see `deliveries(filter: {subject})`).
                let (command, name) = match valve {
                    MeterCommandGql::ValveOpen => (domain::outbound::MeterCommand::ValveOpen, "VALVE_OPEN"),
                    _ => (domain::outbound::MeterCommand::ValveClose, "VALVE_CLOSE"),
                };
                state(ctx).tariffs.meter_command(&actor(ctx)?, id, command).await.gql()?;
                let now = chrono::Utc::now();
                return Ok(DeviceOperationGql {
                    id: ID(uuid::Uuid::now_v7().to_string()),
                    device_id: input.device_id,
                    command: name.to_owned(),
                    params: Json(Value::Object(Default::default())),
                    service_id: None,
                    trade_no: None,
                    stage: OperationStageGql::Pending,
                    error: None,
                    result: Json(Value::Object(Default::default())),
                    created_at: now,
                    updated_at: now,
                });
            }
        }
        let command = match input.command {
            MeterCommandGql::ValveOpen | MeterCommandGql::ValveClose => {
                return Err(crate::error::bad_input(
                    "command",
                    "a Dingding meter has no valve: use SWITCH_ON or SWITCH_OFF",
                ));
            }
            MeterCommandGql::Recharge => MeterCommand::Recharge,
            MeterCommandGql::Read => MeterCommand::Read,
            MeterCommandGql::SwitchOn => MeterCommand::SwitchOn,
            MeterCommandGql::SwitchOff => MeterCommand::SwitchOff,
            MeterCommandGql::SetOverdraft => MeterCommand::SetOverdraft,
            MeterCommandGql::SetMaxCapacity => MeterCommand::SetMaxCapacity,
            MeterCommandGql::Reset => MeterCommand::Reset,
            MeterCommandGql::ChargeReset => MeterCommand::ChargeReset,
            MeterCommandGql::SyncData => MeterCommand::SyncData,
            MeterCommandGql::SetPrice => MeterCommand::SetPrice,
            MeterCommandGql::SetHomePrice => MeterCommand::SetHomePrice,
            MeterCommandGql::SetPriceWay => MeterCommand::SetPriceWay,
            MeterCommandGql::SetPayType => MeterCommand::SetPayType,
            MeterCommandGql::ForceOpen => MeterCommand::ForceOpen,
            MeterCommandGql::RefreshSignal => MeterCommand::RefreshSignal,
        };
        let input = MeterCommandInput {
            device_id: device(&input.device_id)?,
            command,
            amount: input.amount,
            params: input.params.map_or(Value::Null, |j| j.0),
        };
        Ok(state(ctx).dingding.send_meter_command(&actor(ctx)?, input).await.gql()?.into())
    }

    /// Grants bluetooth access to rooms of a Dingding home (`auth_room`, 14.1): `MANAGE` for
    /// a manager, `OPEN` to open by bluetooth (within `beginsAt`..`endsAt`, else for good).
    async fn authorize_room_bluetooth(
        &self,
        ctx: &Context<'_>,
        input: BluetoothInputGql,
    ) -> async_graphql::Result<bool> {
        let input = input.into_domain()?;
        state(ctx).dingding.bluetooth(&actor(ctx)?, input, false).await.gql()?;
        Ok(true)
    }

    /// Revokes bluetooth access (`unauth_room`, 14.2).
    async fn revoke_room_bluetooth(&self, ctx: &Context<'_>, input: BluetoothInputGql) -> async_graphql::Result<bool> {
        let input = input.into_domain()?;
        state(ctx).dingding.bluetooth(&actor(ctx)?, input, true).await.gql()?;
        Ok(true)
    }

    /// Pulls the Dingding account's homes, rooms and devices now (tenant admins).
    async fn sync_integration(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<SyncReportGql> {
        let id: IntegrationId = parse_id("id", &id)?;
        let r = state(ctx).dingding.sync(&actor(ctx)?, id).await.gql()?;
        let n = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
        Ok(SyncReportGql {
            homes: n(r.homes),
            rooms: n(r.rooms),
            devices: n(r.devices),
            passwords: n(r.passwords),
            tickets: n(r.tickets),
        })
    }
}
