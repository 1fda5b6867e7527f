//! Homes, rooms and work orders of Dingding integrations, mirrored there: the Dingding
//! planner of `domain::outbound` renders home and room changes (added, several added,
//! updated, deleted) into `add_home`, `update_home`, `del_home`, `add_room`, `add_rooms`,
//! `update_room` and `del_room`; `TicketSaved` into `add_ticket`, `update_ticket_state` and
//! `update_ticket`, and `TicketDeleted` into `delete_ticket` deliveries, written with the
//! change itself, in order per home (per work order for tickets).

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
    /// Mirrors rooms added at once (`add_rooms`, one call); those without an external id
    /// are not Dingding's.
    async fn rooms_added(&self, tenant: TenantId, home: &Home, rooms: &[Room]) -> DomainResult<Vec<NewDelivery>> {
        let Some(integration) = self.mirror_of(tenant, home).await? else { return Ok(Vec::new()) };
        let Some(home_id) = home.external_id.clone() else { return Ok(Vec::new()) };
        let rooms: Vec<(String, String)> =
            rooms.iter().filter_map(|r| Some((r.external_id.clone()?, r.name.clone()))).collect();
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = rooms.iter().map(|(id, _)| id.as_str()).collect();
        let key = format!("add_rooms:{home_id}:{}", ids.join(","));
        let cmd = Command::AddRooms { home_id: home_id.clone(), rooms };
        Ok(vec![delivery(integration.id, format!("home:{home_id}"), key, &cmd)?])
    }

    /// Mirrors a home's new name, address or `spState` attribute (`update_home`, 5.2:
    /// 1 not installed, 2 manageable: the operator's acceptance after installation).
    async fn home_updated(&self, tenant: TenantId, before: &Home, after: &Home) -> DomainResult<Vec<NewDelivery>> {
        let Some(integration) = self.mirror_of(tenant, after).await? else { return Ok(Vec::new()) };
        let Some(home_id) = after.external_id.clone() else { return Ok(Vec::new()) };
        let sp = |h: &Home| h.attributes.get("spState").and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()));
        let name = (before.name != after.name).then(|| after.name.clone());
        let location = (before.address != after.address).then(|| after.address.clone().unwrap_or_default());
        let sp_state = sp(after).filter(|s| sp(before) != Some(*s));
        if name.is_none() && location.is_none() && sp_state.is_none() {
            return Ok(Vec::new());
        }
        let cmd = Command::UpdateHome { home_id: home_id.clone(), name, location, sp_state };
        let key = format!("update_home:{home_id}:{}", uuid::Uuid::now_v7());
        Ok(vec![delivery(integration.id, format!("home:{home_id}"), key, &cmd)?])
    }

    /// Deletes the home at Dingding (`del_home`, 5.3), its rooms with it.
    async fn home_deleted(&self, tenant: TenantId, home: &Home) -> DomainResult<Vec<NewDelivery>> {
        let Some(integration) = self.mirror_of(tenant, home).await? else { return Ok(Vec::new()) };
        let Some(home_id) = home.external_id.clone() else { return Ok(Vec::new()) };
        let cmd = Command::DelHome { home_id: home_id.clone() };
        Ok(vec![delivery(integration.id, format!("home:{home_id}"), format!("del_home:{home_id}:{}", home.id), &cmd)?])
    }

    /// Mirrors a renamed room (`update_room`, 5.8).
    async fn room_updated(&self, tenant: TenantId, home: &Home, room: &Room) -> DomainResult<Vec<NewDelivery>> {
        let Some(integration) = self.mirror_of(tenant, home).await? else { return Ok(Vec::new()) };
        let (Some(home_id), Some(room_id)) = (home.external_id.clone(), room.external_id.clone()) else {
            return Ok(Vec::new());
        };
        let cmd = Command::UpdateRoom {
            home_id: home_id.clone(),
            room_id: room_id.clone(),
            name: room.name.clone(),
            description: room.name.clone(),
        };
        let key = format!("update_room:{home_id}:{room_id}:{}", uuid::Uuid::now_v7());
        Ok(vec![delivery(integration.id, format!("home:{home_id}"), key, &cmd)?])
    }

    /// Deletes the room at Dingding (`del_room`, 5.9).
    async fn room_deleted(&self, tenant: TenantId, home: &Home, room: &Room) -> DomainResult<Vec<NewDelivery>> {
        let Some(integration) = self.mirror_of(tenant, home).await? else { return Ok(Vec::new()) };
        let (Some(home_id), Some(room_id)) = (home.external_id.clone(), room.external_id.clone()) else {
            return Ok(Vec::new());
        };
        let cmd = Command::DelRoom { home_id: Some(home_id.clone()), room_id: room_id.clone() };
        let key = format!("del_room:{home_id}:{room_id}:{}", room.id);
        Ok(vec![delivery(integration.id, format!("home:{home_id}"), key, &cmd)?])
    }

    /// The Dingding integration of an INSTALLATION or REPAIR ticket, if it has one.
    async fn work_order_of(
        &self,
        tenant: TenantId,
        t: &domain::tickets::Ticket,
    ) -> DomainResult<Option<IntegrationId>> {
        use domain::tickets::TicketKind;
        if !matches!(t.kind, TicketKind::Installation | TicketKind::Repair) {
            return Ok(None);
        }
        let Some(integration) = t.integration_id else { return Ok(None) };
        Ok((self.integration(tenant, integration).await?.kind == IntegrationKind::Dingding).then_some(integration))
    }

    /// Mirrors a saved INSTALLATION or REPAIR ticket of a Dingding integration (10.x): a new
    /// one is added (`add_ticket`); a known one follows its status (`update_ticket_state`)
    /// and, when its rooms, booking or description changed, its content (`update_ticket`,
    /// after the state, which 10.2 requires to be 待分配 UNASSIGNED).
    ///
    /// # Errors
    /// `Unknown` on storage failure; `Invalid` for a new work order of an unknown home;
    /// `InvalidTransition` for a content change of a work order that is not UNASSIGNED.
    async fn ticket_saved(
        &self,
        tenant: TenantId,
        before: Option<&domain::tickets::Ticket>,
        t: &domain::tickets::Ticket,
    ) -> DomainResult<Vec<NewDelivery>> {
        use super::tickets::WORK_ORDER_STATE_CODES;
        use domain::tickets::{TicketKind, TicketStatus, WorkOrderStatus};
        let Some(integration) = self.work_order_of(tenant, t).await? else { return Ok(Vec::new()) };
        let int = |k: &str| t.fields.get(k).and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()));
        let room_ids = |t: &domain::tickets::Ticket| -> Vec<String> {
            t.fields.get("room_ids").cloned().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default()
        };
        let description =
            |t: &domain::tickets::Ticket| t.fields.get("ticket_description").and_then(Value::as_str).map(str::to_owned);
        let lane = format!("ticket:{}", t.id);
        let Some(ext) = &t.external_id else {
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
            let cmd = Command::AddTicket {
                ticket: t.id,
                home_id,
                service_target: int("service_target").unwrap_or(2),
                service_type: if t.kind == TicketKind::Repair { 2 } else { 1 },
                room_ids: room_ids(t),
                subscribe: t.fields.get("subscribe").cloned().unwrap_or_else(|| json!({})),
                description: description(t),
            };
            // Saved again before Dingding answered an id: the key is taken, nothing is sent twice.
            return Ok(vec![delivery(integration, lane, format!("add_ticket:{}", t.id), &cmd)?]);
        };
        let mut out = Vec::new();
        let code =
            WORK_ORDER_STATE_CODES.iter().find(|(s, _)| *s == t.status.as_str()).and_then(|(_, c)| c.parse().ok());
        let moved = before.is_none_or(|b| b.status != t.status);
        if let Some(state) = code.filter(|_| moved) {
            // Work orders only move forward: each state goes out once, and the key holds it to that.
            let cmd = Command::UpdateTicketState { ticket_id: ext.clone(), state };
            out.push(delivery(integration, lane.clone(), format!("update_ticket_state:{ext}:{state}"), &cmd)?);
        }
        let content = |t: &domain::tickets::Ticket| (room_ids(t), t.fields.get("subscribe").cloned(), description(t));
        if let Some(before) = before
            && content(before) != content(t)
        {
            if t.status != TicketStatus::WorkOrder(WorkOrderStatus::Unassigned) {
                return Err(DomainError::InvalidTransition(format!(
                    "Dingding changes the rooms, booking or description of a work order only while it is \
                     UNASSIGNED (10.2); this one is {}",
                    t.status.as_str()
                )));
            }
            let (room_ids, subscribe, description) = content(t);
            let cmd = Command::UpdateTicket { ticket_id: ext.clone(), room_ids, subscribe, description };
            let key = format!("update_ticket:{ext}:{}", uuid::Uuid::now_v7());
            out.push(delivery(integration, lane, key, &cmd)?);
        }
        Ok(out)
    }

    /// A deleted Dingding work order is deleted there (`delete_ticket`, 10.3); one Dingding
    /// never gave an id for is deleted here only.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn ticket_deleted(&self, tenant: TenantId, t: &domain::tickets::Ticket) -> DomainResult<Vec<NewDelivery>> {
        let Some(integration) = self.work_order_of(tenant, t).await? else { return Ok(Vec::new()) };
        let Some(ext) = &t.external_id else { return Ok(Vec::new()) };
        let cmd = Command::DeleteTicket { ticket_id: ext.clone() };
        Ok(vec![delivery(integration, format!("ticket:{}", t.id), format!("delete_ticket:{ext}"), &cmd)?])
    }
}

