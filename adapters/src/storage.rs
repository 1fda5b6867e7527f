//! File storage on local disk (the default `FileStore`): one file per key under a root
//! directory, written to a temporary name and renamed so a reader never sees half a file.

use async_trait::async_trait;
use domain::tickets::FileStore;
use domain::{DomainError, DomainResult};
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

    /// The path of `key`; keys are made by the domain from ids, but a key that could leave
    /// the root is refused all the same.
    fn path(&self, key: &str) -> DomainResult<PathBuf> {
        let safe = !key.is_empty()
            && key.split('/').all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains('\\') && !s.contains(':'));
        if !safe {
            return Err(DomainError::Unknown(anyhow::anyhow!("unsafe storage key {key:?}")));
        }
        Ok(self.root.join(Path::new(key)))
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
}
