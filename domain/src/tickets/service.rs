use super::rules::{TicketFields, TicketKind, TicketStatus, check_delete, check_transition, parse_status};
use super::{
    FileStore, NewTicket, SyncView, Ticket, TicketFile, TicketFilter, TicketRepo, TicketSync, TicketSyncRepo,
    TicketUpdate, sync_view,
};
use crate::clock::{self, Clock};
use crate::devices::DeviceRepo;
use crate::homes::HomeRepo;
use crate::ids::{DeviceId, FileId, HomeId, IntegrationId, TenantId, TicketId, UserId};
use crate::integrations::IntegrationRepo;
use crate::outbound::Message;
use crate::{Actor, DomainError, DomainResult, Page, PageRequest};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Largest file `attachTicketFile` accepts.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;

/// Input of `saveTicket`: without `id` it creates, with `id` it updates (the kind cannot
/// change; `fields` are merged into the stored ones, a `null` value removes a field).
#[derive(Debug, Clone)]
pub struct SaveTicketInput {
    pub id: Option<TicketId>,
    pub kind: TicketKind,
    pub integration_id: Option<IntegrationId>,
    pub device_id: Option<DeviceId>,
    pub home_id: Option<HomeId>,
    pub status: Option<String>,
    pub fields: Option<Value>,
    pub external_id: Option<String>,
}

/// A file as uploaded.
#[derive(Debug, Clone)]
pub struct Upload {
    pub filename: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// Creating and moving tickets through their kind's workflow; attaching files.
#[derive(Clone)]
pub struct TicketService {
    repo: Arc<dyn TicketRepo>,
    store: Arc<dyn FileStore>,
    devices: Arc<dyn DeviceRepo>,
    homes: Arc<dyn HomeRepo>,
    integrations: Arc<dyn IntegrationRepo>,
    outbound: Option<crate::outbound::Outbound>,
    /// The field tables of the kinds, as the vendor modules register them.
    fields: TicketFields,
    /// Where the time comes from.
    clock: Arc<dyn Clock>,
    /// The outcomes of uploads to outside systems, when a vendor module uploads tickets.
    syncs: Option<Arc<dyn TicketSyncRepo>>,
}

fn fields_object(fields: Option<Value>) -> DomainResult<Map<String, Value>> {
    match fields {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(DomainError::invalid("fields", "must be a JSON object")),
    }
}

fn external_id(id: Option<String>) -> DomainResult<Option<String>> {
    let Some(id) = id.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) else { return Ok(None) };
    if id.chars().count() > 128 {
        return Err(DomainError::invalid("externalId", "at most 128 characters"));
    }
    Ok(Some(id))
}

/// A filename safe to show and to put in a `Content-Disposition` header.
fn clean_filename(name: &str) -> DomainResult<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base.chars().filter(|c| !c.is_control() && *c != '"').collect();
    let cleaned = cleaned.trim().to_owned();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." || cleaned.chars().count() > 255 {
        return Err(DomainError::invalid("file", "the file needs a name of 1-255 characters"));
    }
    Ok(cleaned)
}

impl TicketService {
    pub fn new(
        repo: Arc<dyn TicketRepo>,
        store: Arc<dyn FileStore>,
        devices: Arc<dyn DeviceRepo>,
        homes: Arc<dyn HomeRepo>,
        integrations: Arc<dyn IntegrationRepo>,
        fields: TicketFields,
    ) -> Self {
        Self { repo, store, devices, homes, integrations, outbound: None, fields, clock: clock::system(), syncs: None }
    }

    /// Shows tickets' upload state from `syncs`.
    #[must_use]
    pub fn with_syncs(mut self, syncs: Arc<dyn TicketSyncRepo>) -> Self {
        self.syncs = Some(syncs);
        self
    }

    /// Where a ticket stands with the outside system it is uploaded to; `None` for tickets
    /// no integration uploads (no integration, or no vendor module uploading its kind).
    ///
    /// # Errors
    /// `Forbidden` for actors without a tenant; `Unknown` on storage failure.
    pub async fn sync(&self, actor: &Actor, ticket: &Ticket) -> DomainResult<Option<SyncView>> {
        Ok(self.syncs(actor, std::slice::from_ref(ticket)).await?.pop().map(|(_, v)| v))
    }

