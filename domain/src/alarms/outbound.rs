//! What alarm changes send out: one delivery per `WEBHOOK` integration of the tenant for
//! each alarm raised, acknowledged or cleared (a repeat sends nothing). The vendor modules
//! plan their own beside these (an elevator fault notice) as they come. Deliveries are planned here and
//! written by the alarm repository in the change's own transaction.

use super::{Alarm, AlarmKind, RaiseOutcome};
use crate::DomainResult;
use crate::deliveries::{DeliveryKind, NewDelivery};
use crate::ids::IntegrationId;
use crate::ids::{TenantId, TicketId};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;

/// Delivery kind of alarm webhooks.
pub const WEBHOOK_ALARM: &str = "webhook.alarm";

/// The alarm events webhooks receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmEvent {
    Raised,
    Acknowledged,
    Cleared,
}

impl AlarmEvent {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Raised => "alarm.raised",
            Self::Acknowledged => "alarm.acknowledged",
            Self::Cleared => "alarm.cleared",
        }
    }
}

/// The webhook body of an alarm event.
pub fn webhook_payload(alarm: &Alarm, event: AlarmEvent) -> Value {
    json!({
        "event": event.as_str(),
        "alarm": {
            "id": alarm.id.to_string(),
            "kind": alarm.kind.as_str(),
            "severity": alarm.severity.as_str(),
            "state": alarm.state.as_str(),
            "message": alarm.message,
            "deviceId": alarm.device_id.map(|d| d.to_string()),
            "integrationId": alarm.integration_id.map(|i| i.to_string()),
            "ticketId": alarm.ticket_id.map(|t| t.to_string()),
            "vendorCode": alarm.vendor_code,
            "occurrences": alarm.occurrences,
            "raisedAt": alarm.raised_at.to_rfc3339(),
            "clearedAt": alarm.cleared_at.map(|t| t.to_rfc3339()),
            "attributes": alarm.attributes,
        }
    })
}

/// The deliveries one alarm event causes, for the tenant's webhook integrations.
/// A webhook's own `DELIVERY_FAILED` alarm is not sent to it (it would only fail again).
pub fn plan(webhooks: &[IntegrationId], alarm: &Alarm, event: AlarmEvent) -> Vec<NewDelivery> {
    webhooks
        .iter()
        .filter(|w| !(alarm.kind.as_str() == "DELIVERY_FAILED" && alarm.integration_id == Some(**w)))
        .map(|w| NewDelivery {
            integration_id: *w,
            kind: DeliveryKind::from_static(WEBHOOK_ALARM),
            idempotency_key: format!("{}:{}", event.as_str(), alarm.id),
            // The events of one alarm arrive in the order they happened.
            order_key: Some(format!("alarm:{}", alarm.id)),
            payload: webhook_payload(alarm, event),
            subject: None,
        })
        .collect()
}

/// The event a raise is, if it is one webhooks hear about.
pub const fn raise_event(outcome: RaiseOutcome) -> Option<AlarmEvent> {
    match outcome {
        RaiseOutcome::Opened => Some(AlarmEvent::Raised),
        RaiseOutcome::Repeated => None,
    }
}

/// The deliveries a vendor module owes for an alarm's raise or clear, planned over the
/// stored alarm inside the change's transaction.
pub type RelayPlan = Arc<dyn Fn(&Alarm, AlarmEvent) -> Vec<NewDelivery> + Send + Sync>;

/// What an alarm is about, as a relay sees it before the change is written.
#[derive(Debug, Clone, Copy)]
pub struct AlarmSubject<'a> {
    pub ticket_id: Option<TicketId>,
    pub kind: &'a AlarmKind,
    pub attributes: &'a Value,
}

/// A vendor module that sends some alarms' raises and clears on (a regulator that takes a
/// work permit's gas and personnel alarms). Asked before each raise and clear.
#[async_trait]
pub trait AlarmRelay: Send + Sync {
    /// The plan for this alarm, or `None` when it is none of this module's business.
    ///
    /// # Errors
    /// `Invalid` naming the attribute the receiver needs and the alarm lacks (the raise is
    /// then refused); `Unknown` on storage failure.
    async fn route(&self, tenant: TenantId, alarm: AlarmSubject<'_>) -> DomainResult<Option<RelayPlan>>;
}
