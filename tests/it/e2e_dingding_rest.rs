//! The rest of Dingding's open API (issue 18, part 5) against the fake: the home, gateway,
//! collector and serial-number reads (5.4, 5.10, 5.12, 6.2, 6.16, 11.13), changing an
//! activation code (6.15), editing and deleting work orders (10.2, 10.3), and the
//! installer's submission of a home (8.2.10) completing its installation orders.

use crate::e2e_dingding::{Setup, now_ms, setup};
use crate::utils::{USER_PASSWORD, eventually, nodes, tenant_with_admin};
use axum::http::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// A viewer of the setup's tenant.
async fn viewer(s: &Setup) -> String {
    let email = format!("viewer@{}.example.com", s.tenant.slug);
    s.app.create_user(&s.tenant.admin_token, &s.tenant.id, &email, USER_PASSWORD, "VIEWER").await;
    s.app.login(&email, USER_PASSWORD).await
}

/// The admin token of another tenant.
async fn stranger(s: &Setup) -> String {
    let platform = s.app.admin_token().await;
    tenant_with_admin(&s.app, &platform).await.admin_token
}

#[tokio::test]
async fn home_gateway_collector_and_serial_number_reads_pass_dingdings_answer_through() {
    let s = setup().await;
    let i = json!({"i": s.integration});

    // count_home_info (5.12): GET; the filters are sent only when given.
    let r = s.gql("query($i:ID!){ dingdingHomeCount(integrationId:$i) }", i.clone()).await;
    assert_eq!(r.data()["dingdingHomeCount"]["count"], 3);
    let call = s.fake.first_call("count_home_info").await;
    assert_eq!(call.method, Method::GET);
    assert!(call.params.is_empty(), "{:?}", call.params);
    let r = s.gql("query($i:ID!){ dingdingHomeCount(integrationId:$i, city:\"北京\", zone:\" \") }", i.clone()).await;
    assert_eq!(r.data()["dingdingHomeCount"]["count"], 1);
    let call = s.fake.calls("count_home_info").remove(1);
    assert_eq!(call.params, json!({"city": "北京"}).as_object().cloned().expect("map"), "a blank filter is not sent");

    // find_home_device (5.4): the devices of one home.
    let q = "query($i:ID!, $h:String!){ dingdingHomeDevices(integrationId:$i, homeExternalId:$h) }";
    let r = s.gql(q, json!({"i": s.integration, "h": "dd-home-1"})).await;
    let devices = r.data()["dingdingHomeDevices"]["result"].as_array().expect("result").clone();
    assert_eq!(devices.len(), 2);
    assert_eq!((devices[1]["type"].as_str(), devices[1]["uuid"].as_str()), (Some("room_lock"), Some("sync-lock")));
    let call = s.fake.first_call("find_home_device").await;
    assert_eq!((call.method, &call.params["home_id"]), (Method::GET, &json!("dd-home-1")));
    // Dingding's refusal is an upstream failure.
    let r = s.gql(q, json!({"i": s.integration, "h": "nowhere"})).await;
    assert_eq!(r.code(), "UPSTREAM_FAILED");
    assert_eq!(s.gql(q, json!({"i": s.integration, "h": " "})).await.code(), "BAD_USER_INPUT");

    // get_home_info (5.10) by a device's uuid.
    let q = "query($i:ID!, $u:String){ dingdingHomeInfo(integrationId:$i, deviceUuid:$u) }";
    let r = s.gql(q, json!({"i": s.integration, "u": "sync-lock"})).await;
    let home = &r.data()["dingdingHomeInfo"]["result"];
    assert_eq!(
        (home["home_id"].as_str(), home["rooms"][0]["room_id"].as_str()),
        (Some("dd-home-1"), Some("dd-room-a"))
    );
    assert_eq!(home["devices"][0]["is_out"], true);
    let call = s.fake.first_call("get_home_info").await;
    assert_eq!(call.method, Method::GET);
    assert_eq!(call.params, json!({"uuid": "sync-lock"}).as_object().cloned().expect("map"));

    // get_center_info_arr (6.2).
    let q = "query($i:ID!){ dingdingGateways(integrationId:$i, homeExternalId:\"dd-home-1\") }";
    let r = s.gql(q, i.clone()).await;
    let gw = &r.data()["dingdingGateways"]["centers"][0];
    assert_eq!((gw["uuid"].as_str(), gw["model_name"].as_str()), (Some("sync-gw"), Some("G2")));
    assert_eq!(gw["versions"]["zigbee_version"], "1.0.0.2");
    let call = s.fake.first_call("get_center_info_arr").await;
    assert_eq!((call.method, &call.params["home_id"]), (Method::GET, &json!("dd-home-1")));

    // get_elecollector_info_arr (11.13): by home, or one by uuid; neither is refused here.
    let q = "query($i:ID!){ dingdingCollectors(integrationId:$i, homeExternalId:\"dd-home-1\") }";
    let r = s.gql(q, i.clone()).await;
    let c = &r.data()["dingdingCollectors"]["elecollectors"][0];
    assert_eq!((c["lqi"].as_i64(), c["center_description"].as_str()), (Some(117), Some("5722 小网关")));
    let call = s.fake.first_call("get_elecollector_info_arr").await;
    assert_eq!((call.method, &call.params["home_id"]), (Method::GET, &json!("dd-home-1")));
    assert!(call.params.get("uuid").is_none());
    let r = s.gql("query($i:ID!){ dingdingCollectors(integrationId:$i) }", i.clone()).await;
    assert_eq!(r.code(), "BAD_USER_INPUT");

    // get_device_uuid (6.16): POST, by serial number.
    let q = "query($i:ID!){ dingdingDeviceUuid(integrationId:$i, sn:\"lkjl0007\") }";
    let r = s.gql(q, i.clone()).await;
    let found = &r.data()["dingdingDeviceUuid"]["result"];
    assert_eq!((found["uuid"].as_str(), found["center_uuid"].as_str()), (Some("uuid-of-lkjl0007"), Some("sync-gw")));
    let call = s.fake.first_call("get_device_uuid").await;
    assert_eq!(call.method, Method::POST);
    assert_eq!(call.params, json!({"sn": "lkjl0007"}).as_object().cloned().expect("map"));
    assert!(s.fake.rejected().is_empty(), "{:?}", s.fake.rejected());

    // A viewer reads them all; another tenant finds no such integration.
    let reads = [
        "query($i:ID!){ dingdingHomeCount(integrationId:$i) }",
        "query($i:ID!){ dingdingHomeDevices(integrationId:$i, homeExternalId:\"dd-home-1\") }",
        "query($i:ID!){ dingdingHomeInfo(integrationId:$i, homeExternalId:\"dd-home-1\") }",
        "query($i:ID!){ dingdingGateways(integrationId:$i) }",
        "query($i:ID!){ dingdingCollectors(integrationId:$i, uuid:\"7a271f01be337398e23fa7b4eed55dcb\") }",
        "query($i:ID!){ dingdingDeviceUuid(integrationId:$i, sn:\"cnjl0003\") }",
    ];
    let viewer = viewer(&s).await;
    let other = stranger(&s).await;
    for q in reads {
        let r = s.app.gql(Some(&viewer), q, i.clone()).await;
        assert!(r.data().as_object().is_some_and(|m| m.values().all(Value::is_object)), "viewer: {q}: {}", r.raw);
        assert_eq!(s.app.gql(Some(&other), q, i.clone()).await.code(), "NOT_FOUND", "{q}");
    }
}

