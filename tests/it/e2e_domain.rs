//! The domain core over HTTP: devices, homes and rooms, alarms (repeat rule, state machine,
//! timeline, filters, pages), tenant isolation of all of it, the audit log and inbound events.

use crate::utils::{Gql, TenantFixture, TestApp, USER_PASSWORD, spawn_app, tenant_with_admin, unique};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const UPSERT: &str = "mutation($i:UpsertDeviceInput!){ upsertDevice(input:$i){ id integrationId externalId kind name homeId roomId online battery signal lastSeenAt attributes latest createdAt updatedAt } }";
const DEVICES: &str = "query($f:DeviceFilterInput){ devices(filter:$f, first:100){ totalCount edges{ node{ id } } } }";
const REPORT: &str = "mutation($i:ReportAlarmInput!){ reportAlarm(input:$i){ id kind severity state message deviceId integrationId occurrences raisedAt lastSeenAt acknowledgedAt acknowledgedBy clearedAt clearedBy clearNote attributes } }";
const ALARM_FIELDS: &str = "id kind severity state message deviceId integrationId occurrences raisedAt lastSeenAt acknowledgedAt acknowledgedBy clearedAt clearedBy clearNote timeline{ id at actorId kind text }";
const ALARMS: &str = "query($f:AlarmFilterInput){ alarms(filter:$f, first:100){ totalCount edges{ node{ id } } } }";

/// An ETC gantry integration: nothing it does on these paths calls out of the process.
fn etc(name: &str) -> Value {
    json!({"kind": "ETC_GANTRY", "name": name, "settings": {}, "credentials": {"authCode": format!("auth-{name}-{}", unique())}})
}

/// A Huzhou elevator integration whose vendor URLs point at a closed local port.
fn huzhou(name: &str) -> Value {
    json!({"kind": "HUZHOU_ELEVATOR", "name": name,
           "settings": {"baseUrl": "http://127.0.0.1:9/lift", "dcBaseUrl": "http://127.0.0.1:9/dc"},
           "credentials": {"appKey": "k", "appSecret": format!("hz-secret-{}", unique()), "inboundAppKey": "ik",
                           "inboundAppSecret": format!("hz-inbound-{}", unique())}})
}

async fn integration(app: &TestApp, token: &str, input: Value) -> String {
    app.configure_integration(token, input).await.id("configureIntegration")
}

async fn upsert(app: &TestApp, token: &str, input: Value) -> Gql {
    app.gql(Some(token), UPSERT, json!({"i": input})).await
}

async fn device(app: &TestApp, token: &str, integ: &str, external: &str, kind: &str, name: &str) -> String {
    let r =
        upsert(app, token, json!({"integrationId": integ, "externalId": external, "kind": kind, "name": name})).await;
    r.id("upsertDevice")
}

async fn add_home(app: &TestApp, token: &str, name: &str) -> String {
    let r = app.gql(Some(token), "mutation($n:String!){ addHome(input:{name:$n}){ id } }", json!({"n": name})).await;
    r.id("addHome")
}

async fn add_room(app: &TestApp, token: &str, home: &str, name: &str) -> Gql {
    app.gql(
        Some(token),
        "mutation($h:ID!,$n:String!){ addRoom(input:{homeId:$h, name:$n}){ id homeId name externalId createdAt } }",
        json!({"h": home, "n": name}),
    )
    .await
}

async fn report(app: &TestApp, token: &str, input: Value) -> Gql {
    app.gql(Some(token), REPORT, json!({"i": input})).await
}

async fn raise(app: &TestApp, token: &str, dev: &str, kind: &str, severity: &str) -> String {
    report(app, token, json!({"deviceId": dev, "kind": kind, "severity": severity})).await.id("reportAlarm")
}

async fn alarm(app: &TestApp, token: &str, id: &str) -> Value {
    let q = format!("query($id:ID!){{ alarm(id:$id){{ {ALARM_FIELDS} }} }}");
    app.gql(Some(token), &q, json!({"id": id})).await.data()["alarm"].clone()
}

async fn ack(app: &TestApp, token: &str, id: &str) -> Gql {
    let q = format!("mutation($id:ID!){{ acknowledgeAlarm(id:$id){{ {ALARM_FIELDS} }} }}");
    app.gql(Some(token), &q, json!({"id": id})).await
}

async fn clear(app: &TestApp, token: &str, id: &str, note: Option<&str>) -> Gql {
    let q = format!("mutation($id:ID!,$n:String){{ clearAlarm(id:$id, note:$n){{ {ALARM_FIELDS} }} }}");
    app.gql(Some(token), &q, json!({"id": id, "n": note})).await
}

async fn comment(app: &TestApp, token: &str, id: &str, text: &str) -> Gql {
    app.gql(
        Some(token),
        "mutation($id:ID!,$t:String!){ commentAlarm(id:$id, text:$t){ id at actorId kind text } }",
        json!({"id": id, "t": text}),
    )
    .await
}

/// A user of the tenant with `role`, created by its admin: (id, token).
async fn member(app: &TestApp, t: &TenantFixture, role: &str) -> (String, String) {
    let email = format!("{}-{}@{}.example.com", role.to_lowercase(), unique(), t.slug);
    let id = app.create_user(&t.admin_token, &t.id, &email, USER_PASSWORD, role).await;
    (id, app.login(&email, USER_PASSWORD).await)
}

