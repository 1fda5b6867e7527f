use super::{
    Attempt, Claim, Delivery, DeliveryFilter, DeliveryQueue, DeliveryRepo, DeliverySender, DeliveryState, NewDelivery,
    RetryPolicy, SendReport, Verdict,
};
use crate::alarms::{AlarmKind, AlarmService, AlarmSeverity, RaiseAlarm};
use crate::clock::{self, Clock};
use crate::ids::{DeliveryId, EntryId, IntegrationId, TenantId};
use crate::integrations::IntegrationRepo;
use crate::limits::{RateDecision, RateLimiter};
use crate::ttl::{CONFIG_TTL, TtlCache};
use crate::{Actor, DomainError, DomainResult, Page, PageRequest};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a delivery may sit PENDING before it counts as abandoned (its queue message
/// lost), by default; also how long an IN_FLIGHT delivery claimed without a lease (by a
/// version before leases) is left to its worker.
pub const STALE_AFTER: Duration = Duration::from_secs(120);

/// The longest window `replayDeliveries` takes.
pub const REPLAY_MAX_WINDOW: chrono::Duration = chrono::Duration::days(7);
/// The most deliveries one `replayDeliveries` sends again.
pub const REPLAY_MAX_DELIVERIES: u64 = 10_000;

/// How long a claim holds a delivery unless its worker's heartbeat renews it, by default:
/// a delivery whose worker stopped beating this long ago is taken up again.
pub const LEASE: Duration = Duration::from_secs(10);

/// Deliveries taken back from stopped workers per heartbeat.
const REQUEUE_BATCH: u64 = 500;

/// How soon a delivery waiting for its predecessor (same order key) looks again; the
/// predecessor also wakes it when it finishes.
const ORDER_RECHECK: Duration = Duration::from_secs(5);

/// The error a delivery of a disabled integration is left DEAD with.
pub const INTEGRATION_DISABLED: &str = "integration disabled: enable it, then retry or replay the delivery";

/// Writing deliveries, running their attempts under the retry policy, and operating them.
#[derive(Clone)]
pub struct DeliveryService {
    repo: Arc<dyn DeliveryRepo>,
    integrations: Arc<dyn IntegrationRepo>,
    sender: Arc<dyn DeliverySender>,
    queue: Arc<dyn DeliveryQueue>,
    limiter: Arc<dyn RateLimiter>,
    alarms: AlarmService,
    stale_after: chrono::Duration,
    /// How long a claim holds a delivery without a heartbeat.
    lease: chrono::Duration,
    /// The deliveries this process is sending now (by how many runs), whose leases its
    /// heartbeat renews.
    held: Arc<Mutex<HashMap<DeliveryId, u32>>>,
    /// Retry policies by integration, and whether it is disabled (read on every attempt).
    policies: Arc<TtlCache<IntegrationId, (RetryPolicy, bool)>>,
    /// Integrations known to exist in their tenant (checked on every enqueue).
    known: Arc<TtlCache<(TenantId, IntegrationId), ()>>,
    /// Integrations with no open `DELIVERY_FAILED` alarm as of recently: a success need
    /// not look for one to clear.
    quiet: Arc<TtlCache<IntegrationId, ()>>,
    /// Where the time comes from.
    clock: Arc<dyn Clock>,
}

/// The ports a `DeliveryService` runs on.
pub struct DeliveryPorts {
    pub repo: Arc<dyn DeliveryRepo>,
    pub integrations: Arc<dyn IntegrationRepo>,
    pub sender: Arc<dyn DeliverySender>,
    pub queue: Arc<dyn DeliveryQueue>,
    pub limiter: Arc<dyn RateLimiter>,
}

/// One attempt as metrics see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptSummary {
    /// `SUCCEEDED`, `RETRY`, `DEAD` or `TOKEN_EXPIRED`.
    pub outcome: &'static str,
    pub latency: Duration,
}

/// What `run` did.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// Another worker had it, or it was already finished.
    Skipped,
    /// Not sent yet: its rate limit or an earlier delivery of its order key holds it back
    /// until `until`, without using an attempt.
    Held { until: DateTime<Utc> },
    /// Sent once (twice after a token refresh); the delivery in its new state.
    Finished { delivery: Box<Delivery>, attempts: Vec<AttemptSummary> },
}

