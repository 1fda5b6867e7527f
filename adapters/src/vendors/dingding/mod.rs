//! Dingding (Yunding) smart-device SaaS open API v2.0.16 (seed `002`, `PROTOCOLS.md`
//! section 3): lock passwords as first-class objects with their operations, meter
//! operations, the meaning of every callback, home and room mirroring and the nightly sync.
//!
//! Every state-changing call is a `dingding.*` delivery whose payload is a [`Command`];
//! reads go through the [`DingdingApi`] port. Here also: the `dingding` delivery sender, the
//! reads behind `DingdingApi`, callback signs and password encryption.

mod callbacks;
pub mod client;
mod commands;
mod handle;
pub use handle::Known;
pub(crate) mod inbound;
mod mirror;
pub use inbound::{DingdingInbound, hook_url};
pub use mirror::DingdingMirror;
pub mod map;
mod models;
mod ports;
mod service;
pub mod sign;
mod sync;
pub mod tickets;
pub mod wire;

pub use callbacks::*;
pub use commands::*;
pub use models::*;
pub use ports::*;
pub use service::*;
pub use sync::{DingdingSync, SyncReport};

/// The ticket kinds this module gives field tables for (registered with the ticket service).
pub const TICKET_RULES: &[(domain::tickets::TicketKind, &domain::tickets::FieldRules)] = &[
    (domain::tickets::TicketKind::Installation, &tickets::INSTALLATION),
    (domain::tickets::TicketKind::Repair, &tickets::REPAIR),
];

use async_trait::async_trait;
use client::{CallError, Client};
use domain::deliveries::{Delivery, DeliverySender, SendReport, Verdict};
use domain::devices::DeviceKind;
use domain::ids::{IntegrationId, TenantId};
use domain::{DomainError, DomainResult};
use serde_json::{Map, Value, json};

/// Sends `dingding.*` deliveries.
#[derive(Clone)]
pub struct DingdingSender {
    client: Client,
    outcomes: Outcomes,
}

impl DingdingSender {
    pub fn new(client: Client, outcomes: Outcomes) -> Self {
        Self { client, outcomes }
    }
}

fn report(request: String, code: Option<i64>, message: Option<String>, verdict: Verdict) -> SendReport {
    SendReport {
        request,
        http_status: None,
        vendor_code: code.map(|c| c.to_string()),
        vendor_message: message,
        verdict,
    }
}

fn verdict_of(e: &CallError) -> Verdict {
    match e {
        CallError::TokenExpired(m) => Verdict::TokenExpired(format!("token {m}")),
        e if e.retryable() => Verdict::Retry(e.to_string()),
        e => Verdict::Permanent(e.to_string()),
    }
}

#[async_trait]
impl DeliverySender for DingdingSender {
    async fn send(&self, d: &Delivery, fresh_token: bool) -> SendReport {
        let cmd: Command = match serde_json::from_value(d.payload.clone()) {
            Ok(c) => c,
            Err(e) => return report(d.kind.to_string(), None, None, Verdict::Permanent(format!("payload: {e}"))),
        };
        let name = cmd.api();
        let account = match self.client.account(d.tenant_id, d.integration_id).await {
            Ok(a) => a,
            Err(e) => return report(d.kind.to_string(), None, None, verdict_of(&e)),
        };
        let request = Client::summary(&account, name);
        let token = match self.client.token(&account, fresh_token).await {
            Ok(t) => t,
            Err(e) => return report(format!("{request} (token)"), None, None, verdict_of(&e)),
        };
        let body = match map::command_body(&cmd, &token.value, &self.outcomes) {
            Ok(b) => b,
            Err(e) => {
                let _ = self.outcomes.refused(d.tenant_id, &cmd, &e.to_string()).await;
                return report(request, None, None, Verdict::Permanent(e.to_string()));
            }
        };
        match self.client.call_with(&account, &token.value, name, body).await {
            Ok(answer) => {
                if let Err(e) = self.outcomes.accepted(d.tenant_id, &cmd, map::accepted(answer)).await {
                    tracing::warn!(error = %e, delivery_id = %d.id, "recording Dingding's answer");
                }
                report(request, Some(0), None, Verdict::Delivered)
            }
            Err(e) => {
                let verdict = verdict_of(&e);
                let (code, message) = match &e {
                    CallError::Rejected { code, message } => (Some(*code), Some(message.clone())),
                    _ => (None, None),
                };
                if matches!(verdict, Verdict::Permanent(_)) {
                    let _ = self.outcomes.refused(d.tenant_id, &cmd, &e.to_string()).await;
                }
                report(request, code, message, verdict)
            }
        }
    }
}

/// The `DingdingApi` port: reads straight from Dingding.
#[derive(Clone)]
pub struct DingdingReads {
    client: Client,
}

impl DingdingReads {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    async fn read(&self, t: TenantId, i: IntegrationId, name: &str, params: Value) -> DomainResult<Map<String, Value>> {
        self.client.read(t, i, name, params).await.map_err(|e| DomainError::upstream(VENDOR, format!("{name}: {e}")))
    }

