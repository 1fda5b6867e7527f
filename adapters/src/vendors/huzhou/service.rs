//! The Huzhou use cases: fault alarms from readings (4.1), pushes on ticket and device
//! changes (4.2, 7.7, 7.8), the data center's pull API (7.1-7.4, 7.6) and the live
//! subscriptions' ticks (7.5 every interval for the window).

use super::state::{self, is_lift};
use super::{
    DuePush, ELEV_PARAS, ELEV_THINGS, ELEVATOR_FAULT, HuzhouRepo, LIFT_ALARM, LIFT_MAINTAIN, MAX_ITEMS,
    SubscriptionWindow, TRAP_FAULT, request_id,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::alarms::{Alarm, AlarmKind, AlarmService, AlarmSeverity, RaiseAlarm, RaiseOutcome};
use domain::deliveries::{
    Delivery, DeliveryKind, DeliverySender, DeliveryService, DeliveryState, NewDelivery, Verdict,
};
use domain::devices::{Device, DeviceRepo};
use domain::ids::{DeliveryId, IntegrationId, TenantId};
use domain::ingest::{Fact, ReadingRule};
use domain::integrations::{Integration, IntegrationKind, IntegrationRepo};
use domain::outbound::{Message, Planner};
use domain::tickets::{MaintenanceStatus, RescueStatus, Ticket, TicketKind, TicketStatus};
use domain::ttl::{CONFIG_TTL, TtlCache};
use domain::{Clock, DomainError, DomainResult};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Elevators whose live state one statement loads.
const LOAD_SLICE: usize = 2_000;
/// How long a notice waits for its first pushes before writing its subscriptions anyway
/// (at most a third of the interval: the next push's slot reads them).
const FIRST_PUSH_WAIT: Duration = Duration::from_secs(1);
/// Slices of live state loaded at once by one batch of pushes (the pool serves others too).
const LOADS_AT_ONCE: usize = 4;
/// How far before its read a live slot looks for changed subscriptions (clock skew
/// between the processes that write them).
const CHANGE_MARGIN_MS: i64 = 1_000;

/// How long a token issued by 7.1 `get_token` is valid (the seed: 2 小时).
pub const INBOUND_TOKEN_TTL: chrono::Duration = chrono::Duration::hours(2);

/// A live subscription's rhythm: `settings.subscriptionIntervalSeconds` (3) and
/// `settings.subscriptionWindowSeconds` (180), per the seed's 7.4 (V2.2: 3 秒/次, 3 分钟).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveSettings {
    pub interval: Duration,
    pub window: Duration,
}

impl LiveSettings {
    pub fn of(settings: &Value) -> Self {
        let secs = |k: &str, d: u64| settings.get(k).and_then(Value::as_u64).filter(|n| *n > 0).unwrap_or(d);
        Self {
            interval: Duration::from_secs(secs("subscriptionIntervalSeconds", 3)),
            window: Duration::from_secs(secs("subscriptionWindowSeconds", 180)),
        }
    }
}

/// Why an `elev_api` call is refused, with the seed's return code (五. 返回码对照表).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiRefusal {
    /// 300: wrong app key or secret.
    BadCredentials,
    /// 301: the token is missing, unknown or expired.
    BadToken,
    /// 320: a required query parameter is missing.
    Missing(&'static str),
    /// 330: a parameter is invalid.
    Invalid(String),
    /// 360: no such elevator.
    UnknownElevator,
    /// 500: the platform failed; logged, answered opaquely.
    Internal,
}

impl ApiRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadCredentials => "300",
            Self::BadToken => "301",
            Self::Missing(_) => "320",
            Self::Invalid(_) => "330",
            Self::UnknownElevator => "360",
            Self::Internal => "500",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::BadCredentials => "app_key or app_secret is wrong".into(),
            Self::BadToken => "token is missing or expired".into(),
            Self::Missing(p) => format!("{p} is required"),
            Self::Invalid(m) => m.clone(),
            Self::UnknownElevator => "unknown elevator".into(),
            Self::Internal => "internal error".into(),
        }
    }
}

