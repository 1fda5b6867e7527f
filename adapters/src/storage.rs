//! File storage (the `FileStore` port): on local disk by default, one file per key under a
//! root directory, written to a temporary name and renamed so a reader never sees half a
//! file; in production an S3-compatible bucket through `object_store`.

use async_trait::async_trait;
use domain::tickets::FileStore;
use domain::{DomainError, DomainResult};
use object_store::ObjectStoreExt as _;
use std::path::{Path, PathBuf};

/// Stores files under `root` (by default `{data dir}/files`).
#[derive(Debug, Clone)]
pub struct DiskFileStore {
    root: PathBuf,
}

impl DiskFileStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, key: &str) -> DomainResult<PathBuf> {
        Ok(self.root.join(Path::new(safe_key(key)?)))
    }
}

/// `key` when it is relative segments only: keys are made by the domain from ids, but a
/// key that could leave the root (or the prefix) is refused all the same.
fn safe_key(key: &str) -> DomainResult<&str> {
    let safe = !key.is_empty()
        && key.split('/').all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains('\\') && !s.contains(':'));
    if safe { Ok(key) } else { Err(DomainError::Unknown(anyhow::anyhow!("unsafe storage key {key:?}"))) }
}

/// Stores files in an object store under a prefix (`s3://bucket/prefix` in production).
#[derive(Debug, Clone)]
pub struct ObjectFileStore {
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    prefix: String,
}

impl ObjectFileStore {
    pub fn new(store: std::sync::Arc<dyn object_store::ObjectStore>, prefix: &str) -> Self {
        Self { store, prefix: prefix.trim_matches('/').to_owned() }
    }

    /// The bucket of `s3://bucket/prefix`; endpoint, region and credentials come from the
    /// `AWS_*` variables (`AWS_ENDPOINT` for an S3-compatible service, `AWS_ALLOW_HTTP`).
    ///
    /// # Errors
    /// For a URL that is not `s3://bucket[/prefix]`, or a configuration the builder refuses.
    pub fn s3(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| anyhow::anyhow!("LINKYARD_STORAGE_URL must be s3://bucket/prefix"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        anyhow::ensure!(!bucket.is_empty(), "LINKYARD_STORAGE_URL names no bucket");
        let store = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket).build()?;
        Ok(Self::new(std::sync::Arc::new(store), prefix))
    }

    fn path(&self, key: &str) -> DomainResult<object_store::path::Path> {
        let key = safe_key(key)?;
        let full = if self.prefix.is_empty() { key.to_owned() } else { format!("{}/{key}", self.prefix) };
        object_store::path::Path::parse(full).map_err(|e| DomainError::Unknown(anyhow::Error::new(e)))
    }
}

fn store_err(e: object_store::Error) -> DomainError {
    DomainError::Unknown(anyhow::Error::new(e).context("object storage"))
}

#[async_trait]
impl FileStore for ObjectFileStore {
    async fn put(&self, key: &str, bytes: &[u8]) -> DomainResult<()> {
        let payload = object_store::PutPayload::from(bytes.to_vec());
        self.store.put(&self.path(key)?, payload).await.map(drop).map_err(store_err)
    }

    async fn get(&self, key: &str) -> DomainResult<Option<Vec<u8>>> {
        match self.store.get(&self.path(key)?).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(store_err)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err(e)),
        }
    }
}

fn io(e: std::io::Error) -> DomainError {
    DomainError::Unknown(anyhow::Error::new(e).context("file storage"))
}

#[async_trait]
impl FileStore for DiskFileStore {
    async fn put(&self, key: &str, bytes: &[u8]) -> DomainResult<()> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        let tmp = path.with_extension("part");
        tokio::fs::write(&tmp, bytes).await.map_err(io)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io)
    }

    async fn get(&self, key: &str) -> DomainResult<Option<Vec<u8>>> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_and_reads_back_and_refuses_escaping_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskFileStore::new(dir.path());
        store.put("tickets/a/b/c", b"hello").await.unwrap();
        assert_eq!(store.get("tickets/a/b/c").await.unwrap().as_deref(), Some(&b"hello"[..]));
        assert_eq!(store.get("tickets/a/b/missing").await.unwrap(), None);
        for bad in ["../x", "a/../../x", "", "a//b", "/etc/passwd", "a\\..\\b"] {
            assert!(store.put(bad, b"x").await.is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn an_object_store_keeps_files_under_its_prefix() {
        let memory = std::sync::Arc::new(object_store::memory::InMemory::new());
        let store = ObjectFileStore::new(memory.clone(), "/linkyard/");
        store.put("devices/t/d/f", b"picture").await.unwrap();
        assert_eq!(store.get("devices/t/d/f").await.unwrap().as_deref(), Some(&b"picture"[..]));
        assert_eq!(store.get("devices/t/d/missing").await.unwrap(), None);
        let under_prefix = object_store::path::Path::from("linkyard/devices/t/d/f");
        let raw = object_store::ObjectStoreExt::get(&*memory, &under_prefix).await.unwrap();
        assert_eq!(raw.bytes().await.unwrap().as_ref(), b"picture");
        assert!(store.put("../escape", b"x").await.is_err());
        assert!(ObjectFileStore::s3("gs://bucket").is_err());
        assert!(ObjectFileStore::s3("s3:///prefix").is_err());
    }
}