/// The ids of a connection's nodes, in order.
fn ids(conn: &Value) -> Vec<String> {
    conn["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("not a connection: {conn}"))
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("node id").to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn ts(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a timestamp: {v}"))
}

fn assert_bad_input(r: &Gql, field: &str) {
    assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.raw);
    assert_eq!(r.body["errors"][0]["extensions"]["field"], field, "{}", r.raw);
}

/// The device ids matched by a `devices` filter.
async fn device_ids(app: &TestApp, token: &str, filter: Value) -> BTreeSet<String> {
    let r = app.gql(Some(token), DEVICES, json!({"f": filter})).await;
    let conn = &r.data()["devices"];
    let found: BTreeSet<String> = ids(conn).into_iter().collect();
    assert_eq!(conn["totalCount"], json!(found.len()), "{}", r.raw);
    found
}

/// The alarm ids matched by an `alarms` filter.
async fn alarm_ids(app: &TestApp, token: &str, filter: Value) -> BTreeSet<String> {
    let r = app.gql(Some(token), ALARMS, json!({"f": filter})).await;
    let conn = &r.data()["alarms"];
    let found: BTreeSet<String> = ids(conn).into_iter().collect();
    assert_eq!(conn["totalCount"], json!(found.len()), "{}", r.raw);
    found
}

#[tokio::test]
async fn upsert_device_creates_then_updates_and_devices_filters_narrow() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let tok = t.admin_token.as_str();
    let gantry = integration(&app, tok, etc("gantry")).await;
    let lifts = integration(&app, tok, huzhou("lifts")).await;
    let north = add_home(&app, tok, "North toll station").await;
    let south = add_home(&app, tok, "South toll station").await;

    // Create.
    let created = upsert(
        &app,
        tok,
        json!({"integrationId": gantry, "externalId": "G-001", "kind": "GANTRY_COMPUTER", "name": "North gantry PC",
               "attributes": {"lane": 3}}),
    )
    .await;
    let d1 = created.data()["upsertDevice"].clone();
    let d1_id = d1["id"].as_str().expect("id").to_owned();
    assert_eq!(d1["integrationId"], json!(gantry));
    assert_eq!(d1["externalId"], "G-001");
    assert_eq!(d1["kind"], "GANTRY_COMPUTER");
    assert_eq!(d1["name"], "North gantry PC");
    assert_eq!(d1["attributes"], json!({"lane": 3}));
    assert_eq!(d1["homeId"], Value::Null);
    assert_eq!(d1["online"], Value::Null, "nothing reported yet");
    assert_eq!(d1["lastSeenAt"], Value::Null);
    assert_eq!(d1["latest"], json!({}));

    // The same (integration, externalId) again: the same device, updated.
    let updated = upsert(
        &app,
        tok,
        json!({"integrationId": gantry, "externalId": "G-001", "kind": "GANTRY_COMPUTER", "name": "North gantry PC 2",
               "homeId": north, "attributes": {"lane": 4}}),
    )
    .await;
    let u = &updated.data()["upsertDevice"];
    assert_eq!(u["id"], json!(d1_id), "an upsert of the same external id updates: {}", updated.raw);
    assert_eq!(u["name"], "North gantry PC 2");
    assert_eq!(u["homeId"], json!(north));
    assert_eq!(u["attributes"], json!({"lane": 4}));
    assert_eq!(ts(&u["createdAt"]), ts(&d1["createdAt"]));
    assert!(ts(&u["updatedAt"]) >= ts(&d1["updatedAt"]));

    let d2 = upsert(
        &app,
        tok,
        json!({"integrationId": gantry, "externalId": "G-002", "kind": "GANTRY_CABINET", "name": "South cabinet",
               "homeId": south}),
    )
    .await;
    let d2 = d2.id("upsertDevice");
    let d3 = device(&app, tok, &lifts, "E-100", "ELEVATOR", "Lift A").await;
    // External ids are unique per integration only: the same one elsewhere is another device.
    let d4 = device(&app, tok, &lifts, "G-001", "ELEVATOR", "Lift B").await;
    assert_ne!(d4, d1_id);
    assert_eq!(device_ids(&app, tok, json!(null)).await, set(&[&d1_id, &d2, &d3, &d4]));

    // device(id), with no readings yet.
    let r = app
        .gql(
            Some(tok),
            "query($id:ID!){ device(id:$id){ id name homeId externalId readings(last:100){ id metric value ts } alarms{ totalCount } } }",
            json!({"id": d1_id}),
        )
        .await;
    let got = &r.data()["device"];
    assert_eq!(got["id"], json!(d1_id));
    assert_eq!(got["name"], "North gantry PC 2");
    assert_eq!(got["homeId"], json!(north));
    assert_eq!(got["readings"], json!([]));
    assert_eq!(got["alarms"]["totalCount"], 0);

    // Each filter narrows.
    assert_eq!(device_ids(&app, tok, json!({"kind": "GANTRY_COMPUTER"})).await, set(&[&d1_id]));
    assert_eq!(device_ids(&app, tok, json!({"kind": "ELEVATOR"})).await, set(&[&d3, &d4]));
    assert_eq!(device_ids(&app, tok, json!({"kind": "WATER_METER"})).await, set(&[]));
    assert_eq!(device_ids(&app, tok, json!({"integrationId": gantry})).await, set(&[&d1_id, &d2]));
    assert_eq!(device_ids(&app, tok, json!({"integrationId": lifts})).await, set(&[&d3, &d4]));
    assert_eq!(device_ids(&app, tok, json!({"homeId": north})).await, set(&[&d1_id]));
    assert_eq!(device_ids(&app, tok, json!({"homeId": south})).await, set(&[&d2]));
    // No device has reported its state: none is known to be online.
    assert_eq!(device_ids(&app, tok, json!({"online": true})).await, set(&[]));
    // Search: case-insensitive, on the name or the external id.
    assert_eq!(device_ids(&app, tok, json!({"search": "GANTRY"})).await, set(&[&d1_id]));
    assert_eq!(device_ids(&app, tok, json!({"search": "g-00"})).await, set(&[&d1_id, &d2, &d4]));
    assert_eq!(device_ids(&app, tok, json!({"search": "lift"})).await, set(&[&d3, &d4]));
    assert_eq!(device_ids(&app, tok, json!({"search": "nothing-like-it"})).await, set(&[]));
    // Filters combine.
    assert_eq!(device_ids(&app, tok, json!({"kind": "ELEVATOR", "search": "g-001"})).await, set(&[&d4]));
    assert_eq!(device_ids(&app, tok, json!({"integrationId": gantry, "homeId": south})).await, set(&[&d2]));

    // Pages: oldest first, two at a time.
    let q = "query($a:String){ devices(first:2, after:$a){ totalCount pageInfo{ hasNextPage endCursor } edges{ node{ id } } } }";
    let p1 = app.gql(Some(tok), q, json!({"a": null})).await;
    let c1 = &p1.data()["devices"];
    assert_eq!(c1["totalCount"], 4);
    assert_eq!(ids(c1), vec![d1_id.clone(), d2.clone()]);
    assert_eq!(c1["pageInfo"]["hasNextPage"], true);
    let p2 = app.gql(Some(tok), q, json!({"a": c1["pageInfo"]["endCursor"]})).await;
    let c2 = &p2.data()["devices"];
    assert_eq!(ids(c2), vec![d3.clone(), d4.clone()]);
    assert_eq!(c2["pageInfo"]["hasNextPage"], false);

    // Bad input, with the field it is about.
    let base = json!({"integrationId": gantry, "externalId": "G-009", "kind": "GANTRY_CABINET", "name": "x"});
    let with = |k: &str, v: Value| {
        let mut i = base.clone();
        i[k] = v;
        i
    };
    assert_bad_input(&upsert(&app, tok, with("externalId", json!(""))).await, "externalId");
    assert_bad_input(&upsert(&app, tok, with("externalId", json!("   "))).await, "externalId");
    assert_bad_input(&upsert(&app, tok, with("name", json!(""))).await, "name");
    assert_bad_input(&upsert(&app, tok, with("attributes", json!([1, 2]))).await, "attributes");
    assert_bad_input(&upsert(&app, tok, with("attributes", json!("text"))).await, "attributes");
    assert_bad_input(&upsert(&app, tok, with("integrationId", json!("not-an-id"))).await, "integrationId");
    assert_bad_input(&upsert(&app, tok, with("homeId", json!("not-an-id"))).await, "homeId");
    let unknown_integration = upsert(&app, tok, with("integrationId", json!(uuid::Uuid::now_v7()))).await;
    assert_eq!(unknown_integration.code(), "NOT_FOUND", "{}", unknown_integration.raw);
    assert_eq!(upsert(&app, tok, with("homeId", json!(uuid::Uuid::now_v7()))).await.code(), "NOT_FOUND");
    assert_eq!(upsert(&app, tok, with("roomId", json!(uuid::Uuid::now_v7()))).await.code(), "NOT_FOUND");
    let r = upsert(&app, tok, with("kind", json!("TOASTER"))).await;
    assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.raw);
    let r = app.gql(Some(tok), "query($id:ID!){ device(id:$id){ id } }", json!({"id": uuid::Uuid::now_v7()})).await;
    assert_eq!(r.code(), "NOT_FOUND");
    assert_bad_input(&app.gql(Some(tok), "{ device(id:\"nope\"){ id } }", json!({})).await, "id");
    let r =
        app.gql(Some(tok), "query($id:ID!){ device(id:$id){ readings(last:1001){ id } } }", json!({"id": d1_id})).await;
    assert_bad_input(&r, "last");
    let r =
        app.gql(Some(tok), "query($id:ID!){ device(id:$id){ readings(last:-1){ id } } }", json!({"id": d1_id})).await;
    assert_bad_input(&r, "last");
    assert_bad_input(
        &app.gql(Some(tok), DEVICES, json!({"f": {"integrationId": "nope"}})).await,
        "filter.integrationId",
    );
    // Nothing was written by the refused calls.
    assert_eq!(device_ids(&app, tok, json!(null)).await.len(), 4);

    // Readers read; no caller, no data.
    let (_, viewer) = member(&app, &t, "VIEWER").await;
    assert_eq!(device_ids(&app, &viewer, json!({"kind": "ELEVATOR"})).await, set(&[&d3, &d4]));
    assert_eq!(app.gql(None, DEVICES, json!({"f": null})).await.code(), "UNAUTHENTICATED");
    assert_eq!(
        app.gql(Some(&root), DEVICES, json!({"f": null})).await.code(),
        "FORBIDDEN",
        "platform admins have no tenant"
    );
}

