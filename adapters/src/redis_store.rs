//! Redis connection shared by caches, throttles, pub/sub and queues.

use anyhow::Context;
use redis::aio::ConnectionManager;

/// Connects (with automatic reconnection) to `url`.
///
/// # Errors
/// When the URL is invalid or Redis does not answer.
pub async fn connect(url: &str) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(url).context("invalid REDIS_URL")?;
    let conn = tokio::time::timeout(std::time::Duration::from_secs(5), ConnectionManager::new(client))
        .await
        .context("connecting to Redis timed out")?
        .context("connecting to Redis")?;
    Ok(conn)
}

/// `PING`s Redis.
///
/// # Errors
/// When Redis does not answer `PONG`.
pub async fn ping(conn: &ConnectionManager) -> anyhow::Result<()> {
    let mut c = conn.clone();
    let pong: String = redis::cmd("PING").query_async(&mut c).await?;
    anyhow::ensure!(pong == "PONG", "unexpected PING answer");
    Ok(())
}
