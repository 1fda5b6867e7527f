//! Lifecycle of homes, rooms, devices and integrations (issue 18.3): update and delete,
//! mirrored to Dingding where the home belongs to a DINGDING integration (checked on the
//! fake's own account state), deletes refused with CONFLICT while dependents exist,
//! tenant-scoped, and audited with before and after.

use crate::e2e_dingding::{now_ms, setup};
use crate::utils::{Client, TestApp, eventually, nodes, spawn_app, tenant_with_admin};
use serde_json::{Value, json};

async fn home_at_dingding(s: &crate::e2e_dingding::Setup, id: &str) -> Option<Value> {
    s.fake.homes().get(id).cloned()
}

fn id_of(r: &crate::utils::Gql, field: &str) -> String {
    r.data()[field]["id"].as_str().unwrap_or_else(|| panic!("{field}: {}", r.raw)).to_owned()
}

#[tokio::test]
async fn a_deleted_home_disappears_from_dingding_and_updates_follow_it_there() {
    let s = setup().await;
    let home = s
        .gql(
            "mutation($i:AddHomeInput!){ addHome(input:$i){ id externalId } }",
            json!({"i": {"name": "Canal 7", "address": "7 Canal Road", "integrationId": s.integration,
                         "externalId": "dd-life", "attributes": {"city": "杭州市"}}}),
        )
        .await;
    let home_id = id_of(&home, "addHome");
    eventually("the home at Dingding", || async { home_at_dingding(&s, "dd-life").await.is_some() }).await;

    // Several rooms at once: one add_rooms call.
    let rooms = s
        .gql(
            "mutation($h:ID!){ addRooms(homeId:$h, rooms:[{name:\"A\", externalId:\"dd-a\"},{name:\"B\", externalId:\"dd-b\"}]){ id name externalId homeId } }",
            json!({"h": home_id}),
        )
        .await;
    let rooms = rooms.data()["addRooms"].as_array().expect("rooms").clone();
    assert_eq!(rooms.len(), 2);
    assert!(rooms.iter().all(|r| r["homeId"] == json!(home_id)));
    let (room_a, room_b) =
        (rooms[0]["id"].as_str().expect("a").to_owned(), rooms[1]["id"].as_str().expect("b").to_owned());
    let calls = s.fake.wait_calls("add_rooms", |c| !c.is_empty()).await;
    assert_eq!(calls.len(), 1, "one call for both rooms");
    assert_eq!(calls[0].params["home_id"], "dd-life");
    assert_eq!(calls[0].params["rooms"][1]["room_id"], "dd-b");
    assert_eq!(calls[0].params["rooms"][1]["room_name"], "B");
    let empty = s.gql("mutation($h:ID!){ addRooms(homeId:$h, rooms:[]){ id } }", json!({"h": home_id})).await;
    assert_eq!(empty.code(), "BAD_USER_INPUT");

    // Update the home: name, address and the operator's acceptance (sp_state 2).
    let updated = s
        .gql(
            "mutation($h:ID!){ updateHome(id:$h, input:{name:\"Canal 7 East\", address:\"7 Canal Road, East\", attributes:{city:\"杭州市\", spState:2}}){ id name address attributes } }",
            json!({"h": home_id}),
        )
        .await;
    assert_eq!(updated.data()["updateHome"]["name"], "Canal 7 East");
    assert_eq!(updated.data()["updateHome"]["address"], "7 Canal Road, East");
    eventually("update_home at Dingding", || async {
        home_at_dingding(&s, "dd-life").await.is_some_and(|h| {
            h["home_name"] == "Canal 7 East" && h["location"] == "7 Canal Road, East" && h["sp_state"] == 2
        })
    })
    .await;
    let bad = s.gql("mutation($h:ID!){ updateHome(id:$h, input:{name:\"  \"}){ id } }", json!({"h": home_id})).await;
    assert_eq!(bad.code(), "BAD_USER_INPUT");

    // Rename room A, delete room B.
    let r = s.gql("mutation($r:ID!){ updateRoom(id:$r, input:{name:\"A1\"}){ name } }", json!({"r": room_a})).await;
    assert_eq!(r.data()["updateRoom"]["name"], "A1");
    let dup = s.gql("mutation($r:ID!){ updateRoom(id:$r, input:{name:\"B\"}){ name } }", json!({"r": room_a})).await;
    assert_eq!(dup.code(), "CONFLICT", "room names are unique per home: {}", dup.raw);
    let r = s.gql("mutation($r:ID!){ deleteRoom(id:$r){ id name } }", json!({"r": room_b})).await;
    assert_eq!(r.data()["deleteRoom"]["name"], "B");
    eventually("update_room and del_room at Dingding", || async {
        home_at_dingding(&s, "dd-life")
            .await
            .is_some_and(|h| h["rooms"]["dd-a"]["room_name"] == "A1" && h["rooms"].get("dd-b").is_none())
    })
    .await;

    // A lock in room A: neither the room nor the home can go.
    let lock = s.device("life-lock", "LOCK", json!({})).await;
    let placed = s
        .gql(
            "mutation($d:ID!,$h:ID!,$r:ID!){ updateDevice(id:$d, input:{homeId:$h, roomId:$r}){ homeId roomId } }",
            json!({"d": lock, "h": home_id, "r": room_a}),
        )
        .await;
    assert_eq!(placed.data()["updateDevice"]["roomId"], json!(room_a));
    let refused = s.gql("mutation($h:ID!){ deleteHome(id:$h){ id } }", json!({"h": home_id})).await;
    assert_eq!(refused.code(), "CONFLICT", "{}", refused.raw);
    assert!(refused.raw.contains("device"), "the message says why: {}", refused.raw);
    let refused = s.gql("mutation($r:ID!){ deleteRoom(id:$r){ id } }", json!({"r": room_a})).await;
    assert_eq!(refused.code(), "CONFLICT");
    assert!(home_at_dingding(&s, "dd-life").await.is_some(), "nothing sent for a refused delete");

    // The lock leaves the home; then the home goes, with its rooms, here and at Dingding.
    let moved = s
        .gql("mutation($d:ID!){ updateDevice(id:$d, input:{homeId:null}){ homeId roomId } }", json!({"d": lock}))
        .await;
    assert_eq!(moved.data()["updateDevice"], json!({"homeId": null, "roomId": null}));
    let deleted = s.gql("mutation($h:ID!){ deleteHome(id:$h){ id name } }", json!({"h": home_id})).await;
    assert_eq!(deleted.data()["deleteHome"]["name"], "Canal 7 East", "{}", deleted.raw);
    eventually("the home gone from Dingding", || async { home_at_dingding(&s, "dd-life").await.is_none() }).await;
    let del = s.fake.calls("del_home");
    assert_eq!(del.len(), 1);
    assert_eq!(del[0].params["home_id"], "dd-life");
    assert_eq!(s.gql("query($h:ID!){ home(id:$h){ id } }", json!({"h": home_id})).await.code(), "NOT_FOUND");
    let again = s.gql("mutation($h:ID!){ deleteHome(id:$h){ id } }", json!({"h": home_id})).await;
    assert_eq!(again.code(), "NOT_FOUND");
    let gone = s.gql("mutation($r:ID!){ updateRoom(id:$r, input:{name:\"x\"}){ id } }", json!({"r": room_a})).await;
    assert_eq!(gone.code(), "NOT_FOUND", "the rooms went with the home");
    let del_rooms = s.fake.calls("del_room");
    assert_eq!(del_rooms.len(), 1, "only room B was deleted on its own; del_home takes the rest");

    // Every change audited, before and after.
    let log = s
        .gql(
            "query($h:String){ auditLog(filter:{entityId:$h}, first:20){ edges{ node{ action before after outcome } } } }",
            json!({"h": home_id}),
        )
        .await;
    let rows = nodes(&log.data()["auditLog"]);
    let del = rows.iter().find(|r| r["action"] == "deleteHome" && r["outcome"] == "OK").expect("deleteHome audited");
    assert_eq!(del["before"]["name"], "Canal 7 East");
    assert_eq!(del["after"], Value::Null);
    let upd = rows.iter().find(|r| r["action"] == "updateHome" && r["outcome"] == "OK").expect("updateHome audited");
    assert_eq!(upd["before"]["name"], "Canal 7");
    assert_eq!(upd["after"]["name"], "Canal 7 East");
    let log = s
        .gql(
            "query($r:String){ auditLog(filter:{entityId:$r, entityType:\"room\"}, first:20){ edges{ node{ action before after } } } }",
            json!({"r": room_a}),
        )
        .await;
    let rows = nodes(&log.data()["auditLog"]);
    let upd = rows.iter().find(|r| r["action"] == "updateRoom" && r["after"].is_object()).expect("updateRoom audited");
    assert_eq!((upd["before"]["name"].as_str(), upd["after"]["name"].as_str()), (Some("A"), Some("A1")));
}