#[tokio::test]
async fn homes_rooms_and_where_devices_and_alarms_belong() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let (_, op) = member(&app, &t, "OPERATOR").await;
    let op = op.as_str();
    let integ = integration(&app, &t.admin_token, etc("site")).await;

    let r = app
        .gql(
            Some(op),
            "mutation($i:AddHomeInput!){ addHome(input:$i){ id name address integrationId externalId attributes createdAt rooms{ id } } }",
            json!({"i": {"name": "  Block 7  ", "address": "7 Canal Road", "attributes": {"floors": 12}}}),
        )
        .await;
    let h = &r.data()["addHome"];
    let h1 = h["id"].as_str().expect("home id").to_owned();
    assert_eq!(h["name"], "Block 7", "names are trimmed");
    assert_eq!(h["address"], "7 Canal Road");
    assert_eq!(h["attributes"], json!({"floors": 12}));
    assert_eq!(h["rooms"], json!([]));
    let h2 = add_home(&app, op, "Block 8").await;

    let r1 = add_room(&app, op, &h1, "Lobby").await;
    assert_eq!(r1.data()["addRoom"]["homeId"], json!(h1));
    assert_eq!(r1.data()["addRoom"]["name"], "Lobby");
    let r1 = r1.id("addRoom");
    let r1b = add_room(&app, op, &h1, "Plant room").await.id("addRoom");
    let r2 = add_room(&app, op, &h2, "Lobby").await.id("addRoom");

    // Refusals.
    assert_eq!(add_room(&app, op, &h1, "Lobby").await.code(), "CONFLICT", "room names are unique per home");
    assert_bad_input(&add_room(&app, op, &h1, "  ").await, "name");
    assert_eq!(add_room(&app, op, &uuid::Uuid::now_v7().to_string(), "x").await.code(), "NOT_FOUND");
    assert_bad_input(&add_room(&app, op, "not-an-id", "x").await, "homeId");
    let bad_home =
        |i: Value| app.gql(Some(op), "mutation($i:AddHomeInput!){ addHome(input:$i){ id } }", json!({"i": i}));
    assert_bad_input(&bad_home(json!({"name": ""})).await, "name");
    assert_bad_input(&bad_home(json!({"name": "x", "attributes": [1]})).await, "attributes");
    assert_eq!(bad_home(json!({"name": "x", "integrationId": uuid::Uuid::now_v7()})).await.code(), "NOT_FOUND");

    // homes and home(id) { rooms }
    let r = app.gql(Some(op), "{ homes(first:10){ totalCount edges{ node{ id name } } } }", json!({})).await;
    assert_eq!(r.data()["homes"]["totalCount"], 2);
    assert_eq!(ids(&r.data()["homes"]), vec![h1.clone(), h2.clone()]);
    let home_q = "query($id:ID!){ home(id:$id){ id name rooms{ id homeId name } devices{ totalCount edges{ node{ id roomId } } } alarms{ totalCount edges{ node{ id state } } } } }";
    let r = app.gql(Some(op), home_q, json!({"id": h1})).await;
    let rooms: Vec<_> = r.data()["home"]["rooms"].as_array().expect("rooms").iter().map(|r| r["id"].clone()).collect();
    assert_eq!(rooms, vec![json!(r1), json!(r1b)], "rooms in creation order");
    assert_eq!(r.data()["home"]["devices"]["totalCount"], 0);
    assert_eq!(app.gql(Some(op), home_q, json!({"id": uuid::Uuid::now_v7()})).await.code(), "NOT_FOUND");

    // A device placed in a room lands in that room's home.
    let placed = upsert(
        &app,
        op,
        json!({"integrationId": integ, "externalId": "L-1", "kind": "GANTRY_CABINET", "name": "Lobby cabinet", "roomId": r1}),
    )
    .await;
    let dev = &placed.data()["upsertDevice"];
    assert_eq!(dev["homeId"], json!(h1), "{}", placed.raw);
    assert_eq!(dev["roomId"], json!(r1));
    let d1 = dev["id"].as_str().expect("id").to_owned();
    // Both given and consistent: accepted.
    let both = upsert(
        &app,
        op,
        json!({"integrationId": integ, "externalId": "L-2", "kind": "GANTRY_CABINET", "name": "Plant cabinet",
               "homeId": h1, "roomId": r1b}),
    )
    .await;
    let d2 = both.id("upsertDevice");
    // A room of another home is refused.
    let wrong = upsert(
        &app,
        op,
        json!({"integrationId": integ, "externalId": "L-3", "kind": "GANTRY_CABINET", "name": "Misplaced",
               "homeId": h2, "roomId": r1}),
    )
    .await;
    assert_bad_input(&wrong, "roomId");
    assert_eq!(device_ids(&app, op, json!({"search": "misplaced"})).await, set(&[]));
    let d3 = upsert(
            &app,
            op,
            json!({"integrationId": integ, "externalId": "L-4", "kind": "GANTRY_CABINET", "name": "Other lobby", "roomId": r2}),
        )
        .await.id("upsertDevice");

    let r = app.gql(Some(op), home_q, json!({"id": h1})).await;
    let devs: BTreeSet<String> = ids(&r.data()["home"]["devices"]).into_iter().collect();
    assert_eq!(devs, set(&[&d1, &d2]));
    let r = app.gql(Some(op), home_q, json!({"id": h2})).await;
    assert_eq!(ids(&r.data()["home"]["devices"]), vec![d3.clone()]);

    // home { alarms }: the open alarms of its devices, newest first; cleared ones drop out.
    let raised = raise(&app, op, &d1, "CABINET_DOOR_OPEN", "MAJOR").await;
    let acked = raise(&app, op, &d2, "CABINET_OVERHEAT", "CRITICAL").await;
    ack(&app, op, &acked).await.data();
    let cleared = raise(&app, op, &d1, "CABINET_POWER_LOSS", "MINOR").await;
    clear(&app, op, &cleared, Some("power back")).await.data();
    let elsewhere = raise(&app, op, &d3, "CABINET_DOOR_OPEN", "MAJOR").await;
    let r = app.gql(Some(op), home_q, json!({"id": h1})).await;
    let home_alarms = &r.data()["home"]["alarms"];
    assert_eq!(home_alarms["totalCount"], 2, "{}", r.raw);
    assert_eq!(ids(home_alarms), vec![acked.clone(), raised.clone()], "newest first, open only");
    let r = app.gql(Some(op), home_q, json!({"id": h2})).await;
    assert_eq!(ids(&r.data()["home"]["alarms"]), vec![elsewhere.clone()]);
    // The alarms filter by home shows them all, or only the open ones.
    assert_eq!(alarm_ids(&app, op, json!({"homeId": h1})).await, set(&[&raised, &acked, &cleared]));
    assert_eq!(alarm_ids(&app, op, json!({"homeId": h1, "open": true})).await, set(&[&raised, &acked]));
}

#[tokio::test]
async fn the_same_alarm_kind_on_the_same_device_repeats_the_open_alarm() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let tok = t.admin_token.as_str();
    let integ = integration(&app, tok, etc("locks")).await;
    let lock = device(&app, tok, &integ, "lock-1", "GANTRY_CABINET", "Cabinet 1").await;
    let other = device(&app, tok, &integ, "lock-2", "GANTRY_CABINET", "Cabinet 2").await;

    let first = report(
        &app,
        tok,
        json!({"deviceId": lock, "kind": "LOCK_LOW_BATTERY", "severity": "MINOR", "message": "battery 20%",
               "raisedAt": "2025-03-01T08:00:00Z", "attributes": {"battery": 20}}),
    )
    .await;
    let a = first.data()["reportAlarm"].clone();
    let a_id = a["id"].as_str().expect("id").to_owned();
    assert_eq!(a["state"], "RAISED");
    assert_eq!(a["occurrences"], 1);
    assert_eq!(a["deviceId"], json!(lock));
    assert_eq!(a["integrationId"], json!(integ), "the device's integration");
    assert_eq!(a["attributes"], json!({"battery": 20}));
    assert_eq!(ts(&a["raisedAt"]), ts(&json!("2025-03-01T08:00:00Z")));
    assert_eq!(ts(&a["lastSeenAt"]), ts(&json!("2025-03-01T08:00:00Z")));

    // Again, worse: the same alarm, counted, last seen moved, severity re-rated.
    let again = report(
        &app,
        tok,
        json!({"deviceId": lock, "kind": "LOCK_LOW_BATTERY", "severity": "MAJOR", "message": "battery 5%",
               "raisedAt": "2025-03-01T09:30:00Z"}),
    )
    .await;
    let b = &again.data()["reportAlarm"];
    assert_eq!(b["id"], json!(a_id), "{}", again.raw);
    assert_eq!(b["occurrences"], 2);
    assert_eq!(b["state"], "RAISED");
    assert_eq!(b["severity"], "MAJOR");
    assert_eq!(b["message"], "battery 5%");
    assert_eq!(ts(&b["raisedAt"]), ts(&json!("2025-03-01T08:00:00Z")), "first raise kept");
    assert_eq!(ts(&b["lastSeenAt"]), ts(&json!("2025-03-01T09:30:00Z")));

    // And again at the same severity: counted, no new severity entry.
    let third = report(
        &app,
        tok,
        json!({"deviceId": lock, "kind": "LOCK_LOW_BATTERY", "severity": "MAJOR", "raisedAt": "2025-03-01T10:00:00Z"}),
    )
    .await;
    assert_eq!(third.data()["reportAlarm"]["id"], json!(a_id));
    assert_eq!(third.data()["reportAlarm"]["occurrences"], 3);
    assert_eq!(ts(&third.data()["reportAlarm"]["lastSeenAt"]), ts(&json!("2025-03-01T10:00:00Z")));

    let got = alarm(&app, tok, &a_id).await;
    assert_eq!(got["occurrences"], 3);
    let kinds: Vec<_> = got["timeline"].as_array().expect("timeline").iter().map(|e| e["kind"].clone()).collect();
    assert_eq!(kinds, vec![json!("RAISED"), json!("REPEATED"), json!("SEVERITY_CHANGED"), json!("REPEATED")], "{got}");
    let change = &got["timeline"][2];
    let text = change["text"].as_str().expect("text");
    assert!(text.contains("MINOR") && text.contains("MAJOR"), "{text}");
    assert_eq!(change["actorId"], Value::Null, "system entry");

    // Another kind, or the same kind on another device: new alarms.
    let tamper = raise(&app, tok, &lock, "LOCK_TAMPER", "CRITICAL").await;
    assert_ne!(tamper, a_id);
    let elsewhere = raise(&app, tok, &other, "LOCK_LOW_BATTERY", "MINOR").await;
    assert_ne!(elsewhere, a_id);
    assert_eq!(alarm_ids(&app, tok, json!(null)).await, set(&[&a_id, &tamper, &elsewhere]));

    // Bad reports.
    let r = report(&app, tok, json!({"deviceId": lock, "kind": "low battery", "severity": "MINOR"})).await;
    assert_bad_input(&r, "kind");
    let r =
        report(&app, tok, json!({"deviceId": lock, "kind": "LOCK_JAM", "severity": "MINOR", "attributes": [1]})).await;
    assert_bad_input(&r, "attributes");
    let r = report(
        &app,
        tok,
        json!({"deviceId": lock, "kind": "LOCK_JAM", "severity": "MINOR", "message": "x".repeat(2001)}),
    )
    .await;
    assert_bad_input(&r, "message");
    let r = report(&app, tok, json!({"deviceId": uuid::Uuid::now_v7(), "kind": "LOCK_JAM", "severity": "MINOR"})).await;
    assert_eq!(r.code(), "NOT_FOUND");
    let r = report(&app, tok, json!({"deviceId": lock, "kind": "LOCK_JAM", "severity": "SEVERE"})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    assert_eq!(alarm_ids(&app, tok, json!(null)).await.len(), 3, "no alarm from a refused report");
}

