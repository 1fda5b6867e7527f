//! Homes, rooms and work orders of Dingding integrations, mirrored there: the Dingding
//! planner of `domain::outbound` renders `HomeAdded`, `RoomAdded` and `TicketSaved` into
//! `add_home`, `add_room`, `add_ticket` and `update_ticket_state` deliveries, written with
//! the change itself.

use super::Command;
use super::service::delivery;
use async_trait::async_trait;
use domain::deliveries::NewDelivery;
use domain::homes::{Home, HomeRepo, Room};
use domain::ids::{IntegrationId, TenantId};
use domain::integrations::{Integration, IntegrationKind, IntegrationRepo};
use domain::outbound::{Message, Planner};
use domain::{DomainError, DomainResult};
use serde_json::{Value, json};
use std::sync::Arc;

/// The Dingding integration a home mirrors, if any.
///
/// # Errors
/// `Unknown` on storage failure.
pub(super) async fn mirror_of(
    integrations: &dyn IntegrationRepo,
    tenant: TenantId,
    home: &Home,
) -> DomainResult<Option<Integration>> {
    let Some(id) = home.integration_id else { return Ok(None) };
    Ok(integrations.get(tenant, id).await?.filter(|i| i.kind == IntegrationKind::Dingding))
}

/// The Dingding planner.
#[derive(Clone)]
pub struct DingdingMirror {
    integrations: Arc<dyn IntegrationRepo>,
    homes: Arc<dyn HomeRepo>,
}

impl DingdingMirror {
    pub fn new(integrations: Arc<dyn IntegrationRepo>, homes: Arc<dyn HomeRepo>) -> Self {
        Self { integrations, homes }
    }

    async fn mirror_of(&self, tenant: TenantId, home: &Home) -> DomainResult<Option<Integration>> {
        mirror_of(&*self.integrations, tenant, home).await
    }

    async fn integration(&self, tenant: TenantId, id: IntegrationId) -> DomainResult<Integration> {
        self.integrations.get(tenant, id).await?.ok_or(DomainError::NotFound("integration"))
    }

    /// Mirrors a new home to Dingding (`add_home`) when it belongs to a Dingding integration.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn home_added(&self, tenant: TenantId, home: &Home) -> DomainResult<Vec<NewDelivery>> {
        let Some(integration) = self.mirror_of(tenant, home).await? else { return Ok(Vec::new()) };
        let Some(home_id) = home.external_id.clone() else { return Ok(Vec::new()) };
        let attr = |k: &str| home.attributes.get(k).and_then(Value::as_str).map(str::to_owned);
        let cmd = Command::AddHome {
            home_id: home_id.clone(),
            name: home.name.clone(),
            home_type: home.attributes.get("homeType").and_then(Value::as_i64),
            country: attr("country").unwrap_or_else(|| "中国".to_owned()),
            city: attr("city").unwrap_or_default(),
            zone: attr("zone").unwrap_or_default(),
            block: attr("block").unwrap_or_default(),
            location: home.address.clone().unwrap_or_default(),
            description: attr("description"),
        };
        Ok(vec![delivery(integration.id, format!("home:{home_id}"), format!("add_home:{home_id}"), &cmd)?])
    }

    /// Mirrors a new room (`add_room`) when its home belongs to a Dingding integration.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn room_added(&self, tenant: TenantId, home: &Home, room: &Room) -> DomainResult<Vec<NewDelivery>> {
        let Some(integration) = self.mirror_of(tenant, home).await? else { return Ok(Vec::new()) };
        let (Some(home_id), Some(room_id)) = (home.external_id.clone(), room.external_id.clone()) else {
            return Ok(Vec::new());
        };
        let cmd = Command::AddRoom {
            home_id: home_id.clone(),
            room_id: room_id.clone(),
            name: room.name.clone(),
            description: room.name.clone(),
        };
        let key = format!("add_room:{home_id}:{room_id}");
        Ok(vec![delivery(integration.id, format!("home:{home_id}"), key, &cmd)?])
    }
    /// Mirrors a saved INSTALLATION or REPAIR ticket of a Dingding integration (10.x): a new
    /// one is added (`add_ticket`), a known one follows its status (`update_ticket_state`).
    ///
    /// # Errors
    /// `Unknown` on storage failure; `Invalid` for a new work order of an unknown home.
    async fn ticket_saved(&self, tenant: TenantId, t: &domain::tickets::Ticket) -> DomainResult<Vec<NewDelivery>> {
        use super::tickets::WORK_ORDER_STATE_CODES;
        use domain::tickets::TicketKind;
        if !matches!(t.kind, TicketKind::Installation | TicketKind::Repair) {
            return Ok(Vec::new());
        }
        let Some(integration) = t.integration_id else { return Ok(Vec::new()) };
        if self.integration(tenant, integration).await?.kind != IntegrationKind::Dingding {
            return Ok(Vec::new());
        }
        let int = |k: &str| t.fields.get(k).and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()));
        let (cmd, key) = match &t.external_id {
            None => {
                let home = match t.fields.get("home_id").and_then(Value::as_str) {
                    Some(h) => Some(h.to_owned()),
                    None => match t.home_id {
                        Some(h) => self.homes.get_home(tenant, h).await?.and_then(|h| h.external_id),
                        None => None,
                    },
                };
                let Some(home_id) = home else {
                    return Err(DomainError::invalid("fields.home_id", "the Dingding home is not known"));
                };
                let room_ids =
                    t.fields.get("room_ids").cloned().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
                let cmd = Command::AddTicket {
                    ticket: t.id,
                    home_id,
                    service_target: int("service_target").unwrap_or(2),
                    service_type: if t.kind == TicketKind::Repair { 2 } else { 1 },
                    room_ids,
                    subscribe: t.fields.get("subscribe").cloned().unwrap_or_else(|| json!({})),
                    description: t.fields.get("ticket_description").and_then(Value::as_str).map(str::to_owned),
                };
                (cmd, format!("add_ticket:{}", t.id))
            }
            Some(ext) => {
                let code = WORK_ORDER_STATE_CODES
                    .iter()
                    .find(|(s, _)| *s == t.status.as_str())
                    .and_then(|(_, c)| c.parse().ok());
                let Some(state) = code else { return Ok(Vec::new()) };
                (
                    Command::UpdateTicketState { ticket_id: ext.clone(), state },
                    format!("update_ticket_state:{ext}:{state}"),
                )
            }
        };
        // Saved again without a change Dingding needs to hear of: the key is taken, nothing is sent.
        Ok(vec![delivery(integration, format!("ticket:{}", t.id), key, &cmd)?])
    }
}

/// Homes, rooms and work orders of Dingding integrations are mirrored there.
#[async_trait]
impl Planner for DingdingMirror {
    async fn plan(&self, tenant: TenantId, msg: &Message) -> DomainResult<Vec<NewDelivery>> {
        match msg {
            Message::HomeAdded(home) => self.home_added(tenant, home).await,
            Message::RoomAdded { home, room } => self.room_added(tenant, home, room).await,
            // A change Dingding made (the sync) is not sent back to it.
            Message::TicketSaved { after, by: Some(_), .. } => self.ticket_saved(tenant, after).await,
            Message::TicketSaved { by: None, .. } => Ok(Vec::new()),
            _ => Ok(Vec::new()),
        }
    }
}
