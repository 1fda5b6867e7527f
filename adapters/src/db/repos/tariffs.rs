use crate::db::entities::{
    daily_usage as du, ledger_entries as l, meter_accounts as m, price_assignments as p, tariffs as t,
};
use crate::db::page::{Order, fetch_page_ordered, try_map};
use crate::db::{Conn, map_err, unknown};
use async_trait::async_trait;
use chrono::Utc;
use domain::ids::{AccountId, DeviceId, EntryId, HomeId, IntegrationId, RoomId, TariffId, TenantId, UserId};
use domain::tariffs::{
    Account, AccountSteps, BillingModel, DailyUsage, LedgerDraft, LedgerEntry, LedgerKind, MeterAccount,
    MeterAccountRepo, MeterState, NewTariff, PayModel, PriceAssignment, PriceScope, PriceWay, Tariff, TariffFilter,
    TariffRepo, Tiers, Utility, parse_decimal,
};
use domain::{DomainError, DomainResult, Page, PageRequest};
use rust_decimal::Decimal;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Select, Set, Statement,
};

/// Tariffs, meter accounts and ledgers in SQL. Decimals are stored as exact text.
#[derive(Clone)]
pub struct SqlTariffRepo {
    db: Conn,
}

impl SqlTariffRepo {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db: Conn::Pool(db) }
    }

    /// The repository of a unit of work: it reads and writes through the unit's
    /// transaction, and `lock_by_device` locks the account row (PostgreSQL).
    pub(crate) fn within(db: Conn) -> Self {
        Self { db }
    }
}

fn tariffs(tenant: TenantId) -> Select<t::Entity> {
    t::Entity::find().filter(t::Column::TenantId.eq(tenant.as_uuid()))
}

fn accounts(tenant: TenantId) -> Select<m::Entity> {
    m::Entity::find().filter(m::Column::TenantId.eq(tenant.as_uuid()))
}

fn entries(tenant: TenantId) -> Select<l::Entity> {
    l::Entity::find().filter(l::Column::TenantId.eq(tenant.as_uuid()))
}

fn stored<T>(r: DomainResult<T>) -> DomainResult<T> {
    r.map_err(|e| DomainError::Unknown(anyhow::anyhow!("stored tariff value: {e}")))
}

/// The one text form of a stored decimal, so compare-and-set can compare text.
fn text(d: Decimal) -> String {
    d.normalize().to_string()
}

fn dec(field: &str, s: &str) -> DomainResult<Decimal> {
    stored(parse_decimal(field, s))
}

fn tariff(r: t::Model) -> DomainResult<Tariff> {
    let tiers: Tiers = serde_json::from_value(r.tiers).map_err(|e| DomainError::Unknown(e.into()))?;
    Ok(Tariff {
        id: TariffId::from_uuid(r.id),
        tenant_id: TenantId::from_uuid(r.tenant_id),
        integration_id: r.integration_id.map(IntegrationId::from_uuid),
        code: r.code,
        version: r.version,
        utility: stored(Utility::parse(&r.utility))?,
        tiers,
        cycle_months: r.cycle_months,
        effective_from: r.effective_from,
        clear_cycle: r.clear_cycle,
        created_at: r.created_at,
    })
}

fn account(r: m::Model) -> DomainResult<MeterAccount> {
    Ok(MeterAccount {
        id: AccountId::from_uuid(r.id),
        tenant_id: TenantId::from_uuid(r.tenant_id),
        device_id: DeviceId::from_uuid(r.device_id),
        tariff_id: r.tariff_id.map(TariffId::from_uuid),
        account: Account {
            pay_model: stored(PayModel::parse(&r.pay_model))?,
            billing_model: stored(BillingModel::parse(&r.billing_model))?,
            balance: dec("balance", &r.balance)?,
            overdraft: dec("overdraft", &r.overdraft)?,
            cycle_usage: dec("cycleUsage", &r.cycle_usage)?,
        },
        cycle_started_at: r.cycle_started_at,
        meter: MeterState {
            last_reading: r.last_reading.as_deref().map(|v| dec("lastReading", v)).transpose()?,
            last_read_at: r.last_read_at,
            billed_tariff_id: r.billed_tariff_id.map(TariffId::from_uuid),
            cut_off: r.cut_off,
        },
        version: r.version,
        updated_at: r.updated_at,
    })
}

