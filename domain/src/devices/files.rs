//! Files a device hands over (a roadside cabinet's door-opening picture or video): fetched by
//! the device's vendor module, kept through the [`FileStore`] port, listed and read back
//! by the device's tenant only.

use super::DeviceRepo;
use crate::ids::{DeviceId, FileId, IntegrationId, TenantId};
use crate::tickets::FileStore;
use crate::{Actor, Clock, DomainError, DomainResult, SystemClock};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

crate::enums::string_enum!(
    /// What became of a file a device was asked for.
    DeviceFileState, "state" {
        /// Fetched, verified and kept.
        Stored = "STORED",
        /// The device had none (asked again a few times).
        NoFile = "NO_FILE",
        /// The device sent something that could not be verified or kept.
        Failed = "FAILED",
    }
);

/// A file of a device (or the record that there was none).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceFile {
    pub id: FileId,
    pub tenant_id: TenantId,
    pub device_id: DeviceId,
    pub integration_id: IntegrationId,
    /// Why it was taken: `DOOR_OPENING`.
    pub purpose: String,
    /// The moment it shows, as the device names it.
    pub taken_at: String,
    pub state: DeviceFileState,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub size: Option<i64>,
    /// MD5 of the content (hex), as verified against the device's.
    pub md5: Option<String>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl DeviceFile {
    /// Where its content is kept.
    pub fn storage_key(&self) -> String {
        format!("devices/{}/{}/{}", self.tenant_id, self.device_id, self.id)
    }
}

/// A fetched file's content.
#[derive(Debug, Clone)]
pub struct FileContent {
    pub filename: String,
    pub content_type: String,
    pub md5: String,
    pub bytes: Vec<u8>,
}

/// Device files' records.
#[async_trait]
pub trait DeviceFileRepo: Send + Sync {
    /// Saves `file`, replacing the record of the same device, purpose and `taken_at`;
    /// answers the record as stored.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn save(&self, tenant: TenantId, file: DeviceFile) -> DomainResult<DeviceFile>;
    /// The device's files, newest first.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    async fn list(&self, tenant: TenantId, device: DeviceId) -> DomainResult<Vec<DeviceFile>>;
    /// # Errors
    /// `Unknown` on storage failure; `Ok(None)` for an id outside the tenant.
    async fn get(&self, tenant: TenantId, id: FileId) -> DomainResult<Option<DeviceFile>>;
}

/// Keeping, listing and reading device files.
#[derive(Clone)]
pub struct DeviceFiles {
    repo: Arc<dyn DeviceFileRepo>,
    devices: Arc<dyn DeviceRepo>,
    store: Arc<dyn FileStore>,
    clock: Arc<dyn Clock>,
}

impl DeviceFiles {
    pub fn new(repo: Arc<dyn DeviceFileRepo>, devices: Arc<dyn DeviceRepo>, store: Arc<dyn FileStore>) -> Self {
        Self { repo, devices, store, clock: Arc::new(SystemClock) }
    }

    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Keeps what a device answered for `purpose` at `taken_at`: its content (stored first,
    /// then recorded), or the record of why there is none.
    ///
    /// # Errors
    /// `NotFound("device")` for a device outside the tenant; `Unknown` when the store or
    /// the records fail.
    pub async fn keep(
        &self,
        tenant: TenantId,
        device: DeviceId,
        purpose: &str,
        taken_at: &str,
        outcome: Result<FileContent, (DeviceFileState, String)>,
    ) -> DomainResult<DeviceFile> {
        let d = self.devices.get(tenant, device).await?.ok_or(DomainError::NotFound("device"))?;
        let mut file = DeviceFile {
            id: FileId::new(),
            tenant_id: tenant,
            device_id: device,
            integration_id: d.integration_id,
            purpose: purpose.to_owned(),
            taken_at: taken_at.to_owned(),
            state: DeviceFileState::Stored,
            filename: None,
            content_type: None,
            size: None,
            md5: None,
            note: None,
            created_at: self.clock.now(),
        };
        match outcome {
            Ok(c) => {
                self.store.put(&file.storage_key(), &c.bytes).await?;
                file.filename = Some(c.filename);
                file.content_type = Some(c.content_type);
                file.size = Some(i64::try_from(c.bytes.len()).unwrap_or(i64::MAX));
                file.md5 = Some(c.md5);
            }
            Err((state, why)) => {
                file.state = state;
                file.note = Some(why);
            }
        }
        self.repo.save(tenant, file).await
    }

    /// The files of a device the actor can read.
    ///
    /// # Errors
    /// `NotFound("device")` for a device outside the actor's tenant.
    pub async fn list(&self, actor: &Actor, device: DeviceId) -> DomainResult<Vec<DeviceFile>> {
        let tenant = actor.require_reader()?;
        self.devices.get(tenant, device).await?.ok_or(DomainError::NotFound("device"))?;
        self.repo.list(tenant, device).await
    }

    /// A stored file of the tenant and its content; `None` when there is none.
    ///
    /// # Errors
    /// `Unknown` when the store or the records fail.
    pub async fn open(&self, tenant: TenantId, id: FileId) -> DomainResult<Option<(DeviceFile, Vec<u8>)>> {
        let Some(file) = self.repo.get(tenant, id).await?.filter(|f| f.state == DeviceFileState::Stored) else {
            return Ok(None);
        };
        Ok(self.store.get(&file.storage_key()).await?.map(|bytes| (file, bytes)))
    }
}
