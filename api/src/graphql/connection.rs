//! Relay connections for every list: `edges { cursor node }`, `pageInfo`, `totalCount`.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{OutputType, SimpleObject};
use domain::{Page, PageRequest};
use uuid::Uuid;

/// Extra connection fields.
#[derive(SimpleObject)]
pub struct ConnectionFields {
    /// How many items the whole list holds, across pages.
    pub total_count: u64,
}

/// A connection whose cursors are the items' ids.
pub type Conn<T> = Connection<String, T, ConnectionFields>;

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
        ConnectionFields { total_count: page.total_count },
    );
    conn.edges.extend(page.items.into_iter().map(|d| Edge::new(id(&d).to_string(), map(d))));
    conn
}