#[tokio::test]
async fn alarm_state_machine_acknowledge_clear_comment_and_reopen() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let admin = t.admin_token.as_str();
    let (op_id, op) = member(&app, &t, "OPERATOR").await;
    let op = op.as_str();
    let integ = integration(&app, admin, etc("lifts")).await;
    let dev = device(&app, admin, &integ, "E-1", "GANTRY_COMPUTER", "PC 1").await;

    let a = raise(&app, admin, &dev, "ELEVATOR_FAULT", "MAJOR").await;
    let fresh = alarm(&app, op, &a).await;
    assert_eq!(fresh["state"], "RAISED");
    assert_eq!(fresh["acknowledgedAt"], Value::Null);
    assert_eq!(fresh["acknowledgedBy"], Value::Null);

    // RAISED -> ACKNOWLEDGED by the operator.
    let r = ack(&app, op, &a).await;
    let acked = &r.data()["acknowledgeAlarm"];
    assert_eq!(acked["state"], "ACKNOWLEDGED");
    assert_eq!(acked["acknowledgedBy"], json!(op_id));
    assert!(ts(&acked["acknowledgedAt"]) >= ts(&fresh["raisedAt"]));
    assert_eq!(acked["clearedAt"], Value::Null);
    // Not twice.
    let r = ack(&app, op, &a).await;
    assert_eq!(r.code(), "CONFLICT", "an invalid transition is a CONFLICT: {}", r.raw);

    // ACKNOWLEDGED -> CLEARED by the admin, with a note.
    let r = clear(&app, admin, &a, Some("replaced the door sensor")).await;
    let cleared = &r.data()["clearAlarm"];
    assert_eq!(cleared["state"], "CLEARED");
    assert_eq!(cleared["clearedBy"], json!(t.admin_id));
    assert_eq!(cleared["clearNote"], "replaced the door sensor");
    assert!(ts(&cleared["clearedAt"]) >= ts(&acked["acknowledgedAt"]));
    assert_eq!(cleared["acknowledgedBy"], json!(op_id), "the acknowledgement is kept");
    assert_eq!(clear(&app, admin, &a, None).await.code(), "CONFLICT");
    assert_eq!(ack(&app, op, &a).await.code(), "CONFLICT");
    assert_eq!(alarm(&app, op, &a).await["state"], "CLEARED", "refused moves change nothing");

    // Comments, on any alarm; empty ones are refused.
    let r = comment(&app, op, &a, "  called the resident  ").await;
    let c = &r.data()["commentAlarm"];
    assert_eq!(c["kind"], "COMMENT");
    assert_eq!(c["actorId"], json!(op_id));
    assert_eq!(c["text"], "called the resident");
    assert_bad_input(&comment(&app, op, &a, "").await, "text");
    assert_bad_input(&comment(&app, op, &a, "   ").await, "text");
    assert_eq!(comment(&app, op, &uuid::Uuid::now_v7().to_string(), "x").await.code(), "NOT_FOUND");

    // The timeline, oldest first.
    let tl = alarm(&app, op, &a).await["timeline"].clone();
    let steps: Vec<_> =
        tl.as_array().expect("timeline").iter().map(|e| (e["kind"].clone(), e["actorId"].clone())).collect();
    assert_eq!(
        steps,
        vec![
            (json!("RAISED"), Value::Null),
            (json!("ACKNOWLEDGED"), json!(op_id)),
            (json!("CLEARED"), json!(t.admin_id)),
            (json!("COMMENT"), json!(op_id)),
        ],
        "{tl}"
    );
    assert_eq!(tl[2]["text"], "replaced the door sensor");
    assert_eq!(tl[3]["id"], c["id"]);
    let times: Vec<_> = tl.as_array().expect("timeline").iter().map(|e| ts(&e["at"])).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first: {tl}");

    // RAISED -> CLEARED directly.
    let b = raise(&app, op, &dev, "ELEVATOR_DOOR_FAULT", "MINOR").await;
    let r = clear(&app, op, &b, None).await;
    let cb = &r.data()["clearAlarm"];
    assert_eq!(cb["state"], "CLEARED");
    assert_eq!(cb["acknowledgedAt"], Value::Null);
    assert_eq!(cb["clearedBy"], json!(op_id));
    assert_eq!(cb["clearNote"], Value::Null);

    // After a clear, the same kind opens a new alarm; the cleared one is left alone.
    let r = report(&app, op, json!({"deviceId": dev, "kind": "ELEVATOR_FAULT", "severity": "CRITICAL"})).await;
    let reopened = &r.data()["reportAlarm"];
    assert_ne!(reopened["id"], json!(a), "{}", r.raw);
    assert_eq!(reopened["state"], "RAISED");
    assert_eq!(reopened["occurrences"], 1);
    let old = alarm(&app, op, &a).await;
    assert_eq!(old["state"], "CLEARED");
    assert_eq!(old["occurrences"], 1);
    // ...and a repeat now counts on the new one.
    let r = report(&app, op, json!({"deviceId": dev, "kind": "ELEVATOR_FAULT", "severity": "CRITICAL"})).await;
    assert_eq!(r.data()["reportAlarm"]["id"], reopened["id"]);
    assert_eq!(r.data()["reportAlarm"]["occurrences"], 2);

    // Unknown or malformed ids.
    let nobody = uuid::Uuid::now_v7().to_string();
    assert_eq!(ack(&app, op, &nobody).await.code(), "NOT_FOUND");
    assert_eq!(clear(&app, op, &nobody, Some("x")).await.code(), "NOT_FOUND");
    assert_eq!(
        app.gql(Some(op), "query($id:ID!){ alarm(id:$id){ id } }", json!({"id": nobody})).await.code(),
        "NOT_FOUND"
    );
    assert_bad_input(&ack(&app, op, "nope").await, "id");
    // Viewers read but do not act.
    let (_, viewer) = member(&app, &t, "VIEWER").await;
    assert_eq!(alarm(&app, &viewer, &a).await["state"], "CLEARED");
    assert_eq!(ack(&app, &viewer, reopened["id"].as_str().expect("id")).await.code(), "FORBIDDEN");
    assert_eq!(comment(&app, &viewer, &a, "hi").await.code(), "FORBIDDEN");
}