    /// The same for several tickets, in one read; tickets nothing uploads are left out.
    ///
    /// # Errors
    /// `Forbidden` for actors without a tenant; `Unknown` on storage failure.
    pub async fn syncs(&self, actor: &Actor, tickets: &[Ticket]) -> DomainResult<Vec<(TicketId, SyncView)>> {
        let tenant = actor.require_reader()?;
        let Some(syncs) = &self.syncs else { return Ok(vec![]) };
        let uploaded: Vec<&Ticket> = tickets
            .iter()
            .filter(|t| t.integration_id.is_some() && t.tenant_id == tenant && self.fields.uploads(t.kind))
            .collect();
        if uploaded.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<TicketId> = uploaded.iter().map(|t| t.id).collect();
        let last: std::collections::HashMap<TicketId, TicketSync> =
            syncs.get_many(tenant, &ids).await?.into_iter().map(|s| (s.ticket_id, s)).collect();
        Ok(uploaded.into_iter().map(|t| (t.id, sync_view(t, last.get(&t.id)))).collect())
    }

    /// Reads the time from `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Writes saves in units of work with the deliveries the vendor modules plan for
    /// them (`Message::TicketSaved`).
    #[must_use]
    pub fn with_outbound(mut self, outbound: crate::outbound::Outbound) -> Self {
        self.outbound = Some(outbound);
        self
    }

    async fn create(&self, tenant: TenantId, by: Option<UserId>, new: NewTicket) -> DomainResult<Ticket> {
        let Some(out) = &self.outbound else { return self.repo.create(tenant, new).await };
        let unit = out.begin().await?;
        let created = unit.tickets().create(tenant, new).await?;
        out.commit(unit, tenant, &[Message::TicketSaved { before: None, after: created.clone(), by }]).await?;
        Ok(created)
    }

    async fn update(
        &self,
        tenant: TenantId,
        by: Option<UserId>,
        current: Ticket,
        update: TicketUpdate,
    ) -> DomainResult<Ticket> {
        let Some(out) = &self.outbound else {
            return self.repo.update(tenant, current.id, current.status, update).await;
        };
        let unit = out.begin().await?;
        let updated = unit.tickets().update(tenant, current.id, current.status, update).await?;
        out.commit(unit, tenant, &[Message::TicketSaved { before: Some(current), after: updated.clone(), by }]).await?;
        Ok(updated)
    }

    /// # Errors
    /// `Forbidden` for viewers; `Invalid` naming the field (`fields.<name>` for a kind's
    /// field); `NotFound` for a ticket, device, home or integration outside the tenant;
    /// `InvalidTransition` when the kind's workflow forbids the status change.
    pub async fn save(&self, actor: &Actor, input: SaveTicketInput) -> DomainResult<Ticket> {
        let tenant = actor.require_operator()?;
        self.save_in(tenant, Some(actor.user_id), input).await
    }