/// Homes, rooms and work orders of Dingding integrations are mirrored there.
#[async_trait]
impl Planner for DingdingMirror {
    async fn plan(&self, tenant: TenantId, msg: &Message) -> DomainResult<Vec<NewDelivery>> {
        match msg {
            Message::HomeAdded(home) => self.home_added(tenant, home).await,
            Message::RoomAdded { home, room } => self.room_added(tenant, home, room).await,
            Message::RoomsAdded { home, rooms } => self.rooms_added(tenant, home, rooms).await,
            Message::HomeUpdated { before, after } => self.home_updated(tenant, before, after).await,
            Message::HomeDeleted(home) => self.home_deleted(tenant, home).await,
            Message::RoomUpdated { home, after, .. } => self.room_updated(tenant, home, after).await,
            Message::RoomDeleted { home, room } => self.room_deleted(tenant, home, room).await,
            // A change Dingding made (the sync) is not sent back to it.
            Message::TicketSaved { before, after, by: Some(_) } => {
                self.ticket_saved(tenant, before.as_ref(), after).await
            }
            Message::TicketDeleted { ticket, .. } => self.ticket_deleted(tenant, ticket).await,
            Message::TicketSaved { by: None, .. } => Ok(Vec::new()),
            _ => Ok(Vec::new()),
        }
    }
}
