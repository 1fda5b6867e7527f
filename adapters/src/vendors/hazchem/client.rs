//! Uploads to the regulator (seed 004 二): a token from `POST /auth/login` (the password
//! base64-encoded; kept 30 minutes in the shared token cache), then every upload with
//! `Authorization: Bearer {token}`. A 401 (HTTP or `code`) logs in again and retries once.
//!
//! `workTicket` sends the permit as it is at send time, with every other permit of the
//! integration whose upload is still waiting (a batch), and a fresh `dataId`. The answer's
//! text names the permits that failed: those are recorded failed with their reason (and
//! their deliveries retried), the others synced.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use super::wire::{self, Answer};
use super::{DEPARTURE_ALARM, GAS_ALARM, TICKET_FILE, VENDOR, WORK_TICKET};
use crate::vendors::{redact_url, retryable_status};
use async_trait::async_trait;
use domain::deliveries::{
    Delivery, DeliveryFilter, DeliveryKind, DeliveryRepo, DeliverySender, DeliveryState, RateLimit, SendReport, Verdict,
};
use domain::ids::{FileId, IntegrationId, TicketId};
use domain::integrations::IntegrationService;
use domain::tickets::{FileStore, SyncState, Ticket, TicketRepo, TicketSync, TicketSyncRepo};
use domain::tokens::{CachedToken, TokenProvider};
use domain::ttl::{CONFIG_TTL, TtlCache};
use domain::{Clock, DomainError, DomainResult, PageRequest};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Seed 004 二 1.5: a token is good for 30 minutes.
const TOKEN_LIFETIME_MINUTES: i64 = 30;
/// Seed 004 二.3: more than a minute between two attachments (of one permit); a second of
/// margin for the way to the regulator.
const FILE_SPACING: Duration = Duration::from_secs(61);
/// Most permits in one `workTicket` request.
const BATCH: i64 = 100;

/// The regulator's address, the platform's identity there and its account.
#[derive(Clone)]
struct Endpoint {
    base: String,
    system_name: String,
    area_code: String,
    username: String,
    password: SecretString,
}

/// What the sender reads and records besides the wire.
#[derive(Clone)]
pub struct HazchemPorts {
    pub integrations: IntegrationService,
    pub tokens: Arc<TokenProvider>,
    pub tickets: Arc<dyn TicketRepo>,
    pub syncs: Arc<dyn TicketSyncRepo>,
    pub deliveries: Arc<dyn DeliveryRepo>,
    pub files: Arc<dyn FileStore>,
    pub clock: Arc<dyn Clock>,
}

/// Sends `hazchem.*` deliveries.
#[derive(Clone)]
pub struct HazchemSender {
    http: crate::vendors::Http,
    p: HazchemPorts,
    endpoints: Arc<TtlCache<IntegrationId, Endpoint>>,
}

fn report(request: &str, status: Option<u16>, answer: Option<&Answer>, verdict: Verdict) -> SendReport {
    SendReport {
        request: request.to_owned(),
        http_status: status.map(i32::from),
        vendor_code: answer.map(Answer::code),
        vendor_message: answer.map(answer_text),
        verdict,
    }
}

/// The answer's words: `data` when it is text (the upload summary), else `msg`.
pub(crate) fn answer_text(a: &Answer) -> String {
    match &a.data {
        Value::String(s) if !s.is_empty() => s.clone(),
        _ => a.msg.clone().unwrap_or_default(),
    }
}

/// What an answer means, apart from the failed permits a 200 may name.
pub(crate) fn classify(status: u16, answer: Option<&Answer>) -> Verdict {
    if status == 401 {
        return Verdict::TokenExpired("HTTP 401".into());
    }
    if !(200..300).contains(&status) {
        let e = format!("HTTP {status}");
        return if retryable_status(status) { Verdict::Retry(e) } else { Verdict::Permanent(e) };
    }
    let Some(a) = answer else { return Verdict::Retry("unreadable answer".into()) };
    let code = a.code();
    let said = format!("code {code}: {}", a.msg.clone().unwrap_or_default());
    match code.parse::<u16>() {
        Ok(200) => Verdict::Delivered,
        Ok(401) => Verdict::TokenExpired(said),
        Ok(c) if retryable_status(c) => Verdict::Retry(said),
        Ok(_) => Verdict::Permanent(said),
        Err(_) => Verdict::Retry(said),
    }
}