    /// The same, for adapters acting for a tenant (vendor callbacks, sync).
    ///
    /// # Errors
    /// As `save`.
    pub async fn save_in(&self, tenant: TenantId, by: Option<UserId>, input: SaveTicketInput) -> DomainResult<Ticket> {
        if let Some(i) = input.integration_id {
            self.integrations.get(tenant, i).await?.ok_or(DomainError::NotFound("integration"))?;
        }
        if let Some(d) = input.device_id {
            self.devices.get(tenant, d).await?.ok_or(DomainError::NotFound("device"))?;
        }
        if let Some(h) = input.home_id {
            self.homes.get_home(tenant, h).await?.ok_or(DomainError::NotFound("home"))?;
        }
        let given = fields_object(input.fields)?;
        let external = external_id(input.external_id)?;
        let Some(id) = input.id else {
            let status = match &input.status {
                Some(s) => TicketStatus::parse(input.kind, s)?,
                None => TicketStatus::initial(input.kind),
            };
            let given: Map<String, Value> = given.into_iter().filter(|(_, v)| !v.is_null()).collect();
            let fields = self.fields.validate(input.kind, status.as_str(), &Value::Object(given))?;
            let new = NewTicket {
                kind: input.kind,
                integration_id: input.integration_id,
                device_id: input.device_id,
                home_id: input.home_id,
                status,
                fields,
                external_id: external,
                created_by: by,
            };
            return self.create(tenant, by, new).await;
        };
        let current = self.repo.get(tenant, id).await?.ok_or(DomainError::NotFound("ticket"))?;
        if current.kind != input.kind {
            return Err(DomainError::invalid("kind", format!("the ticket is a {}", current.kind.as_str())));
        }
        if input.integration_id.is_some() && input.integration_id != current.integration_id {
            return Err(DomainError::invalid("integrationId", "a ticket cannot move to another integration"));
        }
        let status = match &input.status {
            Some(s) => TicketStatus::parse(current.kind, s)?,
            None => current.status,
        };
        check_transition(current.kind, current.status.as_str(), status.as_str())?;
        let mut merged = match current.fields.clone() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        for (k, v) in given {
            if v.is_null() {
                merged.remove(&k);
            } else {
                merged.insert(k, v);
            }
        }
        let fields = self.fields.validate(current.kind, status.as_str(), &Value::Object(merged))?;
        let update = TicketUpdate {
            device_id: input.device_id.or(current.device_id),
            home_id: input.home_id.or(current.home_id),
            status,
            fields,
            external_id: external.or(current.external_id.clone()),
        };
        self.update(tenant, by, current, update).await
    }

    /// Deletes a ticket nobody works on yet: only in its kind's deletable statuses
    /// (`rules::check_delete`: a PLANNED maintenance, a PENDING or UNASSIGNED work order);
    /// anything else is refused, never deleted. The vendor modules hear of it
    /// (`Message::TicketDeleted`: a vendor that mirrors the ticket deletes it there too) in the same
    /// unit of work. Answers the ticket as it was.
    ///
    /// # Errors
    /// `Forbidden` for viewers; `NotFound` for a ticket outside the tenant;
    /// `InvalidTransition` (CONFLICT) when its status does not allow deleting, or it moved
    /// meanwhile.
    pub async fn delete(&self, actor: &Actor, id: TicketId) -> DomainResult<Ticket> {
        let tenant = actor.require_operator()?;
        let current = self.repo.get(tenant, id).await?.ok_or(DomainError::NotFound("ticket"))?;
        check_delete(current.kind, current.status.as_str())?;
        let Some(out) = &self.outbound else {
            self.repo.delete(tenant, id, current.status).await?;
            return Ok(current);
        };
        let unit = out.begin().await?;
        unit.tickets().delete(tenant, id, current.status).await?;
        out.commit(unit, tenant, &[Message::TicketDeleted { ticket: current.clone(), by: actor.user_id }]).await?;
        Ok(current)
    }

    /// # Errors
    /// `NotFound` when absent or in another tenant.
    pub async fn get(&self, actor: &Actor, id: TicketId) -> DomainResult<Ticket> {
        self.repo.get(actor.require_reader()?, id).await?.ok_or(DomainError::NotFound("ticket"))
    }

    /// # Errors
    /// `Forbidden` for actors without a tenant; `Invalid { field: "filter.status" }` for a
    /// status unknown to the filtered kind.
    pub async fn list(&self, actor: &Actor, filter: &TicketFilter, page: PageRequest) -> DomainResult<Page<Ticket>> {
        let tenant = actor.require_reader()?;
        if let (Some(kind), Some(status)) = (filter.kind, &filter.status) {
            parse_status(kind, status)
                .map_err(|_| DomainError::invalid("filter.status", "not a status of this kind"))?;
        }
        self.repo.list(tenant, filter, page).await
    }

