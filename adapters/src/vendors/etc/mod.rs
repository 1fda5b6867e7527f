//! ETC highway gantry monitoring (seed `001_d6b1846e3572b94c.txt`, `PROTOCOLS.md` section 2).
//! The platform is the cloud side:
//! - in (`/hooks/{id}/etc/monitor.do`): 2.1 `computerStatusUpdate` and 3.1
//!   `cabinetStatusUpdate`, which make the gantry, its PCs, cabinets and cabinet units
//!   devices with readings and alarms;
//! - out (deliveries of kind `etc.<method>` to `http://{device}:3699/remotecontrol.do`):
//!   2.2 `computerControl`, 3.2 `cabinetControl` (`sendGantryCommand`) and 3.3
//!   `getCabinetImageVedio`, fetched after every reported door opening and kept as a file
//!   of the cabinet.

pub(crate) mod client;
pub(crate) mod inbound;
pub(crate) mod map;
pub mod sign;
pub(crate) mod wire;

pub use client::EtcSender;
pub use inbound::EtcInbound;

use domain::actor::Actor;
use domain::deliveries::{Delivery, DeliveryKind, DeliveryService, NewDelivery};
use domain::devices::{Device, DeviceKind, DeviceService, UpsertDeviceInput};
use domain::ids::{DeviceId, IntegrationId, TenantId};
use domain::ingest::IngestService;
use domain::integrations::IntegrationKind;
use domain::{Clock, DomainError, DomainResult};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// The sender prefix of this module's deliveries.
pub const PREFIX: &str = "etc";

/// Why a door-opening file is kept.
pub(crate) const DOOR_OPENING: &str = "DOOR_OPENING";

/// The delivery kind of a method sent to a device.
fn delivery_kind(method: &str) -> DomainResult<DeliveryKind> {
    DeliveryKind::parse(&format!("{PREFIX}.{}", method.to_ascii_lowercase()))
}

/// The gantry a device belongs to: its `gantryId` attribute, else the first segment of its
/// external id.
fn gantry_of(d: &Device) -> String {
    d.attributes
        .get("gantryId")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| d.external_id.split('/').next().unwrap_or_default().to_owned())
}

fn is_gantry_kind(k: DeviceKind) -> bool {
    matches!(
        k,
        DeviceKind::Gantry
            | DeviceKind::GantryComputer
            | DeviceKind::GantryCabinet
            | DeviceKind::GantryMains
            | DeviceKind::GantryRectifier
            | DeviceKind::GantryUps
            | DeviceKind::GantryAirConditioner
            | DeviceKind::GantryThermohygrometer
            | DeviceKind::GantryWaterSensor
            | DeviceKind::GantryDoors
            | DeviceKind::GantrySmokeSensor
            | DeviceKind::GantryLightningProtection
    )
}

/// The ETC module's use cases, shared by its inbound protocol and GraphQL.
#[derive(Clone)]
pub struct Etc {
    devices: DeviceService,
    ingest: IngestService,
    deliveries: DeliveryService,
    clock: Arc<dyn Clock>,
    /// The latest `timeStamp` (and body digest) of each report series (gantry, method,
    /// cabinet), for 1005. Per process: behind a load balancer a gantry's reports should
    /// stick to one instance for the limit to hold exactly.
    series: Arc<domain::ttl::TtlCache<(IntegrationId, String), (i64, String)>>,
}

impl Etc {
    pub fn new(
        devices: DeviceService,
        ingest: IngestService,
        deliveries: DeliveryService,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let series = Arc::new(domain::ttl::TtlCache::new(std::time::Duration::from_secs(3600), 200_000));
        Self { devices, ingest, deliveries, clock, series }
    }

