use super::deliveries::insert_outbox;
use crate::db::entities::{alarm_entries as e, alarms as a, devices as d};
use crate::db::page::{Order, fetch_page_ordered, try_map};
use crate::db::{Conn, unknown};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::alarms::{
    Alarm, AlarmFilter, AlarmKind, AlarmRepo, AlarmSeverity, AlarmState, RaiseAlarm, RaiseOutcome, Step, TimelineEntry,
    TimelineKind,
};
use domain::deliveries::Outbox;
use domain::ids::{AlarmId, DeliveryId, DeviceId, EntryId, InboundEventId, IntegrationId, TenantId, TicketId, UserId};
use domain::{DomainError, DomainResult, Page, PageRequest};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, Select, Set, Statement,
};

/// Alarms and their timelines in SQL.
#[derive(Clone)]
pub struct SqlAlarmRepo {
    db: Conn,
}

impl SqlAlarmRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db: Conn::Pool(db) }
    }

    /// The same repository writing through a unit of work's transaction.
    pub(crate) fn within(db: Conn) -> Self {
        Self { db }
    }
}

fn scoped(tenant: TenantId) -> Select<a::Entity> {
    a::Entity::find().filter(a::Column::TenantId.eq(tenant.as_uuid()))
}

fn stored<T>(r: DomainResult<T>) -> DomainResult<T> {
    r.map_err(|e| DomainError::Unknown(anyhow::anyhow!("stored alarm value: {e}")))
}

fn to_domain(m: a::Model) -> DomainResult<Alarm> {
    Ok(Alarm {
        id: AlarmId::from_uuid(m.id),
        tenant_id: TenantId::from_uuid(m.tenant_id),
        device_id: m.device_id.map(DeviceId::from_uuid),
        integration_id: m.integration_id.map(IntegrationId::from_uuid),
        ticket_id: m.ticket_id.map(TicketId::from_uuid),
        kind: stored(AlarmKind::parse(&m.kind))?,
        severity: stored(AlarmSeverity::parse(&m.severity))?,
        state: stored(AlarmState::parse(&m.state))?,
        message: m.message,
        vendor_code: m.vendor_code,
        vendor_text: m.vendor_text,
        inbound_event_id: m.inbound_event_id.map(InboundEventId::from_uuid),
        occurrences: m.occurrences,
        raised_at: m.raised_at,
        last_seen_at: m.last_seen_at,
        acknowledged_at: m.acknowledged_at,
        acknowledged_by: m.acknowledged_by.map(UserId::from_uuid),
        cleared_at: m.cleared_at,
        cleared_by: m.cleared_by.map(UserId::from_uuid),
        clear_note: m.clear_note,
        attributes: m.attributes,
        updated_at: m.updated_at,
    })
}

fn entry_to_domain(m: e::Model) -> DomainResult<TimelineEntry> {
    Ok(TimelineEntry {
        id: EntryId::from_uuid(m.id),
        alarm_id: AlarmId::from_uuid(m.alarm_id),
        at: m.at,
        actor: m.actor_id.map(UserId::from_uuid),
        kind: stored(TimelineKind::parse(&m.kind))?,
        text: m.text,
    })
}

pub(crate) async fn add_entry(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    alarm: AlarmId,
    kind: TimelineKind,
    actor: Option<UserId>,
    text: String,
    at: DateTime<Utc>,
) -> DomainResult<TimelineEntry> {
    let row = e::ActiveModel {
        id: Set(EntryId::new().as_uuid()),
        tenant_id: Set(tenant.as_uuid()),
        alarm_id: Set(alarm.as_uuid()),
        at: Set(at),
        actor_id: Set(actor.map(|u| u.as_uuid())),
        kind: Set(kind.as_str().to_owned()),
        text: Set(text),
    }
    .insert(db)
    .await
    .map_err(unknown)?;
    entry_to_domain(row)
}