fn payload_id<T: std::str::FromStr>(d: &Delivery, key: &str) -> Option<T> {
    d.payload.get(key).and_then(Value::as_str).and_then(|s| s.parse().ok())
}

impl HazchemSender {
    pub fn new(http: crate::vendors::Http, ports: HazchemPorts) -> Self {
        Self { http, p: ports, endpoints: Arc::new(TtlCache::new(CONFIG_TTL, 10_000)) }
    }

    async fn endpoint(&self, d: &Delivery) -> Result<Endpoint, Verdict> {
        if let Some(e) = self.endpoints.get(&d.integration_id) {
            return Ok(e);
        }
        let (integration, credentials) = match self.p.integrations.open_credentials(d.tenant_id, d.integration_id).await
        {
            Ok(found) => found,
            Err(DomainError::NotFound(_)) => return Err(Verdict::Permanent("the integration is gone".into())),
            Err(e) => return Err(Verdict::Retry(format!("loading the integration: {e}"))),
        };
        let setting = |k: &str| integration.settings.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let cred = |k: &str| credentials.get(k).and_then(Value::as_str).map(str::to_owned);
        let (Some(username), Some(password)) = (cred("username"), cred("password")) else {
            return Err(Verdict::Permanent("credentials.username and password are required".into()));
        };
        let e = Endpoint {
            base: setting("baseUrl").trim_end_matches('/').to_owned(),
            system_name: setting("systemName"),
            area_code: setting("areaCode"),
            username,
            password: SecretString::from(password),
        };
        self.endpoints.put(d.integration_id, e.clone());
        Ok(e)
    }

    /// Seed 004 二.1: a new token.
    async fn login(&self, e: &Endpoint) -> DomainResult<CachedToken> {
        let url = format!("{}/auth/login", e.base);
        let resp = self
            .http
            .send(self.http.post(&url).json(&wire::login_body(&e.username, e.password.expose_secret())))
            .await
            .map_err(|err| DomainError::upstream(VENDOR, format!("login: {err}")))?;
        let status = resp.status().as_u16();
        let answer = resp.bytes().await.ok().and_then(|b| wire::answer(&b));
        let code = answer.as_ref().map(Answer::code).unwrap_or_default();
        let token = answer.as_ref().and_then(wire::login_token);
        match token {
            Some(t) => {
                let expires = self.p.clock.now() + chrono::Duration::minutes(TOKEN_LIFETIME_MINUTES);
                Ok(CachedToken::new(t, expires))
            }
            // The account itself is refused: no retry fixes that.
            None if status == 401 || code == "401" || code == "400" => {
                let msg = answer.and_then(|a| a.msg).unwrap_or_default();
                Err(DomainError::invalid("credentials", format!("login refused: code {code}: {msg}")))
            }
            None => Err(DomainError::upstream(VENDOR, format!("login: HTTP {status}, code {code}"))),
        }
    }

    /// The integration's token: the cached one, or a new one when `fresh` (the last was
    /// refused) or none is cached.
    async fn token(&self, e: &Endpoint, integration: IntegrationId, fresh: bool) -> Result<String, Verdict> {
        let key = format!("hazchem:{integration}");
        let got = async {
            let current = self.p.tokens.token(&key, None, || self.login(e)).await?;
            if !fresh {
                return Ok(current);
            }
            self.p.tokens.token(&key, Some(&current.value), || self.login(e)).await
        }
        .await;
        match got {
            Ok(t) => Ok(t.value),
            Err(DomainError::Invalid { message, .. }) => Err(Verdict::Permanent(message)),
            Err(err) => Err(Verdict::Retry(err.to_string())),
        }
    }