#[tokio::test]
async fn alarms_filters_narrow_and_pages_walk_newest_first() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let tok = t.admin_token.as_str();
    let gantry = integration(&app, tok, etc("g")).await;
    let lifts = integration(&app, tok, huzhou("l")).await;
    let d1 = device(&app, tok, &gantry, "d1", "GANTRY_COMPUTER", "one").await;
    let d2 = device(&app, tok, &lifts, "d2", "ELEVATOR", "two").await;

    let mk = |dev: &str, kind: &str, sev: &str, at: &str| json!({"deviceId": dev, "kind": kind, "severity": sev, "raisedAt": at});
    let a = report(&app, tok, mk(&d1, "KIND_A", "CRITICAL", "2025-01-01T00:00:00Z")).await.id("reportAlarm");
    let b = report(&app, tok, mk(&d1, "KIND_B", "MINOR", "2025-01-02T00:00:00Z")).await.id("reportAlarm");
    let c = report(&app, tok, mk(&d2, "KIND_A", "MINOR", "2025-01-03T00:00:00Z")).await.id("reportAlarm");
    let d = report(&app, tok, mk(&d2, "KIND_C", "WARNING", "2025-01-04T00:00:00Z")).await.id("reportAlarm");
    let e = report(&app, tok, mk(&d1, "KIND_C", "INFO", "2025-01-05T00:00:00Z")).await.id("reportAlarm");
    ack(&app, tok, &c).await.data();
    clear(&app, tok, &d, None).await.data();

    let f = |v: Value| alarm_ids(&app, tok, v);
    assert_eq!(f(json!(null)).await, set(&[&a, &b, &c, &d, &e]));
    assert_eq!(f(json!({"state": "RAISED"})).await, set(&[&a, &b, &e]));
    assert_eq!(f(json!({"state": "ACKNOWLEDGED"})).await, set(&[&c]));
    assert_eq!(f(json!({"state": "CLEARED"})).await, set(&[&d]));
    assert_eq!(f(json!({"open": true})).await, set(&[&a, &b, &c, &e]));
    assert_eq!(f(json!({"severity": "MINOR"})).await, set(&[&b, &c]));
    assert_eq!(f(json!({"severity": "MAJOR"})).await, set(&[]));
    assert_eq!(f(json!({"deviceId": d2})).await, set(&[&c, &d]));
    assert_eq!(f(json!({"deviceId": uuid::Uuid::now_v7()})).await, set(&[]));
    assert_eq!(f(json!({"integrationId": gantry})).await, set(&[&a, &b, &e]));
    assert_eq!(f(json!({"kind": "KIND_A"})).await, set(&[&a, &c]));
    assert_eq!(f(json!({"from": "2025-01-03T00:00:00Z"})).await, set(&[&c, &d, &e]), "from is inclusive");
    assert_eq!(f(json!({"to": "2025-01-03T00:00:00Z"})).await, set(&[&a, &b]), "to is exclusive");
    assert_eq!(f(json!({"from": "2025-01-02T00:00:00Z", "to": "2025-01-04T00:00:00Z"})).await, set(&[&b, &c]));
    assert_eq!(f(json!({"deviceId": d1, "severity": "MINOR"})).await, set(&[&b]));
    assert_eq!(f(json!({"kind": "KIND_C", "state": "RAISED"})).await, set(&[&e]));
    let r = app.gql(Some(tok), ALARMS, json!({"f": {"from": "yesterday"}})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    assert_bad_input(&app.gql(Some(tok), ALARMS, json!({"f": {"deviceId": "nope"}})).await, "filter.deviceId");

    // A device's own alarms.
    let r = app
        .gql(
            Some(tok),
            "query($id:ID!){ device(id:$id){ alarms(state:RAISED){ totalCount edges{ node{ id } } } } }",
            json!({"id": d1}),
        )
        .await;
    assert_eq!(ids(&r.data()["device"]["alarms"]), vec![e.clone(), b.clone(), a.clone()]);

    // Pages of two, newest first, each alarm once.
    let q = "query($a:String){ alarms(first:2, after:$a){ totalCount pageInfo{ hasNextPage hasPreviousPage endCursor } edges{ cursor node{ id } } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    let mut pages = 0;
    loop {
        let r = app.gql(Some(tok), q, json!({"a": after})).await;
        let conn = r.data()["alarms"].clone();
        assert_eq!(conn["totalCount"], 5, "the total is of the whole list");
        assert_eq!(conn["pageInfo"]["hasPreviousPage"], json!(pages > 0));
        seen.extend(ids(&conn));
        pages += 1;
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        assert!(pages < 5, "pages never end: {}", r.raw);
        after = conn["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, vec![e, d, c, b, a]);
    // A filtered list pages too.
    let fq = "query($a:String){ alarms(filter:{open:true}, first:3, after:$a){ totalCount pageInfo{ hasNextPage endCursor } edges{ node{ id } } } }";
    let p1 = app.gql(Some(tok), fq, json!({"a": null})).await;
    assert_eq!(p1.data()["alarms"]["totalCount"], 4);
    assert_eq!(p1.data()["alarms"]["pageInfo"]["hasNextPage"], true);
    let p2 = app.gql(Some(tok), fq, json!({"a": p1.data()["alarms"]["pageInfo"]["endCursor"]})).await;
    assert_eq!(ids(&p2.data()["alarms"]).len(), 1);
    assert_eq!(p2.data()["alarms"]["pageInfo"]["hasNextPage"], false);
    assert_eq!(app.gql(Some(tok), "{ alarms(first:1000){ totalCount } }", json!({})).await.code(), "BAD_USER_INPUT");
    assert_eq!(
        app.gql(Some(tok), "{ alarms(after:\"junk\"){ totalCount } }", json!({})).await.code(),
        "BAD_USER_INPUT"
    );
}

/// One tenant's rows for the isolation test.
struct World {
    t: TenantFixture,
    integ: String,
    home: String,
    room: String,
    device: String,
    alarm: String,
}

async fn world(app: &TestApp, root: &str) -> World {
    let t = tenant_with_admin(app, root).await;
    let tok = t.admin_token.clone();
    let integ = integration(app, &tok, etc("main")).await;
    let home = add_home(app, &tok, "Home").await;
    let room = add_room(app, &tok, &home, "Room").await.id("addRoom");
    let device = upsert(
            app,
            &tok,
            json!({"integrationId": integ, "externalId": "dev-1", "kind": "GANTRY_CABINET", "name": "Cabinet", "roomId": room}),
        )
        .await.id("upsertDevice");
    let alarm = raise(app, &tok, &device, "CABINET_DOOR_OPEN", "MAJOR").await;
    World { t, integ, home, room, device, alarm }
}

#[tokio::test]
async fn a_tenant_never_sees_or_changes_another_tenants_devices_homes_alarms_events_or_audit() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let a = world(&app, &root).await;
    let b = world(&app, &root).await;
    let snapshot = |w: &World| {
        let q = format!(
            "query($d:ID!,$h:ID!,$a:ID!){{ device(id:$d){{ id name externalId homeId roomId attributes updatedAt }} home(id:$h){{ id name rooms{{ id name }} }} alarm(id:$a){{ {ALARM_FIELDS} }} devices{{ totalCount }} homes{{ totalCount }} alarms{{ totalCount }} }}"
        );
        let vars = json!({"d": w.device, "h": w.home, "a": w.alarm});
        let token = w.t.admin_token.clone();
        let app = &app;
        async move { app.gql(Some(&token), &q, vars).await.data().clone() }
    };
    let before = (snapshot(&a).await, snapshot(&b).await);

    for (me, other) in [(&a, &b), (&b, &a)] {
        let tok = me.t.admin_token.as_str();
        let t = Some(tok);
        let not_found = |r: Gql, what: &str| {
            assert_eq!(r.code(), "NOT_FOUND", "{what}: {}", r.raw);
        };
        // Reads by id.
        not_found(app.gql(t, "query($id:ID!){ device(id:$id){ id } }", json!({"id": other.device})).await, "device");
        not_found(app.gql(t, "query($id:ID!){ home(id:$id){ id } }", json!({"id": other.home})).await, "home");
        not_found(app.gql(t, "query($id:ID!){ alarm(id:$id){ id } }", json!({"id": other.alarm})).await, "alarm");
        // Lists: only its own, also when filtering on the other's ids.
        assert_eq!(device_ids(&app, tok, json!(null)).await, set(&[&me.device]));
        assert_eq!(device_ids(&app, tok, json!({"integrationId": other.integ})).await, set(&[]));
        assert_eq!(device_ids(&app, tok, json!({"homeId": other.home})).await, set(&[]));
        let r = app.gql(t, "{ homes{ totalCount edges{ node{ id } } } }", json!({})).await;
        assert_eq!(ids(&r.data()["homes"]), vec![me.home.clone()]);
        assert_eq!(alarm_ids(&app, tok, json!(null)).await, set(&[&me.alarm]));
        assert_eq!(alarm_ids(&app, tok, json!({"deviceId": other.device})).await, set(&[]));
        assert_eq!(alarm_ids(&app, tok, json!({"homeId": other.home})).await, set(&[]));
        assert_eq!(alarm_ids(&app, tok, json!({"integrationId": other.integ})).await, set(&[]));
        let r = app.gql(t, "{ inboundEvents{ totalCount } }", json!({})).await;
        assert_eq!(r.data()["inboundEvents"]["totalCount"], 0);
        let r = app
            .gql(t, "query($i:ID){ inboundEvents(filter:{integrationId:$i}){ totalCount } }", json!({"i": other.integ}))
            .await;
        assert_eq!(r.data()["inboundEvents"]["totalCount"], 0);

        // Mutations aimed at the other tenant's rows.
        let up = |extra: Value| {
            let mut i = json!({"integrationId": me.integ, "externalId": format!("x-{}", unique()), "kind": "GANTRY_CABINET", "name": "x"});
            if let (Some(i), Some(extra)) = (i.as_object_mut(), extra.as_object()) {
                i.extend(extra.clone());
            }
            upsert(&app, tok, i)
        };
        not_found(up(json!({"integrationId": other.integ, "externalId": "dev-1"})).await, "upsertDevice integration");
        not_found(up(json!({"homeId": other.home})).await, "upsertDevice home");
        not_found(up(json!({"roomId": other.room})).await, "upsertDevice room");
        not_found(
            app.gql(
                t,
                "mutation($h:ID!){ addRoom(input:{homeId:$h, name:\"Intruder\"}){ id } }",
                json!({"h": other.home}),
            )
            .await,
            "addRoom",
        );
        not_found(
            app.gql(
                t,
                "mutation($i:ID!){ addHome(input:{name:\"x\", integrationId:$i}){ id } }",
                json!({"i": other.integ}),
            )
            .await,
            "addHome integration",
        );
        not_found(
            report(&app, tok, json!({"deviceId": other.device, "kind": "CABINET_DOOR_OPEN", "severity": "CRITICAL"}))
                .await,
            "reportAlarm",
        );
        not_found(ack(&app, tok, &other.alarm).await, "acknowledgeAlarm");
        not_found(clear(&app, tok, &other.alarm, Some("not mine")).await, "clearAlarm");
        not_found(comment(&app, tok, &other.alarm, "hello neighbour").await, "commentAlarm");

        // The audit log holds only this tenant's doings.
        let r = app
            .gql(t, "{ auditLog(first:100){ totalCount edges{ node{ actorId action target outcome } } } }", json!({}))
            .await;
        let entries = r.data()["auditLog"]["edges"].as_array().expect("edges").clone();
        assert!(!entries.is_empty());
        for e in &entries {
            assert_eq!(e["node"]["actorId"], json!(me.t.admin_id), "{}", r.raw);
            for theirs in [&other.integ, &other.home, &other.room, &other.device, &other.alarm] {
                assert_ne!(e["node"]["target"], json!(theirs), "{}", r.raw);
            }
        }
        let targets: Vec<_> = entries.iter().map(|e| e["node"]["target"].clone()).collect();
        assert!(targets.contains(&json!(me.alarm)) && targets.contains(&json!(me.device)), "{}", r.raw);
    }

    // Nothing of either tenant moved (apart from the rows each made in its own tenant).
    let after = (snapshot(&a).await, snapshot(&b).await);
    for (x, y) in [(&before.0, &after.0), (&before.1, &after.1)] {
        assert_eq!(x["device"], y["device"]);
        assert_eq!(x["home"], y["home"]);
        assert_eq!(x["alarm"], y["alarm"]);
        assert_eq!(y["alarm"]["state"], "RAISED");
        assert_eq!(y["alarm"]["occurrences"], 1);
        assert_eq!(y["alarm"]["timeline"].as_array().map(Vec::len), Some(1));
        assert_eq!(y["devices"]["totalCount"], 1);
        assert_eq!(y["alarms"]["totalCount"], 1);
        assert_eq!(y["home"]["rooms"].as_array().map(Vec::len), Some(1));
    }
}

#[tokio::test]
async fn the_audit_log_lists_who_did_what_newest_first_without_secrets() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let a = tenant_with_admin(&app, &root).await;
    let b = tenant_with_admin(&app, &root).await;
    let admin = a.admin_token.as_str();
    let op_password = format!("op-pass-{}", unique());
    let viewer_password = format!("viewer-pass-{}", unique());
    let client_secret = format!("client-secret-{}", unique());

    // Mutations, in this order, by the tenant's admin, operator and viewer.
    let op_email = format!("op@{}.example.com", a.slug);
    let op_id = app.create_user(admin, &a.id, &op_email, &op_password, "OPERATOR").await;
    let viewer_email = format!("viewer@{}.example.com", a.slug);
    let viewer_id = app.create_user(admin, &a.id, &viewer_email, &viewer_password, "VIEWER").await;
    let integ = app
        .configure_integration(
            admin,
            json!({"kind": "ETC_GANTRY", "name": "gantry", "settings": {}, "credentials": {"authCode": client_secret}}),
        )
        .await;
    let integ = integ.id("configureIntegration");
    // A login (even one carrying a token) is not audited.
    let r = app
        .gql(
            Some(admin),
            "mutation($e:String!,$p:String!){ login(email:$e,password:$p){ token } }",
            json!({"e": op_email, "p": op_password}),
        )
        .await;
    let op = r.data()["login"]["token"].as_str().expect("token").to_owned();
    let viewer = app.login(&viewer_email, &viewer_password).await;
    let home = add_home(&app, &op, "Depot").await;
    let dev = upsert(
        &app,
        &op,
        json!({"integrationId": integ, "externalId": "cab-9", "kind": "GANTRY_CABINET", "name": "Gate"}),
    )
    .await;
    let dev = dev.id("upsertDevice");
    let al = raise(&app, &op, &dev, "LOCK_TAMPER", "CRITICAL").await;
    ack(&app, &op, &al).await.data();
    assert_eq!(ack(&app, &op, &al).await.code(), "CONFLICT");
    let r = app.gql(Some(&op), "mutation($i:ID!){ createApiKey(integrationId:$i){ key } }", json!({"i": integ})).await;
    assert_eq!(r.code(), "FORBIDDEN");
    assert_eq!(
        app.gql(Some(&viewer), "mutation{ addHome(input:{name:\"v\"}){ id } }", json!({})).await.code(),
        "FORBIDDEN"
    );
    let r =
        app.gql(Some(admin), "mutation($i:ID!){ rotateIntegrationSecret(id:$i){ secret } }", json!({"i": integ})).await;
    let rotated = r.data()["rotateIntegrationSecret"]["secret"].as_str().expect("secret").to_owned();
    let r =
        app.gql(Some(admin), "mutation($i:ID!){ createApiKey(integrationId:$i){ id key } }", json!({"i": integ})).await;
    let key_id = r.data()["createApiKey"]["id"].as_str().expect("key id").to_owned();
    let api_key = r.data()["createApiKey"]["key"].as_str().expect("key").to_owned();

    // Another tenant's doings.
    let b_integ = integration(&app, &b.admin_token, etc("b")).await;
    add_home(&app, &b.admin_token, "B home").await;
    let b_op_password = format!("b-op-pass-{}", unique());
    app.create_user(&b.admin_token, &b.id, &format!("op@{}.example.com", b.slug), &b_op_password, "OPERATOR").await;

    let q = "query($a:String){ auditLog(first:100, after:$a){ totalCount pageInfo{ hasNextPage } edges{ node{ id actorId actorRole action target outcome at } } } }";
    let r = app.gql(Some(admin), q, json!({"a": null})).await;
    let log = &r.data()["auditLog"];
    let rows: Vec<(Value, Value, Value, Value, Value)> = log["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            let n = &e["node"];
            (
                n["action"].clone(),
                n["actorId"].clone(),
                n["actorRole"].clone(),
                n["outcome"].clone(),
                n["target"].clone(),
            )
        })
        .collect();
    let row = |action: &str, actor: &str, role: &str, outcome: &str, target: Option<&str>| {
        (json!(action), json!(actor), json!(role), json!(outcome), target.map_or(Value::Null, |t| json!(t)))
    };
    let (adm, opr, vwr) = (a.admin_id.as_str(), op_id.as_str(), viewer_id.as_str());
    let expected = vec![
        row("createApiKey", adm, "TENANT_ADMIN", "OK", Some(&key_id)),
        row("rotateIntegrationSecret", adm, "TENANT_ADMIN", "OK", None),
        row("addHome", vwr, "VIEWER", "FORBIDDEN", None),
        row("createApiKey", opr, "OPERATOR", "FORBIDDEN", None),
        row("acknowledgeAlarm", opr, "OPERATOR", "CONFLICT", None),
        row("acknowledgeAlarm", opr, "OPERATOR", "OK", Some(&al)),
        row("reportAlarm", opr, "OPERATOR", "OK", Some(&al)),
        row("upsertDevice", opr, "OPERATOR", "OK", Some(&dev)),
        row("addHome", opr, "OPERATOR", "OK", Some(&home)),
        row("configureIntegration", adm, "TENANT_ADMIN", "OK", Some(&integ)),
        row("createUser", adm, "TENANT_ADMIN", "OK", Some(&viewer_id)),
        row("createUser", adm, "TENANT_ADMIN", "OK", Some(&op_id)),
    ];
    assert_eq!(rows, expected, "{}", r.raw);
    assert_eq!(log["totalCount"], json!(expected.len()));
    let times: Vec<_> = log["edges"].as_array().expect("edges").iter().map(|e| ts(&e["node"]["at"])).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {}", r.raw);
    assert!(!r.raw.contains(&b_integ), "another tenant's doings stay out");
    let secrets: [&str; 7] =
        [&op_password, &viewer_password, &client_secret, &rotated, &api_key, &b_op_password, USER_PASSWORD];
    for secret in secrets {
        assert!(!r.raw.contains(secret), "a secret in the audit log: {}", r.raw);
    }

    // Pages.
    let p = app
        .gql(
            Some(admin),
            "{ auditLog(first:5){ totalCount pageInfo{ hasNextPage } edges{ node{ action } } } }",
            json!({}),
        )
        .await;
    assert_eq!(p.data()["auditLog"]["edges"].as_array().map(Vec::len), Some(5));
    assert_eq!(p.data()["auditLog"]["pageInfo"]["hasNextPage"], true);

    // Tenant admins only.
    for (who, token) in [("operator", op.as_str()), ("viewer", viewer.as_str()), ("platform admin", root.as_str())] {
        let r = app.gql(Some(token), "{ auditLog{ totalCount } }", json!({})).await;
        assert_eq!(r.code(), "FORBIDDEN", "{who}: {}", r.raw);
    }
    assert_eq!(app.gql(None, "{ auditLog{ totalCount } }", json!({})).await.code(), "UNAUTHENTICATED");
    // B sees its own three entries.
    let r = app.gql(Some(&b.admin_token), "{ auditLog{ totalCount edges{ node{ actorId } } } }", json!({})).await;
    assert_eq!(r.data()["auditLog"]["totalCount"], 3);
    assert!(!r.raw.contains(&a.admin_id) && !r.raw.contains(&op_id));
}

