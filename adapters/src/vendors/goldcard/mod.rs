//! IoT gas meters over the CIS <-> DAS standard (seed `003_26aaa3a7ea60ac5a.txt`,
//! `PROTOCOLS.md` section 4). The platform is the CIS:
//! - in (`/hooks/{id}/goldcard/api/collect/meter/{code}`): 2.4.11 `2001` readings (centre
//!   billing answers `valvecontrol`, `currentprice`, `remainquantity`), 2.4.12 `2002`
//!   command results, 2.4.13 `2003` alarms;
//! - out (deliveries of kind `goldcard.<code>`): 1001 register, 1002 cancel, 1004 valve and
//!   recharge commands, 1005 cancel a command, 1007 prices, 1008 switch price, 1009 replace,
//!   1013 readings, 1014 details, 1015 daily usage.
//!
//! Meters are devices of kind `GAS_METER` whose external id is the 12-digit `meterNo`.

mod batch;
pub(crate) mod client;
mod details;
pub(crate) mod inbound;
mod jobs;
pub(crate) mod map;
mod plan;
pub mod sign;
pub(crate) mod wire;

pub use client::GoldcardSender;
pub use details::{DasValve, GasMeterDetails};
pub use inbound::GoldcardInbound;
pub use jobs::GasDailyUsage;
pub use plan::GoldcardPlanner;

use domain::actor::Actor;
use domain::deliveries::DeliveryService;
use domain::devices::{Device, DeviceKind, DeviceService};
use domain::events::InboundEvent;
use domain::ids::{IntegrationId, TenantId};
use domain::ingest::IngestService;
use domain::tariffs::{MeterBill, SupplyChange, TariffService, centre_billed};
use domain::{Clock, DomainError, DomainResult};
use rust_decimal::Decimal;
use std::sync::Arc;

/// The sender prefix of this module's deliveries.
pub const PREFIX: &str = "goldcard";

/// The vendor's name in errors.
pub const VENDOR: &str = "goldcard";

/// What a 2001 answer carries beyond the echo of the report.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReadingAnswer {
    /// `valvecontrol`: 0 open, 1 close, 2 no action.
    pub valve: &'static str,
    /// `currentprice`: the price of the next unit.
    pub price: Option<Decimal>,
    /// `remainquantity`: the balance of a centre-billed account.
    pub remain: Option<Decimal>,
}

/// What a 2001 answer carries after its charges: the supply change the last of them
/// called for, the next unit's price and the balance (a meter billed by itself, or with
/// no account: no valve action, nothing else).
fn reading_answer(bills: &[MeterBill]) -> ReadingAnswer {
    let Some(last) = bills.last().filter(|b| centre_billed(&b.account.account)) else {
        return ReadingAnswer { valve: "2", price: None, remain: None };
    };
    let valve = match bills.iter().rev().find_map(|b| b.supply) {
        Some(SupplyChange::Cut) => "1",
        Some(SupplyChange::Restore) => "0",
        None => "2",
    };
    ReadingAnswer { valve, price: last.price, remain: Some(last.account.account.balance) }
}

/// The DAS's id of a meter (from its registration answer), else ours.
pub(crate) fn das_device_id(d: &Device) -> String {
    d.attributes.get("dasDeviceId").and_then(|v| v.as_str()).map_or_else(|| d.id.to_string(), str::to_owned)
}

/// The gas module's use cases, shared by its inbound protocols.
#[derive(Clone)]
pub struct Goldcard {
    devices: DeviceService,
    ingest: IngestService,
    tariffs: TariffService,
    deliveries: DeliveryService,
    das: GoldcardSender,
    clock: Arc<dyn Clock>,
    /// 2001 readings are applied in batches.
    batch: batch::Batcher,
}

impl Goldcard {
    pub fn new(
        devices: DeviceService,
        ingest: IngestService,
        tariffs: TariffService,
        deliveries: DeliveryService,
        das: GoldcardSender,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let batch = batch::Batcher::start(ingest.clone());
        Self { devices, ingest, tariffs, deliveries, das, clock, batch }
    }

    /// 1014: the DAS's record of a gas meter the actor can read, asked for now.
    ///
    /// # Errors
    /// `NotFound("device")` for a device the actor cannot see; `Invalid` for a device that
    /// is not a gas meter; `Upstream` when the DAS cannot answer (its reason given).
    pub async fn details(&self, actor: &Actor, device: domain::ids::DeviceId) -> DomainResult<GasMeterDetails> {
        let d = self.devices.get(actor, device).await?;
        if d.kind != DeviceKind::GasMeter {
            return Err(DomainError::invalid("deviceId", "not a gas meter"));
        }
        let user = d.attributes.get("userNo").and_then(serde_json::Value::as_str).unwrap_or(&d.external_id);
        let mut ask = serde_json::json!({"userNo": user, "meterNo": d.external_id});
        if let Some(id) = d.attributes.get("dasDeviceId").and_then(serde_json::Value::as_str) {
            ask["deviceId"] = serde_json::json!(id);
        }
        let msg = self
            .das
            .read(d.tenant_id, d.integration_id, "1014", ask)
            .await
            .map_err(|why| DomainError::upstream(VENDOR, why))?;
        Ok(details::details_of(&msg, &d.external_id))
    }

    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    async fn meter(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        meter_no: &str,
    ) -> DomainResult<Option<Device>> {
        self.devices.find_by_external(tenant, integration, meter_no).await
    }

    /// A 2001's answer from its meter's account as it stands (a resend applied meanwhile
    /// by another request); `None` for an unknown meter.
    async fn answer_now(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        meter_no: &str,
        body: &batch::Body,
    ) -> DomainResult<Option<serde_json::Value>> {
        let Some(device) = self.meter(tenant, integration, meter_no).await? else { return Ok(None) };
        let account = self.tariffs.account_in(tenant, device.id).await?.filter(|a| centre_billed(&a.account));
        let Some(account) = account else {
            return Ok(Some(body(&device, ReadingAnswer { valve: "2", price: None, remain: None })));
        };
        let price = self.tariffs.price_now(tenant, &account).await?;
        Ok(Some(body(&device, ReadingAnswer { valve: "2", price, remain: Some(account.account.balance) })))
    }

    /// A 2003: an alarm per appendix-2 type, one open alarm per meter and type.
    async fn apply_alarm(&self, event: &InboundEvent, device: &Device, a: &wire::AlarmReport) -> DomainResult<()> {
        let fact = map::alarm(device, a, event.id, event.received_at);
        self.ingest.apply(event.tenant_id, Some(event.id), vec![fact], None).await?;
        Ok(())
    }

    /// A 2002: the 1004 it reports on (its `sendSerialNo` is that delivery's key) records
    /// whether the meter executed it. `Some(why)` when there is no such command.
    async fn apply_result(&self, event: &InboundEvent, r: &wire::CommandResult) -> DomainResult<Option<String>> {
        let result = serde_json::json!({
            "executed": r.succeeded,
            "state": if r.succeeded { "EXECUTED" } else { "FAILED" },
            "paramNo": r.param_no,
            "serialNo": r.head.serial_no,
            "reportedAt": event.received_at.to_rfc3339(),
        });
        let found =
            self.deliveries.record_result(event.tenant_id, event.integration_id, &r.send_serial_no, &result).await?;
        Ok(match found {
            Some(d) if d.kind.as_str() == "goldcard.1004" => None,
            Some(_) => Some(format!("sendSerialNo {} is not a command", r.send_serial_no)),
            None => Some(format!("no command with sendSerialNo {}", r.send_serial_no)),
        })
    }
}