    /// Sends `method` (`computerControl` or `cabinetControl`) with `params` to the gantry of
    /// `device`, through the delivery engine (in order per gantry). The answer code of the
    /// device is on the delivery's attempts, a cmd 10 battery test result in its `result`.
    ///
    /// # Errors
    /// `Forbidden` below OPERATOR; `NotFound("device")` outside the tenant; `Invalid` for a
    /// device that is not a gantry's, an unknown method or a parameter its command does not
    /// take (nothing is sent).
    pub async fn send_command(
        &self,
        actor: &Actor,
        device: DeviceId,
        method: &str,
        params: &Value,
    ) -> DomainResult<Delivery> {
        let tenant = actor.require_operator()?;
        let d = self.devices.get(actor, device).await?;
        if !is_gantry_kind(d.kind) {
            return Err(DomainError::invalid("deviceId", "not a device of an ETC gantry"));
        }
        let rendered = wire::control(method, params)?;
        let gantry = gantry_of(&d);
        // Where the gantry last reported from (used when `deviceHosts` does not name it).
        let address = match d.kind {
            DeviceKind::Gantry => d.attributes.get("address").cloned(),
            _ => self
                .devices
                .find_by_external(tenant, d.integration_id, &gantry)
                .await?
                .and_then(|g| g.attributes.get("address").cloned()),
        };
        let payload = json!({"gantryId": gantry, "method": method, "params": rendered, "address": address});
        let input = NewDelivery {
            integration_id: d.integration_id,
            kind: delivery_kind(method)?,
            idempotency_key: uuid::Uuid::now_v7().simple().to_string(),
            order_key: Some(format!("etc:{gantry}")),
            payload,
            subject: Some(format!("device:{}", d.id)),
        };
        self.deliveries.enqueue(tenant, input).await
    }

    /// The devices a report names, created on first sight (`peer`: the sender's address,
    /// kept on a new gantry for its commands).
    async fn ensure(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        named: &[map::Named<'_>],
        peer: Option<&str>,
    ) -> DomainResult<HashMap<String, Device>> {
        let ids: Vec<String> = named.iter().map(|n| n.external_id.clone()).collect();
        let found = self.devices.find_by_externals(tenant, integration, &ids).await?;
        let mut by: HashMap<String, Device> = found.into_iter().map(|d| (d.external_id.clone(), d)).collect();
        for n in named {
            if by.contains_key(&n.external_id) {
                continue;
            }
            let mut attributes = n.attributes.clone();
            if let (DeviceKind::Gantry, Some(peer), Value::Object(a)) = (n.kind, peer, &mut attributes) {
                a.insert("address".into(), Value::from(peer));
            }
            let input = UpsertDeviceInput {
                integration_id: integration,
                external_id: n.external_id.clone(),
                kind: n.kind,
                name: n.name.clone(),
                home_id: None,
                room_id: None,
                attributes: Some(attributes),
            };
            let (d, _) = self.devices.upsert_in(tenant, input).await?;
            by.insert(n.external_id.clone(), d);
        }
        Ok(by)
    }

    /// Asks the cabinet for the picture of a door opening (once per cabinet and moment).
    async fn fetch_door_picture(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        gantry: &str,
        cabinet: &Device,
        door: &map::DoorOpening,
        address: Option<&str>,
    ) -> DomainResult<()> {
        let input = NewDelivery {
            integration_id: integration,
            kind: delivery_kind("getCabinetImageVedio")?,
            idempotency_key: format!("door:{}:{}", door.cabinet_external, door.at),
            order_key: None,
            payload: json!({
                "gantryId": gantry,
                "method": "getCabinetImageVedio",
                "params": {"cabinetId": door.cabinet_id, "doorOpenTime": door.at},
                "deviceId": cabinet.id,
                "address": address,
            }),
            subject: Some(format!("device:{}", cabinet.id)),
        };
        match self.deliveries.enqueue(tenant, input).await {
            Ok(_) | Err(DomainError::Duplicate(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}

/// Whether `kind` is this module's.
pub(crate) fn serves(kind: IntegrationKind) -> bool {
    kind == IntegrationKind::EtcGantry
}