#[tokio::test]
async fn inbound_events_are_listed_for_tenant_admins_only() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let integ = integration(&app, &t.admin_token, etc("events")).await;
    let q = "query($f:InboundEventFilterInput){ inboundEvents(filter:$f, first:10){ totalCount pageInfo{ hasNextPage } edges{ node{ id integrationId protocol kind dedupKey headers body receivedAt state error processedAt } } } }";
    for filter in [
        json!(null),
        json!({"integrationId": integ}),
        json!({"state": "RECEIVED"}),
        json!({"kind": "anything", "from": "2025-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"}),
    ] {
        let r = app.gql(Some(&t.admin_token), q, json!({"f": filter})).await;
        assert_eq!(r.data()["inboundEvents"]["totalCount"], 0, "{}", r.raw);
        assert_eq!(r.data()["inboundEvents"]["edges"], json!([]));
        assert_eq!(r.data()["inboundEvents"]["pageInfo"]["hasNextPage"], false);
    }
    assert_bad_input(
        &app.gql(Some(&t.admin_token), q, json!({"f": {"integrationId": "nope"}})).await,
        "filter.integrationId",
    );
    assert_eq!(app.gql(Some(&t.admin_token), q, json!({"f": {"state": "LOST"}})).await.code(), "BAD_USER_INPUT");
    let (_, viewer) = member(&app, &t, "VIEWER").await;
    let (_, op) = member(&app, &t, "OPERATOR").await;
    for token in [&viewer, &op, &root] {
        assert_eq!(app.gql(Some(token), q, json!({"f": null})).await.code(), "FORBIDDEN");
    }
    assert_eq!(app.gql(None, q, json!({"f": null})).await.code(), "UNAUTHENTICATED");
}

