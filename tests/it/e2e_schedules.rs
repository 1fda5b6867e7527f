//! Periodic jobs: the ETC heartbeat check raising and clearing offline alarms, run on
//! demand (`runScheduledJob`) and on schedule, tenant-scoped; and two worker processes on
//! one database running each tick once, not twice.

use crate::utils::child::Child;
use crate::utils::{TenantFixture, TestApp, spawn_app_with, tenant_with_admin};
use domain::devices::DeviceStatus;
use domain::ids::{DeviceId, TenantId};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};

struct Etc {
    app: TestApp,
    tenant: TenantFixture,
    integration: String,
    device: String,
}

async fn etc(tweak: impl FnOnce(&mut api::config::Config), settings: Value) -> Etc {
    let app = spawn_app_with(tweak).await;
    let root = app.admin_token().await;
    let tenant = tenant_with_admin(&app, &root).await;
    let api = &tenant.api;
    let integration = api
        .integration(json!({"kind": "ETC_GANTRY", "name": "gantries", "settings": settings, "credentials": {"authCode": "123456"}}))
        .await
        .id;
    let device = api.device(&integration, "G0001", "GANTRY_COMPUTER", "pc 1", json!({})).await;
    Etc { app, tenant, integration, device }
}

impl Etc {
    async fn offline_alarm(&self) -> Option<Value> {
        let q = "query($d:ID!){ alarms(filter:{deviceId:$d, kind:\"DEVICE_OFFLINE\"}){ edges{ node{ state occurrences message } } } }";
        let r = self.app.gql(Some(&self.tenant.admin_token), q, json!({"d": self.device})).await;
        r.data()["alarms"]["edges"].as_array().and_then(|e| e.first()).map(|e| e["node"].clone())
    }

    async fn run_now(&self, token: &str, job: &str) -> crate::utils::Gql {
        self.app.api(token).run_scheduled_job(&self.integration, job).await
    }

    async fn runs(&self, token: &str) -> crate::utils::Gql {
        let q = "query($i:ID!){ scheduledRuns(integrationId:$i, last:500){ job trigger tick worker outcome } }";
        self.app.gql(Some(token), q, json!({"i": self.integration})).await
    }
}

#[tokio::test]
async fn the_heartbeat_check_raises_offline_and_clears_it_when_the_device_reports_again() {
    let e = etc(|_| {}, json!({"reportIntervalSeconds": 1})).await;
    let admin = e.tenant.admin_token.clone();
    // Silent for more than twice its interval (it has never reported since it was added).
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let r = e.run_now(&admin, "HEARTBEAT_CHECK").await;
    let run = &r.data()["runScheduledJob"];
    assert_eq!(run["trigger"], "MANUAL");
    assert_eq!(run["outcome"], "SUCCEEDED", "{run}");
    assert_eq!(run["detail"], "checked 1 devices, 1 offline");
    let alarm = e.offline_alarm().await.expect("an offline alarm");
    assert_eq!(alarm["state"], "RAISED");
    let q = "query($d:ID!){ device(id:$d){ online } }";
    let d = e.app.gql(Some(&admin), q, json!({"d": e.device})).await;
    assert_eq!(d.data()["device"]["online"], false);

    // The device reports; the next check clears the alarm.
    let tenant: TenantId = e.tenant.id.parse().expect("tenant");
    let device: DeviceId = e.device.parse().expect("device");
    let seen = DeviceStatus { online: Some(true), battery: None, signal: None, seen_at: Some(chrono::Utc::now()) };
    e.app.state.devices.set_status(tenant, device, seen).await.expect("status");
    let r = e.run_now(&admin, "HEARTBEAT_CHECK").await;
    assert_eq!(r.data()["runScheduledJob"]["detail"], "checked 1 devices, 0 offline");
    assert_eq!(e.offline_alarm().await.expect("the alarm")["state"], "CLEARED");

    // Jobs of other kinds, and other tenants, are refused.
    let r = e.run_now(&admin, "SYNC").await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "job");
    let root = e.app.admin_token().await;
    let other = tenant_with_admin(&e.app, &root).await;
    assert_eq!(e.run_now(&other.admin_token, "HEARTBEAT_CHECK").await.code(), "NOT_FOUND");
    assert_eq!(e.runs(&other.admin_token).await.code(), "NOT_FOUND");
    let runs = e.runs(&admin).await;
    let manual: Vec<Value> = runs.data()["scheduledRuns"]
        .as_array()
        .expect("runs")
        .iter()
        .filter(|r| r["trigger"] == "MANUAL")
        .cloned()
        .collect();
    assert_eq!(manual.len(), 2, "{manual:?}");
    assert!(manual.iter().all(|r| r["job"] == "HEARTBEAT_CHECK" && r["outcome"] == "SUCCEEDED"));
}

