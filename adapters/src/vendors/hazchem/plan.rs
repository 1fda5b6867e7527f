//! What a change owes the regulator: a permit's create or change, a permit's attachment,
//! a permit's gas-analysis or personnel alarm raised or cleared.

use super::{DEPARTURE_ALARM, GAS_ALARM, GAS_ANALYSIS, PERSONNEL_DEPARTURE, TICKET_FILE, WORK_TICKET, wire};
use async_trait::async_trait;
use domain::alarms::outbound::{AlarmEvent, AlarmRelay, AlarmSubject, RelayPlan};
use domain::deliveries::{DeliveryKind, NewDelivery};
use domain::ids::{IntegrationId, TenantId};
use domain::integrations::{IntegrationKind, IntegrationRepo};
use domain::outbound::{Message, Planner};
use domain::tickets::{Ticket, TicketKind, TicketRepo};
use domain::{DomainError, DomainResult};
use serde_json::{Value, json};
use std::sync::Arc;

/// The `HAZCHEM` integration a ticket is uploaded through, if any.
async fn hazchem_of(
    integrations: &dyn IntegrationRepo,
    tenant: TenantId,
    t: &Ticket,
) -> DomainResult<Option<IntegrationId>> {
    if t.kind != TicketKind::WorkPermit {
        return Ok(None);
    }
    let Some(id) = t.integration_id else { return Ok(None) };
    Ok(integrations.get(tenant, id).await?.filter(|i| i.kind == IntegrationKind::Hazchem).map(|i| i.id))
}

/// The one lane of an integration's permit uploads: a permit's versions leave in the
/// order they were saved, and what piles up behind a failing upload rides with its retry.
pub fn permit_lane(integration: IntegrationId) -> String {
    format!("hazchem:{integration}:permits")
}

/// Plans permit uploads and attachment uploads.
pub struct HazchemPlanner {
    integrations: Arc<dyn IntegrationRepo>,
}

impl HazchemPlanner {
    pub fn new(integrations: Arc<dyn IntegrationRepo>) -> Self {
        Self { integrations }
    }
}

fn key() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[async_trait]
impl Planner for HazchemPlanner {
    async fn plan(&self, tenant: TenantId, msg: &Message) -> DomainResult<Vec<NewDelivery>> {
        match msg {
            Message::TicketSaved { after, .. } => {
                let Some(integration) = hazchem_of(self.integrations.as_ref(), tenant, after).await? else {
                    return Ok(Vec::new());
                };
                Ok(vec![NewDelivery {
                    integration_id: integration,
                    kind: DeliveryKind::from_static(WORK_TICKET),
                    idempotency_key: key(),
                    order_key: Some(permit_lane(integration)),
                    // The permit as it is when sent goes: a later change is never overtaken.
                    payload: json!({"ticketId": after.id.to_string(), "version": after.updated_at.to_rfc3339()}),
                    subject: Some(format!("ticket:{}", after.id)),
                }])
            }
            Message::TicketFileAttached { ticket, file } => {
                let Some(integration) = hazchem_of(self.integrations.as_ref(), tenant, ticket).await? else {
                    return Ok(Vec::new());
                };
                Ok(vec![NewDelivery {
                    integration_id: integration,
                    kind: DeliveryKind::from_static(TICKET_FILE),
                    idempotency_key: key(),
                    order_key: Some(format!("hazchem:{integration}:files:{}", ticket.id)),
                    payload: json!({"ticketId": ticket.id.to_string(), "fileId": file.id.to_string(),
                        "filename": file.filename, "size": file.size}),
                    subject: Some(format!("ticket:{}", ticket.id)),
                }])
            }
            _ => Ok(Vec::new()),
        }
    }
}

/// Sends a work permit's gas-analysis and personnel alarms to the regulator.
pub struct HazchemAlarms {
    tickets: Arc<dyn TicketRepo>,
    integrations: Arc<dyn IntegrationRepo>,
}

impl HazchemAlarms {
    pub fn new(tickets: Arc<dyn TicketRepo>, integrations: Arc<dyn IntegrationRepo>) -> Self {
        Self { tickets, integrations }
    }
}