// Regressions of bugs found by these tests.

/// `Home.alarms` are the open alarms of the devices in the home now, wherever they were
/// when the alarm was opened.
#[tokio::test]
async fn home_alarms_follow_the_device_to_its_current_home() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let tok = t.admin_token.as_str();
    let integ = integration(&app, tok, etc("moves")).await;
    let h1 = add_home(&app, tok, "First").await;
    let h2 = add_home(&app, tok, "Second").await;
    let dev = device(&app, tok, &integ, "m-1", "GANTRY_CABINET", "Mover").await;
    let al = raise(&app, tok, &dev, "CABINET_DOOR_OPEN", "MAJOR").await;
    let place = |home: &str| json!({"integrationId": integ, "externalId": "m-1", "kind": "GANTRY_CABINET", "name": "Mover", "homeId": home});
    let q = "query($id:ID!){ home(id:$id){ alarms{ totalCount edges{ node{ id } } } } }";
    upsert(&app, tok, place(&h1)).await.data();
    let r = app.gql(Some(tok), q, json!({"id": h1})).await;
    assert_eq!(ids(&r.data()["home"]["alarms"]), vec![al.clone()], "placed after the raise: {}", r.raw);
    upsert(&app, tok, place(&h2)).await.data();
    let r = app.gql(Some(tok), q, json!({"id": h2})).await;
    assert_eq!(ids(&r.data()["home"]["alarms"]), vec![al.clone()], "moved: {}", r.raw);
    let r = app.gql(Some(tok), q, json!({"id": h1})).await;
    assert_eq!(r.data()["home"]["alarms"]["totalCount"], 0, "moved away: {}", r.raw);
}

/// `reportAlarm` checks its ticket like its device.
#[tokio::test]
async fn report_alarm_refuses_a_ticket_that_is_not_the_tenants() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let r = report(
        &app,
        &t.admin_token,
        json!({"ticketId": uuid::Uuid::now_v7(), "kind": "TICKET_OVERDUE", "severity": "MINOR"}),
    )
    .await;
    assert_eq!(r.body["errors"][0]["extensions"]["code"], "NOT_FOUND", "{}", r.raw);
    assert_eq!(alarm_ids(&app, &t.admin_token, json!(null)).await.len(), 0);
}

/// `devices(filter: {search})` searches for `%` and `_` literally.
#[tokio::test]
async fn device_search_treats_wildcards_literally() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let tok = t.admin_token.as_str();
    let integ = integration(&app, tok, etc("w")).await;
    let plain = device(&app, tok, &integ, "plain-1", "GANTRY_CABINET", "Plain").await;
    let odd = device(&app, tok, &integ, "odd_2", "GANTRY_CABINET", "100% odd").await;
    assert_eq!(device_ids(&app, tok, json!({"search": "%"})).await, set(&[&odd]));
    assert_eq!(device_ids(&app, tok, json!({"search": "_"})).await, set(&[&odd]));
    assert_eq!(device_ids(&app, tok, json!({"search": "plain"})).await, set(&[&plain]));
}