    async fn info(
        &self,
        t: TenantId,
        i: IntegrationId,
        kind: DeviceKind,
        entry: &wire::HomeDevice,
    ) -> DomainResult<wire::DeviceInfo> {
        let uuid = entry.uuid.clone().unwrap_or_default();
        let (name, params) = match kind {
            DeviceKind::Gateway => ("get_center_info", json!({"uuid": uuid})),
            DeviceKind::Lock => ("get_lock_info", json!({"uuid": uuid})),
            DeviceKind::ElectricityMeter => ("get_elemeter_info", json!({"uuid": uuid})),
            DeviceKind::Collector => ("get_elecollector_info", json!({"uuid": uuid})),
            DeviceKind::WaterGateway => ("get_water_gateway_info", json!({"uuid": uuid})),
            DeviceKind::WaterMeter => {
                let m = entry.manufactory.clone().unwrap_or_else(|| "cy".into());
                ("get_watermeter_info", json!({"uuid": uuid, "manufactory": m}))
            }
            _ => return Ok(wire::DeviceInfo::default()),
        };
        let answer = Value::Object(self.read(t, i, name, params).await?);
        let parsed = if matches!(kind, DeviceKind::WaterGateway | DeviceKind::WaterMeter) {
            serde_json::from_value::<wire::InfoWrapped>(answer).ok().and_then(|w| w.info)
        } else {
            serde_json::from_value::<wire::DeviceInfo>(answer).ok()
        };
        Ok(parsed.unwrap_or_default())
    }
}

fn malformed(name: &str, e: serde_json::Error) -> DomainError {
    DomainError::upstream(VENDOR, format!("{name}: malformed answer: {e}"))
}

/// `(fetch, count)` interfaces of a paged query and their parameters.
fn query_call(q: &Query) -> (&'static str, Option<&'static str>, Value) {
    let ranged = |uuid: &str, offset: i64, count: i64, from: &Option<i64>, to: &Option<i64>| json!({"uuid": uuid, "offset": offset, "count": count, "start_time": from, "end_time": to});
    match q {
        Query::LockEvents { uuid, offset, count, from, to } => {
            ("get_lock_events", Some("count_lock_events"), ranged(uuid, *offset, *count, from, to))
        }
        Query::OperationLog { uuid, op_id, offset, count, from, to } => {
            let mut p = ranged(uuid, *offset, *count, from, to);
            p["op_id"] = json!(op_id);
            ("search_device_op_log", Some("count_device_op_log"), p)
        }
        Query::Exceptions { uuid, offset, count, from, to } => {
            ("device_fetch_exceptions", Some("device_count_exceptions"), ranged(uuid, *offset, *count, from, to))
        }
        Query::ChargeStatus { trade_no } => ("elemeter_charge_query", None, json!({"trade_num": trade_no})),
        Query::ChargeHistory { uuid, offset, count, from, to } => (
            "elemeter_fetch_charge_history",
            Some("elemeter_count_charge_history"),
            ranged(uuid, *offset, *count, from, to),
        ),
        Query::PowerHistory { uuid, offset, count, from, to } => (
            "elemeter_fetch_power_history",
            Some("elemeter_count_power_history"),
            ranged(uuid, *offset, *count, from, to),
        ),
        Query::PowerConsumption { uuid, from, to } => {
            ("elemeter_fetch_power_consumption", None, json!({"uuid": uuid, "start_time": from, "end_time": to}))
        }
        Query::PriceAndWay { uuid } => ("elemeter_get_price_and_way", None, json!({"uuid": uuid})),
        Query::MeterInfo { uuid } => ("get_elemeter_info", None, json!({"uuid": uuid})),
        Query::DeviceInfo { uuid } => ("get_device_info", None, json!({"uuid": uuid})),
        Query::DeviceUuid { sn } => ("get_device_uuid", None, json!({"sn": sn})),
        Query::WaterRecords { uuid, manufactory, offset, count, from, to } => (
            "get_meter_record",
            Some("count_meter_record"),
            json!({"uuid": uuid, "manufactory": manufactory, "offset": offset, "count": count, "begin": from, "end": to}),
        ),
        Query::WaterReadStatus { uuid, manufactory } => {
            ("read_watermeter_status", None, json!({"uuid": uuid, "manufactory": manufactory}))
        }
        Query::Ticket { ticket_id } => ("get_ticket_by_id", None, json!({"ticket_id": ticket_id})),
        Query::HomeTickets { home_id, service_type } => {
            ("get_ticket_by_home", None, json!({"home_id": home_id, "service_type": service_type}))
        }
        Query::CountHomes { home_name, city, zone, block, location } => (
            "count_home_info",
            None,
            json!({"home_name": home_name, "city": city, "zone": zone, "block": block, "location": location}),
        ),
        Query::HomeDevices { home_id } => ("find_home_device", None, json!({"home_id": home_id})),
        Query::HomeInfo { home_id, uuid, manufactory } => {
            ("get_home_info", None, json!({"home_id": home_id, "uuid": uuid, "manufactory": manufactory}))
        }
        Query::Gateways { home_id } => ("get_center_info_arr", None, json!({"home_id": home_id})),
        Query::Collectors { home_id, uuid } => {
            ("get_elecollector_info_arr", None, json!({"home_id": home_id, "uuid": uuid}))
        }
        Query::AppToken { phone } => ("app_token", None, json!({"phone": phone})),
    }
}

