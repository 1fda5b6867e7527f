//! The delivery engine against an in-process fake vendor: retries with one idempotency key,
//! permanent errors, manual retries, token refresh, and the operations surface.

use crate::utils::fake::{Answer, FakeVendor, Judgement};
use crate::utils::{TenantFixture, TestApp, quick_jobs, spawn_app_with, tenant_with_admin};
use async_trait::async_trait;
use axum::http::StatusCode;
use domain::deliveries::{Delivery, DeliveryKind, DeliverySender, NewDelivery, RateLimit, SendReport, Verdict};
use domain::ids::{IntegrationId, TenantId};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The fake vendor: refuses a call without a `Request-Id` (400) and, on `/push/token`, a
/// cached token (401 "token expired"); its scripts are set up by `setup`: `fail3` answers
/// 500 three times then 200 (`fail2` twice), `bad-once` answers 400 (a permanent vendor
/// error) once then 200.
async fn start_vendor() -> FakeVendor {
    let vendor = FakeVendor::start_with(|r| {
        if r.header("request-id").is_empty() {
            return Judgement::Refuse(Answer::status(StatusCode::BAD_REQUEST, json!({"code": "MISSING_ID"})));
        }
        if r.path == "/push/token" && r.header("token") != "fresh" {
            return Judgement::Refuse(Answer::status(StatusCode::UNAUTHORIZED, json!({"code": "TOKEN_EXPIRED"})));
        }
        Judgement::Accept(None)
    })
    .await;
    let busy = Answer::status(StatusCode::INTERNAL_SERVER_ERROR, json!({"code": "BUSY"}));
    vendor.answer_next("/push/fail3", 3, busy.clone());
    vendor.answer_next("/push/fail2", 2, busy);
    let bad = Answer::status(StatusCode::BAD_REQUEST, json!({"code": "BAD_FIELD", "message": "missing field"}));
    vendor.answer_next("/push/bad-once", 1, bad);
    vendor.answer_default(Answer::ok(json!({"code": "OK"})));
    vendor
}

/// The sender tests register for the `fake` prefix: posts to the fake vendor the way a
/// vendor client does, and classifies the answer.
struct FakeSender {
    http: reqwest::Client,
    base: String,
}

#[async_trait]
impl DeliverySender for FakeSender {
    /// `fake.limited` deliveries: one per permit per 2 s, like hazchem attachments.
    fn rate_limit(&self, d: &Delivery) -> Option<RateLimit> {
        (d.kind.as_str() == "fake.limited").then(|| RateLimit {
            key: format!("fake:{}:{}", d.integration_id, d.payload["permit"].as_str().unwrap_or_default()),
            limit: 1,
            window: Duration::from_secs(2),
        })
    }

    async fn send(&self, d: &Delivery, fresh_token: bool) -> SendReport {
        let script = d.payload["script"].as_str().unwrap_or("ok");
        assert_ne!(script, "panic", "a vendor client bug");
        if script == "nul" {
            // A vendor answering text PostgreSQL cannot store as it is.
            return SendReport {
                request: "POST /push/nul\0".into(),
                http_status: Some(200),
                vendor_code: Some("OK\0".into()),
                vendor_message: Some("stored\0 with a NUL".into()),
                verdict: Verdict::Delivered,
            };
        }
        let resp = self
            .http
            .post(format!("{}/push/{script}", self.base))
            .header("request-id", &d.idempotency_key)
            .header("token", if fresh_token { "fresh" } else { "cached" })
            .json(&d.payload)
            .send()
            .await;
        let request = format!("POST /push/{script}");
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                return SendReport {
                    request,
                    http_status: None,
                    vendor_code: None,
                    vendor_message: None,
                    verdict: Verdict::Retry(e.to_string()),
                };
            }
        };
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let code = body["code"].as_str().map(str::to_owned);
        let verdict = match status {
            200 => Verdict::Delivered,
            401 => Verdict::TokenExpired("token expired".into()),
            429 | 500..=599 => Verdict::Retry(format!("HTTP {status}")),
            _ => Verdict::Permanent(body["message"].as_str().unwrap_or("rejected").to_owned()),
        };
        SendReport { request, http_status: Some(i32::from(status)), vendor_code: code, vendor_message: None, verdict }
    }
}

struct Setup {
    app: TestApp,
    vendor: FakeVendor,
    tenant: TenantFixture,
    integration: String,
}