#[tokio::test]
async fn schedules_are_validated_per_kind() {
    let app = spawn_app_with(|_| {}).await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    for (settings, field) in [
        (json!({"schedules": {"HEARTBEAT_CHECK": "every minute"}}), "settings.schedules.HEARTBEAT_CHECK"),
        (json!({"schedules": {"SYNC": "0 0 3 * * *"}}), "settings.schedules.SYNC"),
        (json!({"timezone": "Mars/Olympus"}), "settings.timezone"),
    ] {
        let r = app
            .configure_integration(
                &t.admin_token,
                json!({"kind": "ETC_GANTRY", "name": "g", "settings": settings, "credentials": {"authCode": "1"}}),
            )
            .await;
        assert_eq!(r.code(), "BAD_USER_INPUT");
        assert_eq!(r.body["errors"][0]["extensions"]["field"], field, "{}", r.raw);
    }
}

/// Waits until the integration has at least `n` scheduled runs.
async fn until_runs(e: &Etc, n: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let r = e.runs(&e.tenant.admin_token).await;
        let runs: Vec<Value> = r.data()["scheduledRuns"]
            .as_array()
            .expect("runs")
            .iter()
            .filter(|r| r["trigger"] == "SCHEDULE" && r["outcome"] == "SUCCEEDED")
            .cloned()
            .collect();
        if runs.len() >= n {
            return runs;
        }
        assert!(Instant::now() < deadline, "only {} scheduled runs: {runs:?}", runs.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn two_worker_processes_run_each_tick_once() {
    // The app serves the API only; two `linkyard worker` processes tick every second on
    // the same database, for a job scheduled every second.
    let e = etc(
        |c| c.run_workers = false,
        json!({"reportIntervalSeconds": 1, "schedules": {"HEARTBEAT_CHECK": "* * * * * *"}, "timezone": "UTC"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let mut env =
        vec![("LINKYARD_SCHEDULER_TICK_SECS", "1".to_owned()), ("RUST_LOG", "warn,jobs::scheduler=debug".to_owned())];
    if let Some(redis) = std::env::var("TEST_REDIS_URL").ok().filter(|u| !u.is_empty()) {
        env.push(("REDIS_URL", redis));
    }
    let mut one = Child::start(&e.app, "worker", &env);
    let mut two = Child::start(&e.app, "worker", &env);
    until_runs(&e, 6, Duration::from_secs(60)).await;
    // Both processes tick (and so compete for the same ticks); a process may start a
    // little later than the other.
    let ticks = |c: &Child| c.log().lines().filter(|l| l.contains("scheduler ticked")).count();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ticks(&one) < 3 || ticks(&two) < 3 {
        assert!(Instant::now() < deadline, "a worker that never ticked:\n{}\n---\n{}", one.log(), two.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    one.kill_hard();
    two.kill_hard();
    let runs = until_runs(&e, 6, Duration::from_secs(1)).await;
    let ticks: HashSet<&str> = runs.iter().filter_map(|r| r["tick"].as_str()).collect();
    assert_eq!(ticks.len(), runs.len(), "a tick ran twice: {runs:?}");
    // Each run did the job's work exactly once: one more occurrence of the offline alarm.
    let alarm = e.offline_alarm().await.expect("offline alarm");
    assert_eq!(alarm["occurrences"].as_u64(), u64::try_from(runs.len()).ok(), "{alarm} vs {} runs", runs.len());
}

/// A daily job falls due from the scheduler's clock, not the wall clock: Huzhou's
/// `LIFT_NOTIFY_DAILY` fires at 00:00 in the integration's time zone (Asia/Shanghai), so a
/// tick at 23:59 runs nothing and one at 00:01 the next day runs it once, for midnight.
#[tokio::test]
async fn a_daily_job_falls_due_by_the_set_clock() {
    use adapters::db::repos::{SqlIntegrationRepo, SqlScheduledRunRepo};
    use adapters::vendors::huzhou::LiftNotifyDaily;
    use chrono::{TimeZone, Utc};
    use domain::schedules::{ScheduledJob, SchedulerService};
    use domain::{Clock, ManualClock};
    use std::sync::Arc;

    let app = spawn_app_with(|c| c.run_workers = false).await;
    let root = app.admin_token().await;
    let tenant = tenant_with_admin(&app, &root).await;
    let r = app
        .configure_integration(
            &tenant.admin_token,
            json!({"kind": "HUZHOU_ELEVATOR", "name": "hz", "settings": {"baseUrl": "http://127.0.0.1:9", "dcBaseUrl": "http://127.0.0.1:9"},
                   "credentials": {"appKey": "k", "appSecret": "s", "inboundAppKey": "ik", "inboundAppSecret": "is"}}),
        )
        .await;
    let integration = r.data()["configureIntegration"]["id"].as_str().unwrap_or_else(|| panic!("{}", r.raw)).to_owned();

    // Asia/Shanghai: UTC+8 all year.
    let shanghai = chrono::FixedOffset::east_opt(8 * 3600).expect("offset");
    let at = |d, h, m| shanghai.with_ymd_and_hms(2026, 3, d, h, m, 0).single().expect("time").with_timezone(&Utc);
    let clock = Arc::new(ManualClock::new(at(1, 23, 59)));
    let db = app.state.db.clone();
    let scheduler = SchedulerService::new(
        Arc::new(SqlScheduledRunRepo::new(db.clone())),
        Arc::new(SqlIntegrationRepo::new(db)),
        app.state.deliveries.clone(),
        "clock-test".into(),
        Duration::from_secs(30),
    )
    .with_job(ScheduledJob::LiftNotifyDaily, Arc::new(LiftNotifyDaily(app.state.huzhou.clone())))
    .with_clock(clock.clone());
    // As `jobs::run_scheduler` looks back: three ticks, at least a minute.
    let lookback = Duration::from_secs(180);

    // 23:59: only the sweep is due.
    assert_eq!(scheduler.tick(lookback).await.expect("tick"), 1);
    // 00:01 the next day: midnight is within the lookback, so the daily job is due.
    clock.set(at(2, 0, 1));
    assert_eq!(scheduler.tick(lookback).await.expect("tick"), 2);
    // The same minute again: the run is claimed already.
    clock.advance(chrono::Duration::seconds(30));
    assert_eq!(scheduler.tick(lookback).await.expect("tick"), 1, "only the next sweep");

    let q = "query($i:ID!){ scheduledRuns(integrationId:$i, last:10){ job trigger tick outcome detail } }";
    let r = app.gql(Some(&tenant.admin_token), q, json!({"i": integration})).await;
    let runs = r.data()["scheduledRuns"].as_array().expect("runs").clone();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["job"], "LIFT_NOTIFY_DAILY");
    assert_eq!(runs[0]["trigger"], "SCHEDULE");
    assert_eq!(runs[0]["outcome"], "SUCCEEDED", "{}", runs[0]);
    let tick: chrono::DateTime<Utc> = runs[0]["tick"].as_str().expect("tick").parse().expect("rfc3339");
    assert_eq!(tick, at(2, 0, 0), "run for midnight in Shanghai");
    assert!(clock.now() > tick);

    // Disabled, the integration's daily job does not run at the next midnight.
    let d = app
        .gql(
            Some(&tenant.admin_token),
            "mutation($i:ID!){ disableIntegration(id:$i){ enabled } }",
            json!({"i": integration}),
        )
        .await;
    assert_eq!(d.data()["disableIntegration"]["enabled"], false);
    clock.set(at(3, 0, 1));
    assert_eq!(scheduler.tick(lookback).await.expect("tick"), 1, "only the sweep");
    let r = app.gql(Some(&tenant.admin_token), q, json!({"i": integration})).await;
    assert_eq!(r.data()["scheduledRuns"].as_array().map(Vec::len), Some(1), "{}", r.raw);
}
