//! Keyset pagination shared by every list: `first` items after the cursor id.

use futures::future::BoxFuture;
use std::sync::Arc;
use uuid::Uuid;

/// The largest page a client may ask for.
pub const MAX_PAGE: u64 = 100;
/// The page size when the client does not say.
pub const DEFAULT_PAGE: u64 = 20;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    first: u64,
    after: Option<Uuid>,
}

impl PageRequest {
    /// `first` defaults to 20 and must be within 0..=100.
    ///
    /// # Errors
    /// `DomainError::Invalid` on `first` outside that range.
    pub fn new(first: Option<i64>, after: Option<Uuid>) -> crate::DomainResult<Self> {
        let first = match first {
            None => DEFAULT_PAGE,
            Some(n) if (0..=MAX_PAGE as i64).contains(&n) => n as u64,
            Some(_) => {
                return Err(crate::DomainError::invalid("first", format!("must be between 0 and {MAX_PAGE}")));
            }
        };
        Ok(Self { first, after })
    }
    pub fn first(&self) -> u64 {
        self.first
    }
    pub fn after(&self) -> Option<Uuid> {
        self.after
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self { first: DEFAULT_PAGE, after: None }
    }
}

type CountFn = dyn Fn() -> BoxFuture<'static, crate::DomainResult<u64>> + Send + Sync;

/// How many items the whole list holds: known, or counted only when asked (a COUNT over
/// the list's filter is a query of its own, which most readers of a page never need).
#[derive(Clone)]
pub struct TotalCount(Total);

#[derive(Clone)]
enum Total {
    Known(u64),
    Deferred(Arc<CountFn>),
}

impl TotalCount {
    /// A count already known.
    pub fn known(n: u64) -> Self {
        Self(Total::Known(n))
    }

    /// A count that `count` runs when asked; it must already be scoped to the list's tenant
    /// and filter (the repository builds it from the same query as the page).
    pub fn deferred(count: impl Fn() -> BoxFuture<'static, crate::DomainResult<u64>> + Send + Sync + 'static) -> Self {
        Self(Total::Deferred(Arc::new(count)))
    }

    /// The count; runs the deferred query each time it is called.
    ///
    /// # Errors
    /// `Unknown` when the deferred count fails in storage.
    pub async fn get(&self) -> crate::DomainResult<u64> {
        match &self.0 {
            Total::Known(n) => Ok(*n),
            Total::Deferred(f) => f().await,
        }
    }
}

impl std::fmt::Debug for TotalCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Total::Known(n) => write!(f, "TotalCount({n})"),
            Total::Deferred(_) => f.write_str("TotalCount(deferred)"),
        }
    }
}

impl PartialEq for TotalCount {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Total::Known(a), Total::Known(b)) => a == b,
            (Total::Deferred(a), Total::Deferred(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// One page of a list, in id (creation) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub total_count: TotalCount,
}

impl<T> Page<T> {
    /// Builds a page from `first + 1` fetched rows: the extra row only tells there is more.
    pub fn from_fetched(mut rows: Vec<T>, req: PageRequest, total_count: TotalCount) -> Self {
        let has_next_page = rows.len() as u64 > req.first();
        rows.truncate(req.first() as usize);
        Self { items: rows, has_next_page, has_previous_page: req.after().is_some(), total_count }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            total_count: self.total_count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_is_bounded() {
        assert!(PageRequest::new(Some(101), None).is_err());
        assert!(PageRequest::new(Some(-1), None).is_err());
        assert_eq!(PageRequest::new(None, None).map(|p| p.first()).ok(), Some(DEFAULT_PAGE));
    }

    #[test]
    fn extra_row_means_next_page() {
        let req = PageRequest::new(Some(2), None).expect("valid");
        let page = Page::from_fetched(vec![1, 2, 3], req, TotalCount::known(7));
        assert_eq!(page.items, vec![1, 2]);
        assert!(page.has_next_page);
        assert!(!page.has_previous_page);
        let page = Page::from_fetched(vec![1, 2], req, TotalCount::known(2));
        assert!(!page.has_next_page);
    }

    #[tokio::test]
    async fn a_deferred_count_runs_only_when_asked() {
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = runs.clone();
        let total = TotalCount::deferred(move || {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async { Ok(5) })
        });
        let req = PageRequest::new(Some(1), None).expect("valid");
        let page = Page::from_fetched(vec![1, 2], req, total).map(|n| n * 10);
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 0, "building and mapping a page counts nothing");
        assert_eq!(page.total_count.get().await.ok(), Some(5));
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
