//! Alarm escalation and notification (issue 18): a policy notifies its channels when a
//! watched alarm is raised, escalates it once when nobody acknowledges it in time, and
//! notifies again on schedule until it is acknowledged; every notice is a delivery signed
//! like Standard Webhooks, every step is on the alarm's timeline, and no step is taken
//! twice by a restarted or a second instance. The tests run the check at the times they
//! set (the scheduler's own run is off) but the one that shows the scheduler running it.

use crate::utils::fake::notify::FakeChannel;
use crate::utils::{
    TenantFixture, TestApp, eventually, eventually_within, nodes, spawn_app_sharing, spawn_app_with, tenant_with_admin,
};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::time::{Duration as StdDuration, Instant};

const SAVE_CHANNEL: &str = "mutation($i:SaveNotificationChannelInput!){ saveNotificationChannel(input:$i){ channel { id name kind url } secret } }";
const SAVE_POLICY: &str = "mutation($i:SaveEscalationPolicyInput!){ saveEscalationPolicy(input:$i){ id name kinds minSeverity ackWithinMinutes escalateToSeverity renotifyEveryMinutes channelIds } }";
const ALARM: &str = "query($id:ID!){ alarm(id:$id){ id state severity raisedAt
    escalations { policyId kind number at } comments { kind text }
    timeline { kind text } deliveries(first:50){ totalCount } } }";

struct World {
    app: TestApp,
    tenant: TenantFixture,
    receiver: FakeChannel,
    channel: String,
    policy: String,
}

/// Checks at the test's times only: the scheduler's own check is off.
fn manual(c: &mut api::config::Config) {
    c.escalate_on_tick = false;
    c.job_poll = StdDuration::from_millis(100);
}

async fn channel(tenant: &TenantFixture, receiver: &FakeChannel, name: &str) -> String {
    let saved =
        tenant.api.data(SAVE_CHANNEL, json!({"i": {"name": name, "kind": "WEBHOOK", "url": receiver.url()}})).await;
    let secret = saved["saveNotificationChannel"]["secret"].as_str().expect("secret shown at creation");
    assert!(secret.starts_with("whsec_"), "{secret}");
    receiver.set_secret(secret);
    // Shown once to the caller, never written to the logs.
    assert!(!crate::utils::logs::captured().contains(secret.trim_start_matches("whsec_")));
    saved["saveNotificationChannel"]["channel"]["id"].as_str().expect("channel id").to_owned()
}

async fn world(tweak: impl FnOnce(&mut api::config::Config)) -> World {
    let receiver = FakeChannel::start().await;
    let app = spawn_app_with(tweak).await;
    let root = app.admin_token().await;
    let tenant = tenant_with_admin(&app, &root).await;
    let channel = channel(&tenant, &receiver, "on-call").await;
    let policy = tenant
        .api
        .data(
            SAVE_POLICY,
            json!({"i": {"name": "smoke", "kinds": ["CABINET_SMOKE"], "minSeverity": "MINOR", "ackWithinMinutes": 10,
                         "escalateToSeverity": "CRITICAL", "renotifyEveryMinutes": 4, "channelIds": [channel]}}),
        )
        .await["saveEscalationPolicy"]["id"]
        .as_str()
        .expect("policy")
        .to_owned();
    World { app, tenant, receiver, channel, policy }
}

impl World {
    /// Reports an alarm; answers its id and when it was raised.
    async fn report(&self, kind: &str) -> (String, DateTime<Utc>) {
        let q = "mutation($k:String!){ reportAlarm(input:{kind:$k, severity:MAJOR, message:\"smoke in cabinet 3\"}){ id raisedAt } }";
        let r = self.tenant.api.data(q, json!({"k": kind})).await;
        let at = r["reportAlarm"]["raisedAt"].as_str().expect("raisedAt").parse().expect("time");
        (r["reportAlarm"]["id"].as_str().expect("alarm").to_owned(), at)
    }

    async fn alarm(&self, id: &str) -> Value {
        self.tenant.api.data(ALARM, json!({"id": id})).await["alarm"].clone()
    }

    async fn check(app: &TestApp, at: DateTime<Utc>) -> usize {
        app.state.escalations.check(at).await.expect("check")
    }

