//! The Dingding open API client (seed 002 sections 4.2, 4.3): `{base}/openapi/v1/{name}`
//! (v2 for 14.x), `access_token` from `client_id`/`client_secret` through the shared token
//! cache, in the query string on GET and the JSON body on POST; `ErrNo` 101/102 mean the
//! token is no longer accepted.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use super::wire::{self, Envelope, Method, TokenAnswer, TokenRequest};
use crate::vendors::retryable_status;
use domain::ids::{IntegrationId, TenantId};
use domain::integrations::IntegrationService;
use domain::tokens::{CachedToken, TokenProvider};
use domain::ttl::{CONFIG_TTL, TtlCache};
use domain::{Clock, DomainError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// How a call failed; no variant carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The network or Dingding's front end failed; worth another attempt.
    #[error("{0}")]
    Transport(String),
    /// Dingding's token endpoint or the token itself was refused (`ErrNo` 101/102).
    #[error("token {0}")]
    TokenExpired(String),
    /// Dingding answered `ErrNo` other than 0.
    #[error("ErrNo {code}: {message}")]
    Rejected { code: i64, message: String },
    /// The integration cannot be used (missing settings or credentials).
    #[error("{0}")]
    Config(String),
    /// The answer is not what the document says.
    #[error("malformed answer: {0}")]
    Malformed(String),
}

impl CallError {
    /// 15000 (internal) and 14003 (database) are Dingding's own trouble; worth retrying.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Rejected { code, .. } => matches!(code, 14003 | 15000),
            _ => false,
        }
    }
}

/// The account of one integration.
#[derive(Clone)]
pub struct Account {
    pub integration: IntegrationId,
    pub base_url: String,
    client_id: String,
    client_secret: SecretString,
}

impl Account {
    fn token_key(&self) -> String {
        format!("dingding:{}:{}", self.integration, self.client_id)
    }
}

/// Calls Dingding for any integration of any tenant.
#[derive(Clone)]
pub struct Client {
    http: crate::vendors::Http,
    tokens: Arc<TokenProvider>,
    integrations: IntegrationService,
    accounts: Arc<TtlCache<IntegrationId, Account>>,
    clock: Arc<dyn Clock>,
}

fn transport(e: &reqwest::Error) -> CallError {
    // reqwest errors carry the URL, whose query holds the token: keep the kind only.
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_decode() {
        "undecodable answer"
    } else {
        "transport error"
    };
    CallError::Transport(what.to_owned())
}