async fn setup() -> Setup {
    let vendor = start_vendor().await;
    let sender = Arc::new(FakeSender { http: reqwest::Client::new(), base: vendor.base().to_owned() });
    let app = spawn_app_with(|c| {
        c.senders = jobs::SenderRegistry::default().with("fake", sender);
        quick_jobs(c);
        c.delivery_stale_after = Duration::from_secs(3);
    })
    .await;
    let root = app.admin_token().await;
    let tenant = tenant_with_admin(&app, &root).await;
    let r = app
        .configure_integration(
            &tenant.admin_token,
            json!({"kind": "ETC_GANTRY", "name": "gantries", "settings": {"retry": {"initialDelaySecs": 1, "maxDelaySecs": 1, "maxAttempts": 5}},
                   "credentials": {"authCode": "auth-code-1"}}),
        )
        .await;
    let integration = r.data()["configureIntegration"]["id"].as_str().expect("id").to_owned();
    Setup { app, vendor, tenant, integration }
}

impl Setup {
    async fn enqueue(&self, script: &str, key: &str) -> String {
        self.enqueue_as("fake.push", json!({"script": script}), key, None).await
    }

    async fn enqueue_as(&self, kind: &str, payload: Value, key: &str, order_key: Option<&str>) -> String {
        self.try_enqueue(kind, payload, key, order_key).await.expect("enqueue").id.to_string()
    }

    async fn try_enqueue(
        &self,
        kind: &str,
        payload: Value,
        key: &str,
        order_key: Option<&str>,
    ) -> domain::DomainResult<Delivery> {
        let tenant: TenantId = self.tenant.id.parse().expect("tenant id");
        let integration: IntegrationId = self.integration.parse().expect("integration id");
        let input = NewDelivery {
            integration_id: integration,
            kind: DeliveryKind::parse(kind).expect("kind"),
            idempotency_key: key.into(),
            order_key: order_key.map(str::to_owned),
            payload,
            subject: None,
        };
        self.app.state.deliveries.enqueue(tenant, input).await
    }

    async fn delivery(&self, id: &str) -> Value {
        let q = "query($id:ID!){ delivery(id:$id){ state attemptCount idempotencyKey lastError nextAttemptAt attempts{ number outcome httpStatus vendorCode request error } } }";
        self.app.gql(Some(&self.tenant.admin_token), q, json!({"id": id})).await.data()["delivery"].clone()
    }