    /// Waits until the channel has exactly `n` deliveries, all SUCCEEDED.
    async fn until_delivered(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + StdDuration::from_secs(30);
        loop {
            let ds = self.tenant.api.deliveries(json!({"integrationId": self.channel})).await;
            if ds.len() == n && ds.iter().all(|d| d["state"] == "SUCCEEDED") {
                return ds;
            }
            assert!(ds.len() <= n && Instant::now() < deadline, "channel deliveries: {ds:?}");
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
    }
}

fn minutes(m: i64) -> Duration {
    Duration::minutes(m)
}

fn steps(alarm: &Value) -> Vec<(String, i64)> {
    let all = alarm["escalations"].as_array().expect("escalations");
    all.iter()
        .map(|s| (s["kind"].as_str().unwrap_or_default().to_owned(), s["number"].as_i64().unwrap_or(-1)))
        .collect()
}

fn step(kind: &str, n: i64) -> (String, i64) {
    (kind.to_owned(), n)
}

#[tokio::test]
async fn an_unacknowledged_alarm_is_notified_escalated_once_and_renotified_until_acknowledged() {
    let w = world(manual).await;
    let (alarm, t) = w.report("CABINET_SMOKE").await;
    // An alarm of a kind the policy does not watch is left alone.
    let (other, _) = w.report("CABINET_WATER").await;

    assert_eq!(World::check(&w.app, t).await, 1, "the notice on raise");
    assert_eq!(World::check(&w.app, t + minutes(1)).await, 0);
    assert_eq!(World::check(&w.app, t + minutes(4)).await, 1, "re-notified 4 minutes after the last notice");
    assert_eq!(World::check(&w.app, t + minutes(10)).await, 1, "escalated at the deadline");
    assert_eq!(World::check(&w.app, t + minutes(11)).await, 0, "escalated once; the escalation was a notice");
    assert_eq!(World::check(&w.app, t + minutes(14)).await, 1, "re-notified 4 minutes after the escalation");
    let a = w.alarm(&alarm).await;
    assert_eq!(a["severity"], "CRITICAL", "{a}");
    assert_eq!(
        steps(&a),
        vec![step("NOTIFY", 0), step("RENOTIFY", 1), step("ESCALATE", 0), step("RENOTIFY", 2)],
        "{a}"
    );
    assert!(a["escalations"].as_array().expect("steps").iter().all(|s| s["policyId"] == w.policy.as_str()));
    let timeline = a["timeline"].as_array().expect("timeline");
    let of = |k: &str| timeline.iter().filter(|e| e["kind"] == k).count();
    assert_eq!((of("NOTIFIED"), of("ESCALATED")), (3, 1), "{a}");
    let escalated = timeline.iter().find(|e| e["kind"] == "ESCALATED").expect("escalated entry");
    assert!(escalated["text"].as_str().unwrap_or_default().contains("MAJOR -> CRITICAL"), "{escalated}");

    // Every notice reached the channel once, signed like Standard Webhooks.
    let ds = w.until_delivered(4).await;
    assert!(ds.iter().all(|d| d["kind"] == "webhook.notification"), "{ds:?}");
    assert_eq!(a["deliveries"]["totalCount"], 4, "the notices are the alarm's deliveries: {a}");
    let got = w.receiver.got();
    assert_eq!(w.receiver.bad_signatures(), 0);
    let kinds: Vec<&str> = got.iter().map(|n| n.kind.as_str()).collect();
    assert_eq!(kinds, ["alarm.notified", "alarm.renotified", "alarm.escalated", "alarm.renotified"], "{got:?}");
    assert!(got.iter().all(|n| n.alarm_id == alarm), "{got:?}");
    assert_eq!((got[0].severity.as_str(), got[2].severity.as_str()), ("MAJOR", "CRITICAL"), "{got:?}");
    assert_eq!(got[3].step, step("RENOTIFY", 2));
    let ids: std::collections::HashSet<&str> = got.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids.len(), 4, "one webhook-id per notice: {got:?}");

    // Acknowledging stops the notices at once: the next check owes nothing.
    let q = "mutation($id:ID!){ acknowledgeAlarm(id:$id){ state } }";
    assert_eq!(w.tenant.api.data(q, json!({"id": alarm})).await["acknowledgeAlarm"]["state"], "ACKNOWLEDGED");
    assert_eq!(World::check(&w.app, t + minutes(18)).await, 0);
    assert_eq!(World::check(&w.app, t + minutes(600)).await, 0);
    w.until_delivered(4).await;
    assert_eq!(steps(&w.alarm(&alarm).await).len(), 4);
    assert!(steps(&w.alarm(&other).await).is_empty());
    assert_eq!(w.receiver.got().len(), 4);
}