/// An attribute as text (numbers taken as written).
fn text(attributes: &Value, key: &str) -> String {
    match attributes.get(key) {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn bad(key: &str, message: impl Into<String>) -> DomainError {
    DomainError::invalid(format!("attributes.{key}"), message)
}

fn one_of(attributes: &Value, key: &str, allowed: &[&str], required: bool) -> DomainResult<()> {
    let v = text(attributes, key);
    if (v.is_empty() && !required) || allowed.contains(&v.as_str()) {
        return Ok(());
    }
    Err(bad(key, format!("one of {}", allowed.join(", "))))
}

fn required_text(attributes: &Value, key: &str) -> DomainResult<()> {
    let v = text(attributes, key);
    if v.is_empty() || v.chars().count() > 64 {
        return Err(bad(key, "required, at most 64 characters"));
    }
    Ok(())
}

fn coordinate(attributes: &Value, key: &str, max: f64) -> DomainResult<()> {
    match text(attributes, key).parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() <= max => Ok(()),
        _ => Err(bad(key, format!("a WGS84 coordinate between -{max} and {max}"))),
    }
}

/// Seed 004 二.4 / 二.5: what each alarm must carry in its attributes.
fn check(kind: &str, attributes: &Value) -> DomainResult<()> {
    if kind == GAS_ANALYSIS {
        // 1 未作采样分析, 2 采样分析超过时间限制, 3 采样分析超阈值
        return one_of(attributes, "alarm_type", &["1", "2", "3"], true);
    }
    // 1 作业人员擅自离场, 2 作业无关人员擅自进场 (0 is the seed's clear, sent as a clear).
    one_of(attributes, "alarm_type", &["1", "2"], true)?;
    required_text(attributes, "person_name")?;
    required_text(attributes, "card_no")?;
    one_of(attributes, "person_type", &["1", "2"], false)?;
    coordinate(attributes, "alarm_lng", 180.0)?;
    coordinate(attributes, "alarm_lat", 90.0)
}

#[async_trait]
impl AlarmRelay for HazchemAlarms {
    async fn route(&self, tenant: TenantId, alarm: AlarmSubject<'_>) -> DomainResult<Option<RelayPlan>> {
        let kind = match alarm.kind.as_str() {
            GAS_ANALYSIS => GAS_ALARM,
            PERSONNEL_DEPARTURE => DEPARTURE_ALARM,
            _ => return Ok(None),
        };
        let Some(ticket) = alarm.ticket_id else { return Ok(None) };
        let Some(ticket) = self.tickets.get(tenant, ticket).await? else { return Ok(None) };
        let Some(integration) = hazchem_of(self.integrations.as_ref(), tenant, &ticket).await? else {
            return Ok(None);
        };
        check(alarm.kind.as_str(), alarm.attributes)?;
        let permit = wire::permit_id(&ticket);
        let plan: RelayPlan = Arc::new(move |a, event| {
            if event == AlarmEvent::Acknowledged {
                return Vec::new();
            }
            let item = if kind == GAS_ALARM {
                wire::gas_alarm_item(a, &permit)
            } else {
                wire::departure_alarm_item(a, &permit)
            };
            vec![NewDelivery {
                integration_id: integration,
                kind: DeliveryKind::from_static(kind),
                idempotency_key: format!("{}:{}", event.as_str(), a.id),
                // The clear never overtakes the raise.
                order_key: Some(format!("alarm:{}", a.id)),
                payload: json!({"item": item}),
                subject: Some(format!("alarm:{}", a.id)),
            }]
        });
        Ok(Some(plan))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_attributes_are_checked_by_name() {
        let field = |kind, attrs: Value| match check(kind, &attrs) {
            Err(DomainError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert!(check(GAS_ANALYSIS, &json!({"alarm_type": "3"})).is_ok());
        assert!(check(GAS_ANALYSIS, &json!({"alarm_type": 2})).is_ok());
        assert_eq!(field(GAS_ANALYSIS, json!({"alarm_type": "4"})), "attributes.alarm_type");
        assert_eq!(field(GAS_ANALYSIS, json!({})), "attributes.alarm_type");
        let person = json!({"alarm_type": "1", "person_name": "张三", "card_no": "47cde602",
            "alarm_lng": "120.17930673061386", "alarm_lat": "36.04385097144345"});
        assert!(check(PERSONNEL_DEPARTURE, &person).is_ok());
        let mut p = person.clone();
        p["alarm_lat"] = json!("91");
        assert_eq!(field(PERSONNEL_DEPARTURE, p), "attributes.alarm_lat");
        let mut p = person.clone();
        p["card_no"] = json!(" ");
        assert_eq!(field(PERSONNEL_DEPARTURE, p), "attributes.card_no");
        let mut p = person.clone();
        p["person_type"] = json!("3");
        assert_eq!(field(PERSONNEL_DEPARTURE, p), "attributes.person_type");
        let mut p = person;
        p["alarm_type"] = json!("0");
        assert_eq!(field(PERSONNEL_DEPARTURE, p), "attributes.alarm_type");
    }
}
