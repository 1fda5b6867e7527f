//! The audit log (issue 18.6): filtered by actor, entity, action and time, each mutation
//! that changes an entity with its state before and after; tenant-scoped, no secret in it.

use crate::utils::{Client, USER_PASSWORD, nodes, spawn_app, tenant_with_admin, unique};
use serde_json::{Value, json};
use std::time::Duration;

const LOG: &str = "query($f:AuditFilterInput){ auditLog(filter:$f, first:100){ totalCount edges{ node{
    action actorId entityType entityId before after outcome at } } } }";

async fn log(api: &Client, filter: Value) -> Vec<Value> {
    nodes(&api.data(LOG, json!({"f": filter})).await["auditLog"])
}

fn actions(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|r| r["action"].as_str().unwrap_or_default()).collect()
}

async fn tick() -> chrono::DateTime<chrono::Utc> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let at = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    at
}

#[tokio::test]
async fn the_audit_log_filters_by_actor_entity_action_and_time_and_shows_before_and_after() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let admin = t.api.clone();
    let secret = format!("auth-secret-{}", unique());

    let integ = admin
        .integration(json!({"kind": "ETC_GANTRY", "name": "g1", "settings": {}, "credentials": {"authCode": secret}}))
        .await
        .id;
    admin
        .data(
            "mutation($i:ConfigureIntegrationInput!){ configureIntegration(input:$i){ id } }",
            json!({"i": {"id": integ, "kind": "ETC_GANTRY", "name": "g2", "settings": {"maxClockSkewSeconds": 60}}}),
        )
        .await;
    let op_email = format!("op@{}.example.com", t.slug);
    let op_id = admin.create_user(&t.id, &op_email, USER_PASSWORD, "OPERATOR").await;
    let op = app.api(&app.login(&op_email, USER_PASSWORD).await);
    let dev = op.device(&integ, "cab-1", "GANTRY_CABINET", "Gate", json!({})).await;
    assert_eq!(op.device(&integ, "cab-1", "GANTRY_CABINET", "Gate 2", json!({})).await, dev);

    let since = tick().await;
    let alarm = op
        .data(
            "mutation($i:ReportAlarmInput!){ reportAlarm(input:$i){ id } }",
            json!({"i": {"deviceId": dev, "kind": "DOOR_OPEN", "severity": "MAJOR"}}),
        )
        .await["reportAlarm"]["id"]
        .clone();
    op.data("mutation($id:ID!){ acknowledgeAlarm(id:$id){ id } }", json!({"id": alarm})).await;
    admin.data("mutation($id:ID!){ clearAlarm(id:$id, note:\"fixed\"){ id } }", json!({"id": alarm})).await;
    let until = tick().await;

    let tariff = |version_price: &str| {
        json!({"i": {"integrationId": integ, "code": "E1", "utility": "ELECTRICITY", "tiers": [{"price": version_price}],
                      "cycleMonths": 1}})
    };
    let save_tariff = "mutation($i:SaveTariffInput!){ saveTariff(input:$i){ id version } }";
    let v1 = admin.data(save_tariff, tariff("1")).await["saveTariff"]["id"].clone();
    let v2 = admin.data(save_tariff, tariff("2")).await["saveTariff"]["id"].clone();
    let save_ticket = "mutation($i:SaveTicketInput!){ saveTicket(input:$i){ id } }";
    let repair = json!({"service_target": 1, "room_ids": ["569082990da556a9755299bb"], "ticket_description": "维修",
                        "subscribe": {"name": "测试", "phone": "18588787458", "time": "102"}});
    let ticket =
        admin.data(save_ticket, json!({"i": {"kind": "REPAIR", "fields": repair}})).await["saveTicket"]["id"].clone();
    admin
        .data(save_ticket, json!({"i": {"id": ticket, "kind": "REPAIR", "fields": {"ticket_description": "换锁"}}}))
        .await;

    // The device: created, then renamed.
    let rows = log(&admin, json!({"entityType": "device", "entityId": dev})).await;
    assert_eq!(actions(&rows), ["upsertDevice", "upsertDevice"], "{rows:?}");
    assert_eq!((rows[0]["before"]["name"].as_str(), rows[0]["after"]["name"].as_str()), (Some("Gate"), Some("Gate 2")));
    assert_eq!((rows[1]["before"].clone(), rows[1]["after"]["name"].clone()), (Value::Null, json!("Gate")));
    assert!(rows.iter().all(|r| r["actorId"] == json!(op_id) && r["entityId"] == json!(dev)));

    // The alarm, by action.
    let acked = log(&admin, json!({"action": "acknowledgeAlarm"})).await;
    assert_eq!(acked.len(), 1, "{acked:?}");
    assert_eq!((acked[0]["entityType"].as_str(), acked[0]["entityId"].clone()), (Some("alarm"), alarm.clone()));
    assert_eq!(
        (acked[0]["before"]["state"].as_str(), acked[0]["after"]["state"].as_str()),
        (Some("RAISED"), Some("ACKNOWLEDGED"))
    );
    let cleared = log(&admin, json!({"action": "clearAlarm", "entityId": alarm})).await;
    assert_eq!(cleared.len(), 1, "{cleared:?}");
    assert_eq!(
        (cleared[0]["before"]["state"].as_str(), cleared[0]["after"]["state"].as_str()),
        (Some("ACKNOWLEDGED"), Some("CLEARED"))
    );
    assert_eq!(cleared[0]["after"]["clearNote"], "fixed");

    // By actor, and by time.
    let by_op = log(&admin, json!({"actorId": op_id})).await;
    assert_eq!(actions(&by_op), ["acknowledgeAlarm", "reportAlarm", "upsertDevice", "upsertDevice"]);
    let window = log(&admin, json!({"since": since.to_rfc3339(), "until": until.to_rfc3339()})).await;
    assert_eq!(actions(&window), ["clearAlarm", "acknowledgeAlarm", "reportAlarm"]);
    let op_in_window =
        log(&admin, json!({"actorId": op_id, "since": since.to_rfc3339(), "until": until.to_rfc3339()})).await;
    assert_eq!(actions(&op_in_window), ["acknowledgeAlarm", "reportAlarm"]);

    // The integration: renamed, its credentials shown by name only.
    let rows = log(&admin, json!({"entityType": "integration", "entityId": integ})).await;
    assert_eq!(actions(&rows), ["configureIntegration", "configureIntegration"]);
    assert_eq!((rows[0]["before"]["name"].as_str(), rows[0]["after"]["name"].as_str()), (Some("g1"), Some("g2")));
    assert_eq!(rows[0]["after"]["credentialNames"], json!(["authCode"]));

    // The tariff's new version supersedes the old; the ticket's fields merge.
    let rows = log(&admin, json!({"entityType": "tariff"})).await;
    assert_eq!(actions(&rows), ["saveTariff", "saveTariff"]);
    assert_eq!((rows[0]["before"]["id"].clone(), rows[0]["after"]["id"].clone()), (v1.clone(), v2.clone()));
    assert_eq!((rows[0]["before"]["version"].clone(), rows[0]["after"]["version"].clone()), (json!(1), json!(2)));
    assert_eq!((rows[1]["before"].clone(), rows[1]["after"]["id"].clone()), (Value::Null, v1));
    let rows = log(&admin, json!({"entityType": "ticket", "entityId": ticket})).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["before"]["fields"]["ticket_description"], "维修");
    assert_eq!(rows[0]["after"]["fields"]["ticket_description"], "换锁");
    let rows = log(&admin, json!({"entityType": "user", "entityId": op_id})).await;
    assert_eq!(actions(&rows), ["createUser"]);
    assert_eq!(
        (rows[0]["after"]["email"].as_str(), rows[0]["after"]["role"].as_str()),
        (Some(op_email.as_str()), Some("OPERATOR"))
    );

    // Everything, with no secret in it.
    let raw = admin.gql(LOG, json!({"f": null})).await.raw;
    for s in [secret.as_str(), USER_PASSWORD] {
        assert!(!raw.contains(s), "a secret in the audit log: {raw}");
    }
    let r = admin.gql(LOG, json!({"f": {"actorId": "nope"}})).await;
    assert_eq!(
        (r.code(), r.body["errors"][0]["extensions"]["field"].clone()),
        ("BAD_USER_INPUT".into(), json!("filter.actorId"))
    );

    // Another tenant sees none of it, whatever it filters by; operators read no audit log.
    let other = tenant_with_admin(&app, &root).await;
    assert!(log(&other.api, json!({"entityId": dev})).await.is_empty());
    assert!(log(&other.api, json!({"actorId": op_id})).await.is_empty());
    assert_eq!(op.gql(LOG, json!({"f": {"entityId": dev}})).await.code(), "FORBIDDEN");
}