#[tokio::test]
async fn a_restarted_or_second_instance_never_takes_a_step_twice() {
    let w = world(manual).await;
    let (alarm, t) = w.report("CABINET_SMOKE").await;
    assert_eq!(World::check(&w.app, t).await, 1);
    w.until_delivered(1).await;

    // Another process on the same database (a restart of this one, or a second instance).
    let second = spawn_app_sharing(&w.app, manual).await;
    assert_eq!(World::check(&second, t).await, 0, "the notice on raise was sent already");
    assert_eq!(World::check(&second, t + minutes(1)).await, 0);
    // Both check at the same moment when a re-notice is due: one of them takes it.
    let (a, b) = tokio::join!(World::check(&w.app, t + minutes(4)), World::check(&second, t + minutes(4)));
    assert_eq!(a + b, 1, "taken by exactly one: {a} + {b}");
    // The first process stops; the one left owes nothing more until the next period.
    w.app.state.shutdown.cancel();
    assert_eq!(World::check(&second, t + minutes(5)).await, 0);
    let ds = second_deliveries(&second, &w).await;
    assert_eq!(ds, 2, "one delivery per step");
    let a = second.api(&w.tenant.admin_token).data(ALARM, json!({"id": alarm})).await;
    assert_eq!(steps(&a["alarm"]), vec![step("NOTIFY", 0), step("RENOTIFY", 1)]);
    eventually("both notices received", || async { w.receiver.got().len() >= 2 }).await;
    assert_eq!(w.receiver.got().len(), 2, "{:?}", w.receiver.got());
}