/// 7.4 `unique_ids`: the comma-separated elevator codes, each once.
///
/// # Errors
/// `Missing` when none is given; `Invalid` for a code longer than 64 bytes.
pub(crate) fn notice_ids(unique_ids: Option<&str>) -> Result<Vec<String>, ApiRefusal> {
    let mut seen = std::collections::HashSet::new();
    let ids: Vec<String> = unique_ids
        .ok_or(ApiRefusal::Missing("unique_ids"))?
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && seen.insert(*s))
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        return Err(ApiRefusal::Missing("unique_ids"));
    }
    if let Some(bad) = ids.iter().find(|i| i.len() > 64) {
        let head: String = bad.chars().take(16).collect();
        return Err(ApiRefusal::Invalid(format!("unique id too long: {head}…")));
    }
    Ok(ids)
}

/// 7.4 `subscribe`: 1 starts live pushes (`true`), 2 ends them.
///
/// # Errors
/// `Missing` or `Invalid`.
pub(crate) fn notice_subscribe(subscribe: Option<&str>) -> Result<bool, ApiRefusal> {
    match subscribe.map(str::trim) {
        Some("1") => Ok(true),
        Some("2") => Ok(false),
        Some(_) => Err(ApiRefusal::Invalid("subscribe must be 1 or 2".into())),
        None => Err(ApiRefusal::Missing("subscribe")),
    }
}

fn internal(e: DomainError) -> ApiRefusal {
    tracing::error!(error = ?e, "huzhou elev_api");
    ApiRefusal::Internal
}

fn same(a: &str, b: &str) -> bool {
    crate::crypto::constant_time_eq(a.as_bytes(), b.as_bytes())
}

/// The ports the service runs on.
pub struct HuzhouPorts {
    pub repo: Arc<dyn HuzhouRepo>,
    pub devices: Arc<dyn DeviceRepo>,
    pub integrations: Arc<dyn IntegrationRepo>,
    pub alarms: AlarmService,
    pub deliveries: DeliveryService,
    /// Live pushes go straight to the sender: a 3-second sample retried later is stale.
    pub sender: Arc<dyn DeliverySender>,
    /// Token expiry, live slots and their waits.
    pub clock: Arc<dyn Clock>,
}

/// Huzhou elevator integrations.
#[derive(Clone)]
pub struct HuzhouService {
    p: Arc<HuzhouPorts>,
    /// Integrations by id (settings and kind), read on every live tick.
    configs: Arc<TtlCache<IntegrationId, Integration>>,
}

/// The alarm's 4.1 `internal_id` (and 4.2's, which names it): its id as 32 hex characters.
pub fn internal_id(alarm: &Alarm) -> String {
    alarm.id.as_uuid().simple().to_string()
}

impl HuzhouService {
    pub fn new(ports: HuzhouPorts) -> Self {
        Self { p: Arc::new(ports), configs: Arc::new(TtlCache::new(CONFIG_TTL, 10_000)) }
    }

    async fn integration(&self, tenant: TenantId, id: IntegrationId) -> DomainResult<Option<Integration>> {
        if let Some(i) = self.configs.get(&id) {
            return Ok(Some(i));
        }
        let found = self.p.integrations.get(tenant, id).await?;
        if let Some(i) = &found {
            self.configs.put(id, i.clone());
        }
        Ok(found)
    }

    /// The Huzhou integration a device or ticket belongs to, if it is one.
    async fn huzhou_of(&self, tenant: TenantId, id: Option<IntegrationId>) -> DomainResult<Option<Integration>> {
        let Some(id) = id else { return Ok(None) };
        Ok(self.integration(tenant, id).await?.filter(|i| i.kind == IntegrationKind::HuzhouElevator))
    }