impl SqlAlarmRepo {
    async fn open(
        &self,
        tenant: TenantId,
        input: &RaiseAlarm,
        outbox: Outbox<'_, (Alarm, RaiseOutcome)>,
    ) -> DomainResult<Option<(Alarm, Vec<DeliveryId>)>> {
        let home_id = match input.device_id {
            Some(dev) => d::Entity::find()
                .filter(d::Column::TenantId.eq(tenant.as_uuid()))
                .filter(d::Column::Id.eq(dev.as_uuid()))
                .one(&self.db)
                .await
                .map_err(unknown)?
                .and_then(|d| d.home_id),
            None => None,
        };
        let id = AlarmId::new();
        let now = Utc::now();
        let txn = self.db.begin_write().await.map_err(unknown)?;
        let inserted = a::ActiveModel {
            id: Set(id.as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            device_id: Set(input.device_id.map(|d| d.as_uuid())),
            home_id: Set(home_id),
            integration_id: Set(input.integration_id.map(|i| i.as_uuid())),
            ticket_id: Set(input.ticket_id.map(|t| t.as_uuid())),
            kind: Set(input.kind.as_str().to_owned()),
            severity: Set(input.severity.as_str().to_owned()),
            state: Set(AlarmState::Raised.as_str().to_owned()),
            message: Set(input.message.clone()),
            vendor_code: Set(input.vendor_code.clone()),
            vendor_text: Set(input.vendor_text.clone()),
            inbound_event_id: Set(input.inbound_event_id.map(|i| i.as_uuid())),
            occurrences: Set(1),
            raised_at: Set(input.raised_at),
            last_seen_at: Set(input.raised_at),
            acknowledged_at: Set(None),
            acknowledged_by: Set(None),
            cleared_at: Set(None),
            cleared_by: Set(None),
            clear_note: Set(None),
            attributes: Set(input.attributes.clone()),
            open_key: Set(Some(input.open_key())),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await;
        match inserted {
            Ok(row) => {
                let text = format!("raised {}: {}", input.severity.as_str(), input.message);
                add_entry(&txn, tenant, id, TimelineKind::Raised, None, text, now).await?;
                let opened = (to_domain(row)?, RaiseOutcome::Opened);
                let sent = insert_outbox(&txn, tenant, outbox(&opened)).await?;
                txn.commit().await.map_err(unknown)?;
                Ok(Some((opened.0, sent.into_iter().map(|d| d.id).collect())))
            }
            // Another raise opened it first: the caller counts an occurrence instead.
            Err(err) if matches!(err.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => {
                let _ = txn.rollback().await;
                Ok(None)
            }
            Err(err) => Err(unknown(err)),
        }
    }

    /// A repeat that plans no delivery, on PostgreSQL: the update and its timeline
    /// entries in one statement (data-modifying CTEs).
    async fn repeat_pg(
        &self,
        tenant: TenantId,
        current: &Alarm,
        input: &RaiseAlarm,
        now: DateTime<Utc>,
    ) -> DomainResult<Alarm> {
        let mut values: Vec<sea_orm::Value> = vec![
            tenant.as_uuid().into(),
            current.id.as_uuid().into(),
            now.into(),
            Ord::max(input.raised_at, current.last_seen_at).into(),
            input.severity.as_str().into(),
            input.message.clone().into(),
            input.vendor_code.clone().or(current.vendor_code.clone()).into(),
            input.vendor_text.clone().or(current.vendor_text.clone()).into(),
            EntryId::new().as_uuid().into(),
            TimelineKind::Repeated.as_str().into(),
        ];
        let mut entries =
            "SELECT $9::uuid, tenant_id, id, $3::timestamptz, NULL::uuid, $10::text, $6::text FROM u".to_owned();
        if current.severity != input.severity {
            let text = format!("{} -> {}", current.severity.as_str(), input.severity.as_str());
            values.extend([
                EntryId::new().as_uuid().into(),
                TimelineKind::SeverityChanged.as_str().into(),
                text.into(),
            ]);
            entries.push_str(
                " UNION ALL SELECT $11::uuid, tenant_id, id, $3::timestamptz, NULL::uuid, $12::text, $13::text FROM u",
            );
        }
        let sql = format!(
            "WITH u AS (UPDATE alarms SET occurrences = occurrences + 1, last_seen_at = $4, severity = $5, \
             message = $6, vendor_code = $7, vendor_text = $8, updated_at = $3 \
             WHERE tenant_id = $1 AND id = $2 RETURNING *), \
             t AS (INSERT INTO alarm_entries (id, tenant_id, alarm_id, at, actor_id, kind, text) {entries}) \
             SELECT * FROM u"
        );
        let row = a::Model::find_by_statement(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .ok_or(DomainError::NotFound("alarm"))?;
        to_domain(row)
    }

    async fn repeat(
        &self,
        tenant: TenantId,
        current: Alarm,
        input: &RaiseAlarm,
        outbox: Outbox<'_, (Alarm, RaiseOutcome)>,
    ) -> DomainResult<(Alarm, Vec<DeliveryId>)> {
        let now = Utc::now();
        let last_seen = Ord::max(input.raised_at, current.last_seen_at);
        let vendor_code = input.vendor_code.clone().or(current.vendor_code.clone());
        let vendor_text = input.vendor_text.clone().or(current.vendor_text.clone());
        if self.db.get_database_backend() == DbBackend::Postgres {
            // The alarm as the update will leave it: when it plans no delivery (the usual
            // case: repeats notify no webhook), update and timeline go in one statement.
            let predicted = Alarm {
                occurrences: current.occurrences + 1,
                last_seen_at: last_seen,
                severity: input.severity,
                message: input.message.clone(),
                vendor_code: vendor_code.clone(),
                vendor_text: vendor_text.clone(),
                updated_at: now,
                ..current.clone()
            };
            if outbox(&(predicted, RaiseOutcome::Repeated)).is_empty() {
                return Ok((self.repeat_pg(tenant, &current, input, now).await?, Vec::new()));
            }
        }
        let txn = self.db.begin_write().await.map_err(unknown)?;
        let row = a::Entity::update_many()
            .col_expr(a::Column::Occurrences, Expr::col(a::Column::Occurrences).add(1))
            .col_expr(a::Column::LastSeenAt, Expr::value(last_seen))
            .col_expr(a::Column::Severity, Expr::value(input.severity.as_str()))
            .col_expr(a::Column::Message, Expr::value(input.message.clone()))
            .col_expr(a::Column::VendorCode, Expr::value(vendor_code))
            .col_expr(a::Column::VendorText, Expr::value(vendor_text))
            .col_expr(a::Column::UpdatedAt, Expr::value(now))
            .filter(a::Column::TenantId.eq(tenant.as_uuid()))
            .filter(a::Column::Id.eq(current.id.as_uuid()))
            .exec_with_returning(&txn)
            .await
            .map_err(unknown)?
            .into_iter()
            .next()
            .ok_or(DomainError::NotFound("alarm"))?;
        add_entry(&txn, tenant, current.id, TimelineKind::Repeated, None, input.message.clone(), now).await?;
        if current.severity != input.severity {
            let text = format!("{} -> {}", current.severity.as_str(), input.severity.as_str());
            add_entry(&txn, tenant, current.id, TimelineKind::SeverityChanged, None, text, now).await?;
        }
        let repeated = (to_domain(row)?, RaiseOutcome::Repeated);
        let sent = insert_outbox(&txn, tenant, outbox(&repeated)).await?;
        txn.commit().await.map_err(unknown)?;
        Ok((repeated.0, sent.into_iter().map(|d| d.id).collect()))
    }
}

#[async_trait]
impl AlarmRepo for SqlAlarmRepo {
    async fn raise(
        &self,
        tenant: TenantId,
        input: RaiseAlarm,
        outbox: Outbox<'_, (Alarm, RaiseOutcome)>,
    ) -> DomainResult<(Alarm, RaiseOutcome, Vec<DeliveryId>)> {
        // Two rounds: a concurrent clear can close the alarm we were about to repeat.
        for _ in 0..3 {
            if let Some(current) = self.find_open(tenant, &input.open_key()).await? {
                let (alarm, sent) = self.repeat(tenant, current, &input, outbox).await?;
                return Ok((alarm, RaiseOutcome::Repeated, sent));
            }
            if let Some((alarm, sent)) = self.open(tenant, &input, outbox).await? {
                return Ok((alarm, RaiseOutcome::Opened, sent));
            }
        }
        Err(DomainError::Unknown(anyhow::anyhow!("alarm raise kept racing")))
    }

    async fn get(&self, tenant: TenantId, id: AlarmId) -> DomainResult<Option<Alarm>> {
        scoped(tenant)
            .filter(a::Column::Id.eq(id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(to_domain)
            .transpose()
    }

    async fn find_open(&self, tenant: TenantId, open_key: &str) -> DomainResult<Option<Alarm>> {
        scoped(tenant)
            .filter(a::Column::OpenKey.eq(open_key))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(to_domain)
            .transpose()
    }

    async fn list(&self, tenant: TenantId, f: &AlarmFilter, page: PageRequest) -> DomainResult<Page<Alarm>> {
        let mut q = scoped(tenant);
        if let Some(s) = f.state {
            q = q.filter(a::Column::State.eq(s.as_str()));
        }
        if f.open {
            q = q.filter(a::Column::State.ne(AlarmState::Cleared.as_str()));
        }
        if let Some(s) = f.severity {
            q = q.filter(a::Column::Severity.eq(s.as_str()));
        }
        if let Some(dv) = f.device_id {
            q = q.filter(a::Column::DeviceId.eq(dv.as_uuid()));
        }
        if let Some(h) = f.home_id {
            // The home the device is in now, not the one it was in when the alarm opened.
            let in_home = sea_orm::sea_query::Query::select()
                .column(d::Column::Id)
                .from(d::Entity)
                .and_where(d::Column::TenantId.eq(tenant.as_uuid()))
                .and_where(d::Column::HomeId.eq(h.as_uuid()))
                .to_owned();
            q = q.filter(a::Column::DeviceId.in_subquery(in_home));
        }
        if let Some(i) = f.integration_id {
            q = q.filter(a::Column::IntegrationId.eq(i.as_uuid()));
        }
        if let Some(k) = &f.kind {
            q = q.filter(a::Column::Kind.eq(k.as_str()));
        }
        if let Some(from) = f.from {
            q = q.filter(a::Column::RaisedAt.gte(from));
        }
        if let Some(to) = f.to {
            q = q.filter(a::Column::RaisedAt.lt(to));
        }
        let page = fetch_page_ordered(&self.db, q, a::Column::Id, page, Order::NewestFirst).await.map_err(unknown)?;
        try_map(page, to_domain)
    }

    async fn transition(
        &self,
        tenant: TenantId,
        id: AlarmId,
        step: Step,
        outbox: Outbox<'_, Alarm>,
    ) -> DomainResult<(Alarm, Vec<DeliveryId>)> {
        let Step { from, to, actor, note, at } = step;
        let txn = self.db.begin_write().await.map_err(unknown)?;
        let mut upd = a::Entity::update_many()
            .col_expr(a::Column::State, Expr::value(to.as_str()))
            .col_expr(a::Column::UpdatedAt, Expr::value(at));
        let actor_uuid = actor.map(|u| u.as_uuid());
        match to {
            AlarmState::Acknowledged => {
                upd = upd
                    .col_expr(a::Column::AcknowledgedAt, Expr::value(Some(at)))
                    .col_expr(a::Column::AcknowledgedBy, Expr::value(actor_uuid));
            }
            AlarmState::Cleared => {
                upd = upd
                    .col_expr(a::Column::ClearedAt, Expr::value(Some(at)))
                    .col_expr(a::Column::ClearedBy, Expr::value(actor_uuid))
                    .col_expr(a::Column::ClearNote, Expr::value(note.clone()))
                    .col_expr(a::Column::OpenKey, Expr::value(Option::<String>::None));
            }
            AlarmState::Raised => {}
        }
        let res = upd
            .filter(a::Column::TenantId.eq(tenant.as_uuid()))
            .filter(a::Column::Id.eq(id.as_uuid()))
            .filter(a::Column::State.eq(from.as_str()))
            .exec(&txn)
            .await
            .map_err(unknown)?;
        if res.rows_affected == 0 {
            let _ = txn.rollback().await;
            return match self.get(tenant, id).await? {
                Some(a) => Err(DomainError::InvalidTransition(format!("{} -> {}", a.state.as_str(), to.as_str()))),
                None => Err(DomainError::NotFound("alarm")),
            };
        }
        let kind = if to == AlarmState::Cleared { TimelineKind::Cleared } else { TimelineKind::Acknowledged };
        add_entry(&txn, tenant, id, kind, actor, note.unwrap_or_default(), at).await?;
        let row = scoped(tenant)
            .filter(a::Column::Id.eq(id.as_uuid()))
            .one(&txn)
            .await
            .map_err(unknown)?
            .ok_or(DomainError::NotFound("alarm"))?;
        let alarm = to_domain(row)?;
        let sent = insert_outbox(&txn, tenant, outbox(&alarm)).await?;
        txn.commit().await.map_err(unknown)?;
        Ok((alarm, sent.into_iter().map(|d| d.id).collect()))
    }

    async fn comment(&self, tenant: TenantId, id: AlarmId, actor: UserId, text: String) -> DomainResult<TimelineEntry> {
        self.get(tenant, id).await?.ok_or(DomainError::NotFound("alarm"))?;
        add_entry(&self.db, tenant, id, TimelineKind::Comment, Some(actor), text, Utc::now()).await
    }

    async fn timeline(&self, tenant: TenantId, id: AlarmId) -> DomainResult<Vec<TimelineEntry>> {
        let rows = e::Entity::find()
            .filter(e::Column::TenantId.eq(tenant.as_uuid()))
            .filter(e::Column::AlarmId.eq(id.as_uuid()))
            .order_by_asc(e::Column::Id)
            .all(&self.db)
            .await
            .map_err(unknown)?;
        rows.into_iter().map(entry_to_domain).collect()
    }

    async fn timelines(&self, tenant: TenantId, ids: &[AlarmId]) -> DomainResult<Vec<TimelineEntry>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let rows = e::Entity::find()
            .filter(e::Column::TenantId.eq(tenant.as_uuid()))
            .filter(e::Column::AlarmId.is_in(ids.iter().map(|i| i.as_uuid())))
            .order_by_asc(e::Column::Id)
            .all(&self.db)
            .await
            .map_err(unknown)?;
        rows.into_iter().map(entry_to_domain).collect()
    }
}
