use super::alarms::add_entry;
use super::deliveries::insert_outbox;
use crate::db::entities::{alarms as a, escalation_policies as p, escalation_steps as s};
use crate::db::{Conn, inserted, map_err, unknown};
use async_trait::async_trait;
use chrono::Utc;
use domain::alarms::escalation::{
    EscalationPolicy, EscalationRepo, EscalationStep, NewEscalationPolicy, NewStep, StepKind,
};
use domain::alarms::{AlarmKind, AlarmSeverity, AlarmState};
use domain::ids::{AlarmId, DeliveryId, EntryId, EscalationPolicyId, IntegrationId, TenantId};
use domain::{DomainError, DomainResult};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Select, Set};

/// Escalation policies and steps in SQL.
#[derive(Clone)]
pub struct SqlEscalationRepo {
    db: Conn,
}

impl SqlEscalationRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db: Conn::Pool(db) }
    }
}

/// Policies of one tenant.
fn scoped(tenant: TenantId) -> Select<p::Entity> {
    p::Entity::find().filter(p::Column::TenantId.eq(tenant.as_uuid()))
}

/// Steps of one tenant.
fn scoped_steps(tenant: TenantId) -> Select<s::Entity> {
    s::Entity::find().filter(s::Column::TenantId.eq(tenant.as_uuid()))
}

const DUPLICATE: &str = "an escalation policy with this name exists";

fn stored(what: &str, e: impl std::fmt::Display) -> DomainError {
    DomainError::Unknown(anyhow::anyhow!("stored escalation {what}: {e}"))
}

