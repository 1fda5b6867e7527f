//! Keyset pagination on UUID v7 primary keys (their order is creation order).

use domain::{Page, PageRequest, TotalCount};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Select,
};

/// A connection a page's total count can run on later, when someone asks for it.
pub(crate) trait CountLater: ConnectionTrait + Clone + Send + Sync + 'static {
    /// False inside a unit of work: its transaction may be gone by then, so count now.
    fn can_defer(&self) -> bool {
        true
    }
}

impl CountLater for DatabaseConnection {}

impl CountLater for super::Conn {
    fn can_defer(&self) -> bool {
        !self.in_unit()
    }
}

/// The COUNT of `select`, deferred to when it is asked for where the connection allows.
async fn total_of<E, D>(db: &D, select: &Select<E>) -> Result<TotalCount, sea_orm::DbErr>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Sized + Send + Sync,
    D: CountLater,
{
    if !db.can_defer() {
        return Ok(TotalCount::known(select.clone().count(db).await?));
    }
    let (db, select) = (db.clone(), select.clone());
    Ok(TotalCount::deferred(move || {
        let (db, select) = (db.clone(), select.clone());
        Box::pin(async move { select.count(&db).await.map_err(super::unknown) })
    }))
}

/// Which end of the list comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    OldestFirst,
    NewestFirst,
}

/// Fetches one page of `select` ordered by `id`, plus the total count of `select` (run
/// only when read).
pub(crate) async fn fetch_page<E, C>(
    db: &impl CountLater,
    select: Select<E>,
    id: C,
    page: PageRequest,
) -> Result<Page<E::Model>, sea_orm::DbErr>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Sized + Send + Sync,
    C: ColumnTrait,
{
    fetch_page_ordered(db, select, id, page, Order::OldestFirst).await
}

/// The same, in the given order.
pub(crate) async fn fetch_page_ordered<E, C>(
    db: &impl CountLater,
    select: Select<E>,
    id: C,
    page: PageRequest,
    order: Order,
) -> Result<Page<E::Model>, sea_orm::DbErr>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Sized + Send + Sync,
    C: ColumnTrait,
{
    let total = total_of(db, &select).await?;
    let mut q = match order {
        Order::OldestFirst => select.order_by_asc(id),
        Order::NewestFirst => select.order_by_desc(id),
    };
    if let Some(after) = page.after() {
        q = match order {
            Order::OldestFirst => q.filter(id.gt(after)),
            Order::NewestFirst => q.filter(id.lt(after)),
        };
    }
    let rows = q.limit(page.first() + 1).all(db).await?;
    Ok(Page::from_fetched(rows, page, total))
}

/// Maps the items of a page, failing on the first item that fails.
pub(crate) fn try_map<T, U, E>(page: Page<T>, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
    let Page { items, has_next_page, has_previous_page, total_count } = page;
    let items = items.into_iter().map(f).collect::<Result<Vec<_>, E>>()?;
    Ok(Page { items, has_next_page, has_previous_page, total_count })
}