fn outcome_name(v: &Verdict) -> &'static str {
    match v {
        Verdict::Delivered => "SUCCEEDED",
        Verdict::Retry(_) => "RETRY",
        Verdict::Permanent(_) => "DEAD",
        Verdict::TokenExpired(_) => "TOKEN_EXPIRED",
    }
}

fn later(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::hours(1))
}

impl DeliveryService {
    pub fn new(ports: DeliveryPorts, alarms: AlarmService, stale_after: Duration) -> Self {
        let stale_after = chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::seconds(120));
        let DeliveryPorts { repo, integrations, sender, queue, limiter } = ports;
        Self {
            repo,
            integrations,
            sender,
            queue,
            limiter,
            alarms,
            stale_after,
            lease: chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::seconds(10)),
            held: Arc::new(Mutex::new(HashMap::new())),
            policies: Arc::new(TtlCache::new(CONFIG_TTL, 10_000)),
            known: Arc::new(TtlCache::new(CONFIG_TTL, 10_000)),
            quiet: Arc::new(TtlCache::new(CONFIG_TTL, 10_000)),
            clock: clock::system(),
        }
    }

    /// Reads the time from `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Claims hold a delivery for `lease` unless renewed; longer than the heartbeat that
    /// renews them (several beats, so that one late beat loses nothing).
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = chrono::Duration::from_std(lease).unwrap_or(self.lease);
        self
    }

    /// The deliveries this process is sending, held while the returned guard lives.
    fn hold(&self, id: DeliveryId) -> Held {
        *self.held.lock().unwrap_or_else(PoisonError::into_inner).entry(id).or_default() += 1;
        Held { held: self.held.clone(), id }
    }

    /// One worker heartbeat: extends the leases of the deliveries this process is sending,
    /// so that no other process takes them while it lives. Returns how many it renewed.
    ///
    /// # Errors
    /// `Unknown` on storage failure (the next beat tries again; the lease outlasts a beat).
    pub async fn renew_leases(&self) -> DomainResult<u64> {
        let ids: Vec<DeliveryId> = self.held.lock().unwrap_or_else(PoisonError::into_inner).keys().copied().collect();
        if ids.is_empty() {
            return Ok(0);
        }
        self.repo.renew(&ids, later(self.clock.now(), self.lease.to_std().unwrap_or(LEASE))).await
    }

    /// Takes back the deliveries whose worker stopped beating (their lease ran out: the
    /// process died mid-attempt) and asks a worker to send them now; each is taken back
    /// by one process only. Returns how many.
    ///
    /// # Errors
    /// `Unknown` on storage failure. A delivery taken back but not queued (the queue
    /// unreachable) is RETRYING and due: the sweep sends it.
    pub async fn requeue_abandoned(&self) -> DomainResult<usize> {
        let now = self.clock.now();
        let ids = self.repo.requeue_abandoned(now, now - self.stale_after, REQUEUE_BATCH).await?;
        for id in &ids {
            tracing::info!(delivery_id = %id, "taking up a delivery whose worker stopped");
            self.schedule(*id, now).await;
        }
        Ok(ids.len())
    }

    /// Writes a delivery and asks a worker to send it now. When the queue cannot take it,
    /// the delivery is still written and the sweep sends it.
    ///
    /// # Errors
    /// `Duplicate` for an idempotency key the integration already used; `NotFound` for an
    /// integration outside the tenant.
    pub async fn enqueue(&self, tenant: TenantId, input: NewDelivery) -> DomainResult<Delivery> {
        let key = (tenant, input.integration_id);
        if self.known.get(&key).is_none() {
            self.integrations.get(tenant, input.integration_id).await?.ok_or(DomainError::NotFound("integration"))?;
            self.known.put(key, ());
        }
        let d = self.repo.create(tenant, input).await?;
        self.schedule(d.id, self.clock.now()).await;
        Ok(d)
    }

    /// Asks a worker to run deliveries that a domain change wrote in its own transaction.
    pub async fn dispatch(&self, ids: &[DeliveryId]) {
        for id in ids {
            self.schedule(*id, self.clock.now()).await;
        }
    }

    async fn schedule(&self, id: DeliveryId, at: DateTime<Utc>) {
        if let Err(e) = self.queue.schedule(id, at).await {
            tracing::warn!(error = %e, delivery_id = %id, "queue unreachable; the sweep will send it");
        }
    }

    /// One attempt (two when the vendor's token expired) of a delivery; then the state the
    /// retry policy gives. Called by workers with the delivery's id only.
    ///
    /// # Errors
    /// `Unknown` on storage failure (the sweep finds the delivery again).
    pub async fn run(&self, id: DeliveryId) -> DomainResult<RunOutcome> {
        let now = self.clock.now();
        let lease_until = now + self.lease;
        let d = match self.repo.claim(id, now, lease_until, now - self.stale_after).await? {
            Claim::Claimed(d) => *d,
            Claim::Taken => return Ok(RunOutcome::Skipped),
            Claim::Waiting => {
                let until = later(now, ORDER_RECHECK);
                self.schedule(id, until).await;
                return Ok(RunOutcome::Held { until });
            }
        };
        // Renewed by this process's heartbeat until the attempt is over (or this future
        // dropped): another process takes the delivery only once this one stops beating.
        let _held = self.hold(d.id);
        let (policy, disabled) = self.policy(&d).await?;
        if let Some(limit) = self.sender.rate_limit(&d).filter(|_| !disabled) {
            match self.limiter.acquire(&limit.key, limit.limit, limit.window).await {
                Ok(RateDecision::Allowed) => {}
                Ok(RateDecision::Limited { retry_after }) => {
                    let until = later(now, retry_after);
                    self.repo.release(d.id, until).await?;
                    self.schedule(d.id, until).await;
                    return Ok(RunOutcome::Held { until });
                }
                // A limiter outage must not stop deliveries; the vendor is the final judge.
                Err(e) => tracing::warn!(error = %e, "rate limiter unreachable; sending anyway"),
            }
        }
        let mut number = d.attempts;
        let mut fresh_token = false;
        let mut summaries = Vec::with_capacity(1);
        loop {
            let started = Instant::now();
            // A panic in a vendor client fails this attempt only (locks it held are released
            // as it unwinds); whatever the vendor said is made storable.
            let sent = if disabled {
                // Nothing goes out for a disabled integration: the delivery waits, DEAD, to be
                // retried or replayed once it is enabled again.
                Ok(SendReport {
                    request: d.kind.to_string(),
                    http_status: None,
                    vendor_code: None,
                    vendor_message: None,
                    verdict: Verdict::Permanent(INTEGRATION_DISABLED.to_owned()),
                })
            } else {
                std::panic::AssertUnwindSafe(self.sender.send(&d, fresh_token)).catch_unwind().await
            };
            let report = storable(sent.unwrap_or_else(|_| {
                tracing::error!(delivery_id = %d.id, kind = %d.kind, "the sender panicked");
                SendReport {
                    request: d.kind.to_string(),
                    http_status: None,
                    vendor_code: None,
                    vendor_message: None,
                    verdict: Verdict::Retry("the sender failed unexpectedly (panicked); see the logs".into()),
                }
            }));
            let latency = started.elapsed();
            summaries.push(AttemptSummary { outcome: outcome_name(&report.verdict), latency });
            let error = match &report.verdict {
                Verdict::Delivered => None,
                Verdict::Retry(e) | Verdict::Permanent(e) | Verdict::TokenExpired(e) => Some(e.clone()),
            };
            // When the attempt ended: its record's time and the start of the wait after it.
            let at = self.clock.now();
            let (state, next_at, last_error) = match &report.verdict {
                Verdict::Delivered => (DeliveryState::Succeeded, None, None),
                Verdict::TokenExpired(_) if !fresh_token => (DeliveryState::InFlight, None, None),
                Verdict::Permanent(e) | Verdict::TokenExpired(e) => (DeliveryState::Dead, None, Some(e.clone())),
                Verdict::Retry(e) => {
                    let n = u32::try_from(number).unwrap_or(u32::MAX);
                    let elapsed = (at - d.first_attempt_at.unwrap_or(at)).to_std().unwrap_or_default();
                    match policy.next_delay(n, elapsed, RetryPolicy::jitter(d.id.as_uuid())) {
                        None if policy.max_attempts.is_some() => {
                            (DeliveryState::Dead, None, Some(format!("attempts used up; last error: {e}")))
                        }
                        None => (DeliveryState::Dead, None, Some(format!("retried for 24 h; last error: {e}"))),
                        Some(delay) => (DeliveryState::Retrying, Some(later(at, delay)), Some(e.clone())),
                    }
                }
            };
            let attempt = Attempt {
                id: EntryId::new(),
                delivery_id: d.id,
                number,
                at,
                request: report.request.clone(),
                http_status: report.http_status,
                vendor_code: report.vendor_code.clone(),
                vendor_message: report.vendor_message.clone(),
                latency_ms: i64::try_from(latency.as_millis()).unwrap_or(i64::MAX),
                error,
                outcome: outcome_name(&report.verdict).to_owned(),
                next_attempt_at: next_at,
            };
            if state == DeliveryState::InFlight {
                // The vendor's token expired: a fresh one, and the next attempt at once.
                self.repo.record_attempt(d.tenant_id, attempt).await?;
                fresh_token = true;
                number += 1;
                continue;
            }
            // The attempt and the state it leads to are written together.
            let finished = self.repo.complete(d.tenant_id, attempt, state, next_at, last_error.clone()).await?;
            match (state, next_at) {
                (DeliveryState::Succeeded, _) => {
                    self.clear_failure_alarm(&finished).await;
                    self.wake_successor(&finished).await;
                }
                (DeliveryState::Retrying, Some(at)) => self.schedule(d.id, at).await,
                _ => self.dead(&finished, last_error.unwrap_or_default()).await,
            }
            return Ok(RunOutcome::Finished { delivery: Box::new(finished), attempts: summaries });
        }
    }

    /// Forgets what this process knows of the integration (its retry policy, whether it
    /// is disabled), after a change to it; other processes see it within `CONFIG_TTL`.
    pub fn forget_integration(&self, id: IntegrationId) {
        self.policies.remove(&id);
    }

    /// The integration's retry policy and whether it is disabled (as of `CONFIG_TTL` ago).
    async fn policy(&self, d: &Delivery) -> DomainResult<(RetryPolicy, bool)> {
        if let Some(p) = self.policies.get(&d.integration_id) {
            return Ok(p);
        }
        let p = match self.integrations.get(d.tenant_id, d.integration_id).await? {
            Some(i) => {
                (RetryPolicy::from_settings(i.settings.get("retry")).unwrap_or_default(), i.disabled_at.is_some())
            }
            None => (RetryPolicy::default(), false),
        };
        self.policies.put(d.integration_id, p);
        Ok(p)
    }

    /// A finished delivery lets the next one of its order key go.
    async fn wake_successor(&self, d: &Delivery) {
        if d.order_key.is_none() {
            return;
        }
        match self.repo.next_in_order(d).await {
            Ok(Some(next)) => self.schedule(next, self.clock.now()).await,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "finding the next delivery in order"),
        }
    }

    /// Deliveries waiting for a worker, by state (the queue-depth metric).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn depth(&self) -> DomainResult<Vec<(DeliveryState, u64)>> {
        self.repo.depth().await
    }

    /// After a delivery went DEAD: the integration's alarm, and its successor in order.
    async fn dead(&self, dead: &Delivery, error: String) {
        // The alarm is a signal for operators; failing to raise it must not undo the state.
        self.quiet.remove(&dead.integration_id);
        let _ = self.alarms.raise_in(dead.tenant_id, failure_alarm(dead, Some(&error), self.clock.now())).await;
        self.wake_successor(dead).await;
    }

    async fn clear_failure_alarm(&self, d: &Delivery) {
        if self.quiet.get(&d.integration_id).is_some() {
            return;
        }
        if self
            .alarms
            .clear_open(d.tenant_id, &failure_alarm(d, None, self.clock.now()), "a delivery succeeded")
            .await
            .is_ok()
        {
            self.quiet.put(d.integration_id, ());
        }
    }

    /// Sends a RETRYING or DEAD delivery again now, with the same idempotency key.
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `NotFound`; `InvalidTransition` when it is pending,
    /// in flight or succeeded.
    pub async fn retry(&self, actor: &Actor, id: DeliveryId) -> DomainResult<Delivery> {
        let tenant = actor.require_tenant_admin()?;
        let d = self.repo.get(tenant, id).await?.ok_or(DomainError::NotFound("delivery"))?;
        if !matches!(d.state, DeliveryState::Retrying | DeliveryState::Dead) {
            return Err(DomainError::InvalidTransition(format!("{} -> PENDING", d.state.as_str())));
        }
        // A new retry window: the policy gives up 24 h after this retry's first attempt.
        let d = self.repo.finish(id, DeliveryState::Pending, None, d.last_error.clone(), None).await?;
        self.schedule(id, self.clock.now()).await;
        Ok(d)
    }

    /// Retries every RETRYING or DEAD delivery the filter selects (at most 10,000).
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `Invalid { field: "filter.state" }` for another state.
    pub async fn retry_all(&self, actor: &Actor, filter: &DeliveryFilter) -> DomainResult<u64> {
        let tenant = actor.require_tenant_admin()?;
        if filter.state.is_some_and(|s| !matches!(s, DeliveryState::Retrying | DeliveryState::Dead)) {
            return Err(DomainError::invalid("filter.state", "only RETRYING or DEAD deliveries are retried"));
        }
        let mut n = 0;
        let mut after = None;
        loop {
            let page = self.repo.list(tenant, filter, PageRequest::new(Some(100), after)?).await?;
            for d in &page.items {
                if matches!(d.state, DeliveryState::Retrying | DeliveryState::Dead)
                    && self.retry(actor, d.id).await.is_ok()
                {
                    n += 1;
                }
            }
            after = page.items.last().map(|d| d.id.as_uuid());
            if !page.has_next_page || n >= 10_000 {
                return Ok(n);
            }
        }
    }

    /// `replayDeliveries`: sends every delivery of `integration` created in `[since, until)`
    /// again (after a vendor lost messages), SUCCEEDED ones included; answers how many.
    /// Each goes out as a new attempt of the same delivery, with its idempotency key: a
    /// vendor that still has the message recognises it, one that lost it takes it, and no
    /// command (a recharge, a valve change) can be applied twice by a copy under a new key.
    /// PENDING and IN_FLIGHT deliveries are on their way already and not counted.
    ///
    /// # Errors
    /// `Forbidden` unless tenant admin; `NotFound` for an integration outside the tenant;
    /// `Invalid { field: "until" }` unless `since < until` within [`REPLAY_MAX_WINDOW`];
    /// `Invalid { field: "since" }` when the window holds more than
    /// [`REPLAY_MAX_DELIVERIES`] deliveries (nothing is replayed then).
    pub async fn replay_window(
        &self,
        actor: &Actor,
        integration: IntegrationId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> DomainResult<u64> {
        let tenant = actor.require_tenant_admin()?;
        if until <= since {
            return Err(DomainError::invalid("until", "must be after since"));
        }
        if until - since > REPLAY_MAX_WINDOW {
            return Err(DomainError::invalid(
                "until",
                format!("the window is at most {} days", REPLAY_MAX_WINDOW.num_days()),
            ));
        }
        self.integrations.get(tenant, integration).await?.ok_or(DomainError::NotFound("integration"))?;
        let n = self.repo.count_window(tenant, integration, since, until).await?;
        if n > REPLAY_MAX_DELIVERIES {
            return Err(DomainError::invalid(
                "since",
                format!("the window holds {n} deliveries; at most {REPLAY_MAX_DELIVERIES} are replayed at once"),
            ));
        }
        let ids = self.repo.requeue_window(tenant, integration, since, until).await?;
        let now = self.clock.now();
        for id in &ids {
            self.schedule(*id, now).await;
        }
        Ok(ids.len() as u64)
    }

    /// Re-queues what is due and held by nobody (lost queue messages, dead workers).
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn sweep(&self, now: DateTime<Utc>) -> DomainResult<usize> {
        let stale = now - self.stale_after;
        let due = self.repo.due(now, stale, 1000).await?;
        for id in &due {
            self.queue.schedule(*id, now).await?;
        }
        Ok(due.len())
    }

    /// # Errors
    /// `NotFound` when absent or in another tenant.
    pub async fn get(&self, actor: &Actor, id: DeliveryId) -> DomainResult<Delivery> {
        self.repo.get(actor.require_reader()?, id).await?.ok_or(DomainError::NotFound("delivery"))
    }

    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn list(
        &self,
        actor: &Actor,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> DomainResult<Page<Delivery>> {
        self.repo.list(actor.require_reader()?, filter, page).await
    }

    /// Records what the vendor later reported of a delivery (a command's execution), found
    /// by its idempotency key; `None` when the integration has no such delivery.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn record_result(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        idempotency_key: &str,
        result: &serde_json::Value,
    ) -> DomainResult<Option<Delivery>> {
        self.repo.set_result(tenant, integration, idempotency_key, result).await
    }

    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn attempts(&self, actor: &Actor, id: DeliveryId) -> DomainResult<Vec<Attempt>> {
        self.repo.attempts(actor.require_reader()?, id).await
    }

    /// The attempts of several deliveries, in one read.
    ///
    /// # Errors
    /// `Forbidden` for actors without a tenant.
    pub async fn attempts_of(&self, actor: &Actor, ids: &[DeliveryId]) -> DomainResult<Vec<Attempt>> {
        self.repo.attempts_of(actor.require_reader()?, ids).await
    }
}