const CODE_FIELDS: &str = "id passwordId kind name phone endsAt stage error";

#[tokio::test]
async fn an_activation_code_is_changed_in_plain_fields_and_its_new_code_kept() {
    let s = setup().await;
    let lock = s.device("lock-code", "LOCK", json!({})).await;
    let code = s
        .gql(
            "mutation($i:AddLockActivationCodeInput!){ addLockActivationCode(input:$i){ id } }",
            json!({"i": {"deviceId": lock, "kind": "TENANT", "name": "guest", "phone": "13900000000"}}),
        )
        .await;
    let id = code.data()["addLockActivationCode"]["id"].as_str().expect("id").to_owned();
    let reveal = "mutation($i:ID!){ revealActivationCode(id:$i) }";
    eventually("the first code", || async {
        s.gql(reveal, json!({"i": id})).await.body["data"]["revealActivationCode"] == "7788990011"
    })
    .await;

    let update = format!(
        "mutation($i:UpdateLockActivationCodeInput!){{ updateLockActivationCode(input:$i){{ {CODE_FIELDS} }} }}"
    );
    // An end within the next full hour but one is refused before anything goes out (6.15).
    let soon = (chrono::Utc::now() + chrono::Duration::minutes(30)).to_rfc3339();
    let r = s.gql(&update, json!({"i": {"id": id, "endsAt": soon}})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "endsAt");

    let r = s
        .gql(
            &update,
            json!({"i": {"id": id, "name": "guest 2", "phone": "13911112222", "endsAt": "2036-01-01T00:00:00Z"}}),
        )
        .await;
    let p = r.data()["updateLockActivationCode"].clone();
    assert_eq!((p["stage"].as_str(), p["kind"].as_str()), (Some("PENDING"), Some("ACTIVATION_CODE")));
    assert_eq!((p["name"].as_str(), p["phone"].as_str()), (Some("guest 2"), Some("13911112222")));
    let call = s.fake.first_call("update_password_without_center").await;
    assert_eq!(call.method, Method::POST);
    assert_eq!(
        call.params,
        json!({"uuid": "lock-code", "password_id": 3025, "name": "guest 2", "phonenummer": "13911112222",
               "is_send_msg": false, "permission_end": 2_082_758_400})
        .as_object()
        .cloned()
        .expect("map"),
        "plain fields only: no CMD, no password"
    );
    // Dingding answers the new code at once: it is kept, and the operation is done.
    eventually("the new code", || async {
        s.gql(reveal, json!({"i": id})).await.body["data"]["revealActivationCode"] == "5566778899"
    })
    .await;
    let q = format!("query($i:ID!){{ lockPassword(id:$i){{ {CODE_FIELDS} }} }}");
    let p = s.gql(&q, json!({"i": id})).await.data()["lockPassword"].clone();
    assert_eq!((p["stage"].as_str(), p["passwordId"].as_i64()), (Some("SUCCEEDED"), Some(3025)));
    assert_eq!(p["endsAt"], "2036-01-01T00:00:00+00:00");

    // A password that is no activation code is refused.
    s.callback_twice(json!({"event": "pwdAddLocal", "uuid": "lock-code", "time": now_ms(),
                            "detail": {"password": {"id": 1010}}}))
        .await;
    let list = s.gql("query($d:ID!){ lockPasswords(deviceId:$d){ id passwordId } }", json!({"d": lock})).await;
    let local = nodes_where(&list.data()["lockPasswords"], |p| p["passwordId"] == 1010);
    let r = s.gql(&update, json!({"i": {"id": local, "name": "x"}})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT");

    // A viewer may not; another tenant finds nothing.
    let viewer = viewer(&s).await;
    let r = s.app.gql(Some(&viewer), &update, json!({"i": {"id": id, "name": "v"}})).await;
    assert_eq!(r.code(), "FORBIDDEN");
    let other = stranger(&s).await;
    let r = s.app.gql(Some(&other), &update, json!({"i": {"id": id, "name": "o"}})).await;
    assert_eq!(r.code(), "NOT_FOUND");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.fake.calls("update_password_without_center").len(), 1);
    assert!(s.fake.rejected().is_empty(), "{:?}", s.fake.rejected());
}

