//! What the audit log keeps of an entity before and after a mutation (`audit.rs`): chosen
//! fields under the API's own names. Credentials, password hashes, hook tokens and API keys
//! are never among them (an integration shows only the names of its credentials).

use crate::app::AppState;
use domain::Actor;
use domain::PageRequest;
use domain::alarms::Alarm;
use domain::devices::Device;
use domain::homes::{Home, Room};
use domain::ids::{AlarmId, DeviceId, HomeId, IntegrationId, RoomId, TariffId, TicketId, UserId};
use domain::integrations::Integration;
use domain::tariffs::{MeterAccount, Tariff, TariffFilter};
use domain::tickets::Ticket;
use domain::users::User;
use serde_json::{Value, json};

/// The entity types with a snapshot.
pub(super) const DEVICE: &str = "device";
pub(super) const HOME: &str = "home";
pub(super) const ROOM: &str = "room";
pub(super) const INTEGRATION: &str = "integration";
pub(super) const ALARM: &str = "alarm";
pub(super) const USER: &str = "user";
pub(super) const TARIFF: &str = "tariff";
pub(super) const TICKET: &str = "ticket";
/// A meter's account, by the meter's device id.
pub(super) const METER_ACCOUNT: &str = "meterAccount";

fn device(d: &Device) -> Value {
    json!({
        "id": d.id.to_string(), "integrationId": d.integration_id.to_string(), "externalId": d.external_id,
        "kind": d.kind.as_str(), "name": d.name, "homeId": d.home_id.map(|h| h.to_string()),
        "roomId": d.room_id.map(|r| r.to_string()), "attributes": d.attributes,
    })
}

fn home(h: &Home) -> Value {
    json!({
        "id": h.id.to_string(), "integrationId": h.integration_id.map(|i| i.to_string()),
        "externalId": h.external_id, "name": h.name, "address": h.address, "attributes": h.attributes,
    })
}

fn room(r: &Room) -> Value {
    json!({
        "id": r.id.to_string(), "homeId": r.home_id.to_string(), "externalId": r.external_id, "name": r.name,
    })
}

fn integration(i: &Integration) -> Value {
    json!({
        "id": i.id.to_string(), "kind": i.kind.as_str(), "name": i.name, "settings": i.settings,
        "credentialNames": i.credential_names, "secretRotatedAt": i.secret_rotated_at, "disabledAt": i.disabled_at,
    })
}

fn alarm(a: &Alarm) -> Value {
    json!({
        "id": a.id.to_string(), "deviceId": a.device_id.map(|d| d.to_string()), "kind": a.kind.as_str(),
        "severity": a.severity.as_str(), "state": a.state.as_str(), "message": a.message,
        "occurrences": a.occurrences, "acknowledgedAt": a.acknowledged_at,
        "acknowledgedBy": a.acknowledged_by.map(|u| u.to_string()), "clearedAt": a.cleared_at,
        "clearedBy": a.cleared_by.map(|u| u.to_string()), "clearNote": a.clear_note,
    })
}

fn user(u: &User) -> Value {
    json!({
        "id": u.id.to_string(), "tenantId": u.tenant_id.map(|t| t.to_string()), "email": u.email,
        "role": u.role.as_str(),
    })
}

fn tariff(t: &Tariff) -> Value {
    json!({
        "id": t.id.to_string(), "integrationId": t.integration_id.map(|i| i.to_string()), "code": t.code,
        "version": t.version, "utility": t.utility.as_str(), "tiers": t.tiers, "cycleMonths": t.cycle_months,
        "effectiveFrom": t.effective_from, "clearCycle": t.clear_cycle,
    })
}

fn ticket(t: &Ticket) -> Value {
    json!({
        "id": t.id.to_string(), "kind": t.kind.as_str(), "integrationId": t.integration_id.map(|i| i.to_string()),
        "deviceId": t.device_id.map(|d| d.to_string()), "homeId": t.home_id.map(|h| h.to_string()),
        "status": t.status.as_str(), "fields": t.fields, "externalId": t.external_id,
    })
}

fn meter_account(a: &MeterAccount) -> Value {
    json!({
        "deviceId": a.device_id.to_string(), "tariffId": a.tariff_id.map(|t| t.to_string()),
        "payModel": a.account.pay_model.as_str(), "billingModel": a.account.billing_model.as_str(),
        "balance": a.account.balance.to_string(), "overdraft": a.account.overdraft.to_string(),
        "cutOff": a.meter.cut_off,
    })
}

/// The entity `entity` with `id` as `actor` may read it now; `None` when it is not there
/// (deleted, another tenant's, not readable by the actor) or has no snapshot.
pub(super) async fn load(st: &AppState, actor: &Actor, entity: &str, id: &str) -> Option<Value> {
    match entity {
        DEVICE => st.devices.get(actor, id.parse::<DeviceId>().ok()?).await.ok().map(|d| device(&d)),
        HOME => st.homes.get(actor, id.parse::<HomeId>().ok()?).await.ok().map(|h| home(&h)),
        ROOM => st.homes.get_rooms(actor, &[id.parse::<RoomId>().ok()?]).await.ok()?.first().map(room),
        INTEGRATION => {
            st.integrations.get(actor, id.parse::<IntegrationId>().ok()?).await.ok().map(|i| integration(&i))
        }
        ALARM => st.alarms.get(actor, id.parse::<AlarmId>().ok()?).await.ok().map(|a| alarm(&a)),
        USER => st.users.get(actor, id.parse::<UserId>().ok()?).await.ok().map(|u| user(&u)),
        TARIFF => st.tariffs.get(actor, id.parse::<TariffId>().ok()?).await.ok().map(|t| tariff(&t)),
        TICKET => st.tickets.get(actor, id.parse::<TicketId>().ok()?).await.ok().map(|t| ticket(&t)),
        METER_ACCOUNT => st.tariffs.account(actor, id.parse::<DeviceId>().ok()?).await.ok().map(|a| meter_account(&a)),
        _ => None,
    }
}

/// The id of the device an upsert names by (integration, external id), if it exists.
pub(super) async fn device_by_external(
    st: &AppState,
    actor: &Actor,
    integration: &str,
    external: &str,
) -> Option<String> {
    let tenant = actor.require_reader().ok()?;
    let integration = integration.parse::<IntegrationId>().ok()?;
    let d = st.devices.find_by_external(tenant, integration, external.trim()).await.ok()??;
    Some(d.id.to_string())
}

/// The id of the latest version of the tariff `code` (of `integration`), which saving the
/// code again supersedes.
pub(super) async fn latest_tariff(
    st: &AppState,
    actor: &Actor,
    integration: Option<&str>,
    code: &str,
) -> Option<String> {
    let integration = match integration {
        Some(i) => Some(i.parse::<IntegrationId>().ok()?),
        None => None,
    };
    let filter = TariffFilter { code: Some(code.to_owned()), integration_id: integration, utility: None };
    let page = st.tariffs.list(actor, &filter, PageRequest::new(Some(100), None).ok()?).await.ok()?;
    page.items
        .into_iter()
        .filter(|t| t.integration_id == integration)
        .max_by_key(|t| t.version)
        .map(|t| t.id.to_string())
}
