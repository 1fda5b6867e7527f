//! The inbound pipeline across a crash: a callback stored by a process killed before it
//! applied it is applied once by the next process, and its resend is not applied again.

use crate::e2e_dingding::{Setup, setup};
use crate::utils::child::Child;
use crate::utils::eventually_within;
use adapters::vendors::dingding::map;
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use serde_json::{Value, json};
use std::time::Duration;

async fn post(base: &str, hook_path: &str, raw: String) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::new()
        .post(format!("{base}{hook_path}"))
        .header("content-type", "application/json")
        .body(raw)
        .timeout(Duration::from_secs(30))
        .send()
        .await
}

fn server(s: &Setup) -> Child {
    Child::start(
        &s.app,
        "serve",
        &[("LINKYARD_PUBLIC_URL", "https://linkyard.test".to_owned()), ("LINKYARD_INBOUND_STALE_SECS", "1".to_owned())],
    )
}

async fn events_of(s: &Setup, kind: &str) -> Vec<Value> {
    s.inbound().await.into_iter().filter(|e| e["kind"] == kind).collect()
}

#[tokio::test]
async fn a_callback_stored_by_a_killed_process_is_applied_once_after_restart() {
    let s = setup().await;
    let lock = s.device("crash-1", "LOCK", json!({})).await;
    let body = json!({"event": "batteryAlarm", "time": chrono::Utc::now().timestamp_millis(), "uuid": "crash-1",
                      "home_id": "dd-h", "detail": {"battery_level": 7}});
    let raw = s.signed(body.clone());
    let db = sea_orm::Database::connect(&s.app.database_url).await.expect("db");
    let mut first = server(&s);
    first.wait_ready().await;
    if db.get_database_backend() == DbBackend::Postgres {
        // The device's row is held: the process stores the callback, then waits on the row
        // inside its unit of work, and is killed there.
        let hold = db.begin().await.expect("begin");
        hold.execute_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT id FROM devices WHERE id = '{lock}' FOR UPDATE"),
        ))
        .await
        .expect("row lock");
        let (base, path, sent) = (first.base.clone(), s.hook_path(), raw.clone());
        let call = tokio::spawn(async move { post(&base, &path, sent).await });
        eventually_within("the callback stored", Duration::from_secs(45), || async {
            events_of(&s, "batteryAlarm").await.len() == 1
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!call.is_finished(), "the callback is still being applied");
        first.kill_hard();
        hold.rollback().await.expect("release the row");
        assert!(call.await.expect("join").is_err(), "the killed process never answered");
    } else {
        // SQLite: the process is killed once the callback is stored and before it is
        // applied; the store is the pipeline's own.
        first.kill_hard();
        let stored = s.app.state.events.record(
            s.tenant.id.parse().expect("tenant"),
            domain::events::NewInboundEvent {
                integration_id: s.integration.parse().expect("integration"),
                protocol: "DINGDING".into(),
                kind: "batteryAlarm".into(),
                dedup_key: map::dedup_key(&serde_json::from_value(body.clone()).expect("a callback"), &raw),
                headers: json!({}),
                body: body.to_string(),
                received_at: chrono::Utc::now(),
            },
        );
        assert!(!stored.await.expect("stored").duplicate);
    }
    let stored = events_of(&s, "batteryAlarm").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["state"], "RECEIVED", "stored, not applied");
    assert_eq!(s.device_state(&lock).await["battery"], Value::Null, "nothing of it applied");
    assert!(s.alarms(&lock).await.is_empty(), "nothing of it applied");

    // The next process finds it (stale after 1 s) and applies it, once.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut second = server(&s);
    second.wait_ready().await;
    let mut applied = false;
    for _ in 0..450 {
        if events_of(&s, "batteryAlarm").await.first().is_some_and(|e| e["state"] == "PROCESSED") {
            applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        applied,
        "the stored callback applied within 45 s: {:?}\nthe second process wrote:\n{}",
        events_of(&s, "batteryAlarm").await,
        second.log()
    );
    assert_eq!(s.device_state(&lock).await["battery"], json!(7));
    let alarms = s.alarms(&lock).await;
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!((alarms[0]["kind"].as_str(), alarms[0]["occurrences"].as_i64()), (Some("LOCK_LOW_BATTERY"), Some(1)));

    // Dingding sends it again: answered, stored once, not applied again.
    let answer = post(&second.base, &s.hook_path(), raw).await.expect("resend");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.json::<Value>().await.expect("json"), json!({"ErrNo": 0, "ErrMsg": "ok"}));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(events_of(&s, "batteryAlarm").await.len(), 1);
    let alarms = s.alarms(&lock).await;
    assert_eq!(alarms[0]["occurrences"], json!(1), "applied once: {alarms:?}");
    second.kill_hard();
}