/// The id of the one element of `list` that `pick` chooses.
fn nodes_where(list: &Value, pick: impl Fn(&Value) -> bool) -> String {
    let found: Vec<&Value> = list.as_array().expect("list").iter().filter(|v| pick(v)).collect();
    assert_eq!(found.len(), 1, "{list}");
    found[0]["id"].as_str().expect("id").to_owned()
}

const SAVE: &str = "mutation($i:SaveTicketInput!){ saveTicket(input:$i){ id status fields externalId } }";

async fn tickets(s: &Setup, kind: &str) -> Vec<Value> {
    let q = "query($k:TicketKind){ tickets(filter:{kind:$k}, first:50){ edges { node { id status externalId homeId updatedAt } } } }";
    nodes(&s.gql(q, json!({"k": kind})).await.data()["tickets"])
}

#[tokio::test]
async fn dingding_work_orders_are_edited_while_unassigned_and_deleted_there() {
    let s = setup().await;
    let home = s
        .gql(
            "mutation($i:AddHomeInput!){ addHome(input:$i){ id } }",
            json!({"i": {"name": "Home", "integrationId": s.integration, "externalId": "dd-home-1"}}),
        )
        .await;
    home.data();
    // The account has a booked installation waiting for an installer (待分配) besides its repair order.
    s.fake.add_work_order(json!({
        "ticket_id": "20170301_7", "ticket_state": 2, "service_type": 1, "service_target": 2,
        "relate_home": {"home_id": "dd-home-1", "rooms": [{"room_id": "dd-room-a", "room_name": "A"}]},
        "subscribe": {"date": 1464998400000i64, "time": "101", "name": "测试", "phone": "18588787458"}
    }));
    let sync = s.gql("mutation($i:ID!){ syncIntegration(id:$i){ tickets } }", json!({"i": s.integration})).await;
    assert_eq!(sync.data()["syncIntegration"]["tickets"], 2);
    let install = tickets(&s, "INSTALLATION").await.remove(0);
    assert_eq!((install["status"].as_str(), install["externalId"].as_str()), (Some("UNASSIGNED"), Some("20170301_7")));
    let repair = tickets(&s, "REPAIR").await.remove(0);
    assert_eq!(repair["status"], "ASSIGNED");

    // Rooms and description change: update_ticket, with the booking as stored; no state.
    let edit = json!({"i": {"id": install["id"], "kind": "INSTALLATION",
                            "fields": {"room_ids": ["dd-room-a", "dd-room-b"], "ticket_description": "两把锁"}}});
    s.gql(SAVE, edit.clone()).await.data();
    let call = s.fake.first_call("update_ticket").await;
    assert_eq!(call.method, Method::POST);
    assert_eq!(
        (&call.params["ticket_id"], &call.params["room_ids"]),
        (&json!("20170301_7"), &json!(["dd-room-a", "dd-room-b"]))
    );
    assert_eq!(call.params["ticket_description"], "两把锁");
    assert_eq!(call.params["subscribe"]["time"], "101");
    assert_eq!(s.fake.work_order("20170301_7").expect("kept")["ticket_description"], "两把锁");
    // The same content again changes nothing there.
    s.gql(SAVE, edit).await.data();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.fake.calls("update_ticket").len(), 1);
    assert!(s.fake.calls("update_ticket_state").is_empty(), "the state did not change");

    // An order an installer has (ASSIGNED) cannot be edited (10.2) or deleted.
    let r = s
        .gql(SAVE, json!({"i": {"id": repair["id"], "kind": "REPAIR", "fields": {"ticket_description": "换锁"}}}))
        .await;
    assert_eq!(r.code(), "CONFLICT");
    let delete = "mutation($i:ID!){ deleteTicket(id:$i){ id kind status externalId } }";
    assert_eq!(s.gql(delete, json!({"i": repair["id"]})).await.code(), "CONFLICT");
    // Not another tenant's, and not a viewer's.
    assert_eq!(s.app.gql(Some(&stranger(&s).await), delete, json!({"i": install["id"]})).await.code(), "NOT_FOUND");
    assert_eq!(s.app.gql(Some(&viewer(&s).await), delete, json!({"i": install["id"]})).await.code(), "FORBIDDEN");

    // Deleting the unassigned order deletes it at Dingding too (delete_ticket).
    let r = s.gql(delete, json!({"i": install["id"]})).await;
    assert_eq!(r.data()["deleteTicket"]["externalId"], "20170301_7");
    assert_eq!(s.gql("query($i:ID!){ ticket(id:$i){ id } }", json!({"i": install["id"]})).await.code(), "NOT_FOUND");
    let call = s.fake.first_call("delete_ticket").await;
    assert_eq!(call.method, Method::POST);
    assert_eq!(call.params, json!({"ticket_id": "20170301_7"}).as_object().cloned().expect("map"));
    assert!(s.fake.work_order("20170301_7").is_none());
    // A sync does not bring it back; the repair order is still there, untouched.
    s.gql("mutation($i:ID!){ syncIntegration(id:$i){ tickets } }", json!({"i": s.integration})).await.data();
    assert!(tickets(&s, "INSTALLATION").await.is_empty());
    assert_eq!(s.fake.work_order("20160511_81299").expect("repair")["ticket_state"], 3);

    // Tickets of no vendor: a planned maintenance is deleted here only; a rescue never.
    let maintenance = json!({"unique_id": "204150", "internal_id": "18181", "lift_type": "1", "maintain_type": "1",
        "contact_name": "张三", "contact_phone": "13811111111", "use_company": "物业", "report_no": "ACH0844",
        "report_time": "20181025T062700"});
    let m = s.gql(SAVE, json!({"i": {"kind": "MAINTENANCE", "fields": maintenance}})).await;
    let m = m.data()["saveTicket"]["id"].clone();
    assert_eq!(s.gql(delete, json!({"i": m})).await.data()["deleteTicket"]["status"], "PLANNED");
    let rescue = json!({"unique_id": "123456", "serial_num": "TF1", "fault_start_time": "20210317T122535",
                        "alarm_accept_time": "20210317T122600"});
    let r = s.gql(SAVE, json!({"i": {"kind": "RESCUE", "fields": rescue}})).await;
    let r = s.gql(delete, json!({"i": r.data()["saveTicket"]["id"]})).await;
    assert_eq!(r.code(), "CONFLICT");
    assert_eq!(s.fake.calls("delete_ticket").len(), 1);
    assert!(s.fake.rejected().is_empty(), "{:?}", s.fake.rejected());
}