#[tokio::test]
async fn devices_update_and_delete_refusing_while_an_alarm_is_open() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let api = &t.api;
    let etc =
        api.integration(json!({"kind": "ETC_GANTRY", "name": "e", "credentials": {"authCode": "123456"}})).await.id;
    let dev = api.device(&etc, "G000211001002110010", "GANTRY", "North gantry", json!({"lane": 1})).await;
    let h1 = api.data("mutation{ addHome(input:{name:\"North\"}){ id } }", json!({})).await["addHome"]["id"].clone();
    let h2 = api.data("mutation{ addHome(input:{name:\"South\"}){ id } }", json!({})).await["addHome"]["id"].clone();
    let r2 = api.data("mutation($h:ID!){ addRoom(input:{homeId:$h, name:\"Cab\"}){ id } }", json!({"h": h2})).await
        ["addRoom"]["id"]
        .clone();

    const UPDATE: &str = "mutation($d:ID!,$i:UpdateDeviceInput!){ updateDevice(id:$d, input:$i){ id externalId kind name homeId roomId attributes } }";
    let u = api
        .gql(UPDATE, json!({"d": dev, "i": {"name": "North gantry PC", "homeId": h1, "attributes": {"lane": 2}}}))
        .await;
    let d = &u.data()["updateDevice"];
    assert_eq!(
        (
            d["name"].as_str(),
            d["homeId"].clone(),
            d["attributes"].clone(),
            d["externalId"].as_str(),
            d["kind"].as_str()
        ),
        (Some("North gantry PC"), h1.clone(), json!({"lane": 2}), Some("G000211001002110010"), Some("GANTRY"))
    );
    // A room of another home is refused; the room alone brings its home.
    let bad = api.gql(UPDATE, json!({"d": dev, "i": {"homeId": h1, "roomId": r2}})).await;
    assert_eq!(bad.code(), "BAD_USER_INPUT");
    let u = api.gql(UPDATE, json!({"d": dev, "i": {"roomId": r2, "homeId": h2}})).await;
    assert_eq!(
        (u.data()["updateDevice"]["homeId"].clone(), u.data()["updateDevice"]["roomId"].clone()),
        (h2.clone(), r2.clone())
    );
    // Absent fields stay.
    let u = api.gql(UPDATE, json!({"d": dev, "i": {"name": "N"}})).await;
    assert_eq!(u.data()["updateDevice"]["roomId"], r2);
    assert_eq!(u.data()["updateDevice"]["attributes"], json!({"lane": 2}));
    let bad = api.gql(UPDATE, json!({"d": dev, "i": {"attributes": [1]}})).await;
    assert_eq!(bad.code(), "BAD_USER_INPUT");

    // An open alarm holds the device.
    let alarm = api
        .data(
            "mutation($d:ID!){ reportAlarm(input:{deviceId:$d, kind:\"GANTRY_DOOR_OPEN\", severity:MAJOR}){ id } }",
            json!({"d": dev}),
        )
        .await["reportAlarm"]["id"]
        .clone();
    const DELETE: &str = "mutation($d:ID!){ deleteDevice(id:$d){ id name } }";
    let refused = api.gql(DELETE, json!({"d": dev})).await;
    assert_eq!(refused.code(), "CONFLICT");
    assert!(refused.raw.contains("open alarm"), "{}", refused.raw);
    api.data("mutation($a:ID!){ clearAlarm(id:$a, note:\"done\"){ id } }", json!({"a": alarm})).await;
    let deleted = api.gql(DELETE, json!({"d": dev})).await;
    assert_eq!(deleted.data()["deleteDevice"]["name"], "N", "{}", deleted.raw);
    assert_eq!(api.gql("query($d:ID!){ device(id:$d){ id } }", json!({"d": dev})).await.code(), "NOT_FOUND");
    assert_eq!(api.gql(DELETE, json!({"d": dev})).await.code(), "NOT_FOUND");
    let list = api.data("query($i:ID){ devices(filter:{integrationId:$i}){ totalCount } }", json!({"i": etc})).await;
    assert_eq!(list["devices"]["totalCount"], 0);
    // Its alarm stays in the history.
    let a = api.data("query($a:ID!){ alarm(id:$a){ state deviceId } }", json!({"a": alarm})).await;
    assert_eq!(a["alarm"]["state"], "CLEARED");
    // The room is empty now: it can go.
    let r = api.gql("mutation($r:ID!){ deleteRoom(id:$r){ id } }", json!({"r": r2})).await;
    assert!(r.body.get("errors").is_none(), "{}", r.raw);
    // The same external id registers a new device.
    let again = api.device(&etc, "G000211001002110010", "GANTRY", "again", json!({})).await;
    assert_ne!(json!(again), json!(dev));
}

