//! Relay connections for every list: `edges { cursor node }`, `pageInfo`, `totalCount`.
//! A list's `totalCount` is a query of its own: it runs in its resolver, only when asked.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Object, OutputType};
use domain::page::{DEFAULT_PAGE, MAX_PAGE};
use domain::{Page, PageRequest, TotalCount};
use uuid::Uuid;

/// Extra connection fields.
pub struct ConnectionFields {
    total: TotalCount,
}

#[Object]
impl ConnectionFields {
    /// How many items the whole list holds, across pages.
    async fn total_count(&self) -> async_graphql::Result<u64> {
        self.total.get().await.map_err(crate::error::gql)
    }
}

/// A connection whose cursors are the items' ids.
pub type Conn<T> = Connection<String, T, ConnectionFields>;

/// The cost of a list field (its `complexity`): the cost of what is selected of each item
/// times the items a page may hold (`first`, else the default page, at most the largest
/// page), so a list inside a list multiplies.
pub fn cost(first: Option<i32>, child: usize) -> usize {
    let default = i32::try_from(DEFAULT_PAGE).unwrap_or(i32::MAX);
    cost_of(first.unwrap_or(default), MAX_PAGE, child)
}

/// The cost of a field that answers up to `items` (at most `max`) items of cost `child`.
pub fn cost_of(items: i32, max: u64, child: usize) -> usize {
    let items = u64::try_from(items).unwrap_or(0).clamp(1, max.max(1));
    child.saturating_mul(usize::try_from(items).unwrap_or(usize::MAX)).saturating_add(1)
}

/// Reads `first` and `after` into a page request.
///
/// # Errors
/// `BAD_USER_INPUT` on a cursor that is not one of ours or a page size out of range.
pub fn page_request(first: Option<i32>, after: Option<String>) -> async_graphql::Result<PageRequest> {
    let after = match after {
        Some(c) => Some(Uuid::parse_str(&c).map_err(|_| crate::error::bad_input("after", "not a valid cursor"))?),
        None => None,
    };
    PageRequest::new(first.map(i64::from), after).map_err(crate::error::gql)
}

/// Builds a connection from a domain page, mapping each item and reading its id as cursor.
pub fn to_connection<D, T: OutputType>(page: Page<D>, id: impl Fn(&D) -> Uuid, map: impl Fn(D) -> T) -> Conn<T> {
    let mut conn = Connection::with_additional_fields(
        page.has_previous_page,
        page.has_next_page,
        ConnectionFields { total: page.total_count },
    );
    conn.edges.extend(page.items.into_iter().map(|d| Edge::new(id(&d).to_string(), map(d))));
    conn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_costs_its_items_times_its_page() {
        assert_eq!(cost(None, 3), 3 * 20 + 1);
        assert_eq!(cost(Some(100), 3), 301);
        // Out of range pages are refused by the resolver; their cost is still bounded.
        assert_eq!(cost(Some(1_000_000), 3), 301);
        assert_eq!(cost(Some(-5), 3), 4);
        // Nested lists multiply.
        assert_eq!(cost(Some(100), cost(Some(100), 2)), 100 * 201 + 1);
    }
}