    /// The facts a reading of an elevator implies: a `message_code` other than `00` raises
    /// (or repeats) its `ELEVATOR_FAULT` alarm; `00` clears it. Opening the alarm and its
    /// recovery each plan one `lift_alarm` delivery, written with the alarm.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn reading_facts(
        &self,
        device: &Device,
        values: &Map<String, Value>,
        ts: DateTime<Utc>,
    ) -> DomainResult<Vec<Fact>> {
        if !is_lift(device.kind) {
            return Ok(Vec::new());
        }
        let Some(code) = values.get("message_code").and_then(state::text) else { return Ok(Vec::new()) };
        let pushes = self.huzhou_of(device.tenant_id, Some(device.integration_id)).await?.is_some();
        let body = values.get("message_body").and_then(state::text).unwrap_or_default();
        let raise = RaiseAlarm {
            device_id: Some(device.id),
            integration_id: Some(device.integration_id),
            ticket_id: None,
            kind: AlarmKind::parse(ELEVATOR_FAULT)?,
            severity: AlarmSeverity::Critical,
            message: if body.is_empty() {
                format!("elevator fault {code}")
            } else {
                format!("elevator fault {code}: {body}")
            },
            vendor_code: Some(code.clone()),
            vendor_text: (!body.is_empty()).then(|| body.clone()),
            inbound_event_id: None,
            raised_at: ts,
            attributes: json!({"uniqueId": device.external_id, "messageCode": code}),
        };
        let lift = device.clone();
        let values = values.clone();
        let delivery = Arc::new(move |alarm: &Alarm, recovered: bool| NewDelivery {
            integration_id: lift.integration_id,
            kind: DeliveryKind::from_static(LIFT_ALARM),
            idempotency_key: request_id(),
            // A recovery never overtakes its fault.
            order_key: Some(format!("lift:{}", lift.external_id)),
            payload: state::lift_alarm(&lift, &internal_id(alarm), &values, recovered),
            subject: None,
        });
        if code != "00" {
            let plan = move |(alarm, outcome): &(Alarm, RaiseOutcome)| {
                if pushes && *outcome == RaiseOutcome::Opened { vec![delivery(alarm, false)] } else { Vec::new() }
            };
            Ok(vec![Fact::AlarmRaised { alarm: raise, plan: Some(Arc::new(plan)) }])
        } else {
            let plan = move |alarm: &Alarm| if pushes { vec![delivery(alarm, true)] } else { Vec::new() };
            let note = "自动恢复 (message_code 00)".to_owned();
            Ok(vec![Fact::AlarmCleared { key: raise, note, plan: Some(Arc::new(plan)) }])
        }
    }

    /// A push, in its own order or none.
    fn push(integration: IntegrationId, kind: &'static str, payload: Value, order: Option<String>) -> NewDelivery {
        NewDelivery {
            integration_id: integration,
            kind: DeliveryKind::from_static(kind),
            idempotency_key: request_id(),
            order_key: order,
            payload,
            subject: None,
        }
    }

    /// 7.7 for one elevator: its pushes leave in the order of the changes (a newer name never
    /// overtaken by an older one), one order key per device.
    fn paras(integration: IntegrationId, device: &Device, item: Value) -> NewDelivery {
        let order = Some(format!("paras:{}", device.id));
        Self::push(integration, ELEV_PARAS, json!({"rt_paras": [item]}), order)
    }

    /// 7.1: checks the data center's key and secret (the integration's `inboundAppKey` and
    /// `inboundAppSecret`) and issues a token valid for 2 hours.
    ///
    /// # Errors
    /// `BadCredentials`; `Missing` for an absent parameter.
    pub async fn issue_token(
        &self,
        integration: &Integration,
        credentials: &Map<String, Value>,
        app_key: Option<&str>,
        app_secret: Option<&str>,
    ) -> Result<String, ApiRefusal> {
        Self::check_credentials(credentials, app_key, app_secret)?;
        let token = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
        self.p
            .repo
            .put_token(integration.tenant_id, integration.id, &token, self.p.clock.now() + INBOUND_TOKEN_TTL)
            .await
            .map_err(internal)?;
        Ok(token)
    }

    /// Checks the data center's `app_key` and `app_secret` against the integration's
    /// inbound credentials (in constant time).
    ///
    /// # Errors
    /// `Missing` for an absent one; `BadCredentials`.
    pub fn check_credentials(
        credentials: &Map<String, Value>,
        app_key: Option<&str>,
        app_secret: Option<&str>,
    ) -> Result<(), ApiRefusal> {
        let key = app_key.filter(|k| !k.is_empty()).ok_or(ApiRefusal::Missing("app_key"))?;
        let secret = app_secret.filter(|s| !s.is_empty()).ok_or(ApiRefusal::Missing("app_secret"))?;
        let want = |n: &str| credentials.get(n).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (k, s) = (want("inboundAppKey"), want("inboundAppSecret"));
        if k.is_empty() || s.is_empty() || !(same(key, &k) & same(secret, &s)) {
            return Err(ApiRefusal::BadCredentials);
        }
        Ok(())
    }

    /// Checks a token issued by `issue_token` for this integration.
    ///
    /// # Errors
    /// `BadToken`.
    pub async fn check_token(&self, integration: &Integration, token: Option<&str>) -> Result<(), ApiRefusal> {
        let token = token.map(str::trim).filter(|t| !t.is_empty()).ok_or(ApiRefusal::BadToken)?;
        let ok = self
            .p
            .repo
            .token_valid(integration.tenant_id, integration.id, token, self.p.clock.now())
            .await
            .map_err(internal)?;
        if ok { Ok(()) } else { Err(ApiRefusal::BadToken) }
    }

    /// The integration's elevator with this 6-digit unique code.
    ///
    /// # Errors
    /// `Missing("elev_id")`; `UnknownElevator`.
    pub async fn elevator(&self, integration: &Integration, elev_id: Option<&str>) -> Result<Device, ApiRefusal> {
        let id = elev_id.map(str::trim).filter(|e| !e.is_empty()).ok_or(ApiRefusal::Missing("elev_id"))?;
        let device =
            self.p.devices.find_by_external(integration.tenant_id, integration.id, id).await.map_err(internal)?;
        device.filter(|d| is_lift(d.kind)).ok_or(ApiRefusal::UnknownElevator)
    }

    /// 7.4: `subscribe` 1 starts (or extends) live pushes for the listed elevators, 2 ends
    /// them. Returns how many elevators it applied to.
    ///
    /// # Errors
    /// `Missing` / `Invalid` for the parameters.
    pub async fn notice(
        &self,
        integration: &Integration,
        unique_ids: Option<&str>,
        subscribe: Option<&str>,
    ) -> Result<u64, ApiRefusal> {
        let ids = notice_ids(unique_ids)?;
        let (tenant, id) = (integration.tenant_id, integration.id);
        match notice_subscribe(subscribe)? {
            true => {
                let live = LiveSettings::of(&integration.settings);
                let now = self.p.clock.now().timestamp_millis();
                let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4);
                let until = now + ms(live.window);
                // The first push is due now: this process sends it, to the elevators not
                // already subscribed (those keep their rhythm), while the subscriptions are
                // written; the slots of the live schedule send the later ones.
                let running: std::collections::HashSet<String> =
                    self.p.repo.running(tenant, id, now).await.map_err(internal)?.into_iter().collect();
                let first: Vec<String> = ids.iter().filter(|i| !running.contains(*i)).cloned().collect();
                if !first.is_empty() {
                    let svc = self.clone();
                    let pushed = tokio::spawn(async move {
                        let due = svc.p.clock.now();
                        svc.push_now(tenant, id, first, due).await
                    });
                    // The subscriptions are written once the first pushes are out: that
                    // write (a row and three index entries per elevator) would otherwise
                    // take the database and the CPU from them (bench, 50,000 elevators:
                    // first round p99 324 ms when written once their state was read).
                    // The next push is an interval away; a slow data center delays the
                    // write by a third of it at most.
                    let _ = tokio::time::timeout(FIRST_PUSH_WAIT.min(live.interval / 3), pushed).await;
                }
                self.p.repo.subscribe(tenant, id, &ids, now, ms(live.interval), until).await.map_err(internal)
            }
            false => {
                let now = self.p.clock.now().timestamp_millis();
                self.p.repo.unsubscribe(tenant, id, &ids, now).await.map_err(internal)
            }
        }
    }

    /// One slot of the live schedule, `[slot_ms, slot_ms + len_ms)`, called about
    /// `LIVE_LEAD` before it starts: claims the slot (one process sends it), reads the
    /// pushes due in it with their elevators' live state and builds their items, then
    /// sends them on time, per integration in requests of at most 100 elevators, each
    /// request when its items are due. Just before sending it reads the subscriptions
    /// written since its read, so an elevator unsubscribed meanwhile is left out. Returns
    /// how many requests were delivered.
    ///
    /// # Errors
    /// `Unknown` when the slot cannot be claimed or read.
    pub async fn live_slot(&self, slot_ms: i64, len_ms: i64) -> DomainResult<usize> {
        if !self.p.repo.claim_slot(slot_ms).await? {
            return Ok(0);
        }
        // Changes are looked for from a little before the read: clocks of the processes
        // that write subscriptions differ slightly; checking a few more rows is harmless.
        let read_at = self.p.clock.now().timestamp_millis() - CHANGE_MARGIN_MS;
        let due = self.p.repo.due_in(slot_ms, slot_ms + len_ms).await?;
        if due.is_empty() {
            return Ok(0);
        }
        // The items are built during the lead; their elevators' state is that recent.
        let now = self.p.clock.now();
        let mut groups: HashMap<(TenantId, IntegrationId), Vec<LiveItem>> = HashMap::new();
        for DuePush { tenant_id, integration_id, unique_id, due_ms, latest } in due {
            let item = state::things_item(&unique_id, &latest, now);
            groups.entry((tenant_id, integration_id)).or_default().push((due_ms, unique_id, item));
        }
        // So is each integration's endpoint and token: the sends find them cached.
        for (tenant, integration) in groups.keys() {
            self.p.sender.prepare(&live_delivery(*tenant, *integration, Value::Null, now)).await;
        }
        self.sleep_until_ms(slot_ms).await;
        let changed: HashMap<(IntegrationId, String), SubscriptionWindow> = self
            .p
            .repo
            .changed_since(read_at)
            .await?
            .into_iter()
            .map(|w| ((w.integration_id, w.unique_id.clone()), w))
            .collect();
        let mut sends = tokio::task::JoinSet::new();
        for ((tenant, integration), items) in groups {
            let mut items: Vec<(i64, Value)> = items
                .into_iter()
                .filter(|(at, u, _)| changed.get(&(integration, u.clone())).is_none_or(|w| w.covers(*at)))
                .map(|(at, _, item)| (at, item))
                .collect();
            items.sort_by_key(|(at, _)| *at);
            let mut items = items.into_iter().peekable();
            while items.peek().is_some() {
                let chunk: Vec<(i64, Value)> = items.by_ref().take(MAX_ITEMS).collect();
                // Sent when its last item is due: no elevator is pushed before its time.
                let last = chunk.last().map_or(slot_ms, |(at, _)| *at);
                let rt_data: Vec<Value> = chunk.into_iter().map(|(_, item)| item).collect();
                let svc = self.clone();
                sends.spawn(async move {
                    svc.sleep_until_ms(last).await;
                    svc.send_live(tenant, integration, rt_data).await
                });
            }
        }
        let mut ok = 0;
        while let Some(r) = sends.join_next().await {
            ok += r.unwrap_or(0);
        }
        Ok(ok)
    }

    /// The first push of new subscriptions, due now, 100 elevators per request. Their live
    /// state is read a slice at a time, and each slice is sent as soon as it is read, so
    /// the first requests leave while later slices are still loading (a slice that cannot
    /// be read is logged and skipped; the next pushes come anyway). Returns how many
    /// requests were delivered.
    async fn push_now(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        ids: Vec<String>,
        now: DateTime<Utc>,
    ) -> usize {
        let gate = Arc::new(tokio::sync::Semaphore::new(LOADS_AT_ONCE));
        // The endpoint and token are got ready first, while the process is still quiet
        // (under the loads below it took up to 200 ms), so no send fetches them.
        self.p.sender.prepare(&live_delivery(tenant, integration, Value::Null, now)).await;
        let mut slices = tokio::task::JoinSet::new();
        for slice in ids.chunks(LOAD_SLICE) {
            let (svc, slice, gate) = (self.clone(), slice.to_vec(), gate.clone());
            slices.spawn(async move {
                let snaps = {
                    let _turn = gate.acquire_owned().await.ok();
                    svc.p.repo.snapshots(tenant, integration, &slice).await
                };
                let snaps = match snaps {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, integration_id = %integration, "loading live states");
                        return 0;
                    }
                };
                let mut sends = tokio::task::JoinSet::new();
                for chunk in snaps.chunks(MAX_ITEMS) {
                    let rt_data: Vec<Value> =
                        chunk.iter().map(|s| state::things_item(&s.unique_id, &s.latest, now)).collect();
                    let svc = svc.clone();
                    sends.spawn(async move { svc.send_live(tenant, integration, rt_data).await });
                }
                let mut ok = 0;
                while let Some(r) = sends.join_next().await {
                    ok += r.unwrap_or(0);
                }
                ok
            });
        }
        let mut ok = 0;
        while let Some(r) = slices.join_next().await {
            ok += r.unwrap_or(0);
        }
        ok
    }

    /// One 7.5 request of live items; 1 when delivered. A rejected token is fetched
    /// again once; anything else is logged (a 3-second sample retried later is stale).
    async fn send_live(&self, tenant: TenantId, integration: IntegrationId, rt_data: Vec<Value>) -> usize {
        let d = live_delivery(tenant, integration, json!({"rt_data": rt_data}), self.p.clock.now());
        let mut report = self.p.sender.send(&d, false).await;
        if matches!(report.verdict, Verdict::TokenExpired(_)) {
            report = self.p.sender.send(&d, true).await;
        }
        match report.verdict {
            Verdict::Delivered => 1,
            v => {
                tracing::warn!(integration_id = %d.integration_id, verdict = ?v, "live push failed");
                0
            }
        }
    }

    /// Deletes lapsed subscriptions and expired inbound tokens.
    ///
    /// # Errors
    /// `Unknown` on storage failure.
    pub async fn prune(&self, now: DateTime<Utc>) -> DomainResult<u64> {
        self.p.repo.prune(now.timestamp_millis()).await
    }

    /// Sleeps until the Unix time `at_ms` on the clock (returns at once when it has passed).
    async fn sleep_until_ms(&self, at_ms: i64) {
        let wait = at_ms - self.p.clock.now().timestamp_millis();
        if wait > 0 {
            self.p.clock.sleep(Duration::from_millis(wait.unsigned_abs())).await;
        }
    }

    /// Devices and repositories, for the daily jobs.
    pub(super) fn ports(&self) -> &HuzhouPorts {
        &self.p
    }
}