#[tokio::test]
async fn the_installers_submission_completes_the_homes_open_installation_orders_once() {
    let s = setup().await;
    // The account's home dd-home-1 has three booked installations (待处理, 已分配, 已关闭) and
    // its repair order (已分配); the sync brings them with their Dingding ids.
    let booking = json!({"date": 1464998400000i64, "time": "101", "name": "测试", "phone": "18588787458"});
    for (id, state) in [("20170302_1", 1), ("20170302_2", 3), ("20170302_3", 5)] {
        s.fake.add_work_order(json!({
            "ticket_id": id, "ticket_state": state, "service_type": 1, "service_target": 2,
            "relate_home": {"home_id": "dd-home-1", "rooms": [{"room_id": "dd-room-a"}]}, "subscribe": booking
        }));
    }
    let sync = s.gql("mutation($i:ID!){ syncIntegration(id:$i){ tickets } }", json!({"i": s.integration})).await;
    assert_eq!(sync.data()["syncIntegration"]["tickets"], 4);
    // Another home's installation, booked here.
    let other = s
        .gql(
            "mutation($i:AddHomeInput!){ addHome(input:$i){ id } }",
            json!({"i": {"name": "other", "integrationId": s.integration, "externalId": "dd-sub-2"}}),
        )
        .await;
    let other = other.data()["addHome"]["id"].as_str().expect("home").to_owned();
    let fields = json!({"service_target": 2, "room_ids": ["r1"], "subscribe": booking});
    let r = s
        .gql(
            SAVE,
            json!({"i": {"kind": "INSTALLATION", "integrationId": s.integration, "homeId": other, "fields": fields}}),
        )
        .await;
    let elsewhere = r.data()["saveTicket"]["id"].as_str().expect("id").to_owned();
    let by_external = |list: &[Value], ext: &str| -> Value {
        list.iter().find(|t| t["externalId"] == ext).cloned().unwrap_or_else(|| panic!("{ext} in {list:?}"))
    };
    let before = tickets(&s, "INSTALLATION").await;
    assert_eq!(by_external(&before, "20170302_1")["status"], "PENDING");
    assert_eq!(by_external(&before, "20170302_2")["status"], "ASSIGNED");

    s.callback_twice(json!({"event": "installerSubmit", "time": now_ms(), "home_id": "dd-home-1", "detail": {}})).await;
    let after = tickets(&s, "INSTALLATION").await;
    assert_eq!(by_external(&after, "20170302_1")["status"], "COMPLETED");
    assert_eq!(by_external(&after, "20170302_2")["status"], "COMPLETED");
    assert_eq!(by_external(&after, "20170302_3")["status"], "CLOSED", "a closed order stays closed");
    let mine = after.iter().find(|t| t["id"] == elsewhere.as_str()).expect("the other home's");
    assert_eq!(mine["status"], "PENDING", "another home's order");
    assert_eq!(tickets(&s, "REPAIR").await[0]["status"], "ASSIGNED", "a repair order");
    let events = s.inbound().await;
    let submits: Vec<&Value> = events.iter().filter(|e| e["kind"] == "installerSubmit").collect();
    assert_eq!(submits.len(), 1, "stored once: {events:?}");
    assert_eq!(submits[0]["state"], "PROCESSED");
    // Dingding made the change: no state is sent back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s.fake.calls("update_ticket_state").is_empty());

    // Submitted again later (a new event): nothing is open any more, nothing changes.
    s.callback_twice(
        json!({"event": "installerSubmit", "time": now_ms() + 1000, "home_id": "dd-home-1", "detail": {}}),
    )
    .await;
    assert_eq!(tickets(&s, "INSTALLATION").await, after);
    // A home nobody knows is stored and ignored.
    s.callback_twice(json!({"event": "installerSubmit", "time": now_ms(), "home_id": "dd-unknown", "detail": {}}))
        .await;
    let events = s.inbound().await;
    assert_eq!(events.iter().filter(|e| e["kind"] == "installerSubmit").count(), 3);
    assert!(events.iter().any(|e| e["kind"] == "installerSubmit" && e["state"] == "IGNORED"), "{events:?}");
    assert!(s.fake.rejected().is_empty(), "{:?}", s.fake.rejected());
}

