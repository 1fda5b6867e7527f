//! Every Dingding callback of `PROTOCOLS.md` 3b (each sent twice, processed once), meters,
//! the sync, home and room mirroring, vendor queries, and tenant scoping.

use crate::e2e_dingding::{Setup, now_ms, setup};
use crate::utils::{eventually, nodes, tenant_with_admin};
use serde_json::{Value, json};

fn kinds(alarms: &[Value]) -> Vec<(String, String)> {
    let mut v: Vec<_> = alarms
        .iter()
        .map(|a| {
            (a["kind"].as_str().unwrap_or_default().to_owned(), a["state"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    v.sort();
    v
}

async fn event(s: &Setup, name: &str, uuid: &str, detail: Value) {
    s.callback_twice(json!({"event": name, "time": now_ms(), "uuid": uuid, "home_id": "dd-h", "room_id": "",
                            "nickname": uuid, "detail": detail}))
        .await;
    // Distinct times keep distinct events apart (the dedup key is uuid+event+time).
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
}

#[tokio::test]
async fn lock_and_gateway_events_raise_and_clear_alarms_and_update_state() {
    let s = setup().await;
    let gw = s.device("gw-1", "GATEWAY", json!({})).await;
    let lock = s.device("lock-1", "LOCK", json!({"centerUuid": "gw-1"})).await;

    event(&s, "batteryAlarm", "lock-1", json!({"battery_level": 9})).await;
    assert_eq!(s.device_state(&lock).await["battery"], 9);
    let a = s.alarms(&lock).await;
    assert_eq!(kinds(&a), vec![("LOCK_LOW_BATTERY".into(), "RAISED".into())]);
    assert_eq!(a[0]["occurrences"], 1, "the repeat was not processed again");
    event(&s, "clearBatteryAlarm", "lock-1", json!({"battery_level": "15"})).await;
    assert_eq!(kinds(&s.alarms(&lock).await), vec![("LOCK_LOW_BATTERY".into(), "CLEARED".into())]);
    event(&s, "batteryAsync", "lock-1", json!({"battery": "55"})).await;
    assert_eq!(s.device_state(&lock).await["battery"], 55);

    event(&s, "brokenAlarm", "lock-1", json!({})).await;
    event(&s, "wrongPwdAlarm", "lock-1", json!({})).await;
    let a = s.alarms(&lock).await;
    let tampered = a.iter().find(|x| x["kind"] == "LOCK_TAMPERED").expect("tampered");
    assert_eq!(tampered["severity"], "CRITICAL");
    assert!(a.iter().any(|x| x["kind"] == "LOCK_WRONG_PASSWORD" && x["state"] == "RAISED"));

    // The gateway goes offline with its lock, and comes back.
    event(&s, "centerOfflineAlarm", "gw-1", json!({})).await;
    assert_eq!(s.device_state(&gw).await["online"], false);
    assert_eq!(s.device_state(&lock).await["online"], false, "sub-device marked offline");
    assert_eq!(kinds(&s.alarms(&gw).await), vec![("DEVICE_OFFLINE".into(), "RAISED".into())]);
    event(&s, "clearCenterOfflineAlarm", "gw-1", json!({})).await;
    assert_eq!(s.device_state(&gw).await["online"], true);
    assert_eq!(s.device_state(&lock).await["online"], true);
    assert_eq!(kinds(&s.alarms(&gw).await), vec![("DEVICE_OFFLINE".into(), "CLEARED".into())]);
    event(&s, "lockOfflineAlarm", "lock-1", json!({})).await;
    assert_eq!(s.device_state(&lock).await["online"], false);
    assert!(s.alarms(&lock).await.iter().any(|x| x["kind"] == "DEVICE_OFFLINE" && x["state"] == "RAISED"));
    event(&s, "clearLockOfflineAlarm", "lock-1", json!({})).await;
    assert!(s.alarms(&lock).await.iter().any(|x| x["kind"] == "DEVICE_OFFLINE" && x["state"] == "CLEARED"));

    // Door opened: a lock event.
    event(&s, "lockerOpenAlarm", "lock-1", json!({"source": 2, "sourceid": 1020, "source_name": "密码 1020"})).await;
    let opened = s.readings(&lock, "door_opened").await;
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0]["value"]["sourceId"], 1020);

    // Local passwords.
    event(&s, "pwdAddLocal", "lock-1", json!({"password": {"id": 5, "password": "778899"}})).await;
    event(&s, "pwdUpdateLocal", "lock-1", json!({"password": {"id": 6, "password": "778800"}})).await;
    event(&s, "pwdSync", "lock-1", json!({"passwords": [{"id": 999, "password": "000111"}]})).await;
    let ps = s.gql("query($d:ID!){ lockPasswords(deviceId:$d){ passwordId kind pwdState } }", json!({"d": lock})).await;
    let ps = ps.data()["lockPasswords"].as_array().expect("list").clone();
    let ids: Vec<_> = ps
        .iter()
        .map(|p| (p["passwordId"].as_i64().unwrap_or_default(), p["kind"].as_str().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(ids, vec![(5, "LOCAL".into()), (6, "LOCAL".into()), (999, "ADMIN".into())]);
    event(&s, "pwdDelLocal", "lock-1", json!({"password": {"id": 5}})).await;
    let ps = s.gql("query($d:ID!){ lockPasswords(deviceId:$d){ passwordId } }", json!({"d": lock})).await;
    assert_eq!(ps.data()["lockPasswords"].as_array().map(Vec::len), Some(2));

    // Every callback stored exactly once; the local plaintexts were not stored.
    let events = s.inbound().await;
    assert_eq!(events.len(), 14, "{events:?}");
    let mut keys: Vec<_> = events.iter().map(|e| e["dedupKey"].as_str().unwrap_or_default().to_owned()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 14);
    assert!(events.iter().all(|e| e["state"] == "PROCESSED"), "{events:?}");
    let bodies: String = events.iter().map(|e| e["body"].as_str().unwrap_or_default()).collect();
    assert!(!bodies.contains("778899") && !bodies.contains("000111"), "plaintext stored");
}

#[tokio::test]
async fn installs_meters_water_and_undocumented_callbacks() {
    let s = setup().await;
    let home = s.gql(
        "mutation($i:AddHomeInput!){ addHome(input:$i){ id externalId } }",
        json!({"i": {"name": "Home 1", "integrationId": s.integration, "externalId": "dd-h", "attributes": {"city": "北京市"}}}),
    )
    .await;
    let home_id = home.data()["addHome"]["id"].as_str().expect("home").to_owned();
    let room = s
        .gql(
            "mutation($i:AddRoomInput!){ addRoom(input:$i){ id externalId } }",
            json!({"i": {"homeId": home_id, "name": "A", "externalId": "dd-r"}}),
        )
        .await;
    let room_id = room.data()["addRoom"]["id"].as_str().expect("room").to_owned();
    s.fake.first_call("add_home").await;
    s.fake.first_call("add_room").await;
    assert_eq!(s.fake.calls("add_home")[0].params["home_id"], "dd-h");
    assert_eq!(s.fake.calls("add_home")[0].params["city"], "北京市");
    assert_eq!(s.fake.calls("add_room")[0].params["room_id"], "dd-r");

    // deviceInstall of a lock (8.2.11) and a water meter with its reading (16.2.2).
    s.callback_twice(json!({"event": "deviceInstall", "time": now_ms(), "uuid": "new-lock", "home_id": "dd-h", "room_id": "dd-r", "detail": {"type": "4"}})).await;
    s.callback_twice(
        json!({"event": "deviceInstall", "time": now_ms() + 1, "uuid": "wm-1", "manufactory": "cy", "home_id": "dd-h",
                            "gateway_uuid": "wgw-1", "room_id": "dd-r", "detail": {"type": 8, "amount": 3.5}}),
    )
    .await;
    let devices = s.gql("query($i:ID){ devices(filter:{integrationId:$i}, first:50){ edges { node { id externalId kind homeId roomId } } } }", json!({"i": s.integration})).await;
    let devs = nodes(&devices.data()["devices"]);
    let lock = devs.iter().find(|d| d["externalId"] == "new-lock").expect("installed lock");
    assert_eq!(
        (lock["kind"].as_str(), lock["homeId"].as_str(), lock["roomId"].as_str()),
        (Some("LOCK"), Some(home_id.as_str()), Some(room_id.as_str()))
    );
    let wm = devs.iter().find(|d| d["externalId"] == "wm-1").expect("water meter");
    let wm_id = wm["id"].as_str().expect("id").to_owned();
    assert_eq!(wm["kind"], "WATER_METER");
    assert_eq!(s.readings(&wm_id, "water_amount").await.len(), 1);
    s.callback_twice(json!({"event": "watermeterAmountAsync", "time": now_ms() + 2, "uuid": "wm-1", "manufactory": "cy", "home_id": "dd-h", "detail": {"amount": "4.25"}})).await;
    let r = s.readings(&wm_id, "water_amount").await;
    assert_eq!(r.len(), 2);
    assert!(r.iter().any(|x| x["value"] == json!(4.25)));

    // Water gateway offline/online.
    let wgw = s.device("wgw-1", "WATER_GATEWAY", json!({})).await;
    s.callback_twice(json!({"event": "waterGatewayOfflineAlarm", "time": now_ms() + 3, "uuid": "wgw-1", "manufactory": "cy", "detail": {}})).await;
    assert_eq!(kinds(&s.alarms(&wgw).await), vec![("WATER_GATEWAY_OFFLINE".into(), "RAISED".into())]);
    assert_eq!(s.device_state(&wgw).await["online"], false);
    s.callback_twice(json!({"event": "waterGatewayOnlineAlarm", "time": now_ms() + 4, "uuid": "wgw-1", "manufactory": "cy", "detail": {}})).await;
    assert_eq!(kinds(&s.alarms(&wgw).await), vec![("WATER_GATEWAY_OFFLINE".into(), "CLEARED".into())]);

    // Replace (16.2.1) and uninstall (8.2.12 / 16.2.3).
    s.callback_twice(json!({"event": "deviceReplace", "time": now_ms() + 5, "uuid": "wgw-2", "old_uuid": "wgw-1", "manufactory": "cy", "home_id": "dd-h", "detail": {"type": 7}})).await;
    s.callback_twice(json!({"event": "deviceUninstall", "time": now_ms() + 6, "uuid": "new-lock", "home_id": "dd-h", "detail": {"type": 4}})).await;
    let old = s.device_state(&wgw).await;
    assert_eq!(
        (old["attributes"]["installed"].as_bool(), old["attributes"]["replacedBy"].as_str()),
        (Some(false), Some("wgw-2"))
    );
    let lock = s.device_state(lock["id"].as_str().expect("id")).await;
    assert_eq!((lock["attributes"]["installed"].as_bool(), &lock["homeId"]), (Some(false), &Value::Null));
    s.callback_twice(json!({"event": "installerSubmit", "time": now_ms() + 7, "home_id": "dd-h", "detail": {}})).await;

    // Electricity meter events (12.2).
    let meter = s.device("em-1", "ELECTRICITY_METER", json!({})).await;
    let t = now_ms();
    s.callback_twice(json!({"uuid": "em-1", "time": t, "event": "elemeterPowerAsync", "detail": {"consume_amount": 0.23, "consume_amount_time": 1467783513642i64}})).await;
    s.callback_twice(json!({"uuid": "em-1", "time": t + 1, "event": "elemeterPowerHisAsync", "detail": {"powers": [{"sn": "1611", "time": 1497423600000i64, "amount": 0.81}]}})).await;
    assert_eq!(s.readings(&meter, "consume_amount").await.len(), 2);
    s.callback_twice(
        json!({"uuid": "em-1", "time": t + 2, "event": "elemeterOvercomeAmount", "detail": {"amount": 38.91}}),
    )
    .await;
    s.callback_twice(
        json!({"uuid": "em-1", "time": t + 3, "event": "elemeterOvercomeCapacity", "detail": {"capacity": 0.0444}}),
    )
    .await;
    s.callback_twice(json!({"uuid": "em-1", "time": t + 4, "event": "elemeterTransError", "detail": {}})).await;
    s.callback_twice(json!({"uuid": "em-1", "time": t + 5, "event": "elemeterLocalClose", "detail": {}})).await;
    assert_eq!(s.readings(&meter, "switch").await[0]["value"], "ON");
    let m2 = s.device("em-2", "ELECTRICITY_METER", json!({})).await;
    s.callback_twice(json!({"uuid": "col-1", "time": t + 6, "event": "elemeterHistory", "histories": [
        {"uuid": "em-2", "devid": 1, "time": t, "eventid": 1, "capacity": 5.1},
        {"uuid": "em-2", "devid": 1, "time": t, "eventid": "2", "amount": 0}]}))
        .await;
    let mut want = vec![
        ("METER_OVER_AMOUNT".to_owned(), "RAISED".to_owned()),
        ("METER_OVER_CAPACITY".to_owned(), "RAISED".to_owned()),
        ("METER_TRANSMISSION_ERROR".to_owned(), "RAISED".to_owned()),
    ];
    assert_eq!(kinds(&s.alarms(&meter).await), want);
    want.pop();
    assert_eq!(kinds(&s.alarms(&m2).await), want);
    // Collector / zigbee meter offline (12.2.7, 12.2.8).
    s.callback_twice(json!({"uuid": "em-1", "time": t + 7, "event": "lockOfflineAlarm", "detail": {}})).await;
    assert_eq!(s.device_state(&meter).await["online"], false);
    s.callback_twice(json!({"uuid": "em-1", "time": t + 8, "event": "clearLockOfflineAlarm", "detail": {}})).await;
    assert_eq!(s.device_state(&meter).await["online"], true);

    // Undocumented ones: stored, answered 2xx, once each.
    s.callback_twice(json!({"event": "doorbellRing", "time": t + 9, "uuid": "em-1", "detail": {"x": 1}})).await;
    s.callback_twice(
        json!({"service": "Lock_Firmware_Service", "serviceid": 77, "uuid": "em-1", "result": {"ErrNo": 1000}}),
    )
    .await;
    s.callback_twice(json!({"hello": "world"})).await;
    let events = s.inbound().await;
    let ignored: Vec<_> = events
        .iter()
        .filter(|e| e["state"] == "IGNORED")
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        ignored.contains(&"doorbellRing".to_owned()) && ignored.contains(&"Lock_Firmware_Service".to_owned()),
        "{ignored:?}"
    );
    assert!(ignored.contains(&"unknown".to_owned()));
    assert_eq!(events.len(), 20, "each stored exactly once");
    assert!(events.iter().all(|e| e["state"] != "FAILED"), "{events:?}");
}

#[tokio::test]
async fn meter_commands_recharges_sync_queries_and_tenancy() {
    let s = setup().await;
    let meter = s.device("em-cmd", "ELECTRICITY_METER", json!({})).await;
    let lock = s.device("lock-q", "LOCK", json!({})).await;
    let send = "mutation($i:SendMeterCommandInput!){ sendMeterCommand(input:$i){ id command stage serviceId error } }";
    let op = s.gql(send, json!({"i": {"deviceId": meter, "command": "SWITCH_OFF"}})).await;
    let op_id = op.data()["sendMeterCommand"]["id"].as_str().expect("op").to_owned();
    let q = "query($i:ID!){ deviceOperation(id:$i){ stage serviceId error result } }";
    eventually("the serviceid", || async {
        s.gql(q, json!({"i": op_id})).await.data()["deviceOperation"]["serviceId"] == "svc-1"
    })
    .await;
    s.callback_twice(json!({"service": "Elemeter_Control_Service", "serviceid": "svc-1", "uuid": "em-cmd", "result": {"id": 1, "ErrNo": 1000, "operation_type": 6}})).await;
    assert_eq!(s.gql(q, json!({"i": op_id})).await.data()["deviceOperation"]["stage"], "SUCCEEDED");
    assert_eq!(s.readings(&meter, "switch").await[0]["value"], "OFF");

    let read = s.gql(send, json!({"i": {"deviceId": meter, "command": "READ"}})).await;
    let read_id = read.data()["sendMeterCommand"]["id"].as_str().expect("op").to_owned();
    eventually("elemeter_read", || async {
        s.gql(q, json!({"i": read_id})).await.data()["deviceOperation"]["serviceId"] == "svc-2"
    })
    .await;
    s.callback_twice(json!({"service": "Elemeter_Passthrough_Service", "serviceid": "svc-2", "uuid": "em-cmd", "result": {"id": 2, "ErrNo": 1000, "operation_type": 5, "consume_amount": "42.5"}})).await;
    assert_eq!(s.readings(&meter, "consume_amount").await[0]["value"], json!(42.5));
    let od = s.gql(send, json!({"i": {"deviceId": meter, "command": "SET_OVERDRAFT", "amount": "10"}})).await;
    let od_id = od.data()["sendMeterCommand"]["id"].as_str().expect("op").to_owned();
    eventually("elemeter_update_overdraft", || async {
        s.gql(q, json!({"i": od_id})).await.data()["deviceOperation"]["serviceId"] == "svc-3"
    })
    .await;
    s.callback_twice(json!({"service": "Elemeter_Control_Service", "serviceid": "svc-3", "uuid": "em-cmd", "result": {"id": 3, "ErrNo": 3001, "operation_type": 2}})).await;
    let failed = s.gql(q, json!({"i": od_id})).await;
    assert_eq!(failed.data()["deviceOperation"]["stage"], "FAILED");
    assert_eq!(s.fake.calls("elemeter_update_overdraft")[0].params["overdraft"], json!(10.0));
    s.gql(send, json!({"i": {"deviceId": meter, "command": "SET_PRICE_WAY", "params": {"way": "ROOM"}}})).await.data();
    let bad = s.gql(send, json!({"i": {"deviceId": meter, "command": "VALVE_OPEN"}})).await;
    assert_eq!(bad.code(), "BAD_USER_INPUT");
    let bad = s.gql(send, json!({"i": {"deviceId": lock, "command": "SWITCH_ON"}})).await;
    assert_eq!(bad.code(), "BAD_USER_INPUT");

    // rechargeMeter: the ledger and elemeter_charge, once per trade number.
    let tariff = s.gql(
        "mutation($i:SaveTariffInput!){ saveTariff(input:$i){ id } }",
        json!({"i": {"integrationId": s.integration, "code": "E1", "utility": "ELECTRICITY", "tiers": [{"upTo": null, "price": "0.5"}], "cycleMonths": 12}}),
    )
    .await;
    let tariff_id = tariff.data()["saveTariff"]["id"].as_str().expect("tariff").to_owned();
    s.gql(
        "mutation($d:ID!,$t:ID!){ assignTariff(deviceId:$d, tariffId:$t){ id } }",
        json!({"d": meter, "t": tariff_id}),
    )
    .await
    .data();
    let recharge = "mutation($i:RechargeMeterInput!){ rechargeMeter(input:$i){ entry { amount } } }";
    for _ in 0..2 {
        s.gql(recharge, json!({"i": {"deviceId": meter, "amount": "50", "tradeNo": "T-1001"}})).await.data();
    }
    s.fake.first_call("elemeter_charge").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let charges = s.fake.calls("elemeter_charge");
    assert_eq!(charges.len(), 1, "once per trade number");
    assert_eq!((&charges[0].params["trade_num"], &charges[0].params["amount"]), (&json!("T-1001"), &json!(50.0)));
    let status = s
        .gql("query($i:ID!){ meterChargeStatus(integrationId:$i, tradeNo:\"T-1001\") }", json!({"i": s.integration}))
        .await;
    assert_eq!(status.data()["meterChargeStatus"]["charge_stage"], 3);

    // Queries pass Dingding's answer through.
    let ev = s.gql("query($d:ID!){ lockEvents(deviceId:$d) }", json!({"d": lock})).await;
    assert_eq!(ev.data()["lockEvents"]["total"], 1);
    assert_eq!(ev.data()["lockEvents"]["lock_events"][0]["sourceid"], 1001);
    let log = s.gql("query($d:ID!){ deviceOperationLog(deviceId:$d, opId:\"20001\") }", json!({"d": lock})).await;
    assert_eq!(log.data()["deviceOperationLog"]["op_list"][0]["op_id"], "20001");
    let ex = s.gql("query($d:ID!){ deviceExceptions(deviceId:$d) }", json!({"d": lock})).await;
    assert_eq!(ex.data()["deviceExceptions"]["device_exceptions"][0]["type"], 9106);
    let ph = s.gql("query($d:ID!){ meterQuery(deviceId:$d, query:POWER_HISTORY) }", json!({"d": meter})).await;
    assert_eq!(ph.data()["meterQuery"]["total"], 1);
    let dynamic = s
        .gql(
            "mutation($d:ID!){ revealLockPassword(deviceId:$d, which:DYNAMIC){ password expiresAt } }",
            json!({"d": lock}),
        )
        .await;
    assert_eq!(dynamic.data()["revealLockPassword"]["password"], "445566");
    let code = s
        .gql(
            "mutation($i:AddLockActivationCodeInput!){ addLockActivationCode(input:$i){ id kind } }",
            json!({"i": {"deviceId": lock, "kind": "TENANT", "name": "guest", "phone": "13900000000"}}),
        )
        .await;
    let code_id = code.data()["addLockActivationCode"]["id"].as_str().expect("code").to_owned();
    let reveal = "mutation($i:ID!){ revealActivationCode(id:$i) }";
    eventually("the activation code", || async {
        s.gql(reveal, json!({"i": code_id})).await.body["data"]["revealActivationCode"] == "7788990011"
    })
    .await;
    assert_eq!(s.fake.calls("add_password_without_center")[0].params["CMD"], 1);

    // Sync: homes, rooms, devices with state and passwords; then as the nightly job.
    let sync = s
        .gql("mutation($i:ID!){ syncIntegration(id:$i){ homes rooms devices passwords } }", json!({"i": s.integration}))
        .await;
    assert_eq!(sync.data()["syncIntegration"], json!({"homes": 1, "rooms": 1, "devices": 4, "passwords": 2}));
    let devices = s.gql("query($i:ID){ devices(filter:{integrationId:$i}, first:50){ edges { node { id externalId kind online battery signal roomId attributes } } } }", json!({"i": s.integration})).await;
    let devs = nodes(&devices.data()["devices"]);
    let synced = devs.iter().find(|d| d["externalId"] == "sync-lock").expect("synced lock");
    assert_eq!(
        (synced["online"].as_bool(), synced["battery"].as_i64(), synced["signal"].as_i64()),
        (Some(false), Some(64), Some(117))
    );
    assert_eq!(synced["attributes"]["versions"]["kernel_version"], "0.0.3.0");
    assert!(synced["roomId"].is_string());
    assert!(devs.iter().any(|d| d["externalId"] == "sync-gw" && d["online"] == true && d["kind"] == "GATEWAY"));
    assert!(devs.iter().any(|d| d["externalId"] == "sync-water" && d["kind"] == "WATER_METER"));
    let lock_id = synced["id"].as_str().expect("id").to_owned();
    let ps = s
        .gql(
            "query($d:ID!){ lockPasswords(deviceId:$d){ passwordId kind pwdState stage error } }",
            json!({"d": lock_id}),
        )
        .await;
    let ps = ps.data()["lockPasswords"].as_array().expect("list").clone();
    assert!(ps.iter().any(|p| p["passwordId"] == 999 && p["kind"] == "ADMIN"));
    assert!(ps.iter().any(|p| p["passwordId"] == 1002
        && p["pwdState"] == "FROZEN"
        && p["stage"] == "FAILED"
        && p["error"].as_str().is_some_and(|e| e.starts_with("5108"))));
    let run = s.api.run_scheduled_job(&s.integration, "SYNC").await;
    assert_eq!(run.data()["runScheduledJob"]["outcome"], "SUCCEEDED");
    let homes = s.gql("query{ homes(first:50){ totalCount } }", json!({})).await;
    assert_eq!(homes.data()["homes"]["totalCount"], 1, "a second sync adds nothing");
    assert!(s.fake.rejected().is_empty(), "{:?}", s.fake.rejected());

    // Another tenant sees none of it.
    let platform = s.app.admin_token().await;
    let other = tenant_with_admin(&s.app, &platform).await;
    let t = Some(other.admin_token.as_str());
    let r = s.app.gql(t, "query($d:ID!){ lockPasswords(deviceId:$d){ id } }", json!({"d": lock_id})).await;
    assert_eq!(r.code(), "NOT_FOUND");
    let r = s.app.gql(t, "query($i:ID!){ deviceOperation(id:$i){ id } }", json!({"i": op_id})).await;
    assert_eq!(r.code(), "NOT_FOUND");
    let r = s.app.gql(t, "query($d:ID!){ deviceOperations(deviceId:$d){ id } }", json!({"d": meter})).await;
    assert_eq!(r.code(), "NOT_FOUND");
    let r = s.app.gql(t, send, json!({"i": {"deviceId": meter, "command": "READ"}})).await;
    assert_eq!(r.code(), "NOT_FOUND");
    let r = s
        .app
        .gql(
            t,
            "mutation($i:AddLockPasswordInput!){ addLockPassword(input:$i){ id } }",
            json!({"i": {"deviceId": lock, "password": "123456", "name": "x"}}),
        )
        .await;
    assert_eq!(r.code(), "NOT_FOUND");
    let r = s.app.gql(t, "query($d:ID!){ lockEvents(deviceId:$d) }", json!({"d": lock})).await;
    assert_eq!(r.code(), "NOT_FOUND");
    let r = s.app.gql(t, "mutation($i:ID!){ syncIntegration(id:$i){ homes } }", json!({"i": s.integration})).await;
    assert_eq!(r.code(), "NOT_FOUND");
    let r = s.app.gql(t, "mutation($i:ID!){ revealActivationCode(id:$i) }", json!({"i": code_id})).await;
    assert_eq!(r.code(), "NOT_FOUND");
    let r = s
        .app
        .gql(t, "mutation($d:ID!){ revealLockPassword(deviceId:$d, which:ADMIN){ password } }", json!({"d": lock}))
        .await;
    assert_eq!(r.code(), "NOT_FOUND");
    let r = s
        .app
        .gql(t, "query($i:ID!){ meterChargeStatus(integrationId:$i, tradeNo:\"T-1001\") }", json!({"i": s.integration}))
        .await;
    assert_eq!(r.code(), "NOT_FOUND");
}

#[tokio::test]
async fn work_orders_go_both_ways() {
    let s = setup().await;
    let home = s
        .gql(
            "mutation($i:AddHomeInput!){ addHome(input:$i){ id } }",
            json!({"i": {"name": "Home", "integrationId": s.integration, "externalId": "dd-home-1"}}),
        )
        .await;
    let home = home.data()["addHome"]["id"].as_str().expect("home").to_owned();
    let save = "mutation($i:SaveTicketInput!){ saveTicket(input:$i){ id status externalId } }";
    let fields = json!({"service_target": 2, "room_ids": ["dd-room-a"],
                        "subscribe": {"date": 1464998400000i64, "time": "101", "name": "测试", "phone": "18588787458"}});
    let r = s
        .gql(
            save,
            json!({"i": {"kind": "INSTALLATION", "integrationId": s.integration, "homeId": home, "fields": fields}}),
        )
        .await;
    assert_eq!(r.data()["saveTicket"]["status"], "PENDING");
    let call = s.fake.first_call("add_ticket").await;
    assert_eq!((&call.params["home_id"], &call.params["service_type"]), (&json!("dd-home-1"), &json!(1)));
    assert_eq!(call.params["room_ids"], json!(["dd-room-a"]));
    assert_eq!(call.params["subscribe"]["time"], "101");

    // In: the sync brings Dingding's repair order as a REPAIR ticket in its state.
    let sync = s.gql("mutation($i:ID!){ syncIntegration(id:$i){ tickets } }", json!({"i": s.integration})).await;
    assert_eq!(sync.data()["syncIntegration"]["tickets"], 1);
    let list = s
        .gql("query{ tickets(filter:{kind:REPAIR}){ edges { node { id status externalId homeId } } } }", json!({}))
        .await;
    let repair = list.data()["tickets"]["edges"][0]["node"].clone();
    assert_eq!((repair["status"].as_str(), repair["externalId"].as_str()), (Some("ASSIGNED"), Some("20160511_81299")));
    assert_eq!(repair["homeId"], json!(home));
    // Out again: its status follows to Dingding (update_ticket_state 4 = completed).
    s.gql(save, json!({"i": {"id": repair["id"], "kind": "REPAIR", "status": "COMPLETED"}})).await.data();
    let call = s.fake.first_call("update_ticket_state").await;
    assert_eq!((&call.params["ticket_id"], &call.params["ticket_state"]), (&json!("20160511_81299"), &json!(4)));
    // A second sync does not duplicate it.
    s.gql("mutation($i:ID!){ syncIntegration(id:$i){ tickets } }", json!({"i": s.integration})).await.data();
    let list = s.gql("query{ tickets(filter:{kind:REPAIR}){ totalCount } }", json!({})).await;
    assert_eq!(list.data()["tickets"]["totalCount"], 1);
    assert!(s.fake.rejected().is_empty(), "{:?}", s.fake.rejected());
}

#[tokio::test]
async fn water_meter_reads_and_bluetooth_access() {
    let s = setup().await;
    let wm = s.device("wm-read", "WATER_METER", json!({"manufactory": "cy"})).await;
    let send = "mutation($i:SendMeterCommandInput!){ sendMeterCommand(input:$i){ id } }";
    s.gql(send, json!({"i": {"deviceId": wm, "command": "READ"}})).await.data();
    let call = s.fake.first_call("read_watermeter").await;
    assert_eq!(
        (&call.params["uuid"], &call.params["manufactory"]),
        (&json!("wm-read"), &json!("cy")),
        "a GET with the token in the query"
    );
    let records = s.gql("query($d:ID!){ meterQuery(deviceId:$d, query:WATER_RECORDS) }", json!({"d": wm})).await;
    assert_eq!(records.data()["meterQuery"]["records"][0]["device_amount"], 7);
    assert_eq!(records.data()["meterQuery"]["total"], 1);

    let home = s
        .gql(
            "mutation($i:AddHomeInput!){ addHome(input:$i){ id } }",
            json!({"i": {"name": "B", "integrationId": s.integration}}),
        )
        .await;
    let home = home.data()["addHome"]["id"].as_str().expect("home").to_owned();
    let room =
        s.gql("mutation($h:ID!){ addRoom(input:{homeId:$h, name:\"r1\"}){ id externalId } }", json!({"h": home})).await;
    let room_ext = room.data()["addRoom"]["externalId"].as_str().expect("a generated Dingding room_id").to_owned();
    let room = room.data()["addRoom"]["id"].as_str().expect("room").to_owned();
    let auth = "mutation($i:RoomBluetoothInput!){ authorizeRoomBluetooth(input:$i) }";
    let input = json!({"homeId": home, "roomIds": [room], "phone": "13800000000", "access": "OPEN",
                       "beginsAt": "2026-01-01T00:00:00Z", "endsAt": "2026-02-01T00:00:00Z"});
    assert_eq!(s.gql(auth, json!({"i": input})).await.data()["authorizeRoomBluetooth"], true);
    s.gql("mutation($i:RoomBluetoothInput!){ revokeRoomBluetooth(input:$i) }", json!({"i": input})).await.data();
    s.fake.first_call("auth_room").await;
    s.fake.first_call("unauth_room").await;
    let call = s.fake.calls("auth_room").remove(0);
    assert_eq!(call.params["room_ids"], json!([room_ext]));
    assert_eq!(call.params["permission"], json!({"status": 2, "begin": 1_767_225_600, "end": 1_769_904_000}));
    let token = s
        .gql("query($i:ID!){ bluetoothAppToken(integrationId:$i, phone:\"13800000000\") }", json!({"i": s.integration}))
        .await;
    assert_eq!(token.data()["bluetoothAppToken"]["token"], "app-token-1");
    // A home of no Dingding integration cannot be authorised.
    let plain = s.gql("mutation{ addHome(input:{name:\"plain\"}){ id } }", json!({})).await;
    let plain = plain.data()["addHome"]["id"].as_str().expect("home").to_owned();
    let r = s.gql(auth, json!({"i": {"homeId": plain, "roomIds": [room], "phone": "138"}})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    assert!(s.fake.rejected().is_empty(), "{:?}", s.fake.rejected());
}

/// A burst of callbacks at once: each is answered, stored once and processed (before its
/// answer, or from the backlog when the burst outruns processing).
#[tokio::test]
async fn a_burst_of_callbacks_is_answered_and_each_processed_once() {
    let s = setup().await;
    let mut locks = Vec::new();
    for k in 0..24 {
        locks.push(s.device(&format!("burst-{k}"), "LOCK", json!({})).await);
    }
    let t0 = now_ms();
    let sends = (0..24).map(|k| {
        let body = json!({"event": "batteryAsync", "time": t0 + k, "uuid": format!("burst-{k}"), "home_id": "dd-h",
                          "detail": {"battery": (k + 10).to_string()}});
        let s = &s;
        async move { s.callback(body).await }
    });
    for (status, answer) in futures::future::join_all(sends).await {
        assert_eq!((status, answer), (200, json!({"ErrNo": 0, "ErrMsg": "ok"})));
    }
    for (k, id) in locks.iter().enumerate() {
        eventually("each lock's battery", || async { s.device_state(id).await["battery"] == json!(k + 10) }).await;
    }
    eventually("every callback processed", || async {
        let inbound = s.inbound().await;
        inbound.len() == 24 && inbound.iter().all(|e| e["state"] == "PROCESSED")
    })
    .await;
}

/// A callback a stopped process stored but never processed (still RECEIVED long after) is
/// claimed by the sweep and processed, once.
#[tokio::test]
async fn a_callback_left_received_is_swept_up_and_processed_once() {
    use domain::events::{EventState, NewInboundEvent};
    let s = setup().await;
    let lock = s.device("swept-1", "LOCK", json!({})).await;
    let body = json!({"event": "batteryAsync", "time": now_ms(), "uuid": "swept-1", "home_id": "dd-h",
                      "detail": {"battery": "33"}});
    let state = &s.app.state;
    let tenant = s.tenant.id.parse().expect("tenant");
    let long_ago = chrono::Utc::now() - chrono::Duration::minutes(30);
    let event = |dedup_key: &str, body: &Value, received_at| NewInboundEvent {
        integration_id: s.integration.parse().expect("integration"),
        protocol: "DINGDING".into(),
        kind: "batteryAsync".into(),
        dedup_key: dedup_key.into(),
        headers: json!({}),
        body: body.to_string(),
        received_at,
    };
    let stored = state.events.record(tenant, event("swept-1|batteryAsync|1", &body, long_ago)).await.expect("stored");
    assert_eq!(stored.event.state, EventState::Received);
    // A fresh one is not taken: its process may still be on it.
    let fresh = json!({"event": "batteryAsync", "time": now_ms(), "uuid": "swept-1", "detail": {"battery": "1"}});
    let input = event("swept-1|batteryAsync|2", &fresh, chrono::Utc::now());
    state.events.record(tenant, input).await.expect("stored");
    let backlog = &state.inbound_backlog;
    assert_eq!(backlog.sweep(chrono::Utc::now()).await.expect("sweep"), 1);
    eventually("the swept callback processed", || async { s.device_state(&lock).await["battery"] == json!(33) }).await;
    eventually("its event PROCESSED", || async { s.inbound().await.iter().any(|e| e["state"] == "PROCESSED") }).await;
    assert_eq!(backlog.sweep(chrono::Utc::now()).await.expect("sweep"), 0, "processed once");
    assert_eq!(s.device_state(&lock).await["battery"], json!(33), "the fresh one was left alone");
}

/// A backlog (here: what a stopped process left, swept up at once) is applied by the lanes
/// in batches: each device's callbacks in the order they came, each once, a callback that
/// creates a device applied before the callbacks after it, a meter's registers billed once
/// each, in order.
#[tokio::test]
async fn a_backlog_is_applied_in_batches_in_order_and_once() {
    use domain::events::NewInboundEvent;
    let s = setup().await;
    let mut locks = Vec::new();
    for k in 0..3 {
        locks.push(s.device(&format!("bl-{k}"), "LOCK", json!({})).await);
    }
    let meter = s.device("bl-em", "ELECTRICITY_METER", json!({})).await;
    let tariff = s
        .gql(
            "mutation($i:SaveTariffInput!){ saveTariff(input:$i){ id } }",
            json!({"i": {"integrationId": s.integration, "code": "T-bl", "utility": "ELECTRICITY",
                         "tiers": [{"upTo": null, "price": "0.5"}], "cycleMonths": 12}}),
        )
        .await;
    let tariff = tariff.data()["saveTariff"]["id"].as_str().expect("tariff").to_owned();
    s.gql("mutation($d:ID!,$t:ID!){ assignTariff(deviceId:$d, tariffId:$t){ id } }", json!({"d": meter, "t": tariff}))
        .await
        .data();

    let state = &s.app.state;
    let tenant = s.tenant.id.parse().expect("tenant");
    let long_ago = chrono::Utc::now() - chrono::Duration::minutes(30);
    let mut bodies = Vec::new();
    for round in 0..20 {
        for k in 0..3 {
            bodies.push(json!({"event": "batteryAsync", "time": 1_000 + round * 10 + k, "uuid": format!("bl-{k}"),
                               "home_id": "dd-h", "detail": {"battery": (round + 1).to_string()}}));
        }
        if round == 7 {
            // A lock installed in the middle of the burst, then its battery.
            bodies.push(json!({"event": "deviceInstall", "time": 5_000, "uuid": "bl-new", "home_id": "dd-h", "detail": {"type": "4"}}));
            bodies.push(json!({"event": "batteryAsync", "time": 5_001, "uuid": "bl-new", "detail": {"battery": "77"}}));
        }
        if round == 3 || round == 12 {
            let amount = if round == 3 { 10.0 } else { 12.5 };
            bodies.push(json!({"event": "elemeterPowerAsync", "time": 6_000 + round, "uuid": "bl-em", "detail": {"consume_amount": amount}}));
        }
    }
    for (n, body) in bodies.iter().enumerate() {
        let input = NewInboundEvent {
            integration_id: s.integration.parse().expect("integration"),
            protocol: "DINGDING".into(),
            kind: body["event"].as_str().expect("event").into(),
            dedup_key: format!("bl|{n}"),
            headers: json!({}),
            body: body.to_string(),
            received_at: long_ago + chrono::Duration::milliseconds(i64::try_from(n).expect("n")),
        };
        state.events.record(tenant, input).await.expect("stored");
    }
    let backlog = &state.inbound_backlog;
    assert_eq!(backlog.sweep(chrono::Utc::now()).await.expect("sweep"), bodies.len());
    eventually("every callback processed", || async {
        let inbound = s.inbound().await;
        inbound.len() == bodies.len() && inbound.iter().all(|e| e["state"] == "PROCESSED")
    })
    .await;
    for id in &locks {
        assert_eq!(s.device_state(id).await["battery"], json!(20), "the last battery of each lock wins");
    }
    let devices = s
        .gql(
            "query($i:ID){ devices(filter:{integrationId:$i, search:\"bl-new\"}){ edges{ node{ battery } } } }",
            json!({"i": s.integration}),
        )
        .await;
    assert_eq!(nodes(&devices.data()["devices"])[0]["battery"], json!(77), "installed before its battery came");
    let acc = s
        .gql(
            "query($d:ID!){ meterAccount(deviceId:$d){ balance ledger(first:10){ edges{ node{ kind amount } } } } }",
            json!({"d": meter}),
        )
        .await;
    let charges: Vec<Value> =
        nodes(&acc.data()["meterAccount"]["ledger"]).into_iter().filter(|e| e["kind"] == "CHARGE").collect();
    assert_eq!(charges.len(), 1, "the baseline, then one charge: {}", acc.raw);
    assert_eq!(charges[0]["amount"], "-1.25");
    assert_eq!(backlog.sweep(chrono::Utc::now()).await.expect("sweep"), 0, "each applied once");
}

#[tokio::test]
async fn electricity_and_water_meters_with_a_tariff_are_billed_from_their_registers() {
    let s = setup().await;
    let account = "query($d:ID!){ meterAccount(deviceId:$d){ balance cycleUsage
        ledger(first:10){ edges{ node{ kind amount volume } } } } }";
    for (uuid, kind, utility, event, field, first, second, price, charged) in [
        (
            "em-b",
            "ELECTRICITY_METER",
            "ELECTRICITY",
            "elemeterPowerAsync",
            "consume_amount",
            10.0,
            12.5,
            "0.5",
            "-1.25",
        ),
        ("wm-b", "WATER_METER", "WATER", "watermeterAmountAsync", "amount", 3.5, 5.5, "4", "-8"),
    ] {
        let meter = s.device(uuid, kind, json!({})).await;
        let tariff = s
            .gql(
                "mutation($i:SaveTariffInput!){ saveTariff(input:$i){ id } }",
                json!({"i": {"integrationId": s.integration, "code": format!("T-{uuid}"), "utility": utility,
                             "tiers": [{"upTo": null, "price": price}], "cycleMonths": 12}}),
            )
            .await;
        let tariff = tariff.data()["saveTariff"]["id"].as_str().expect("tariff").to_owned();
        s.gql(
            "mutation($d:ID!,$t:ID!){ assignTariff(deviceId:$d, tariffId:$t){ id } }",
            json!({"d": meter, "t": tariff}),
        )
        .await
        .data();
        // The first register is the baseline; the second is charged for the difference, once.
        for (k, value) in [first, second].into_iter().enumerate() {
            s.callback_twice(
                json!({"uuid": uuid, "time": now_ms() + k as i64, "event": event, "detail": {field: value}}),
            )
            .await;
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
        let acc = s.gql(account, json!({"d": meter})).await;
        let acc = &acc.data()["meterAccount"];
        let charges: Vec<&Value> = acc["ledger"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| &e["node"])
            .filter(|n| n["kind"] == "CHARGE")
            .collect();
        assert_eq!(charges.len(), 1, "{uuid}: {acc}");
        assert_eq!(charges[0]["amount"], charged, "{uuid}: {acc}");
        assert_eq!(acc["balance"], charged, "{uuid}: {acc}");
    }
}