fn entry(r: l::Model) -> DomainResult<LedgerEntry> {
    Ok(LedgerEntry {
        id: EntryId::from_uuid(r.id),
        account_id: AccountId::from_uuid(r.account_id),
        kind: stored(LedgerKind::parse(&r.kind))?,
        amount: dec("amount", &r.amount)?,
        volume: r.volume.as_deref().map(|v| dec("volume", v)).transpose()?,
        balance_after: dec("balanceAfter", &r.balance_after)?,
        reference: r.reference,
        created_by: r.created_by.map(UserId::from_uuid),
        at: r.at,
        detail: r
            .detail
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| DomainError::Unknown(e.into()))?,
    })
}

#[async_trait]
impl TariffRepo for SqlTariffRepo {
    async fn create(&self, tenant: TenantId, input: NewTariff) -> DomainResult<Tariff> {
        let last: Option<i32> = tariffs(tenant)
            .filter(t::Column::Code.eq(input.code.as_str()))
            .select_only()
            .column_as(t::Column::Version.max(), "v")
            .into_tuple::<Option<i32>>()
            .one(&self.db)
            .await
            .map_err(unknown)?
            .flatten();
        let tiers = serde_json::to_value(&input.tiers).map_err(|e| DomainError::Unknown(e.into()))?;
        let row = t::ActiveModel {
            id: Set(TariffId::new().as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            integration_id: Set(input.integration_id.map(|i| i.as_uuid())),
            code: Set(input.code),
            version: Set(last.unwrap_or(0) + 1),
            utility: Set(input.utility.as_str().to_owned()),
            tiers: Set(tiers),
            cycle_months: Set(input.cycle_months),
            effective_from: Set(input.effective_from),
            clear_cycle: Set(input.clear_cycle),
            created_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await
        .map_err(map_err("tariff version"))?;
        tariff(row)
    }

    async fn get(&self, tenant: TenantId, id: TariffId) -> DomainResult<Option<Tariff>> {
        tariffs(tenant)
            .filter(t::Column::Id.eq(id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(tariff)
            .transpose()
    }

    async fn list(&self, tenant: TenantId, filter: &TariffFilter, page: PageRequest) -> DomainResult<Page<Tariff>> {
        let mut q = tariffs(tenant);
        if let Some(u) = filter.utility {
            q = q.filter(t::Column::Utility.eq(u.as_str()));
        }
        if let Some(c) = &filter.code {
            q = q.filter(t::Column::Code.eq(c.as_str()));
        }
        if let Some(i) = filter.integration_id {
            q = q.filter(t::Column::IntegrationId.eq(i.as_uuid()));
        }
        let page = fetch_page_ordered(&self.db, q, t::Column::Id, page, Order::NewestFirst).await.map_err(unknown)?;
        try_map(page, tariff)
    }

    async fn set_price(
        &self,
        tenant: TenantId,
        scope: PriceScope,
        tariff: Option<TariffId>,
        way: Option<PriceWay>,
    ) -> DomainResult<PriceAssignment> {
        let (key, home, room) = match scope {
            PriceScope::Tenant => ("tenant".to_owned(), None, None),
            PriceScope::Home(h) => (format!("home:{h}"), Some(h), None),
            PriceScope::Room(h, r) => (format!("room:{r}"), Some(h), Some(r)),
        };
        let existing = p::Entity::find()
            .filter(p::Column::TenantId.eq(tenant.as_uuid()))
            .filter(p::Column::ScopeKey.eq(key.as_str()))
            .one(&self.db)
            .await
            .map_err(unknown)?;
        let now = Utc::now();
        let row = match existing {
            Some(row) => {
                let mut am: p::ActiveModel = row.into();
                if let Some(t) = tariff {
                    am.tariff_id = Set(Some(t.as_uuid()));
                }
                if let Some(w) = way {
                    am.price_way = Set(Some(w.as_str().to_owned()));
                }
                am.updated_at = Set(now);
                am.update(&self.db).await.map_err(unknown)?
            }
            None => p::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                tenant_id: Set(tenant.as_uuid()),
                scope_key: Set(key),
                home_id: Set(home.map(|h| h.as_uuid())),
                room_id: Set(room.map(|r| r.as_uuid())),
                tariff_id: Set(tariff.map(|t| t.as_uuid())),
                price_way: Set(way.map(|w| w.as_str().to_owned())),
                updated_at: Set(now),
            }
            .insert(&self.db)
            .await
            .map_err(map_err("price assignment"))?,
        };
        price(row)
    }

    async fn versions_of(&self, tenant: TenantId, tariff: TariffId) -> DomainResult<Vec<Tariff>> {
        // One round trip: the versions of the code `tariff` has (none for an unknown id).
        let code = sea_orm::sea_query::Query::select()
            .column(t::Column::Code)
            .from(t::Entity)
            .and_where(t::Column::TenantId.eq(tenant.as_uuid()))
            .and_where(t::Column::Id.eq(tariff.as_uuid()))
            .to_owned();
        let rows = self::tariffs(tenant)
            .filter(t::Column::Code.in_subquery(code))
            .order_by_asc(t::Column::Version)
            .all(&self.db)
            .await
            .map_err(unknown)?;
        rows.into_iter().map(self::tariff).collect()
    }

    async fn prices(&self, tenant: TenantId, home: Option<HomeId>) -> DomainResult<Vec<PriceAssignment>> {
        let mut cond = sea_orm::Condition::any().add(p::Column::ScopeKey.eq("tenant"));
        if let Some(h) = home {
            cond = cond.add(p::Column::HomeId.eq(h.as_uuid()));
        }
        let rows = p::Entity::find()
            .filter(p::Column::TenantId.eq(tenant.as_uuid()))
            .filter(cond)
            .all(&self.db)
            .await
            .map_err(unknown)?;
        rows.into_iter().map(price).collect()
    }
}

fn price(r: p::Model) -> DomainResult<PriceAssignment> {
    let scope = match (r.home_id, r.room_id) {
        (Some(h), Some(room)) => PriceScope::Room(HomeId::from_uuid(h), RoomId::from_uuid(room)),
        (Some(h), None) => PriceScope::Home(HomeId::from_uuid(h)),
        _ => PriceScope::Tenant,
    };
    Ok(PriceAssignment {
        scope,
        tariff_id: r.tariff_id.map(TariffId::from_uuid),
        price_way: stored(r.price_way.as_deref().map(PriceWay::parse).transpose())?,
        updated_at: r.updated_at,
    })
}

impl SqlTariffRepo {
    /// `save_steps` on PostgreSQL in two round trips whatever the count: every entry in
    /// one insert, every account's last step in one compare-and-set update (a changed
    /// account fails the whole write).
    async fn save_steps_pg(&self, tenant: TenantId, steps: Vec<AccountSteps>) -> DomainResult<()> {
        let now = Utc::now();
        let mut entries = Vec::new();
        let mut values: Vec<sea_orm::Value> = vec![tenant.as_uuid().into()];
        let mut rows = Vec::with_capacity(steps.len());
        for a in &steps {
            let Some((last, _)) = a.steps.last() else { continue };
            for (_, draft) in &a.steps {
                let Some(draft) = draft else { continue };
                let detail = draft
                    .detail
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|e| DomainError::Unknown(e.into()))?;
                entries.push(l::ActiveModel {
                    id: Set(EntryId::new().as_uuid()),
                    tenant_id: Set(tenant.as_uuid()),
                    account_id: Set(a.expected.id.as_uuid()),
                    kind: Set(draft.kind.as_str().to_owned()),
                    amount: Set(text(draft.amount)),
                    volume: Set(draft.volume.map(text)),
                    balance_after: Set(text(draft.balance_after)),
                    reference: Set(draft.reference.clone()),
                    created_by: Set(None),
                    at: Set(now),
                    detail: Set(detail),
                });
            }
            let n = values.len();
            let p: Vec<String> = (1..=11).map(|k| format!("${}", n + k)).collect();
            rows.push(format!(
                "({}::uuid, {}::int8, {}::int8, {}, {}, {}::timestamptz, {}, {}::timestamptz, {}::uuid, {}::bool, {}::uuid)",
                p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10]
            ));
            let bumped = a.expected.version + i64::try_from(a.steps.len()).unwrap_or(i64::MAX);
            values.extend([
                a.expected.id.as_uuid().into(),
                a.expected.version.into(),
                bumped.into(),
                text(last.account.balance).into(),
                text(last.account.cycle_usage).into(),
                last.cycle_started_at.into(),
                last.meter.last_reading.map(text).into(),
                last.meter.last_read_at.into(),
                last.meter.billed_tariff_id.map(|t| t.as_uuid()).into(),
                last.meter.cut_off.into(),
                last.tariff_id.map(|t| t.as_uuid()).into(),
            ]);
        }
        if rows.is_empty() {
            return Ok(());
        }
        if !entries.is_empty() {
            l::Entity::insert_many(entries)
                .exec(&self.db)
                .await
                .map_err(map_err("the reference is already on the ledger"))?;
        }
        let count = rows.len();
        values.push(now.into());
        let sql = format!(
            "UPDATE meter_accounts AS m SET balance = v.balance, cycle_usage = v.cycle_usage, \
             cycle_started_at = v.cycle_started_at, last_reading = v.last_reading, last_read_at = v.last_read_at, \
             billed_tariff_id = v.billed_tariff_id, cut_off = v.cut_off, tariff_id = v.tariff_id, \
             version = v.bumped, updated_at = ${} \
             FROM (VALUES {}) AS v (id, expected, bumped, balance, cycle_usage, cycle_started_at, last_reading, \
               last_read_at, billed_tariff_id, cut_off, tariff_id) \
             WHERE m.tenant_id = $1 AND m.id = v.id AND m.version = v.expected",
            values.len(),
            rows.join(", ")
        );
        let res = self
            .db
            .execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
            .await
            .map_err(unknown)?;
        if usize::try_from(res.rows_affected()).ok() != Some(count) {
            return Err(DomainError::InvalidTransition("an account changed meanwhile".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl MeterAccountRepo for SqlTariffRepo {
    async fn by_device(&self, tenant: TenantId, device: DeviceId) -> DomainResult<Option<MeterAccount>> {
        accounts(tenant)
            .filter(m::Column::DeviceId.eq(device.as_uuid()))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(account)
            .transpose()
    }

    async fn open(
        &self,
        tenant: TenantId,
        device: DeviceId,
        tariff: Option<TariffId>,
        acc: &Account,
        meter: &MeterState,
    ) -> DomainResult<MeterAccount> {
        let now = Utc::now();
        let row = m::ActiveModel {
            id: Set(AccountId::new().as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            device_id: Set(device.as_uuid()),
            tariff_id: Set(tariff.map(|t| t.as_uuid())),
            pay_model: Set(acc.pay_model.as_str().to_owned()),
            billing_model: Set(acc.billing_model.as_str().to_owned()),
            balance: Set(text(acc.balance)),
            overdraft: Set(text(acc.overdraft)),
            cycle_usage: Set(text(acc.cycle_usage)),
            cycle_started_at: Set(Some(now)),
            version: Set(0),
            last_reading: Set(meter.last_reading.map(text)),
            last_read_at: Set(meter.last_read_at),
            billed_tariff_id: Set(meter.billed_tariff_id.map(|t| t.as_uuid())),
            cut_off: Set(meter.cut_off),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await
        .map_err(map_err("the meter already has an account"))?;
        account(row)
    }

    async fn lock_by_device(&self, tenant: TenantId, device: DeviceId) -> DomainResult<Option<MeterAccount>> {
        let q = accounts(tenant).filter(m::Column::DeviceId.eq(device.as_uuid()));
        // SQLite's write transactions are exclusive already; PostgreSQL locks the row.
        let q = if self.db.in_unit() && self.db.get_database_backend() == DbBackend::Postgres {
            q.lock_exclusive()
        } else {
            q
        };
        q.one(&self.db).await.map_err(unknown)?.map(account).transpose()
    }

    async fn lock_by_devices(&self, tenant: TenantId, devices: &[DeviceId]) -> DomainResult<Vec<MeterAccount>> {
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let q = accounts(tenant)
            .filter(crate::db::in_uuids(
                self.db.get_database_backend(),
                m::Column::DeviceId,
                devices.iter().map(|d| d.as_uuid()),
            ))
            .order_by_asc(m::Column::Id);
        let q = if self.db.in_unit() && self.db.get_database_backend() == DbBackend::Postgres {
            q.lock_exclusive()
        } else {
            q
        };
        q.all(&self.db).await.map_err(unknown)?.into_iter().map(account).collect()
    }

    async fn save_steps(&self, tenant: TenantId, steps: Vec<AccountSteps>) -> DomainResult<()> {
        if self.db.get_database_backend() != DbBackend::Postgres {
            for a in steps {
                let mut expected = a.expected;
                for (next, draft) in a.steps {
                    expected = self.save(tenant, &expected, &next, draft, None).await?.0;
                }
            }
            return Ok(());
        }
        self.save_steps_pg(tenant, steps).await
    }

    async fn save(
        &self,
        tenant: TenantId,
        expected: &MeterAccount,
        next: &MeterAccount,
        draft: Option<LedgerDraft>,
        by: Option<UserId>,
    ) -> DomainResult<(MeterAccount, Option<LedgerEntry>)> {
        let now = Utc::now();
        let (acc, meter) = (&next.account, &next.meter);
        let txn = self.db.begin_write().await.map_err(unknown)?;
        let res = m::Entity::update_many()
            .col_expr(m::Column::TariffId, Expr::value(next.tariff_id.map(|t| t.as_uuid())))
            .col_expr(m::Column::PayModel, Expr::value(acc.pay_model.as_str()))
            .col_expr(m::Column::BillingModel, Expr::value(acc.billing_model.as_str()))
            .col_expr(m::Column::Balance, Expr::value(text(acc.balance)))
            .col_expr(m::Column::Overdraft, Expr::value(text(acc.overdraft)))
            .col_expr(m::Column::CycleUsage, Expr::value(text(acc.cycle_usage)))
            .col_expr(m::Column::CycleStartedAt, Expr::value(next.cycle_started_at))
            .col_expr(m::Column::LastReading, Expr::value(meter.last_reading.map(text)))
            .col_expr(m::Column::LastReadAt, Expr::value(meter.last_read_at))
            .col_expr(m::Column::BilledTariffId, Expr::value(meter.billed_tariff_id.map(|t| t.as_uuid())))
            .col_expr(m::Column::CutOff, Expr::value(meter.cut_off))
            .col_expr(m::Column::Version, Expr::value(expected.version + 1))
            .col_expr(m::Column::UpdatedAt, Expr::value(now))
            .filter(m::Column::TenantId.eq(tenant.as_uuid()))
            .filter(m::Column::Id.eq(expected.id.as_uuid()))
            .filter(m::Column::Version.eq(expected.version))
            .exec(&txn)
            .await
            .map_err(unknown)?;
        if res.rows_affected == 0 {
            let _ = txn.rollback().await;
            return Err(DomainError::InvalidTransition("the account changed meanwhile".into()));
        }
        let written = match draft {
            None => None,
            Some(draft) => {
                let detail = draft
                    .detail
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|e| DomainError::Unknown(e.into()))?;
                let row = l::ActiveModel {
                    id: Set(EntryId::new().as_uuid()),
                    tenant_id: Set(tenant.as_uuid()),
                    account_id: Set(expected.id.as_uuid()),
                    kind: Set(draft.kind.as_str().to_owned()),
                    amount: Set(text(draft.amount)),
                    volume: Set(draft.volume.map(text)),
                    balance_after: Set(text(draft.balance_after)),
                    reference: Set(draft.reference),
                    created_by: Set(by.map(|u| u.as_uuid())),
                    at: Set(now),
                    detail: Set(detail),
                }
                .insert(&txn)
                .await
                .map_err(map_err("the reference is already on the ledger"))?;
                Some(entry(row)?)
            }
        };
        txn.commit().await.map_err(unknown)?;
        let saved = MeterAccount { version: expected.version + 1, updated_at: now, ..next.clone() };
        Ok((saved, written))
    }

    async fn entry_by_reference(
        &self,
        tenant: TenantId,
        id: AccountId,
        reference: &str,
    ) -> DomainResult<Option<LedgerEntry>> {
        entries(tenant)
            .filter(l::Column::AccountId.eq(id.as_uuid()))
            .filter(l::Column::Reference.eq(reference))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(entry)
            .transpose()
    }

    async fn save_daily_usage(&self, tenant: TenantId, days: Vec<DailyUsage>) -> DomainResult<()> {
        if days.is_empty() {
            return Ok(());
        }
        let rows = days.into_iter().map(|u| du::ActiveModel {
            tenant_id: Set(tenant.as_uuid()),
            device_id: Set(u.device_id.as_uuid()),
            day: Set(u.day.format("%Y-%m-%d").to_string()),
            volume: Set(text(u.volume)),
            amount: Set(text(u.amount)),
            prices: Set(
                serde_json::to_string(&u.prices.iter().map(|p| text(*p)).collect::<Vec<_>>()).unwrap_or_default()
            ),
            fetched_at: Set(u.fetched_at),
        });
        du::Entity::insert_many(rows)
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([du::Column::DeviceId, du::Column::Day])
                    .update_columns([du::Column::Volume, du::Column::Amount, du::Column::Prices, du::Column::FetchedAt])
                    .to_owned(),
            )
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        Ok(())
    }

    async fn daily_usage(
        &self,
        tenant: TenantId,
        device: DeviceId,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> DomainResult<Vec<DailyUsage>> {
        let rows = du::Entity::find()
            .filter(du::Column::TenantId.eq(tenant.as_uuid()))
            .filter(du::Column::DeviceId.eq(device.as_uuid()))
            .filter(du::Column::Day.gte(from.format("%Y-%m-%d").to_string()))
            .filter(du::Column::Day.lte(to.format("%Y-%m-%d").to_string()))
            .order_by_asc(du::Column::Day)
            .all(&self.db)
            .await
            .map_err(unknown)?;
        rows.into_iter()
            .map(|r| {
                let prices: Vec<String> =
                    serde_json::from_str(&r.prices).map_err(|e| DomainError::Unknown(e.into()))?;
                Ok(DailyUsage {
                    device_id: DeviceId::from_uuid(r.device_id),
                    day: chrono::NaiveDate::parse_from_str(&r.day, "%Y-%m-%d")
                        .map_err(|e| DomainError::Unknown(e.into()))?,
                    volume: dec("volume", &r.volume)?,
                    amount: dec("amount", &r.amount)?,
                    prices: prices.iter().map(|p| dec("price", p)).collect::<DomainResult<_>>()?,
                    fetched_at: r.fetched_at,
                })
            })
            .collect()
    }

    async fn ledger(&self, tenant: TenantId, id: AccountId, page: PageRequest) -> DomainResult<Page<LedgerEntry>> {
        let q = entries(tenant).filter(l::Column::AccountId.eq(id.as_uuid()));
        let page = fetch_page_ordered(&self.db, q, l::Column::Id, page, Order::NewestFirst).await.map_err(unknown)?;
        try_map(page, entry)
    }
}