#[async_trait]
impl DingdingApi for DingdingReads {
    async fn homes(&self, t: TenantId, i: IntegrationId) -> DomainResult<Vec<SyncedHome>> {
        let mut homes = Vec::new();
        let mut offset = 0i64;
        loop {
            let page = self.read(t, i, "search_home_info", json!({"offset": offset})).await?;
            let list: wire::HomeList =
                serde_json::from_value(Value::Object(page)).map_err(|e| malformed("search_home_info", e))?;
            if list.home_list.is_empty() {
                break;
            }
            offset += i64::try_from(list.home_list.len()).unwrap_or(i64::MAX);
            homes.extend(list.home_list);
            if offset >= 100_000 {
                break;
            }
        }
        let ids: Vec<String> = homes.iter().filter_map(|h| h.home_id.clone()).collect();
        let mut by_home = std::collections::HashMap::new();
        for chunk in ids.chunks(50) {
            let answer = self.read(t, i, "find_home_devices", json!({"home_id": chunk})).await?;
            let found: wire::HomeDevices =
                serde_json::from_value(Value::Object(answer)).map_err(|e| malformed("find_home_devices", e))?;
            by_home.extend(found.result);
        }
        let mut out = Vec::with_capacity(homes.len());
        for h in homes {
            let Some(home_id) = h.home_id.clone() else { continue };
            let entries = by_home.remove(&home_id).unwrap_or(h.devices);
            let mut devices = Vec::new();
            for entry in &entries {
                let Some(kind) = entry.kind.as_deref().and_then(map::kind_of_name) else { continue };
                let info = self.info(t, i, kind, entry).await?;
                let passwords = if kind == DeviceKind::Lock {
                    let answer = self.read(t, i, "fetch_passwords", json!({"uuid": entry.uuid})).await?;
                    let p: wire::Passwords =
                        serde_json::from_value(Value::Object(answer)).map_err(|e| malformed("fetch_passwords", e))?;
                    map::passwords(p)
                } else {
                    Vec::new()
                };
                if let Some(d) = map::synced_device(kind, entry, &info, passwords) {
                    devices.push(d);
                }
            }
            // Work orders (10.5): a home without any answers an error; that is not fatal.
            let mut tickets = Vec::new();
            for service_type in [1, 2] {
                let params = json!({"home_id": home_id, "service_type": service_type});
                if let Ok(answer) = self.client.read(t, i, "get_ticket_by_home", params).await
                    && let Ok(list) = serde_json::from_value::<wire::HomeTickets>(Value::Object(answer))
                {
                    tickets.extend(list.home_ticket_list.into_iter().filter_map(|x| map::synced_ticket(&home_id, x)));
                }
            }
            let attributes = json!({
                "country": h.country, "province": h.province, "city": h.city, "zone": h.zone,
                "block": h.block, "homeType": h.home_type, "description": h.description,
            });
            out.push(SyncedHome {
                name: h.home_name.clone().unwrap_or_else(|| home_id.clone()),
                external_id: home_id,
                address: h.location.clone(),
                attributes,
                rooms: h
                    .rooms
                    .iter()
                    .filter_map(|r| Some((r.room_id.clone()?, r.room_name.clone().unwrap_or_default())))
                    .collect(),
                devices,
                tickets,
            });
        }
        Ok(out)
    }

    async fn reveal(&self, t: TenantId, i: IntegrationId, uuid: &str, which: Reveal) -> DomainResult<Revealed> {
        let name = match which {
            Reveal::Admin => "get_default_password_plaintext",
            Reveal::Dynamic => "get_dynamic_password_plaintext",
        };
        let answer = self.read(t, i, name, json!({"uuid": uuid})).await?;
        let p: wire::Plaintext = serde_json::from_value(Value::Object(answer)).map_err(|e| malformed(name, e))?;
        let password = p.password.ok_or_else(|| DomainError::upstream(VENDOR, format!("{name}: no password")))?;
        // 6.6 `invalid_time`: milliseconds or seconds, by size.
        let expires_at = p.invalid_time.and_then(|t| {
            if t > 100_000_000_000 {
                chrono::DateTime::from_timestamp_millis(t)
            } else {
                chrono::DateTime::from_timestamp(t, 0)
            }
        });
        Ok(Revealed { password, expires_at })
    }

    async fn query(&self, t: TenantId, i: IntegrationId, q: &Query) -> DomainResult<Value> {
        let (fetch, count, params) = query_call(q);
        let mut answer = self.read(t, i, fetch, params.clone()).await?;
        if let Some(count) = count {
            let mut p = params;
            if let Value::Object(m) = &mut p {
                m.remove("offset");
                m.remove("count");
            }
            let counted = self.read(t, i, count, p).await?;
            if let Some(n) = counted.get("count") {
                answer.insert("total".into(), n.clone());
            }
        }
        Ok(Value::Object(answer))
    }
}