/// The channel's deliveries as the remaining instance lists them, once all are sent.
async fn second_deliveries(second: &TestApp, w: &World) -> usize {
    let api = second.api(&w.tenant.admin_token);
    let deadline = Instant::now() + StdDuration::from_secs(30);
    loop {
        let ds = api.deliveries(json!({"integrationId": w.channel})).await;
        if ds.iter().all(|d| d["state"] == "SUCCEEDED") {
            return ds.len();
        }
        if Instant::now() >= deadline {
            // What the servers logged of the unfinished ones (seen flaky once under CI load).
            let open: Vec<&str> =
                ds.iter().filter(|d| d["state"] != "SUCCEEDED").filter_map(|d| d["id"].as_str()).collect();
            let logs = crate::utils::logs::captured();
            let lines: Vec<&str> = logs.lines().filter(|l| open.iter().any(|id| l.contains(id))).collect();
            panic!("channel deliveries: {ds:?}\nlogged of the unfinished:\n{}", lines.join("\n"));
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_scheduler_runs_the_check_on_its_own() {
    let w = world(|c| {
        c.job_poll = StdDuration::from_millis(100);
    })
    .await;
    let (alarm, _) = w.report("CABINET_SMOKE").await;
    // The scheduler ticks every 5 s (the default) and runs the check on each tick.
    eventually_within("the notice on raise, sent by the scheduler's check", StdDuration::from_secs(60), || async {
        w.receiver.got().iter().any(|n| n.alarm_id == alarm && n.kind == "alarm.notified")
    })
    .await;
    assert_eq!(steps(&w.alarm(&alarm).await)[0], step("NOTIFY", 0));
}

#[tokio::test]
async fn policies_and_channels_are_the_tenants_own() {
    let w = world(manual).await;
    let root = w.app.admin_token().await;
    let other = tenant_with_admin(&w.app, &root).await;
    let lists = "{ escalationPolicies { totalCount edges { node { id } } } notificationChannels { totalCount edges { node { id url } } } }";
    let mine = w.tenant.api.data(lists, json!({})).await;
    assert_eq!(nodes(&mine["escalationPolicies"])[0]["id"], w.policy.as_str());
    assert_eq!(nodes(&mine["notificationChannels"])[0]["id"], w.channel.as_str());
    let theirs = other.api.data(lists, json!({})).await;
    assert_eq!(
        (&theirs["escalationPolicies"]["totalCount"], &theirs["notificationChannels"]["totalCount"]),
        (&json!(0), &json!(0))
    );

    // Neither the policy nor the channel can be changed from the other tenant ...
    let e = other
        .api
        .query(
            SAVE_POLICY,
            json!({"i": {"id": w.policy, "name": "mine now", "minSeverity": "MINOR", "ackWithinMinutes": 5}}),
        )
        .await
        .expect_err("another tenant's policy");
    assert_eq!(e.code.as_deref(), Some("NOT_FOUND"), "{e}");
    let e = other
        .api
        .query(
            SAVE_CHANNEL,
            json!({"i": {"id": w.channel, "name": "mine", "kind": "WEBHOOK", "url": "https://example.com/x"}}),
        )
        .await
        .expect_err("another tenant's channel");
    assert_eq!(e.code.as_deref(), Some("NOT_FOUND"), "{e}");
    // ... nor used by its policies.
    let e = other
        .api
        .query(
            SAVE_POLICY,
            json!({"i": {"name": "borrow", "minSeverity": "MINOR", "ackWithinMinutes": 5, "channelIds": [w.channel]}}),
        )
        .await
        .expect_err("another tenant's channel id");
    assert_eq!(e.code.as_deref(), Some("BAD_USER_INPUT"), "{e}");
    let mine = w.tenant.api.data(lists, json!({})).await;
    assert_eq!(nodes(&mine["notificationChannels"])[0]["url"], w.receiver.url().as_str());

    // The owner changes its channel: the secret is not shown again.
    let saved = w
        .tenant
        .api
        .data(
            SAVE_CHANNEL,
            json!({"i": {"id": w.channel, "name": "on-call 2", "kind": "WEBHOOK", "url": w.receiver.url()}}),
        )
        .await;
    assert_eq!(saved["saveNotificationChannel"]["secret"], Value::Null);
    assert_eq!(saved["saveNotificationChannel"]["channel"]["name"], "on-call 2");
}

#[tokio::test]
async fn bad_policies_and_channels_are_refused_as_bad_input() {
    let w = world(manual).await;
    let policy = |patch: Value| {
        let mut i = json!({"name": "p", "minSeverity": "MINOR", "ackWithinMinutes": 5, "channelIds": [w.channel]});
        for (k, v) in patch.as_object().expect("patch") {
            i[k] = v.clone();
        }
        json!({"i": i})
    };
    for (patch, field) in [
        (json!({"channelIds": [uuid::Uuid::now_v7().to_string()]}), "channelIds"),
        (json!({"channelIds": ["not-an-id"]}), "channelIds"),
        (json!({"ackWithinMinutes": 0}), "ackWithinMinutes"),
        (json!({"ackWithinMinutes": -5}), "ackWithinMinutes"),
        (json!({"renotifyEveryMinutes": 0}), "renotifyEveryMinutes"),
        (json!({"escalateToSeverity": "WARNING"}), "escalateToSeverity"),
        (json!({"kinds": ["smoke"]}), "kinds"),
        (json!({"name": " "}), "name"),
    ] {
        let e = w.tenant.api.query(SAVE_POLICY, policy(patch.clone())).await.expect_err("refused");
        assert_eq!(e.code.as_deref(), Some("BAD_USER_INPUT"), "{patch}: {e}");
        assert!(e.raw.contains(field), "{patch} names {field}: {e}");
    }
    let e = w.tenant.api.query(SAVE_POLICY, policy(json!({"name": "smoke"}))).await.expect_err("taken name");
    assert_eq!(e.code.as_deref(), Some("CONFLICT"), "{e}");
    for url in ["http://10.0.0.7/hook", "http://169.254.169.254/latest", "http://[::1]:8080/x", "ftp://example.com/x"] {
        let e = w
            .tenant
            .api
            .query(SAVE_CHANNEL, json!({"i": {"name": "internal", "kind": "WEBHOOK", "url": url}}))
            .await
            .expect_err("refused URL");
        assert_eq!(e.code.as_deref(), Some("BAD_USER_INPUT"), "{url}: {e}");
    }
    // A channel is made here only, not as an integration.
    let e = w
        .tenant
        .api
        .query(
            "mutation($i:ConfigureIntegrationInput!){ configureIntegration(input:$i){ id } }",
            json!({"i": {"kind": "NOTIFICATION_WEBHOOK", "name": "n", "settings": {"url": "https://example.com"}, "credentials": {"signingSecret": "whsec_AAAA"}}}),
        )
        .await
        .expect_err("not an integration to configure");
    assert_eq!(e.code.as_deref(), Some("BAD_USER_INPUT"), "{e}");
    let lists = "{ escalationPolicies { totalCount } notificationChannels { totalCount } }";
    let d = w.tenant.api.data(lists, json!({})).await;
    assert_eq!(
        (&d["escalationPolicies"]["totalCount"], &d["notificationChannels"]["totalCount"]),
        (&json!(1), &json!(1))
    );
}

#[tokio::test]
async fn comments_show_on_the_alarm() {
    let w = world(manual).await;
    let (alarm, t) = w.report("CABINET_SMOKE").await;
    World::check(&w.app, t).await;
    let q = "mutation($id:ID!){ commentAlarm(id:$id, text:\"crew on the way\"){ kind } }";
    assert_eq!(w.tenant.api.data(q, json!({"id": alarm})).await["commentAlarm"]["kind"], "COMMENT");
    let a = w.alarm(&alarm).await;
    assert_eq!(a["comments"], json!([{"kind": "COMMENT", "text": "crew on the way"}]), "{a}");
}