    /// Polls until the delivery is in `state` (the engine runs in the background).
    async fn until(&self, id: &str, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let d = self.delivery(id).await;
            if d["state"] == state {
                return d;
            }
            assert!(Instant::now() < deadline, "delivery never reached {state}: {d}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The `Request-Id` and token of each call of `script`.
    fn calls(&self, script: &str) -> Vec<(String, String)> {
        let path = format!("/push/{script}");
        self.seq()
            .into_iter()
            .filter(|r| r.path == path)
            .map(|r| (r.header("request-id").to_owned(), r.header("token").to_owned()))
            .collect()
    }

    /// Every call with a `Request-Id`, in arrival order.
    fn seq(&self) -> Vec<crate::utils::fake::Request> {
        self.vendor.requests().into_iter().filter(|r| !r.header("request-id").is_empty()).collect()
    }

    /// The open `DELIVERY_FAILED` alarms, once their count reaches `want` (the alarm follows
    /// the delivery's state change, so it is awaited rather than read once).
    async fn failure_alarms(&self, want: u64) -> Value {
        let q = "{ alarms(filter:{kind:\"DELIVERY_FAILED\", open:true}){ totalCount } }";
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let n =
                self.app.gql(Some(&self.tenant.admin_token), q, json!({})).await.data()["alarms"]["totalCount"].clone();
            if n == want || Instant::now() > deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn a_message_failing_three_times_is_delivered_on_the_fourth_with_the_same_key() {
    let s = setup().await;
    let id = s.enqueue("fail3", "req-0001").await;
    let d = s.until(&id, "SUCCEEDED").await;
    assert_eq!(d["attemptCount"], 4, "{d}");
    let outcomes: Vec<_> = d["attempts"].as_array().expect("attempts").iter().map(|a| a["outcome"].clone()).collect();
    assert_eq!(outcomes, vec![json!("RETRY"), json!("RETRY"), json!("RETRY"), json!("SUCCEEDED")]);
    assert_eq!(d["attempts"][0]["httpStatus"], 500);
    assert_eq!(d["attempts"][0]["vendorCode"], "BUSY");
    let calls = s.calls("fail3");
    assert_eq!(calls.len(), 4);
    assert!(calls.iter().all(|(key, _)| key == "req-0001"), "{calls:?}");
    // A second delivery with the same idempotency key is refused.
    let dup = s.try_enqueue("fake.push", json!({}), "req-0001", None).await;
    assert!(matches!(dup, Err(domain::DomainError::Duplicate(_))), "{dup:?}");
}

#[tokio::test]
async fn a_permanent_error_goes_dead_at_once_raises_an_alarm_and_retry_revives_it() {
    let s = setup().await;
    let id = s.enqueue("bad-once", "req-bad").await;
    let d = s.until(&id, "DEAD").await;
    assert_eq!(d["attemptCount"], 1, "{d}");
    assert_eq!(d["lastError"], "missing field");
    assert_eq!(s.failure_alarms(1).await, 1);
    let tok = Some(s.tenant.admin_token.as_str());
    let r =
        s.app.gql(tok, "mutation($id:ID!){ retryDelivery(id:$id){ state idempotencyKey } }", json!({"id": id})).await;
    assert_eq!(r.data()["retryDelivery"]["idempotencyKey"], "req-bad");
    let d = s.until(&id, "SUCCEEDED").await;
    assert_eq!(d["attemptCount"], 2);
    assert_eq!(s.calls("bad-once").iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), vec!["req-bad", "req-bad"]);
    assert_eq!(s.failure_alarms(0).await, 0, "the alarm clears when a delivery succeeds");
    // Succeeded deliveries are not retried.
    let r = s.app.gql(tok, "mutation($id:ID!){ retryDelivery(id:$id){ state } }", json!({"id": id})).await;
    assert_eq!(r.code(), "CONFLICT");
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_retried_at_once() {
    let s = setup().await;
    let id = s.enqueue("token", "req-tok").await;
    let d = s.until(&id, "SUCCEEDED").await;
    assert_eq!(d["attemptCount"], 2, "{d}");
    assert_eq!(d["attempts"][0]["outcome"], "TOKEN_EXPIRED");
    assert_eq!(d["attempts"][1]["outcome"], "SUCCEEDED");
    let calls = s.calls("token");
    assert_eq!(calls, vec![("req-tok".to_owned(), "cached".to_owned()), ("req-tok".to_owned(), "fresh".to_owned())]);
}

#[tokio::test]
async fn deliveries_are_filtered_retried_in_bulk_and_tenant_scoped() {
    let s = setup().await;
    let a = s.enqueue("ok", "k-a").await;
    let b = s.enqueue("ok", "k-b").await;
    s.until(&a, "SUCCEEDED").await;
    s.until(&b, "SUCCEEDED").await;
    // A kind no sender handles is a permanent error.
    let dead = s.enqueue_as("nowhere.push", json!({}), "k-c", None).await;
    let d = s.until(&dead, "DEAD").await;
    assert!(d["lastError"].as_str().unwrap_or_default().contains("no sender"), "{d}");
    let tok = Some(s.tenant.admin_token.as_str());
    let q = "query($f:DeliveryFilterInput){ deliveries(filter:$f){ totalCount edges{ node{ id } } } }";
    let all = s.app.gql(tok, q, json!({"f": null})).await;
    assert_eq!(all.data()["deliveries"]["totalCount"], 3);
    let dead_only = s.app.gql(tok, q, json!({"f": {"state": "DEAD"}})).await;
    assert_eq!(dead_only.data()["deliveries"]["edges"][0]["node"]["id"], json!(dead));
    let by_kind = s.app.gql(tok, q, json!({"f": {"kind": "fake.push", "integrationId": s.integration}})).await;
    assert_eq!(by_kind.data()["deliveries"]["totalCount"], 2);
    let r = s.app.gql(tok, "mutation{ retryDeliveries(filter:{state:DEAD}) }", json!({})).await;
    assert_eq!(r.data()["retryDeliveries"], 1);
    s.until(&dead, "DEAD").await;
    let r = s.app.gql(tok, "mutation{ retryDeliveries(filter:{state:SUCCEEDED}) }", json!({})).await;
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "filter.state");

    // Another tenant sees none of it and cannot retry it.
    let root = s.app.admin_token().await;
    let other = tenant_with_admin(&s.app, &root).await;
    let o = Some(other.admin_token.as_str());
    assert_eq!(s.app.gql(o, q, json!({"f": null})).await.data()["deliveries"]["totalCount"], 0);
    assert_eq!(s.app.gql(o, "query($id:ID!){ delivery(id:$id){ id } }", json!({"id": dead})).await.code(), "NOT_FOUND");
    let r = s.app.gql(o, "mutation($id:ID!){ retryDelivery(id:$id){ id } }", json!({"id": dead})).await;
    assert_eq!(r.code(), "NOT_FOUND");
    assert_eq!(
        s.app.gql(o, "mutation{ retryDeliveries(filter:{state:DEAD}) }", json!({})).await.data()["retryDeliveries"],
        0
    );
}

#[tokio::test]
async fn deliveries_with_one_order_key_go_out_in_order_even_when_the_first_is_retried() {
    let s = setup().await;
    let first = s.enqueue_as("fake.push", json!({"script": "fail2"}), "ord-1", Some("permit-9")).await;
    let second = s.enqueue_as("fake.push", json!({"script": "ok"}), "ord-2", Some("permit-9")).await;
    let unordered = s.enqueue_as("fake.push", json!({"script": "ok"}), "free-1", None).await;
    s.until(&unordered, "SUCCEEDED").await;
    let d = s.until(&second, "SUCCEEDED").await;
    assert_eq!(d["attemptCount"], 1, "the second waited without using attempts: {d}");
    let d = s.until(&first, "SUCCEEDED").await;
    assert_eq!(d["attemptCount"], 3, "{d}");
    let seq: Vec<String> =
        s.seq().iter().map(|r| r.header("request-id").to_owned()).filter(|k| k.starts_with("ord-")).collect();
    assert_eq!(seq, vec!["ord-1", "ord-1", "ord-1", "ord-2"], "the second never overtakes the first");
}

#[tokio::test]
async fn a_rate_limited_key_holds_deliveries_back_without_using_attempts() {
    let s = setup().await;
    let a = s.enqueue_as("fake.limited", json!({"permit": "P1"}), "lim-1", None).await;
    let b = s.enqueue_as("fake.limited", json!({"permit": "P1"}), "lim-2", None).await;
    let other = s.enqueue_as("fake.limited", json!({"permit": "P2"}), "lim-3", None).await;
    for id in [&a, &b, &other] {
        let d = s.until(id, "SUCCEEDED").await;
        assert_eq!(d["attemptCount"], 1, "held back, not failed: {d}");
    }
    let seq = s.seq();
    let at = |key: &str| seq.iter().find(|r| r.header("request-id") == key).map(|r| r.at).expect("sent");
    let (first, second) = if at("lim-1") < at("lim-2") { ("lim-1", "lim-2") } else { ("lim-2", "lim-1") };
    // The window is 2 s; whole-second job scheduling may round it, never shorten it below 1 s.
    assert!(at(second) - at(first) >= Duration::from_millis(1500), "one per permit per window");
    assert!(at("lim-3") < at(second), "another permit is not held back");
}

#[tokio::test]
async fn finished_jobs_are_pruned_from_the_job_storage_once_old_enough() {
    let s = setup().await;
    let id = s.enqueue("ok", "req-prune-1").await;
    s.until(&id, "SUCCEEDED").await;
    let (store, queue) = (&s.app.state.jobs, s.app.state.worker_settings.queue.clone());
    // A job finished moments ago is kept for the retention time.
    assert_eq!(store.prune_finished(&queue, jobs::FINISHED_JOB_RETENTION).await.expect("prune"), 0);
    // Once older than the cutoff it is deleted (the worker acknowledges it just after the
    // delivery is recorded, so it is awaited), and only once.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = store.prune_finished(&queue, Duration::ZERO).await.expect("prune");
        if n > 0 {
            assert_eq!(n, 1, "one finished job");
            break;
        }
        assert!(Instant::now() < deadline, "the finished job was never pruned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(store.prune_finished(&queue, Duration::ZERO).await.expect("prune"), 0);
    // The delivery itself, the record, is untouched.
    assert_eq!(s.delivery(&id).await["state"], "SUCCEEDED");
}

/// A backlog larger than one Lua call can unpack (about 8,000 ids): apalis-redis 1.0
/// moves every due job of its scheduled set in one `unpack`, so its own push would leave
/// such a backlog, and every worker of the queue, stuck for good.
#[tokio::test]
async fn a_backlog_of_nine_thousand_jobs_is_worked_off() {
    use domain::deliveries::DeliveryQueue;
    const BACKLOG: u64 = 9_000;
    let s = setup().await;
    let state = &s.app.state;
    let settings =
        jobs::WorkerSettings { queue: format!("backlog-{}", crate::utils::unique()), ..state.worker_settings.clone() };
    let queue = state.jobs.queue(&settings);
    // Jobs for deliveries that do not exist: each is run (and skipped) at once.
    let ids: Vec<domain::ids::DeliveryId> = (0..BACKLOG).map(|_| domain::ids::DeliveryId::new()).collect();
    futures::future::join_all(ids.chunks(500).map(|chunk| {
        let queue = queue.clone();
        async move {
            for id in chunk {
                queue.schedule(*id, chrono::Utc::now()).await.expect("push");
            }
        }
    }))
    .await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let name = settings.queue.clone();
    let (store, service, stop) = (state.jobs.clone(), state.deliveries.clone(), shutdown.clone());
    let workers = tokio::spawn(async move { store.run_workers(service, settings, stop).await });
    // Every job ends finished; pruning counts them.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut finished = 0;
    while finished < BACKLOG {
        assert!(Instant::now() < deadline, "only {finished} of {BACKLOG} jobs finished");
        tokio::time::sleep(Duration::from_millis(500)).await;
        finished += state.jobs.prune_finished(&name, Duration::ZERO).await.expect("prune");
    }
    assert_eq!(finished, BACKLOG);
    shutdown.cancel();
    workers.await.expect("join").expect("workers stop cleanly");
}

#[tokio::test]
async fn a_panicking_sender_fails_its_attempt_only_and_nothing_stays_in_flight() {
    let s = setup().await;
    let id = s.enqueue("panic", "req-panic").await;
    let d = s.until(&id, "DEAD").await;
    assert_eq!(d["attemptCount"], 5, "every attempt recorded: {d}");
    assert!(d["lastError"].as_str().is_some_and(|e| e.contains("panicked")), "{d}");
    // The worker lives on.
    let ok = s.enqueue("ok", "req-after-panic").await;
    s.until(&ok, "SUCCEEDED").await;
}

#[tokio::test]
async fn vendor_text_with_nul_characters_is_recorded() {
    let s = setup().await;
    let id = s.enqueue("nul", "req-nul").await;
    let d = s.until(&id, "SUCCEEDED").await;
    assert_eq!(d["attempts"][0]["request"], "POST /push/nul\\0", "{d}");
    assert_eq!(d["attempts"][0]["vendorCode"], "OK\\0", "{d}");
}

#[tokio::test]
async fn a_delivery_claimed_by_many_attempts_at_once_goes_out_once() {
    // Claims are written in batches on PostgreSQL: attempts of one delivery that land in
    // one batch, or in several, must still leave exactly one of them sending it.
    let s = setup().await;
    let id = s.enqueue("ok", "req-many-claims").await;
    let delivery: domain::ids::DeliveryId = id.parse().expect("delivery id");
    let mut attempts = Vec::new();
    for _ in 0..8 {
        let service = s.app.state.deliveries.clone();
        attempts.push(tokio::spawn(async move { service.run(delivery).await }));
    }
    for a in attempts {
        a.await.expect("attempt").expect("an attempt runs or is skipped");
    }
    let d = s.until(&id, "SUCCEEDED").await;
    assert_eq!(d["attemptCount"], 1, "{d}");
    assert_eq!(s.calls("ok").len(), 1, "sent once: {:?}", s.calls("ok"));
}

/// Processes starting together each open the job storage (on PostgreSQL: apalis' tables and
/// the index of open jobs by worker that replaces apalis' index of every job by worker).
#[tokio::test]
async fn processes_starting_together_all_open_the_job_storage() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = crate::utils::spawn_app().await;
    let opens = (0..4).map(|_| {
        let url = app.database_url.clone();
        tokio::spawn(async move {
            let db = adapters::db::connect(&url).await.expect("db");
            jobs::JobStore::open(&db, None).await.map(|_| ())
        })
    });
    for open in futures::future::join_all(opens).await {
        open.expect("task").expect("the job storage opens");
    }
    let db = adapters::db::connect(&app.database_url).await.expect("db");
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'apalis' AND tablename = 'jobs' ORDER BY 1",
            ))
            .await
            .expect("indexes");
        let names: Vec<String> = rows.iter().map(|r| r.try_get("", "indexname").expect("name")).collect();
        assert!(names.iter().any(|n| n == "ix_apalis_jobs_open_lock_by"), "{names:?}");
        assert!(!names.iter().any(|n| n == "idx_apalis_jobs_lock_by"), "{names:?}");
    }
}