    /// Posts `body` (JSON or multipart) to `path` with the token; the answer as read.
    async fn post(&self, e: &Endpoint, token: &str, path: &str, body: Body) -> Result<(u16, Option<Answer>), Verdict> {
        let url = format!("{}{path}", e.base);
        let req = self.http.post(&url).bearer_auth(token);
        let req = match body {
            Body::Json(v) => req.json(&v),
            Body::Form(f) => req.multipart(f),
        };
        let resp = self.http.send(req).await.map_err(crate::vendors::send_failure)?;
        let status = resp.status().as_u16();
        Ok((status, resp.bytes().await.ok().and_then(|b| wire::answer(&b))))
    }

    async fn ticket(&self, d: &Delivery, id: TicketId) -> Result<Ticket, Verdict> {
        match self.p.tickets.get(d.tenant_id, id).await {
            Ok(Some(t)) => Ok(t),
            Ok(None) => Err(Verdict::Permanent("the permit is gone".into())),
            Err(e) => Err(Verdict::Retry(format!("loading the permit: {e}"))),
        }
    }

    async fn synced(&self, t: &Ticket) -> Result<bool, Verdict> {
        match self.p.syncs.get(t.tenant_id, t.id).await {
            Ok(s) => Ok(s.is_some_and(|s| s.synced(t))),
            Err(e) => Err(Verdict::Retry(format!("loading the upload state: {e}"))),
        }
    }

    /// The other permits of the integration whose uploads are waiting, not yet synced.
    async fn waiting(&self, d: &Delivery, own: TicketId) -> Vec<Ticket> {
        let filter = DeliveryFilter {
            state: Some(DeliveryState::Pending),
            integration_id: Some(d.integration_id),
            kind: Some(WORK_TICKET.to_owned()),
            ..DeliveryFilter::default()
        };
        let Ok(page) = PageRequest::new(Some(BATCH), None) else { return Vec::new() };
        let listed = match self.p.deliveries.list(d.tenant_id, &filter, page).await {
            Ok(p) => p.items,
            Err(e) => {
                tracing::warn!(error = %e, "listing waiting permit uploads; sending this one alone");
                return Vec::new();
            }
        };
        let mut seen = vec![own];
        let mut out = Vec::new();
        for w in listed {
            let Some(id) = payload_id::<TicketId>(&w, "ticketId") else { continue };
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            if let Ok(t) = self.ticket(d, id).await
                && !self.synced(&t).await.unwrap_or(true)
            {
                out.push(t);
            }
        }
        out
    }

    async fn record(&self, d: &Delivery, t: &Ticket, state: SyncState, error: Option<String>) {
        let sync = TicketSync {
            ticket_id: t.id,
            tenant_id: t.tenant_id,
            integration_id: d.integration_id,
            state,
            version: t.updated_at,
            last_error: error,
            last_upload_at: self.p.clock.now(),
        };
        if let Err(e) = self.p.syncs.record(sync).await {
            tracing::warn!(error = %e, ticket_id = %t.id, "recording a permit's upload state");
        }
    }