    /// The same, for adapters acting for a tenant (vendor callbacks, sync).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn list_in(
        &self,
        tenant: TenantId,
        filter: &TicketFilter,
        page: PageRequest,
    ) -> DomainResult<Page<Ticket>> {
        self.repo.list(tenant, filter, page).await
    }

    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn files(&self, actor: &Actor, ticket: TicketId) -> DomainResult<Vec<TicketFile>> {
        self.repo.files(actor.require_reader()?, ticket).await
    }

    /// The files of several tickets, in one read.
    ///
    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn files_of(&self, actor: &Actor, tickets: &[TicketId]) -> DomainResult<Vec<TicketFile>> {
        self.repo.files_of(actor.require_reader()?, tickets).await
    }

    /// Stores the bytes, then records the file on the ticket.
    ///
    /// # Errors
    /// `Forbidden` for viewers; `NotFound` for a ticket outside the tenant; `Invalid {
    /// field: "file" }` when empty, larger than `MAX_FILE_BYTES` or nameless.
    pub async fn attach(&self, actor: &Actor, ticket: TicketId, upload: Upload) -> DomainResult<TicketFile> {
        let tenant = actor.require_operator()?;
        let current = self.repo.get(tenant, ticket).await?.ok_or(DomainError::NotFound("ticket"))?;
        if upload.bytes.is_empty() {
            return Err(DomainError::invalid("file", "the file is empty"));
        }
        let rules = self.fields.files_of(current.kind);
        let max = rules.map_or(MAX_FILE_BYTES, |r| r.max_bytes.min(MAX_FILE_BYTES));
        if upload.bytes.len() > max {
            return Err(DomainError::invalid("file", format!("at most {max} bytes")));
        }
        let filename = clean_filename(&upload.filename)?;
        let content_type = match rules {
            Some(r) => {
                if !r.statuses.contains(&current.status.as_str()) {
                    return Err(DomainError::invalid(
                        "ticketId",
                        format!(
                            "a {} takes files only while {}; it is {}",
                            current.kind.as_str(),
                            r.statuses.join(" or "),
                            current.status.as_str()
                        ),
                    ));
                }
                // The content decides, not what the client claims.
                (r.sniff)(&upload.bytes).map_err(|m| DomainError::invalid("file", m))?.to_owned()
            }
            None => upload
                .content_type
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty() && c.len() <= 128 && c.is_ascii())
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
        };
        let id = FileId::new();
        // Only ids in the key: nothing the client sends becomes part of a path.
        let storage_key = format!("tickets/{tenant}/{ticket}/{id}");
        self.store.put(&storage_key, &upload.bytes).await?;
        let size = i64::try_from(upload.bytes.len()).map_err(|e| DomainError::Unknown(e.into()))?;
        let file = TicketFile {
            id,
            tenant_id: tenant,
            ticket_id: ticket,
            filename,
            content_type,
            size,
            storage_key,
            created_at: self.clock.now(),
        };
        let Some(out) = &self.outbound else { return self.repo.add_file(tenant, file).await };
        let unit = out.begin().await?;
        let added = unit.tickets().add_file(tenant, file).await?;
        out.commit(unit, tenant, &[Message::TicketFileAttached { ticket: current, file: added.clone() }]).await?;
        Ok(added)
    }

    /// The bytes of an attached file.
    ///
    /// # Errors
    /// `NotFound` when the file is not on this tenant's ticket or its bytes are gone.
    pub async fn read_file(
        &self,
        actor: &Actor,
        ticket: TicketId,
        file: FileId,
    ) -> DomainResult<(TicketFile, Vec<u8>)> {
        let tenant = actor.require_reader()?;
        let meta = self
            .repo
            .files(tenant, ticket)
            .await?
            .into_iter()
            .find(|f| f.id == file)
            .ok_or(DomainError::NotFound("file"))?;
        let bytes = self.store.get(&meta.storage_key).await?.ok_or(DomainError::NotFound("file"))?;
        Ok((meta, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::clean_filename;

    #[test]
    fn filenames_lose_paths_and_control_characters() {
        assert_eq!(clean_filename("../../etc/passwd").ok().as_deref(), Some("passwd"));
        assert_eq!(clean_filename("C:\\photos\\lift \"a\".jpg").ok().as_deref(), Some("lift a.jpg"));
        assert!(clean_filename("..").is_err());
        assert!(clean_filename("dir/").is_err());
        assert!(clean_filename("\u{0}\u{7}").is_err());
    }
}
