//! GraphQL mirrors of domain enums: same value names, conversions both ways.

use async_graphql::Enum;

macro_rules! mirror_enum {
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

        impl From<$gql> for $dom {
            fn from(v: $gql) -> Self {
                use $dom as D;
                match v { $($gql::$v => D::$v),* }
            }
        }
    };
}

mirror_enum!(
    /// Every device kind the integrations map into.
    DeviceKindGql as "DeviceKind" <=> domain::devices::DeviceKind {
        Elevator, Escalator, Gantry, GantryComputer, GantryCabinet, GantryMains, GantryRectifier, GantryUps,
        GantryAirConditioner, GantryThermohygrometer, GantryWaterSensor, GantryDoors, GantrySmokeSensor,
        GantryLightningProtection, Lock, Gateway, ElectricityMeter, Collector, WaterMeter, WaterGateway, GasMeter,
    }
);

mirror_enum!(
    /// What became of a file a device was asked for.
    DeviceFileStateGql as "DeviceFileState" <=> domain::devices::DeviceFileState { Stored, NoFile, Failed }
);

mirror_enum!(
    /// Where a ticket stands with the outside system it is uploaded to.
    SyncStateGql as "TicketSyncState" <=> domain::tickets::SyncState { Pending, Synced, Failed }
);

mirror_enum!(
    /// How bad an alarm is.
    SeverityGql as "AlarmSeverity" <=> domain::alarms::AlarmSeverity { Critical, Major, Minor, Warning, Info }
);

mirror_enum!(
    /// RAISED -> ACKNOWLEDGED -> CLEARED (a clear can come straight from RAISED).
    AlarmStateGql as "AlarmState" <=> domain::alarms::AlarmState { Raised, Acknowledged, Cleared }
);

mirror_enum!(
    /// What an alarm timeline entry records.
    TimelineKindGql as "AlarmTimelineKind" <=> domain::alarms::TimelineKind {
        Raised, Repeated, SeverityChanged, Acknowledged, Cleared, Comment, Notified, Escalated,
    }
);

mirror_enum!(
    /// The step an alarm took, as published on `alarmChanged`.
    AlarmActionGql as "AlarmAction" <=> domain::bus::AlarmAction { Raised, Repeated, Acknowledged, Cleared, Commented, Escalated }
);

mirror_enum!(
    /// Processing state of a raw inbound event.
    EventStateGql as "InboundEventState" <=> domain::events::EventState { Received, Processed, Failed, Ignored }
);

mirror_enum!(
    /// What a tariff prices.
    UtilityGql as "Utility" <=> domain::tariffs::Utility { Gas, Electricity, Water }
);

mirror_enum!(
    /// PREPAID: paid before use, the valve closes when the balance runs out; POSTPAID: billed after.
    PayModelGql as "PayModel" <=> domain::tariffs::PayModel { Prepaid, Postpaid }
);

mirror_enum!(
    /// METER_SIDE: the meter computes charges and the account mirrors it; CENTRE: Linkyard charges.
    BillingModelGql as "BillingModel" <=> domain::tariffs::BillingModel { MeterSide, Centre }
);

mirror_enum!(
    /// What a ledger entry records.
    LedgerKindGql as "LedgerKind" <=> domain::tariffs::LedgerKind { Recharge, Charge, Adjustment }
);

mirror_enum!(
    /// Which electricity price applies to a home's meters (Dingding `eleprice_way`).
    PriceWayGql as "PriceWay" <=> domain::tariffs::PriceWay { Home, Unified, Room }
);

mirror_enum!(
    /// PENDING -> IN_FLIGHT -> SUCCEEDED, or RETRYING (until `nextAttemptAt`) or DEAD.
    DeliveryStateGql as "DeliveryState" <=> domain::deliveries::DeliveryState { Pending, InFlight, Succeeded, Retrying, Dead }
);