    /// Seed 004 二.2.
    async fn work_ticket(&self, d: &Delivery, fresh: bool) -> SendReport {
        let path = "/data/workorder/workTicket";
        let Some(own) = payload_id::<TicketId>(d, "ticketId") else {
            return report(path, None, None, Verdict::Permanent("no ticketId in the payload".into()));
        };
        let own = match self.ticket(d, own).await {
            Ok(t) => t,
            Err(v) => return report(path, None, None, v),
        };
        match self.synced(&own).await {
            Ok(true) => {
                let note = format!("nothing sent: the regulator holds permit {} as it is", wire::permit_id(&own));
                return report(&note, None, None, Verdict::Delivered);
            }
            Ok(false) => {}
            Err(v) => return report(path, None, None, v),
        }
        let own_id = own.id;
        let mut batch = vec![own];
        batch.extend(self.waiting(d, own_id).await);
        let e = match self.endpoint(d).await {
            Ok(e) => e,
            Err(v) => return report(path, None, None, v),
        };
        let data_id = uuid::Uuid::new_v4().simple().to_string();
        let request = format!("POST {}{path} dataId={data_id} permits={}", redact_url(&e.base), batch.len());
        let token = match self.token(&e, d.integration_id, fresh).await {
            Ok(t) => t,
            Err(v) => {
                self.record_all(d, &batch, &v).await;
                return report(&request, None, None, v);
            }
        };
        let items = batch.iter().map(wire::permit_item).collect();
        let body = wire::envelope(&e.system_name, &e.area_code, &data_id, items);
        let (status, answer) = match self.post(&e, &token, path, Body::Json(body)).await {
            Ok(got) => got,
            Err(v) => {
                self.record_all(d, &batch, &v).await;
                return report(&request, None, None, v);
            }
        };
        let verdict = classify(status, answer.as_ref());
        if verdict != Verdict::Delivered {
            self.record_all(d, &batch, &verdict).await;
            return report(&request, Some(status), answer.as_ref(), verdict);
        }
        let failed = answer.as_ref().and_then(|a| wire::failed_permits(&answer_text(a))).unwrap_or_default();
        let mut own_failure = None;
        for (i, t) in batch.iter().enumerate() {
            let id = wire::permit_id(t);
            match failed.iter().find(|(f, _)| *f == id) {
                Some((_, reason)) => {
                    self.record(d, t, SyncState::Failed, Some(reason.clone())).await;
                    if i == 0 {
                        own_failure = Some(reason.clone());
                    }
                }
                None => self.record(d, t, SyncState::Synced, None).await,
            }
        }
        let verdict = match own_failure {
            Some(reason) => Verdict::Retry(format!("the regulator refused the permit: {reason}")),
            None => Verdict::Delivered,
        };
        report(&request, Some(status), answer.as_ref(), verdict)
    }

    /// A send that failed as a whole leaves every permit of the batch failed with its reason.
    async fn record_all(&self, d: &Delivery, batch: &[Ticket], v: &Verdict) {
        let reason = match v {
            Verdict::Retry(e) | Verdict::Permanent(e) => e.clone(),
            Verdict::TokenExpired(_) | Verdict::Delivered => return,
        };
        for t in batch {
            self.record(d, t, SyncState::Failed, Some(reason.clone())).await;
        }
    }

    /// Seed 004 二.3: one file of one permit, multipart `wid` and `file`.
    async fn ticket_file(&self, d: &Delivery, fresh: bool) -> SendReport {
        let path = "/data/workorder/ticketFile";
        let (Some(ticket), Some(file)) = (payload_id::<TicketId>(d, "ticketId"), payload_id::<FileId>(d, "fileId"))
        else {
            return report(path, None, None, Verdict::Permanent("no ticketId or fileId in the payload".into()));
        };
        let t = match self.ticket(d, ticket).await {
            Ok(t) => t,
            Err(v) => return report(path, None, None, v),
        };
        if !super::tickets::PERMIT_FILES.statuses.contains(&t.status.as_str()) {
            let why = format!("the permit is {}: files go only while it is ISSUED or ACCEPTED", t.status.as_str());
            return report(path, None, None, Verdict::Permanent(why));
        }
        let meta = match self.p.tickets.files(d.tenant_id, ticket).await {
            Ok(files) => files.into_iter().find(|f| f.id == file),
            Err(e) => return report(path, None, None, Verdict::Retry(format!("loading the file: {e}"))),
        };
        let Some(meta) = meta else {
            return report(path, None, None, Verdict::Permanent("the file is gone".into()));
        };
        let bytes = match self.p.files.get(&meta.storage_key).await {
            Ok(Some(b)) => b,
            Ok(None) => return report(path, None, None, Verdict::Permanent("the file's content is gone".into())),
            Err(e) => return report(path, None, None, Verdict::Retry(format!("reading the file: {e}"))),
        };
        let e = match self.endpoint(d).await {
            Ok(e) => e,
            Err(v) => return report(path, None, None, v),
        };
        let wid = wire::permit_id(&t);
        let request =
            format!("POST {}{path} wid={wid} file={} ({} bytes)", redact_url(&e.base), meta.filename, bytes.len());
        let token = match self.token(&e, d.integration_id, fresh).await {
            Ok(t) => t,
            Err(v) => return report(&request, None, None, v),
        };
        let part = match reqwest::multipart::Part::bytes(bytes)
            .file_name(meta.filename.clone())
            .mime_str(&meta.content_type)
        {
            Ok(p) => p,
            Err(_) => return report(&request, None, None, Verdict::Permanent("unusable content type".into())),
        };
        let form = reqwest::multipart::Form::new().text("wid", wid).part("file", part);
        match self.post(&e, &token, path, Body::Form(form)).await {
            Ok((status, answer)) => report(&request, Some(status), answer.as_ref(), classify(status, answer.as_ref())),
            Err(v) => report(&request, None, None, v),
        }
    }