/// A delivery this process is sending, until dropped.
struct Held {
    held: Arc<Mutex<HashMap<DeliveryId, u32>>>,
    id: DeliveryId,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.id);
            }
        }
    }
}

/// The `DELIVERY_FAILED` alarm of an integration.
fn failure_alarm(d: &Delivery, error: Option<&str>, at: DateTime<Utc>) -> RaiseAlarm {
    RaiseAlarm {
        device_id: None,
        integration_id: Some(d.integration_id),
        ticket_id: None,
        kind: AlarmKind::system("DELIVERY_FAILED"),
        severity: AlarmSeverity::Major,
        message: error.map(|e| format!("delivery {} ({}) failed: {e}", d.id, d.kind)).unwrap_or_default(),
        vendor_code: None,
        vendor_text: None,
        inbound_event_id: None,
        raised_at: at,
        attributes: serde_json::json!({"deliveryId": d.id.to_string(), "kind": d.kind.as_str()}),
    }
}

/// Text a database can store: NUL characters (PostgreSQL's text refuses them) escaped.
fn storable_text(s: String) -> String {
    if s.contains('\0') { s.replace('\0', "\\0") } else { s }
}

/// A send report whose every text can be stored, so its attempt is always recorded.
fn storable(r: SendReport) -> SendReport {
    let verdict = match r.verdict {
        Verdict::Delivered => Verdict::Delivered,
        Verdict::Retry(e) => Verdict::Retry(storable_text(e)),
        Verdict::Permanent(e) => Verdict::Permanent(storable_text(e)),
        Verdict::TokenExpired(e) => Verdict::TokenExpired(storable_text(e)),
    };
    SendReport {
        request: storable_text(r.request),
        http_status: r.http_status,
        vendor_code: r.vendor_code.map(storable_text),
        vendor_message: r.vendor_message.map(storable_text),
        verdict,
    }
}

#[cfg(test)]
mod storable_tests {
    use super::*;

    #[test]
    fn nul_characters_are_escaped_everywhere_in_a_report() {
        let r = storable(SendReport {
            request: "POST \0".into(),
            http_status: Some(200),
            vendor_code: Some("a\0".into()),
            vendor_message: Some("ok\0bad".into()),
            verdict: Verdict::Retry("x\0".into()),
        });
        assert_eq!(r.vendor_message.as_deref(), Some("ok\\0bad"));
        assert!(!r.request.contains('\0') && !r.vendor_code.unwrap_or_default().contains('\0'));
        assert_eq!(r.verdict, Verdict::Retry("x\\0".into()));
    }
}
