use super::{NewTicket, Ticket, TicketFile, TicketFilter, TicketStatus, TicketUpdate};
use crate::ids::{TenantId, TicketId};
use crate::{DomainResult, Page, PageRequest};
use async_trait::async_trait;

/// Tickets of a tenant and their files.
#[async_trait]
pub trait TicketRepo: Send + Sync {
    /// # Errors
    /// `Unknown` on storage failure.
    async fn create(&self, tenant: TenantId, input: NewTicket) -> DomainResult<Ticket>;
    /// Writes `update` if the ticket is still in `expected_status` (compare-and-set, so two
    /// concurrent moves cannot both pass the workflow check).
    ///
    /// # Errors
    /// `NotFound("ticket")`; `InvalidTransition` when the status changed meanwhile.
    async fn update(
        &self,
        tenant: TenantId,
        id: TicketId,
        expected_status: TicketStatus,
        update: TicketUpdate,
    ) -> DomainResult<Ticket>;
    /// Deletes the ticket and its file records if it is still in `expected_status`
    /// (compare-and-set, as `update`).
    ///
    /// # Errors
    /// `NotFound("ticket")`; `InvalidTransition` when the status changed meanwhile.
    async fn delete(&self, tenant: TenantId, id: TicketId, expected_status: TicketStatus) -> DomainResult<()>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn get(&self, tenant: TenantId, id: TicketId) -> DomainResult<Option<Ticket>>;
    /// Newest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn list(&self, tenant: TenantId, filter: &TicketFilter, page: PageRequest) -> DomainResult<Page<Ticket>>;
    /// # Errors
    /// `Unknown` on storage failure.
    async fn add_file(&self, tenant: TenantId, file: TicketFile) -> DomainResult<TicketFile>;
    /// Oldest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn files(&self, tenant: TenantId, ticket: TicketId) -> DomainResult<Vec<TicketFile>>;
    /// The files of several tickets, in one query, oldest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn files_of(&self, tenant: TenantId, tickets: &[TicketId]) -> DomainResult<Vec<TicketFile>>;
}

/// Where attached files' bytes live: a directory on disk by default, an object store later.
#[async_trait]
pub trait FileStore: Send + Sync {
    /// Stores `bytes` under `key` (a relative path of safe segments chosen by the domain).
    ///
    /// # Errors
    /// `Unknown` when the store cannot write.
    async fn put(&self, key: &str, bytes: &[u8]) -> DomainResult<()>;
    /// # Errors
    /// `Unknown` when the store cannot read; `Ok(None)` when absent.
    async fn get(&self, key: &str) -> DomainResult<Option<Vec<u8>>>;
}