fn to_domain(m: p::Model) -> DomainResult<EscalationPolicy> {
    let kinds: Vec<String> = serde_json::from_value(m.kinds).map_err(|e| stored("kinds", e))?;
    let channels: Vec<String> = serde_json::from_value(m.channel_ids).map_err(|e| stored("channels", e))?;
    Ok(EscalationPolicy {
        id: EscalationPolicyId::from_uuid(m.id),
        tenant_id: TenantId::from_uuid(m.tenant_id),
        name: m.name,
        kinds: kinds.iter().map(|k| AlarmKind::parse(k)).collect::<DomainResult<_>>().map_err(|e| stored("kind", e))?,
        min_severity: AlarmSeverity::parse(&m.min_severity).map_err(|e| stored("severity", e))?,
        ack_within_minutes: m.ack_within_minutes,
        escalate_to: m
            .escalate_to
            .as_deref()
            .map(AlarmSeverity::parse)
            .transpose()
            .map_err(|e| stored("severity", e))?,
        renotify_every_minutes: m.renotify_every_minutes,
        channel_ids: channels
            .iter()
            .map(|c| c.parse::<IntegrationId>())
            .collect::<Result<_, _>>()
            .map_err(|e| stored("channel id", e))?,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

fn step_to_domain(m: s::Model) -> DomainResult<EscalationStep> {
    Ok(EscalationStep {
        alarm_id: AlarmId::from_uuid(m.alarm_id),
        policy_id: EscalationPolicyId::from_uuid(m.policy_id),
        kind: StepKind::parse(&m.kind).map_err(|e| stored("step", e))?,
        number: m.number,
        at: m.at,
    })
}

fn columns(input: &NewEscalationPolicy, row: &mut p::ActiveModel) {
    row.name = Set(input.name.clone());
    row.kinds = Set(serde_json::json!(input.kinds.iter().map(AlarmKind::as_str).collect::<Vec<_>>()));
    row.min_severity = Set(input.min_severity.as_str().to_owned());
    row.ack_within_minutes = Set(input.ack_within_minutes);
    row.escalate_to = Set(input.escalate_to.map(|s| s.as_str().to_owned()));
    row.renotify_every_minutes = Set(input.renotify_every_minutes);
    row.channel_ids = Set(serde_json::json!(input.channel_ids.iter().map(ToString::to_string).collect::<Vec<_>>()));
    row.updated_at = Set(Utc::now());
}

#[async_trait]
impl EscalationRepo for SqlEscalationRepo {
    async fn create_policy(&self, tenant: TenantId, input: NewEscalationPolicy) -> DomainResult<EscalationPolicy> {
        let now = Utc::now();
        let mut row = p::ActiveModel {
            id: Set(EscalationPolicyId::new().as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            created_at: Set(now),
            ..Default::default()
        };
        columns(&input, &mut row);
        to_domain(row.insert(&self.db).await.map_err(map_err(DUPLICATE))?)
    }

    async fn update_policy(
        &self,
        tenant: TenantId,
        id: EscalationPolicyId,
        input: NewEscalationPolicy,
    ) -> DomainResult<EscalationPolicy> {
        let found = scoped(tenant)
            .filter(p::Column::Id.eq(id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .ok_or(DomainError::NotFound("escalation policy"))?;
        let mut row: p::ActiveModel = found.into();
        columns(&input, &mut row);
        to_domain(row.update(&self.db).await.map_err(map_err(DUPLICATE))?)
    }

    async fn get_policy(&self, tenant: TenantId, id: EscalationPolicyId) -> DomainResult<Option<EscalationPolicy>> {
        scoped(tenant)
            .filter(p::Column::Id.eq(id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(to_domain)
            .transpose()
    }

    async fn list_policies(&self, tenant: TenantId) -> DomainResult<Vec<EscalationPolicy>> {
        scoped(tenant)
            .order_by_asc(p::Column::Id)
            .all(&self.db)
            .await
            .map_err(unknown)?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    async fn all_policies(&self) -> DomainResult<Vec<EscalationPolicy>> {
        // The periodic check's view across tenants, by design; each step it takes is
        // scoped to the policy's own tenant.
        p::Entity::find()
            .order_by_asc(p::Column::Id)
            .all(&self.db)
            .await
            .map_err(unknown)?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    async fn steps(&self, tenant: TenantId, alarms: &[AlarmId]) -> DomainResult<Vec<EscalationStep>> {
        if alarms.is_empty() {
            return Ok(Vec::new());
        }
        scoped_steps(tenant)
            .filter(s::Column::AlarmId.is_in(alarms.iter().map(AlarmId::as_uuid)))
            .order_by_asc(s::Column::At)
            .order_by_asc(s::Column::Id)
            .all(&self.db)
            .await
            .map_err(unknown)?
            .into_iter()
            .map(step_to_domain)
            .collect()
    }

    async fn record_step(&self, tenant: TenantId, new: NewStep) -> DomainResult<Option<Vec<DeliveryId>>> {
        let NewStep { step, severity, entry, deliveries } = new;
        let txn = self.db.begin_write().await.map_err(unknown)?;
        // Only while the alarm is still RAISED; the update also holds the alarm's row
        // until commit, so an acknowledgement waits for this step or this step sees it.
        let mut upd = a::Entity::update_many().col_expr(a::Column::State, Expr::col(a::Column::State));
        if let Some(s) = severity {
            upd = upd
                .col_expr(a::Column::Severity, Expr::value(s.as_str()))
                .col_expr(a::Column::UpdatedAt, Expr::value(Utc::now()));
        }
        let res = upd
            .filter(a::Column::TenantId.eq(tenant.as_uuid()))
            .filter(a::Column::Id.eq(step.alarm_id.as_uuid()))
            .filter(a::Column::State.eq(AlarmState::Raised.as_str()))
            .exec(&txn)
            .await
            .map_err(unknown)?;
        if res.rows_affected == 0 {
            let _ = txn.rollback().await;
            return Ok(None);
        }
        // Insert-if-absent on (alarm, policy, kind, number): whoever inserts, sends.
        let row = s::ActiveModel {
            id: Set(EntryId::new().as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            alarm_id: Set(step.alarm_id.as_uuid()),
            policy_id: Set(step.policy_id.as_uuid()),
            kind: Set(step.kind.as_str().to_owned()),
            number: Set(step.number),
            at: Set(step.at),
        };
        let written = inserted(
            s::Entity::insert_many([row])
                .on_conflict_do_nothing_on([
                    s::Column::AlarmId,
                    s::Column::PolicyId,
                    s::Column::Kind,
                    s::Column::Number,
                ])
                .exec_with_returning_many(&txn)
                .await,
        )?;
        if written.is_empty() {
            let _ = txn.rollback().await;
            return Ok(None);
        }
        let (kind, text) = entry;
        add_entry(&txn, tenant, step.alarm_id, kind, None, text, step.at).await?;
        let sent = insert_outbox(&txn, tenant, deliveries).await?;
        txn.commit().await.map_err(unknown)?;
        Ok(Some(sent.into_iter().map(|d| d.id).collect()))
    }
}