/// Every other meter command, meter and work-order read, and the sync's device reads, each
/// checked at the fake: its interface, method and parameters (seed 002 5.5, 5.11, 6.1, 6.3,
/// 6.4, 6.17, 10.4, 10.5, 11.x, 15.x).
#[tokio::test]
async fn every_other_meter_command_and_read_reaches_dingding_as_documented() {
    let s = setup().await;
    let meter = s
        .device("em-all", "ELECTRICITY_METER", json!({"homeExternalId": "dd-home-1", "roomExternalId": "dd-room-a"}))
        .await;
    let send = "mutation($i:SendMeterCommandInput!){ sendMeterCommand(input:$i){ id } }";
    let commands = [
        (json!({"command": "SWITCH_ON"}), "elemeter_switch_on", json!({})),
        (json!({"command": "RESET"}), "elemeter_reset_by_collector", json!({})),
        (
            json!({"command": "SET_MAX_CAPACITY", "amount": "20"}),
            "elemeter_update_max_capacity",
            json!({"capacity": 20.0}),
        ),
        (json!({"command": "CHARGE_RESET"}), "elemeter_charge_reset", json!({})),
        (json!({"command": "SYNC_DATA"}), "elemeter_syn_data", json!({})),
        (
            json!({"command": "SET_PRICE", "params": {"roomPrice": "1.2", "clientPrice": "0.8"}}),
            "elemeter_set_eleprice",
            json!({"room_eleprice": 1.2, "client_eleprice": 0.8}),
        ),
        (
            json!({"command": "SET_PAY_TYPE", "params": {"payType": "POSTPAID", "overdraft": "5"}}),
            "set_room_pay_type",
            json!({"pay_type": 2, "overdraft": 5.0}),
        ),
        (
            json!({"command": "FORCE_OPEN", "params": {"enabled": true}}),
            "elemeter_force_open",
            json!({"force_open": 1}),
        ),
        (
            json!({"command": "SET_PRICE_WAY", "params": {"way": "ROOM"}}),
            "elemeter_set_eleprice_way",
            json!({"eleprice_way": 3}),
        ),
    ];
    for (input, name, want) in commands {
        let mut input = input;
        input["deviceId"] = json!(meter);
        s.gql(send, json!({"i": input})).await.data();
        let call = s.fake.first_call(name).await;
        assert_eq!((call.method, &call.params["uuid"]), (Method::POST, &json!("em-all")), "{name}");
        for (k, v) in want.as_object().expect("map") {
            assert_eq!(&call.params[k.as_str()], v, "{name}.{k}");
        }
    }
    // By home (11.16) and by a list of uuids (11.22): no `uuid`.
    s.gql(send, json!({"i": {"deviceId": meter, "command": "SET_HOME_PRICE", "amount": "0.9"}})).await.data();
    let call = s.fake.first_call("elemeter_set_eleprice_by_home").await;
    assert_eq!(call.params, json!({"home_id": "dd-home-1", "eleprice": 0.9}).as_object().cloned().expect("map"));
    s.gql(send, json!({"i": {"deviceId": meter, "command": "REFRESH_SIGNAL"}})).await.data();
    let call = s.fake.first_call("refresh_devices_lqi").await;
    assert_eq!(
        (call.method, call.params),
        (Method::POST, json!({"uuids": "em-all"}).as_object().cloned().expect("map"))
    );

    // Meter reads.
    let q = "query($d:ID!, $q:MeterQueryKind!){ meterQuery(deviceId:$d, query:$q, from:\"2026-01-01T00:00:00Z\", to:\"2026-02-01T00:00:00Z\") }";
    let read = |kind: &'static str, device: String| {
        let s = &s;
        async move { s.gql(q, json!({"d": device, "q": kind})).await.data()["meterQuery"].clone() }
    };
    assert_eq!(read("INFO", meter.clone()).await["consume_amount"], "12.5");
    read("PRICE_AND_WAY", meter.clone()).await;
    read("CHARGE_HISTORY", meter.clone()).await;
    read("POWER_CONSUMPTION", meter.clone()).await;
    read("DEVICE_INFO", meter.clone()).await;
    let water = s.device("wm-all", "WATER_METER", json!({"manufactory": "cy"})).await;
    read("WATER_READ_STATUS", water).await;
    let uuid = |u: &str| json!({"uuid": u}).as_object().cloned().expect("map");
    let reads = [
        ("get_elemeter_info", Method::GET, uuid("em-all")),
        ("elemeter_get_price_and_way", Method::GET, uuid("em-all")),
        (
            "elemeter_fetch_charge_history",
            Method::GET,
            json!({"uuid": "em-all", "offset": "0", "count": "20", "start_time": "1767225600", "end_time": "1769904000"})
                .as_object()
                .cloned()
                .expect("map"),
        ),
        (
            "elemeter_count_charge_history",
            Method::GET,
            json!({"uuid": "em-all", "start_time": "1767225600", "end_time": "1769904000"}).as_object().cloned().expect("map"),
        ),
        (
            "elemeter_fetch_power_consumption",
            Method::GET,
            json!({"uuid": "em-all", "start_time": "1767225600", "end_time": "1769904000"}).as_object().cloned().expect("map"),
        ),
        ("get_device_info", Method::POST, uuid("em-all")),
        (
            "read_watermeter_status",
            Method::GET,
            json!({"uuid": "wm-all", "manufactory": "cy"}).as_object().cloned().expect("map"),
        ),
    ];
    for (name, method, params) in reads {
        let call = s.fake.first_call(name).await;
        assert_eq!((&call.method, &call.params), (&method, &params), "{name}");
    }

    // A lock's operation log (7.3, 7.4) and a device's exceptions (17.2, 17.3), each with its count.
    let lock = s.device("lock-all", "LOCK", json!({})).await;
    let log = s.gql("query($d:ID!){ deviceOperationLog(deviceId:$d, opId:\"20001\") }", json!({"d": lock})).await;
    assert_eq!(log.data()["deviceOperationLog"]["total"], 1);
    let ex = s.gql("query($d:ID!){ deviceExceptions(deviceId:$d) }", json!({"d": lock})).await;
    assert_eq!(ex.data()["deviceExceptions"]["total"], 1);
    let counted = [
        ("search_device_op_log", json!({"uuid": "lock-all", "op_id": "20001", "offset": "0", "count": "50"})),
        ("count_device_op_log", json!({"uuid": "lock-all", "op_id": "20001"})),
        ("device_fetch_exceptions", json!({"uuid": "lock-all", "offset": "0", "count": "20"})),
        ("device_count_exceptions", json!({"uuid": "lock-all"})),
    ];
    for (name, params) in counted {
        let call = s.fake.first_call(name).await;
        assert_eq!((call.method, call.params), (Method::GET, params.as_object().cloned().expect("map")), "{name}");
    }

    // Work orders at Dingding: one by id (10.4), a home's (10.5).
    let q = "query($i:ID!){ dingdingTickets(integrationId:$i, ticketId:\"20160511_81299\") }";
    let r = s.gql(q, json!({"i": s.integration})).await;
    assert_eq!(r.data()["dingdingTickets"]["ticket_info"]["ticket_state"], 3);
    let call = s.fake.first_call("get_ticket_by_id").await;
    assert_eq!((call.method, &call.params["ticket_id"]), (Method::GET, &json!("20160511_81299")));
    let q = "query($i:ID!){ dingdingTickets(integrationId:$i, homeExternalId:\"dd-home-1\", serviceType:2) }";
    let r = s.gql(q, json!({"i": s.integration})).await;
    assert_eq!(r.data()["dingdingTickets"]["home_ticket_list"][0]["ticket_id"], "20160511_81299");

    // The sync reads every kind of device, a collector and a water gateway too.
    s.fake.add_home_device(json!({"type": "elecollector", "sn": "emjl21", "uuid": "sync-col", "room_id": "dd-room-a"}));
    s.fake.add_home_device(
        json!({"type": "water_gateway", "sn": "wg01", "uuid": "sync-wgw", "room_id": "", "manufactory": "cy"}),
    );
    let sync = s.gql("mutation($i:ID!){ syncIntegration(id:$i){ devices } }", json!({"i": s.integration})).await;
    assert_eq!(sync.data()["syncIntegration"]["devices"], 6);
    let synced = [
        ("search_home_info", Method::GET, json!({"offset": "0"})),
        ("find_home_devices", Method::POST, json!({"home_id": ["dd-home-1"]})),
        ("get_center_info", Method::GET, json!({"uuid": "sync-gw"})),
        ("get_lock_info", Method::GET, json!({"uuid": "sync-lock"})),
        ("fetch_passwords", Method::GET, json!({"uuid": "sync-lock"})),
        ("get_elemeter_info", Method::GET, json!({"uuid": "sync-meter"})),
        ("get_watermeter_info", Method::GET, json!({"uuid": "sync-water", "manufactory": "cy"})),
        ("get_elecollector_info", Method::GET, json!({"uuid": "sync-col"})),
        ("get_water_gateway_info", Method::GET, json!({"uuid": "sync-wgw"})),
    ];
    for (name, method, params) in synced {
        let params = params.as_object().cloned().expect("map");
        assert!(
            s.fake.calls(name).iter().any(|c| c.method == method && c.params == params),
            "{name} {params:?} in {:?}",
            s.fake.calls(name)
        );
    }
    let devices = s
        .gql(
            "query($i:ID){ devices(filter:{integrationId:$i}, first:50){ edges { node { externalId kind online signal } } } }",
            json!({"i": s.integration}),
        )
        .await;
    let devices = nodes(&devices.data()["devices"]);
    let col = devices.iter().find(|d| d["externalId"] == "sync-col").expect("collector");
    assert_eq!(
        (col["kind"].as_str(), col["signal"].as_i64(), col["online"].as_bool()),
        (Some("COLLECTOR"), Some(117), Some(true))
    );
    let wgw = devices.iter().find(|d| d["externalId"] == "sync-wgw").expect("water gateway");
    assert_eq!((wgw["kind"].as_str(), wgw["online"].as_bool()), (Some("WATER_GATEWAY"), Some(false)));
    assert!(s.fake.rejected().is_empty(), "{:?}", s.fake.rejected());
}