/// A built 7.5 item: when it is due (Unix ms), its elevator's unique id, the item.
type LiveItem = (i64, String, Value);

/// A live push: sent once (a token refresh aside) and not stored.
fn live_delivery(tenant: TenantId, integration: IntegrationId, payload: Value, now: DateTime<Utc>) -> Delivery {
    Delivery {
        id: DeliveryId::new(),
        tenant_id: tenant,
        integration_id: integration,
        kind: DeliveryKind::from_static(ELEV_THINGS),
        idempotency_key: request_id(),
        order_key: None,
        payload,
        state: DeliveryState::InFlight,
        attempts: 1,
        next_attempt_at: None,
        last_error: None,
        created_at: now,
        updated_at: now,
        subject: None,
        result: None,
        first_attempt_at: Some(now),
    }
}

/// Whether the rescue is over (7.7 `rescue_url` = `#`).
fn rescue_ended(s: TicketStatus) -> bool {
    matches!(s, TicketStatus::Rescue(RescueStatus::Rescued | RescueStatus::Closed | RescueStatus::Cancelled))
}

fn fields_of(t: &Ticket) -> Map<String, Value> {
    t.fields.as_object().cloned().unwrap_or_default()
}

#[async_trait]
impl Planner for HuzhouService {
    async fn plan(&self, tenant: TenantId, msg: &Message) -> DomainResult<Vec<NewDelivery>> {
        match msg {
            Message::TicketSaved { before, after, .. } => self.ticket_saved(tenant, before.as_ref(), after).await,
            Message::DeviceSaved { before, after } => self.device_saved(tenant, before.as_ref(), after).await,
            _ => Ok(Vec::new()),
        }
    }
}