#[tokio::test]
async fn a_disabled_integration_accepts_nothing_sends_nothing_and_keeps_its_history() {
    let s = setup().await;
    let before = s.api.inbound_events(&s.integration).await.len();
    let ok = s
        .callback(
            json!({"event": "batteryAlarm", "time": now_ms(), "uuid": "dis-lock", "detail": {"battery_level": 9}}),
        )
        .await;
    assert_eq!(ok.0, 200);

    // Name and credentials replaced; credentials never shown, nor in the audit log.
    const UPDATE: &str = "mutation($i:ID!,$u:UpdateIntegrationInput!){ updateIntegration(id:$i, input:$u){ id name kind credentialNames enabled settings } }";
    let u = s
        .gql(
            UPDATE,
            json!({"i": s.integration, "u": {"name": "renamed", "credentials": {"clientId": crate::utils::fake::dingding::CLIENT_ID, "clientSecret": "new-secret-value-1"}}}),
        )
        .await;
    assert_eq!(u.data()["updateIntegration"]["name"], "renamed");
    assert_eq!(u.data()["updateIntegration"]["kind"], "DINGDING");
    assert!(!u.raw.contains("new-secret-value-1"));
    let bad = s.gql(UPDATE, json!({"i": s.integration, "u": {"credentials": {"clientId": "x"}}})).await;
    assert_eq!(bad.code(), "BAD_USER_INPUT", "credentials are validated for the kind: {}", bad.raw);
    let bad = s.gql(UPDATE, json!({"i": s.integration, "u": {"settings": {"nope": 1}}})).await;
    assert_eq!(bad.code(), "BAD_USER_INPUT");
    // The secret the fake knows again, so sends work after the re-enable below.
    let u = s
        .gql(
            UPDATE,
            json!({"i": s.integration, "u": {"credentials": {"clientId": crate::utils::fake::dingding::CLIENT_ID, "clientSecret": crate::utils::fake::dingding::CLIENT_SECRET}}}),
        )
        .await;
    assert!(u.body.get("errors").is_none(), "{}", u.raw);
    let audit = s
        .gql("query($i:String){ auditLog(filter:{entityId:$i, action:\"updateIntegration\"}){ edges{ node{ before after } } } }", json!({"i": s.integration}))
        .await;
    assert!(!audit.raw.contains("new-secret-value-1") && !audit.raw.contains("csecret"), "{}", audit.raw);
    assert_eq!(nodes(&audit.data()["auditLog"])[0]["after"]["name"], "renamed");

    // Disabled: callbacks refused in Dingding's envelope and not stored.
    let d =
        s.gql("mutation($i:ID!){ disableIntegration(id:$i){ enabled disabledAt } }", json!({"i": s.integration})).await;
    assert_eq!(d.data()["disableIntegration"]["enabled"], false);
    assert!(d.data()["disableIntegration"]["disabledAt"].is_string());
    let (status, body) = s
        .callback(
            json!({"event": "batteryAlarm", "time": now_ms() + 5, "uuid": "dis-lock", "detail": {"battery_level": 8}}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["ErrNo"], 15003, "{body}");
    assert_eq!(s.api.inbound_events(&s.integration).await.len(), before + 1, "nothing stored while disabled");
    // A home of it is kept here, but nothing goes to Dingding: the delivery waits, DEAD.
    let home = s
        .gql(
            "mutation($i:ID!){ addHome(input:{name:\"H\", integrationId:$i, externalId:\"dd-dis\"}){ id } }",
            json!({"i": s.integration}),
        )
        .await;
    id_of(&home, "addHome");
    let dead =
        || async { s.api.deliveries(json!({"integrationId": s.integration, "kind": "dingding.add_home"})).await };
    eventually("the add_home delivery DEAD", || async { dead().await.first().is_some_and(|d| d["state"] == "DEAD") })
        .await;
    assert!(s.fake.calls("add_home").is_empty(), "nothing sent while disabled");
    let run = s
        .gql("mutation($i:ID!){ runScheduledJob(integrationId:$i, job:SYNC){ tick } }", json!({"i": s.integration}))
        .await;
    assert_eq!(run.code(), "CONFLICT", "no scheduled job runs while disabled: {}", run.raw);
    let delivery = dead().await[0]["id"].as_str().expect("id").to_owned();
    let why = s.gql("query($i:ID!){ delivery(id:$i){ lastError } }", json!({"i": delivery})).await;
    assert!(why.raw.contains("integration disabled"), "{}", why.raw);

    // Enabled again: the history is all there; the delivery retried goes out; callbacks accepted.
    let e =
        s.gql("mutation($i:ID!){ enableIntegration(id:$i){ enabled disabledAt } }", json!({"i": s.integration})).await;
    assert_eq!(e.data()["enableIntegration"], json!({"enabled": true, "disabledAt": null}));
    s.gql("mutation($d:ID!){ retryDelivery(id:$d){ id } }", json!({"d": delivery})).await;
    s.fake.first_call("add_home").await;
    let (status, _) = s
        .callback(
            json!({"event": "batteryAlarm", "time": now_ms() + 9, "uuid": "dis-lock", "detail": {"battery_level": 7}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(s.api.inbound_events(&s.integration).await.len(), before + 2);
}

#[tokio::test]
async fn another_tenant_cannot_update_or_delete() {
    let app: TestApp = spawn_app().await;
    let root = app.admin_token().await;
    let a = tenant_with_admin(&app, &root).await;
    let b = tenant_with_admin(&app, &root).await;
    let etc =
        a.api.integration(json!({"kind": "ETC_GANTRY", "name": "e", "credentials": {"authCode": "123456"}})).await.id;
    let dev = a.api.device(&etc, "G000211001002110010", "GANTRY", "g", json!({})).await;
    let home = a.api.data("mutation{ addHome(input:{name:\"h\"}){ id } }", json!({})).await["addHome"]["id"].clone();
    let room = a.api.data("mutation($h:ID!){ addRoom(input:{homeId:$h, name:\"r\"}){ id } }", json!({"h": home})).await
        ["addRoom"]["id"]
        .clone();
    let other: &Client = &b.api;
    let cases = [
        ("mutation($x:ID!){ updateDevice(id:$x, input:{name:\"b\"}){ id } }", json!(dev)),
        ("mutation($x:ID!){ deleteDevice(id:$x){ id } }", json!(dev)),
        ("mutation($x:ID!){ updateHome(id:$x, input:{name:\"b\"}){ id } }", home.clone()),
        ("mutation($x:ID!){ deleteHome(id:$x){ id } }", home.clone()),
        ("mutation($x:ID!){ addRooms(homeId:$x, rooms:[{name:\"b\"}]){ id } }", home.clone()),
        ("mutation($x:ID!){ updateRoom(id:$x, input:{name:\"b\"}){ id } }", room.clone()),
        ("mutation($x:ID!){ deleteRoom(id:$x){ id } }", room.clone()),
        ("mutation($x:ID!){ updateIntegration(id:$x, input:{name:\"b\"}){ id } }", json!(etc)),
        ("mutation($x:ID!){ disableIntegration(id:$x){ id } }", json!(etc)),
        ("mutation($x:ID!){ enableIntegration(id:$x){ id } }", json!(etc)),
    ];
    for (q, x) in cases {
        let r = other.gql(q, json!({"x": x})).await;
        assert_eq!(r.code(), "NOT_FOUND", "{q}: {}", r.raw);
    }
    // Nothing changed for A.
    let d = a.api.data("query($d:ID!){ device(id:$d){ name } }", json!({"d": dev})).await;
    assert_eq!(d["device"]["name"], "g");
    let h = a.api.data("query($h:ID!){ home(id:$h){ name rooms { name } } }", json!({"h": home})).await;
    assert_eq!(h["home"], json!({"name": "h", "rooms": [{"name": "r"}]}));
    let i = a.api.data("query($i:ID!){ integration(id:$i){ name enabled } }", json!({"i": etc})).await;
    assert_eq!(i["integration"], json!({"name": "e", "enabled": true}));
}

#[tokio::test]
async fn a_meter_holding_money_is_not_deleted() {
    let s = setup().await;
    let meter = s.device("life-wm", "WATER_METER", json!({})).await;
    let r = s
        .gql(
            "mutation($d:ID!){ rechargeMeter(input:{deviceId:$d, amount:\"12.5\", tradeNo:\"LIFE-1\"}){ account{ balance } } }",
            json!({"d": meter}),
        )
        .await;
    assert_eq!(r.data()["rechargeMeter"]["account"]["balance"], "12.5", "{}", r.raw);
    let refused = s.gql("mutation($d:ID!){ deleteDevice(id:$d){ id } }", json!({"d": meter})).await;
    assert_eq!(refused.code(), "CONFLICT");
    assert!(refused.raw.contains("12.5"), "the message names the balance: {}", refused.raw);
    // Settled to zero, it goes, with its account.
    let r = s
        .gql("mutation($d:ID!){ adjustMeterBalance(deviceId:$d, amount:\"-12.5\", reason:\"refund\"){ account{ balance } } }", json!({"d": meter}))
        .await;
    assert_eq!(r.data()["adjustMeterBalance"]["account"]["balance"], "0.0", "{}", r.raw);
    let ok = s.gql("mutation($d:ID!){ deleteDevice(id:$d){ id } }", json!({"d": meter})).await;
    assert!(ok.body.get("errors").is_none(), "{}", ok.raw);
    let acc = s.gql("query($d:ID!){ meterAccount(deviceId:$d){ balance } }", json!({"d": meter})).await;
    assert_eq!(acc.code(), "NOT_FOUND", "the account went with the meter");
}
