//! Keyset pagination on UUID v7 primary keys (their order is creation order).

use domain::{Page, PageRequest};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Select,
};

/// Which end of the list comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    OldestFirst,
    NewestFirst,
}

/// Fetches one page of `select` ordered by `id`, plus the total count of `select`.
pub(crate) async fn fetch_page<E, C>(
    db: &impl ConnectionTrait,
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
    db: &impl ConnectionTrait,
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
    let total = select.clone().count(db).await?;
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