    /// Seed 004 二.4 / 二.5: one alarm item, as planned when the alarm changed.
    async fn alarm(&self, d: &Delivery, path: &str, fresh: bool) -> SendReport {
        let Some(item) = d.payload.get("item").cloned() else {
            return report(path, None, None, Verdict::Permanent("no item in the payload".into()));
        };
        let e = match self.endpoint(d).await {
            Ok(e) => e,
            Err(v) => return report(path, None, None, v),
        };
        let data_id = uuid::Uuid::new_v4().simple().to_string();
        let id = item.get("id").and_then(Value::as_str).unwrap_or_default();
        let request = format!("POST {}{path} dataId={data_id} alarm={id}", redact_url(&e.base));
        let token = match self.token(&e, d.integration_id, fresh).await {
            Ok(t) => t,
            Err(v) => return report(&request, None, None, v),
        };
        let body = wire::envelope(&e.system_name, &e.area_code, &data_id, vec![item]);
        match self.post(&e, &token, path, Body::Json(body)).await {
            Ok((status, answer)) => report(&request, Some(status), answer.as_ref(), classify(status, answer.as_ref())),
            Err(v) => report(&request, None, None, v),
        }
    }
}

/// A request body.
enum Body {
    Json(Value),
    Form(reqwest::multipart::Form),
}

#[async_trait]
impl DeliverySender for HazchemSender {
    async fn send(&self, d: &Delivery, fresh_token: bool) -> SendReport {
        match d.kind.as_str() {
            WORK_TICKET => self.work_ticket(d, fresh_token).await,
            TICKET_FILE => self.ticket_file(d, fresh_token).await,
            GAS_ALARM => self.alarm(d, "/data/workorder/gasAlarm", fresh_token).await,
            DEPARTURE_ALARM => self.alarm(d, "/data/workorder/departureAlarm", fresh_token).await,
            other => report(other, None, None, Verdict::Permanent(format!("unknown kind {other}"))),
        }
    }

    /// Seed 004 二.3: attachments of one permit at least a minute apart (held, not refused).
    fn rate_limit(&self, d: &Delivery) -> Option<RateLimit> {
        if d.kind != DeliveryKind::from_static(TICKET_FILE) {
            return None;
        }
        let ticket = d.payload.get("ticketId").and_then(Value::as_str)?;
        Some(RateLimit {
            key: format!("hazchem:ticket_file:{}:{ticket}", d.integration_id),
            limit: 1,
            window: FILE_SPACING,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: Value) -> Answer {
        Answer { code, msg: Some("m".into()), data: Value::Null }
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(classify(200, Some(&answer(200.into()))), Verdict::Delivered);
        assert_eq!(classify(200, Some(&answer("200".into()))), Verdict::Delivered);
        assert!(matches!(classify(401, None), Verdict::TokenExpired(_)));
        assert!(matches!(classify(200, Some(&answer(401.into()))), Verdict::TokenExpired(_)));
        assert!(matches!(classify(503, None), Verdict::Retry(_)));
        assert!(matches!(classify(400, None), Verdict::Permanent(_)));
        assert!(matches!(classify(200, Some(&answer(500.into()))), Verdict::Retry(_)));
        assert!(matches!(classify(200, Some(&answer(400.into()))), Verdict::Permanent(_)));
        assert!(matches!(classify(200, None), Verdict::Retry(_)));
    }
}