/// A query-string value for a GET parameter.
fn query_value(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn envelope(bytes: &[u8]) -> Result<Envelope, CallError> {
    serde_json::from_slice(bytes).map_err(|_| CallError::Transport("undecodable answer".to_owned()))
}

/// The result of interface `name` from its answer's bytes: the fields beside `ErrNo` when
/// it is 0.
///
/// # Errors
/// `TokenExpired` for `ErrNo` 101/102, `Rejected` for any other, `Malformed` without one,
/// `Transport` when the bytes are no JSON object.
pub(crate) fn answer_of(name: &str, bytes: &[u8]) -> Result<Map<String, Value>, CallError> {
    let env = envelope(bytes)?;
    match env.err_no {
        Some(0) => Ok(env.rest),
        Some(code @ (101 | 102)) => Err(CallError::TokenExpired(super::api_error_text(code).to_owned())),
        Some(code) => Err(CallError::Rejected {
            code,
            message: env.err_msg.filter(|m| !m.is_empty()).unwrap_or_else(|| super::api_error_text(code).to_owned()),
        }),
        None => Err(CallError::Malformed(format!("{name}: no ErrNo"))),
    }
}

/// The token and its expiry (when Dingding gives one) from an `access_token` answer (4.2).
///
/// # Errors
/// `Rejected` for an `ErrNo` other than 0, `Malformed` without a token.
pub(crate) fn token_answer(bytes: &[u8]) -> Result<(String, Option<chrono::DateTime<chrono::Utc>>), CallError> {
    let env = envelope(bytes)?;
    match env.err_no {
        Some(0) | None => {}
        Some(code) => {
            return Err(CallError::Rejected { code, message: env.err_msg.unwrap_or_default() });
        }
    }
    let t: TokenAnswer =
        serde_json::from_value(Value::Object(env.rest)).map_err(|e| CallError::Malformed(e.to_string()))?;
    let value =
        t.access_token.filter(|t| !t.is_empty()).ok_or_else(|| CallError::Malformed("no access_token".into()))?;
    Ok((value, t.expires_time.and_then(|s| chrono::DateTime::from_timestamp(s, 0))))
}

impl Client {
    pub fn new(http: crate::vendors::Http, tokens: Arc<TokenProvider>, integrations: IntegrationService) -> Self {
        Self {
            http,
            tokens,
            integrations,
            accounts: Arc::new(TtlCache::new(CONFIG_TTL, 10_000)),
            clock: domain::clock::system(),
        }
    }

    /// Reads the time (a token's expiry when Dingding gives none) from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The integration's base URL and credentials.
    ///
    /// # Errors
    /// `Config` when gone or incomplete; `Transport` when it cannot be loaded.
    pub async fn account(&self, tenant: TenantId, integration: IntegrationId) -> Result<Account, CallError> {
        if let Some(a) = self.accounts.get(&integration) {
            return Ok(a);
        }
        let (i, creds) = match self.integrations.open_credentials(tenant, integration).await {
            Ok(found) => found,
            Err(DomainError::NotFound(_)) => return Err(CallError::Config("the integration is gone".into())),
            Err(e) => return Err(CallError::Transport(format!("loading the integration: {e}"))),
        };
        let text = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
        let base_url =
            i.settings.get("baseUrl").and_then(Value::as_str).unwrap_or_default().trim_end_matches('/').to_owned();
        let (Some(client_id), Some(secret)) = (text(&creds, "clientId"), text(&creds, "clientSecret")) else {
            return Err(CallError::Config("credentials.clientId and clientSecret are required".into()));
        };
        let a = Account { integration, base_url, client_id, client_secret: SecretString::from(secret) };
        self.accounts.put(integration, a.clone());
        Ok(a)
    }

    fn url(a: &Account, name: &str) -> String {
        let (_, version) = wire::interface(name);
        format!("{}/openapi/v{version}/{name}", a.base_url)
    }

    /// The redacted form of a call, for attempt records.
    pub fn summary(a: &Account, name: &str) -> String {
        let (method, _) = wire::interface(name);
        let m = if method == Method::Get { "GET" } else { "POST" };
        format!("{m} {}", crate::vendors::redact_url(&Self::url(a, name)))
    }

    async fn fetch_token(&self, a: &Account) -> Result<CachedToken, CallError> {
        let body = TokenRequest { client_id: &a.client_id, client_secret: a.client_secret.expose_secret() };
        let resp = self
            .http
            .send(self.http.post(Self::url(a, "access_token")).json(&body))
            .await
            .map_err(CallError::Transport)?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            return Err(CallError::Transport(format!("access_token answered HTTP {status}")));
        }
        let bytes = resp.bytes().await.map_err(|e| transport(&e))?;
        let (value, expires_at) = token_answer(&bytes)?;
        let expires_at = expires_at.unwrap_or_else(|| self.clock.now() + chrono::Duration::hours(2));
        Ok(CachedToken::new(value, expires_at))
    }

    /// The cached token, or a new one; with `fresh`, a new one even when one is cached.
    ///
    /// # Errors
    /// As the token endpoint answers.
    pub async fn token(&self, a: &Account, fresh: bool) -> Result<CachedToken, CallError> {
        let fetched = AtomicBool::new(false);
        let err = std::sync::Mutex::new(None);
        let fetch = || async {
            fetched.store(true, Ordering::SeqCst);
            self.fetch_token(a).await.map_err(|e| {
                let msg = e.to_string();
                if let Ok(mut slot) = err.lock() {
                    *slot = Some(e);
                }
                DomainError::upstream(super::VENDOR, msg)
            })
        };
        let key = a.token_key();
        let mut token = self.tokens.token(&key, None, fetch).await;
        if fresh
            && !fetched.load(Ordering::SeqCst)
            && let Ok(stale) = &token
        {
            let stale = stale.value.clone();
            let fetch = || async {
                self.fetch_token(a).await.map_err(|e| {
                    let msg = e.to_string();
                    if let Ok(mut slot) = err.lock() {
                        *slot = Some(e);
                    }
                    DomainError::upstream(super::VENDOR, msg)
                })
            };
            token = self.tokens.token(&key, Some(&stale), fetch).await;
        }
        token.map_err(|e| {
            err.lock()
                .ok()
                .and_then(|mut s| s.take())
                .unwrap_or_else(|| CallError::Transport(format!("token cache: {e}")))
        })
    }

    /// One call with `token`; `ErrNo` 101/102 answer `TokenExpired`.
    ///
    /// # Errors
    /// Every `CallError`.
    pub async fn call_with(
        &self,
        a: &Account,
        token: &str,
        name: &str,
        params: Value,
    ) -> Result<Map<String, Value>, CallError> {
        let (method, _) = wire::interface(name);
        let url = Self::url(a, name);
        let Value::Object(mut params) = params else {
            return Err(CallError::Malformed("parameters must be an object".into()));
        };
        let req = match method {
            Method::Get => {
                let mut q: Vec<(String, String)> = vec![("access_token".into(), token.to_owned())];
                q.extend(params.iter().filter_map(|(k, v)| query_value(v).map(|v| (k.clone(), v))));
                self.http.get(url).query(&q)
            }
            Method::Post => {
                params.insert("access_token".into(), Value::from(token));
                self.http.post(url).json(&params)
            }
        };
        let resp = self.http.send(req).await.map_err(CallError::Transport)?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            return Err(if retryable_status(status) {
                CallError::Transport(format!("{name} answered HTTP {status}"))
            } else {
                CallError::Rejected { code: i64::from(status), message: format!("{name} answered HTTP {status}") }
            });
        }
        let bytes = resp.bytes().await.map_err(|e| transport(&e))?;
        answer_of(name, &bytes)
    }

    /// A read: the cached token, and once more with a new token on `ErrNo` 101/102.
    ///
    /// # Errors
    /// Every `CallError`.
    pub async fn read(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        name: &str,
        params: Value,
    ) -> Result<Map<String, Value>, CallError> {
        let a = self.account(tenant, integration).await?;
        let token = self.token(&a, false).await?;
        match self.call_with(&a, &token.value, name, params.clone()).await {
            Err(CallError::TokenExpired(_)) => {
                let token = self.token(&a, true).await?;
                self.call_with(&a, &token.value, name, params).await
            }
            other => other,
        }
    }
}