impl HuzhouService {
    /// A MAINTENANCE ticket done sends 4.2; a RESCUE ticket opened sends 7.7 with its
    /// `rescue_url`, ended sends 7.7 with `#`, closed sends 7.8.
    async fn ticket_saved(
        &self,
        tenant: TenantId,
        before: Option<&Ticket>,
        after: &Ticket,
    ) -> DomainResult<Vec<NewDelivery>> {
        let mut out = Vec::new();
        let device = match after.device_id {
            Some(d) => self.p.devices.get(tenant, d).await?,
            None => None,
        };
        let integration_id = after.integration_id.or(device.as_ref().map(|d| d.integration_id));
        let Some(integration) = self.huzhou_of(tenant, integration_id).await? else { return Ok(out) };
        let was = before.map(|b| b.status);
        let became = |s: TicketStatus| after.status == s && was != Some(s);
        let mut fields = fields_of(after);
        if let Some(d) = &device {
            fields.entry("unique_id").or_insert_with(|| json!(d.external_id));
            if let Some(code) = state::attr(d, "deviceCode") {
                fields.entry("device_id").or_insert_with(|| json!(code));
            }
            fields.entry("lift_type").or_insert_with(|| json!(state::lift_type(d.kind)));
        }
        match after.kind {
            TicketKind::Maintenance if became(TicketStatus::Maintenance(MaintenanceStatus::Done)) => {
                out.push(Self::push(integration.id, LIFT_MAINTAIN, Value::Object(fields), None));
            }
            TicketKind::Rescue => {
                let ended_now = rescue_ended(after.status) && !was.is_some_and(rescue_ended);
                if let Some(d) = &device {
                    if before.is_none() && !ended_now {
                        let url =
                            fields.get("rescue_url").and_then(state::text).or_else(|| state::attr(d, "rescueUrl"));
                        if let Some(url) = url.filter(|u| !u.is_empty()) {
                            let item = state::paras_item(d, Some(&url));
                            out.push(Self::paras(integration.id, d, item));
                        }
                    } else if ended_now && before.is_some() {
                        let item = state::paras_item(d, Some("#"));
                        out.push(Self::paras(integration.id, d, item));
                    }
                }
                if became(TicketStatus::Rescue(RescueStatus::Closed)) {
                    fields.remove("rescue_url");
                    out.push(Self::push(integration.id, TRAP_FAULT, Value::Object(fields), None));
                }
            }
            _ => {}
        }
        Ok(out)
    }

    /// A new elevator, or one whose static parameters changed, sends 7.7.
    async fn device_saved(
        &self,
        tenant: TenantId,
        before: Option<&Device>,
        after: &Device,
    ) -> DomainResult<Vec<NewDelivery>> {
        if !is_lift(after.kind) {
            return Ok(Vec::new());
        }
        let Some(integration) = self.huzhou_of(tenant, Some(after.integration_id)).await? else {
            return Ok(Vec::new());
        };
        if before.is_some_and(|b| state::static_params(b) == state::static_params(after)) {
            return Ok(Vec::new());
        }
        Ok(vec![Self::paras(integration.id, after, state::paras_item(after, None))])
    }
}

/// Elevator readings: their values are the data center's names, and their fault code
/// raises or clears the elevator's alarm.
#[async_trait]
impl ReadingRule for HuzhouService {
    fn check(&self, device: &Device, values: &Map<String, Value>) -> Result<(), String> {
        if is_lift(device.kind) { state::check_values(values) } else { Ok(()) }
    }

    async fn facts(&self, device: &Device, values: &Map<String, Value>, ts: DateTime<Utc>) -> DomainResult<Vec<Fact>> {
        self.reading_facts(device, values, ts).await
    }
}
