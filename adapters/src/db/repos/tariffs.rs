use crate::db::entities::{ledger_entries as l, meter_accounts as m, price_assignments as p, tariffs as t};
use crate::db::page::{Order, fetch_page_ordered, try_map};
use crate::db::{map_err, unknown};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ids::{AccountId, DeviceId, EntryId, HomeId, IntegrationId, RoomId, TariffId, TenantId, UserId};
use domain::tariffs::{
    Account, BillingModel, LedgerDraft, LedgerEntry, LedgerKind, MeterAccount, MeterAccountRepo, NewTariff, PayModel,
    PriceAssignment, PriceScope, PriceWay, Tariff, TariffFilter, TariffRepo, Tiers, Utility, parse_decimal,
};
use domain::{DomainError, DomainResult, Page, PageRequest};
use rust_decimal::Decimal;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, Select, Set};

/// Tariffs, meter accounts and ledgers in SQL. Decimals are stored as exact text.
#[derive(Clone)]
pub struct SqlTariffRepo {
    db: DatabaseConnection,
}

impl SqlTariffRepo {
    pub fn new(db: DatabaseConnection) -> Self {
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
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await
        .map_err(map_err("the meter already has an account"))?;
        account(row)
    }

    async fn set_terms(
        &self,
        tenant: TenantId,
        id: AccountId,
        tariff: Option<TariffId>,
        acc: &Account,
        cycle_started_at: Option<DateTime<Utc>>,
    ) -> DomainResult<MeterAccount> {
        m::Entity::update_many()
            .col_expr(m::Column::TariffId, Expr::value(tariff.map(|t| t.as_uuid())))
            .col_expr(m::Column::PayModel, Expr::value(acc.pay_model.as_str()))
            .col_expr(m::Column::BillingModel, Expr::value(acc.billing_model.as_str()))
            .col_expr(m::Column::Overdraft, Expr::value(text(acc.overdraft)))
            .col_expr(m::Column::CycleUsage, Expr::value(text(acc.cycle_usage)))
            .col_expr(m::Column::CycleStartedAt, Expr::value(cycle_started_at))
            .col_expr(m::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(m::Column::TenantId.eq(tenant.as_uuid()))
            .filter(m::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(unknown)?;
        accounts(tenant)
            .filter(m::Column::Id.eq(id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(unknown)?
            .map(account)
            .transpose()?
            .ok_or(DomainError::NotFound("meter account"))
    }

    async fn apply(
        &self,
        tenant: TenantId,
        id: AccountId,
        expected: &Account,
        next: &Account,
        draft: LedgerDraft,
        by: Option<UserId>,
    ) -> DomainResult<LedgerEntry> {
        let now = Utc::now();
        let txn = crate::db::begin_write(&self.db).await.map_err(unknown)?;
        let res = m::Entity::update_many()
            .col_expr(m::Column::Balance, Expr::value(text(next.balance)))
            .col_expr(m::Column::CycleUsage, Expr::value(text(next.cycle_usage)))
            .col_expr(m::Column::UpdatedAt, Expr::value(now))
            .filter(m::Column::TenantId.eq(tenant.as_uuid()))
            .filter(m::Column::Id.eq(id.as_uuid()))
            .filter(m::Column::Balance.eq(text(expected.balance)))
            .filter(m::Column::CycleUsage.eq(text(expected.cycle_usage)))
            .exec(&txn)
            .await
            .map_err(unknown)?;
        if res.rows_affected == 0 {
            let _ = txn.rollback().await;
            return Err(DomainError::InvalidTransition("the account changed meanwhile".into()));
        }
        let row = l::ActiveModel {
            id: Set(EntryId::new().as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            account_id: Set(id.as_uuid()),
            kind: Set(draft.kind.as_str().to_owned()),
            amount: Set(text(draft.amount)),
            volume: Set(draft.volume.map(text)),
            balance_after: Set(text(draft.balance_after)),
            reference: Set(draft.reference),
            created_by: Set(by.map(|u| u.as_uuid())),
            at: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(map_err("the reference is already on the ledger"))?;
        txn.commit().await.map_err(unknown)?;
        entry(row)
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

    async fn ledger(&self, tenant: TenantId, id: AccountId, page: PageRequest) -> DomainResult<Page<LedgerEntry>> {
        let q = entries(tenant).filter(l::Column::AccountId.eq(id.as_uuid()));
        let page = fetch_page_ordered(&self.db, q, l::Column::Id, page, Order::NewestFirst).await.map_err(unknown)?;
        try_map(page, entry)
    }
}