/// Readings as adapters record them: the newest reading of each metric is the device's
/// `latest` (an older one arriving later does not replace it), reports racing on one
/// device lose none of their metrics, and a device of another tenant takes none.
#[tokio::test]
async fn readings_keep_the_newest_per_metric_and_stay_in_their_tenant() {
    use domain::devices::NewReading;
    use domain::ids::{DeviceId, TenantId};
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let (a, b) = (tenant_with_admin(&app, &root).await, tenant_with_admin(&app, &root).await);
    let integ = integration(&app, &a.admin_token, etc("readings")).await;
    let dev = device(&app, &a.admin_token, &integ, "R-1", "GANTRY_CABINET", "cabinet").await;
    let (tenant, other): (TenantId, TenantId) = (a.id.parse().expect("valid"), b.id.parse().expect("valid"));
    let id: DeviceId = dev.parse().expect("valid");
    let at = |s: &str| DateTime::parse_from_rfc3339(s).expect("valid").with_timezone(&Utc);
    let reading = |m: &str, v: i64, ts: &str| NewReading { metric: m.into(), value: json!(v), ts: at(ts) };
    let devices = &app.state.devices;
    devices.record_readings(tenant, id, vec![reading("temp", 2, "2026-12-01T10:00:02Z")]).await.expect("newer");
    let d = devices
        .record_readings(
            tenant,
            id,
            vec![reading("temp", 1, "2026-12-01T10:00:01Z"), reading("volt", 7, "2026-12-01T09:00:00Z")],
        )
        .await
        .expect("older");
    assert_eq!(d.latest["temp"]["value"], json!(2), "{}", d.latest);
    assert_eq!(d.latest["volt"]["value"], json!(7), "{}", d.latest);
    assert_eq!(d.last_seen_at, Some(at("2026-12-01T10:00:02Z")));
    // Twenty metrics reported at once: every one is in `latest` afterwards.
    let racing = (0..20).map(|k| {
        let r = reading(&format!("m{k}"), k, "2026-12-01T11:00:00Z");
        async move { devices.record_readings(tenant, id, vec![r]).await.expect("racing") }
    });
    futures::future::join_all(racing).await;
    let d = devices.record_readings(tenant, id, vec![reading("temp", 3, "2026-12-01T12:00:00Z")]).await.expect("valid");
    for k in 0..20 {
        assert_eq!(d.latest[format!("m{k}")]["value"], json!(k), "m{k} lost: {}", d.latest);
    }
    assert_eq!(d.latest["temp"]["value"], json!(3));
    // Another tenant's device: not found, and nothing recorded.
    let err = devices.record_readings(other, id, vec![reading("temp", 9, "2026-12-01T13:00:00Z")]).await;
    assert!(matches!(err, Err(domain::DomainError::NotFound(_))), "{err:?}");
    let r = app
        .gql(
            Some(&a.admin_token),
            "query($d:ID!){ device(id:$d){ readings(metric:\"temp\", last:10){ value } } }",
            json!({"d": dev}),
        )
        .await;
    let values: Vec<Value> =
        r.data()["device"]["readings"].as_array().expect("valid").iter().map(|x| x["value"].clone()).collect();
    assert_eq!(values.len(), 3, "{values:?}");
    assert!(!values.contains(&json!(9)));
}

/// Inbound events as hooks store them, many at once (as in a callback burst): each dedup
/// key is stored once, exactly one of its concurrent senders is told it is new, every
/// repeat gets the stored event; outcomes land on their own event only.
#[tokio::test]
async fn concurrent_inbound_events_are_stored_once_per_key() {
    use domain::events::{EventState, NewInboundEvent};
    use domain::ids::{IntegrationId, TenantId};
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let a = tenant_with_admin(&app, &root).await;
    let integ: IntegrationId = integration(&app, &a.admin_token, etc("events")).await.parse().expect("id");
    let tenant: TenantId = a.id.parse().expect("tenant");
    let events = &app.state.events;
    let input = |k: usize| NewInboundEvent {
        integration_id: integ,
        protocol: "ETC_GANTRY".into(),
        kind: "burst".into(),
        dedup_key: format!("key-{}", k % 10),
        headers: json!({}),
        body: format!("{{\"n\":{k}}}"),
        received_at: Utc::now(),
    };
    let calls = (0..60).map(|k| async move { (k % 10, events.record(tenant, input(k)).await.expect("recorded")) });
    let results = futures::future::join_all(calls).await;
    for key in 0..10 {
        let of_key: Vec<_> = results.iter().filter(|(k, _)| *k == key).map(|(_, r)| r).collect();
        assert_eq!(of_key.iter().filter(|r| !r.duplicate).count(), 1, "key {key}: one is new");
        assert!(of_key.iter().all(|r| r.event.id == of_key[0].event.id), "key {key}: one stored event");
    }
    let first = results.iter().find(|(k, r)| *k == 3 && !r.duplicate).map(|(_, r)| r.event.id).expect("key 3");
    events.finish(tenant, first, EventState::Processed, None).await.expect("finish");
    let other: TenantId = tenant_with_admin(&app, &root).await.id.parse().expect("tenant");
    assert!(events.finish(other, first, EventState::Failed, None).await.is_err(), "another tenant's event");
    let r = app
        .gql(
            Some(&a.admin_token),
            "query{ inboundEvents(first:100){ totalCount edges{ node{ id state } } } }",
            json!({}),
        )
        .await;
    assert_eq!(r.data()["inboundEvents"]["totalCount"], json!(10), "{}", r.raw);
    let states: Vec<&Value> =
        r.data()["inboundEvents"]["edges"].as_array().expect("edges").iter().map(|e| &e["node"]["state"]).collect();
    assert_eq!(states.iter().filter(|s| **s == "PROCESSED").count(), 1, "{states:?}");
}

/// A unit claiming a batch of stored events finishes them PROCESSED with its writes: a
/// concurrent unit claiming the same events waits for it and then gets none of them; a
/// unit dropped without commit leaves its events RECEIVED; another tenant's unit claims
/// none of them.
#[tokio::test]
async fn a_claimed_batch_is_processed_by_one_unit_only() {
    use domain::events::{EventState, NewInboundEvent};
    use domain::ids::{IntegrationId, TenantId};
    use domain::ingest::UnitOfWork;
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let a = tenant_with_admin(&app, &root).await;
    let integ: IntegrationId = integration(&app, &a.admin_token, etc("claims")).await.parse().expect("id");
    let tenant: TenantId = a.id.parse().expect("tenant");
    let other: TenantId = tenant_with_admin(&app, &root).await.id.parse().expect("tenant");
    let mut ids = Vec::new();
    for k in 0..6 {
        let input = NewInboundEvent {
            integration_id: integ,
            protocol: "ETC_GANTRY".into(),
            kind: "claim".into(),
            dedup_key: format!("claim-{k}"),
            headers: json!({}),
            body: format!("{{\"n\":{k}}}"),
            received_at: Utc::now(),
        };
        ids.push(app.state.events.record(tenant, input).await.expect("recorded").event.id);
    }
    let units = std::sync::Arc::new(adapters::db::repos::SqlUnitOfWork::new(app.state.db.clone()));
    let state = |id: domain::ids::InboundEventId| {
        let db = app.state.db.clone();
        async move {
            use sea_orm::ConnectionTrait;
            let row = db
                .query_one_raw(sea_orm::Statement::from_sql_and_values(
                    db.get_database_backend(),
                    "SELECT state FROM inbound_events WHERE id = $1",
                    [sea_orm::Value::from(id.as_uuid())],
                ))
                .await
                .expect("read")
                .expect("event");
            row.try_get::<String>("", "state").expect("state")
        }
    };

    let stranger = units.begin().await.expect("unit");
    assert!(stranger.claim_processed(other, &ids).await.expect("claim").is_empty(), "another tenant's events");
    drop(stranger);

    let dropped = units.begin().await.expect("unit");
    assert_eq!(dropped.claim_processed(tenant, &ids[..2]).await.expect("claim").len(), 2);
    drop(dropped);
    assert_eq!(state(ids[0]).await, EventState::Received.as_str(), "rolled back with its unit");

    let first = units.begin().await.expect("unit");
    let mut claimed = first.claim_processed(tenant, &ids[..4]).await.expect("claim");
    claimed.sort();
    let mut expected = ids[..4].to_vec();
    expected.sort();
    assert_eq!(claimed, expected);
    let second = {
        let (units, ids) = (units.clone(), ids.clone());
        tokio::spawn(async move {
            let unit = units.begin().await.expect("unit");
            let claimed = unit.claim_processed(tenant, &ids).await.expect("claim");
            unit.commit().await.expect("commit");
            claimed
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!second.is_finished(), "the second unit waits for the first");
    first.commit().await.expect("commit");
    let mut rest = second.await.expect("second unit");
    rest.sort();
    let mut expected = ids[4..].to_vec();
    expected.sort();
    assert_eq!(rest, expected, "only those the first did not take");
    for id in &ids {
        assert_eq!(state(*id).await, EventState::Processed.as_str());
    }
}
