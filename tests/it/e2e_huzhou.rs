//! Huzhou elevator data center (seed 000, `PROTOCOLS.md` section 1) against an in-process
//! fake data center that checks what the real one would: the token `sign`, every push's
//! `signature`, `Authorization`, the `Request-Id` format, and the field names, string
//! types, time format and enums of each action's `req_info`.

use crate::utils::fake::huzhou::{APP_KEY, APP_SECRET, FakeDataCenter};
use crate::utils::{Client, TenantFixture, TestApp, quick_jobs, spawn_app_with, tenant_with_admin};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const IN_KEY: &str = "dc-inbound-key";
const IN_SECRET: &str = "dc-inbound-secret-Z7";

struct Setup {
    app: TestApp,
    api: Client,
    dc: FakeDataCenter,
    tenant: TenantFixture,
    integration: String,
    api_key: String,
}

impl Setup {
    async fn gql(&self, q: &str, v: Value) -> crate::utils::Gql {
        self.api.gql(q, v).await
    }

    async fn elevator(&self, external: &str, kind: &str, attributes: Value) -> String {
        self.api.device(&self.integration, external, kind, &format!("{external}号梯"), attributes).await
    }

    async fn telemetry(&self, body: Value) -> (u16, Value) {
        let r = self
            .app
            .http
            .post(self.app.url(&format!("/hooks/{}/telemetry", self.integration)))
            .header("x-api-key", &self.api_key)
            .json(&body)
            .send()
            .await
            .expect("telemetry");
        (r.status().as_u16(), r.json().await.expect("json"))
    }

    async fn elev_api(&self, query: &str) -> Value {
        let url = self.app.url(&format!("/hooks/{}/huzhou/elev_api?{query}", self.integration));
        let r = self.app.http.get(url).send().await.expect("elev_api");
        assert_eq!(r.status().as_u16(), 200);
        r.json().await.expect("json")
    }

    /// Runs a scheduled job now; asserts it succeeded.
    async fn run(&self, job: &str) {
        let r = self.api.run_scheduled_job(&self.integration, job).await;
        assert_eq!(r.data()["runScheduledJob"]["outcome"], "SUCCEEDED", "{}", r.raw);
    }

    async fn deliveries(&self, kind: &str) -> Vec<Value> {
        self.api.deliveries(json!({"kind": kind})).await
    }
}

async fn setup() -> Setup {
    let dc = FakeDataCenter::start().await;
    let base = dc.base().to_owned();
    let app = spawn_app_with(quick_jobs).await;
    let root = app.admin_token().await;
    let tenant = tenant_with_admin(&app, &root).await;
    let api = tenant.api.clone();
    let integration = api
        .integration(json!({"kind": "HUZHOU_ELEVATOR", "name": "湖州", "settings": {
                                "baseUrl": base, "dcBaseUrl": format!("{base}/"),
                                "subscriptionIntervalSeconds": 1, "subscriptionWindowSeconds": 4,
                                "retry": {"initialDelaySecs": 1, "maxDelaySecs": 1, "maxAttempts": 6}},
                            "credentials": {"appKey": APP_KEY, "appSecret": APP_SECRET,
                                            "inboundAppKey": IN_KEY, "inboundAppSecret": IN_SECRET}}))
        .await
        .id;
    let api_key = api.create_api_key(&integration).await;
    Setup { app, api, dc, tenant, integration, api_key }
}

fn reading(ext: &str, values: Value) -> Value {
    json!({"externalId": ext, "ts": chrono::Utc::now().to_rfc3339(), "values": values})
}

#[tokio::test]
async fn a_fault_reading_pushes_one_lift_alarm_and_its_recovery_one_more() {
    let s = setup().await;
    let lift = s.elevator("204150", "ELEVATOR", json!({"deviceCode": "3110102872020C0151", "address": "湖州"})).await;
    let fault = json!({"readings": [
        reading("204150", json!({"message_code": "01", "message_body": "困人", "car_position": 5, "door_status": "1",
                                 "service_mode": "1", "car_status": 0, "car_direction": 0, "door_zone": 1,
                                 "passenger_status": 1, "present_counter_value": 100})),
        reading("999999", json!({"message_code": "01"})),
        reading("204150", json!({"message_code": "1"})),
        json!({"externalId": "204150", "ts": "yesterday", "values": {}}),
        reading("204150", json!({"message_code": "01", "car_position": 6})),
    ]});
    let (status, answer) = s.telemetry(fault.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2, "{answer}");
    let rejected: Vec<i64> =
        answer["rejected"].as_array().expect("rejected").iter().filter_map(|r| r["index"].as_i64()).collect();
    assert_eq!(rejected, vec![1, 2, 3], "{answer}");
    // The same batch again: stored once, applied once.
    let (_, again) = s.telemetry(fault).await;
    assert_eq!(again["accepted"], 2);
    s.dc.until("the lift_alarm", || !s.dc.pushes("lift_alarm").is_empty()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let alarms = s.dc.pushes("lift_alarm");
    assert_eq!(alarms.len(), 1, "a repeated fault sends nothing: {alarms:?}");
    let a = &alarms[0].info;
    assert_eq!((a["unique_id"].as_str(), a["device_id"].as_str()), (Some("204150"), Some("3110102872020C0151")));
    assert_eq!(
        (a["message_code"].as_str(), a["car_position"].as_str(), a["lift_type"].as_str()),
        (Some("01"), Some("5"), Some("1"))
    );
    assert_eq!(s.dc.issued(), 1, "one token for everything");

    let q = "query($d:ID!){ alarms(filter:{deviceId:$d}){ edges { node { id kind state vendorCode occurrences } } }
                        device(id:$d){ latest } }";
    let r = s.gql(q, json!({"d": lift})).await;
    let alarm = &r.data()["alarms"]["edges"][0]["node"];
    assert_eq!(
        (alarm["kind"].as_str(), alarm["state"].as_str(), alarm["vendorCode"].as_str()),
        (Some("ELEVATOR_FAULT"), Some("RAISED"), Some("01"))
    );
    assert_eq!(alarm["occurrences"], 2);
    assert_eq!(r.data()["device"]["latest"]["car_position"]["value"], 6, "live state is the newest reading");
    let internal = alarm["id"].as_str().expect("id").replace('-', "");
    assert_eq!(a["internal_id"], json!(internal), "internal_id names the alarm");

    let (_, ok) = s.telemetry(json!({"readings": [reading("204150", json!({"message_code": "00"}))]})).await;
    assert_eq!(ok["accepted"], 1);
    s.dc.until("the recovery", || s.dc.pushes("lift_alarm").len() == 2).await;
    let rec = &s.dc.pushes("lift_alarm")[1];
    assert_eq!(
        (rec.info["message_code"].as_str(), rec.info["internal_id"].as_str()),
        (Some("00"), Some(internal.as_str()))
    );
    assert_ne!(rec.request_id, alarms[0].request_id, "a new message, a new Request-Id");
    let r = s.gql(q, json!({"d": lift})).await;
    assert_eq!(r.data()["alarms"]["edges"][0]["node"]["state"], "CLEARED");
    // Recovered again: nothing open, nothing sent.
    s.telemetry(json!({"readings": [reading("204150", json!({"message_code": "00"}))]})).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(s.dc.pushes("lift_alarm").len(), 2);
    assert_eq!(s.deliveries("huzhou.lift_alarm").await.len(), 2);
    assert!(s.dc.errors().is_empty(), "{:?}", s.dc.errors());

    // Telemetry refuses what is not its protocol, never with a 5xx.
    let bad = s
        .app
        .http
        .post(s.app.url(&format!("/hooks/{}/telemetry", s.integration)))
        .header("x-api-key", &s.api_key)
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status().as_u16(), 400);
    let nokey = s
        .app
        .http
        .post(s.app.url(&format!("/hooks/{}/telemetry", s.integration)))
        .header("x-api-key", "wrong")
        .json(&json!({"readings": []}))
        .send()
        .await
        .expect("send");
    assert_eq!(nokey.status().as_u16(), 401);
}

#[tokio::test]
async fn failed_pushes_keep_their_request_id_and_a_301_fetches_one_new_token() {
    let s = setup().await;
    s.elevator("204150", "ELEVATOR", json!({})).await;
    s.elevator("204151", "ESCALATOR", json!({})).await;
    let now = chrono::Utc::now();
    let ts = |h: i64| (now - chrono::Duration::hours(h)).to_rfc3339();
    let batch = json!({"readings": [
        {"externalId": "204150", "ts": ts(30), "values": {"run_count": 1000}},
        {"externalId": "204150", "ts": ts(10), "values": {"run_count": 1040}},
        {"externalId": "204150", "ts": ts(1), "values": {"run_count": 1100, "speed": 1.5, "car_position": -1}},
    ]});
    assert_eq!(s.telemetry(batch).await.1["accepted"], 3);
    // The paras pushes of the two new elevators come first.
    s.dc.until("paras", || s.dc.pushes("put_ie_elev_paras").len() == 2).await;

    s.dc.fail_next("lift_notify", "204150", 3);
    s.run("LIFT_NOTIFY_DAILY").await;
    s.dc.until("both lift_notify", || s.dc.pushes("lift_notify").len() == 2).await;
    let all = s.dc.all("lift_notify");
    let mut by_id: HashMap<String, Vec<String>> = HashMap::new();
    for p in &all {
        by_id.entry(p.request_id.clone()).or_default().push(p.answered.clone());
    }
    assert_eq!(by_id.len(), 2, "two messages: {by_id:?}");
    let lift_id = &all.iter().find(|p| p.info["unique_id"] == "204150").expect("204150").request_id;
    let retried = &by_id[lift_id];
    assert_eq!(retried, &["500", "500", "500", "200"], "three failures, then the same Request-Id arrives");
    let lift = s.dc.pushes("lift_notify").into_iter().find(|p| p.info["unique_id"] == "204150").expect("204150");
    assert_eq!(lift.info["use_count"], "100", "the starts of the last 24 h");
    assert_eq!((lift.info["use_type"].as_str(), lift.info["is_current_count"].as_str()), (Some("1"), Some("1")));
    let esc = s.dc.pushes("lift_notify").into_iter().find(|p| p.info["unique_id"] == "204151").expect("204151");
    assert_eq!((esc.info["lift_type"].as_str(), esc.info["use_count"].as_str()), (Some("2"), Some("0")));

    // A 301 answer: one new token, one retry with it, the same Request-Id.
    let tokens_before = s.dc.issued();
    s.dc.expire_next(1);
    s.run("ELEV_THINGS_DAILY").await;
    s.dc.until("things", || !s.dc.pushes("put_ie_elev_things").is_empty()).await;
    let things = s.dc.all("put_ie_elev_things");
    assert_eq!(things.len(), 2, "{things:?}");
    assert_eq!((things[0].answered.as_str(), things[1].answered.as_str()), ("301", "200"));
    assert_eq!(things[0].request_id, things[1].request_id);
    assert_ne!(things[0].token, things[1].token);
    assert_eq!(s.dc.issued(), tokens_before + 1, "exactly one new token");
    let items = things[1].info["rt_data"].as_array().expect("items");
    assert_eq!(items.len(), 2, "both elevators in one request");
    let it = items.iter().find(|i| i["unique_id"] == "204150").expect("item");
    assert_eq!(
        (it["elev_speed"].as_str(), it["curr_floor"].as_str(), it["run_count"].as_str()),
        (Some("1.5"), Some("-1"), Some("1100"))
    );
    let d = &s.deliveries("huzhou.put_ie_elev_things").await[0];
    let outcomes: Vec<&str> =
        d["attempts"].as_array().expect("a").iter().filter_map(|a| a["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["TOKEN_EXPIRED", "SUCCEEDED"]);
    for a in d["attempts"].as_array().expect("a") {
        let req = a["request"].as_str().expect("request");
        assert!(!req.contains("TOKEN") && !req.contains(APP_SECRET), "no secret in {req}");
    }

    // 310-360: permanent, no blind retry.
    s.dc.reject("lift_notify", "204151");
    s.run("LIFT_NOTIFY_DAILY").await;
    s.dc.until("the rejection", || s.dc.all("lift_notify").iter().any(|p| p.answered == "330")).await;
    let mut dead = Vec::new();
    for _ in 0..100 {
        dead = s.deliveries("huzhou.lift_notify").await.into_iter().filter(|d| d["state"] == "DEAD").collect();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["attempts"].as_array().map(Vec::len), Some(1), "{}", dead[0]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(s.dc.all("lift_notify").iter().filter(|p| p.answered == "330").count(), 1, "not retried");
    assert!(s.dc.errors().is_empty(), "{:?}", s.dc.errors());
}

#[tokio::test]
async fn tickets_and_parameter_changes_push_maintain_paras_and_trap_fault() {
    let s = setup().await;
    let attrs = json!({"deviceCode": "31103305032017010031", "providerId": "P-1", "address": "湖州市南浔区",
                       "floors": "-1,1,2,3", "lat": "30.87", "lng": "120.42", "videoUrl": "", "rescueUrl": "https://r.example/1"});
    let lift = s.elevator("204150", "ELEVATOR", attrs.clone()).await;
    s.dc.until("paras", || s.dc.pushes("put_ie_elev_paras").len() == 1).await;
    let p = &s.dc.pushes("put_ie_elev_paras")[0].info["rt_paras"][0];
    assert_eq!(
        (p["elev_loc"].as_str(), p["elev_provider_id"].as_str(), p["dev_type"].as_str()),
        (Some("湖州市南浔区"), Some("P-1"), Some("3"))
    );
    assert!(p.get("video_url").is_none() && p.get("rescue_url").is_none(), "empty and rescue fields are not sent: {p}");
    // The same parameters again: nothing to tell.
    s.elevator("204150", "ELEVATOR", attrs).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(s.dc.pushes("put_ie_elev_paras").len(), 1);

    let save = "mutation($i:SaveTicketInput!){ saveTicket(input:$i){ id status } }";
    let incomplete = json!({"kind": "MAINTENANCE", "integrationId": s.integration, "deviceId": lift, "status": "DONE",
                            "fields": {"internal_id": "x", "maintain_type": "1"}});
    let r = s.gql(save, json!({"i": incomplete})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.raw);
    let m = json!({"unique_id": "204150", "lift_type": "1", "internal_id": "abc123", "maintain_type": "1", "fault_type": "静止 - 平层 - 门关闭",
                   "deal_result": "更换门锁开关", "deal_time": "10", "deal_engineer": "张大力", "contact_name": "张三",
                   "contact_phone": "13811111111", "use_company": "湖州物业", "report_no": "ACH0844",
                   "report_time": "20261201T062700", "arrive_time": "20261201T064200", "finish_time": "20261201T073000",
                   "response_time": "15"});
    let r = s.gql(save, json!({"i": {"kind": "MAINTENANCE", "integrationId": s.integration, "deviceId": lift, "status": "IN_PROGRESS", "fields": m}})).await;
    let ticket = r.data()["saveTicket"]["id"].as_str().unwrap_or_else(|| panic!("{}", r.raw)).to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(s.dc.pushes("lift_maintain").is_empty(), "not done yet");
    s.gql(save, json!({"i": {"id": ticket, "kind": "MAINTENANCE", "status": "DONE"}})).await;
    s.dc.until("lift_maintain", || s.dc.pushes("lift_maintain").len() == 1).await;
    let lm = &s.dc.pushes("lift_maintain")[0].info;
    assert_eq!(
        (lm["internal_id"].as_str(), lm["unique_id"].as_str(), lm["device_id"].as_str()),
        (Some("abc123"), Some("204150"), Some("31103305032017010031"))
    );
    assert_eq!((lm["fault_info"].as_str(), lm["lift_type"].as_str()), (Some("正常"), Some("1")));

    let rescue = json!({"unique_id": "204150", "serial_num": "TF001", "fault_start_time": "20261201T122535", "alarm_accept_time": "20261201T122600"});
    let r = s
        .gql(save, json!({"i": {"kind": "RESCUE", "integrationId": s.integration, "deviceId": lift, "fields": rescue}}))
        .await;
    let rid = r.data()["saveTicket"]["id"].as_str().unwrap_or_else(|| panic!("{}", r.raw)).to_owned();
    s.dc.until("rescue start", || s.dc.pushes("put_ie_elev_paras").len() == 2).await;
    assert_eq!(s.dc.pushes("put_ie_elev_paras")[1].info["rt_paras"][0]["rescue_url"], "https://r.example/1");
    let rescued = json!({"primary_rescue_company": "湖州维保", "task_open_time": "20261201T122700",
                         "task_accept_time": "20261201T122800", "arrive_time": "20261201T124000",
                         "rescue_time": "20261201T125000", "trap_people": "2"});
    let r = s.gql(save, json!({"i": {"id": rid, "kind": "RESCUE", "status": "RESCUED", "fields": rescued}})).await;
    assert_eq!(r.data()["saveTicket"]["status"], "RESCUED", "{}", r.raw);
    s.dc.until("rescue end", || s.dc.pushes("put_ie_elev_paras").len() == 3).await;
    assert_eq!(s.dc.pushes("put_ie_elev_paras")[2].info["rt_paras"][0]["rescue_url"], "#");
    let r = s
        .gql(
            save,
            json!({"i": {"id": rid, "kind": "RESCUE", "status": "CLOSED", "fields": {"handle_result": "盘车放人"}}}),
        )
        .await;
    assert_eq!(r.code(), "BAD_USER_INPUT", "the seed's required fields are checked: {}", r.raw);
    let closed = json!({"handle_result": "盘车放人", "scene_describe": "停在 5-6 层之间", "fault_cause": "门锁回路断开",
                        "main_company_name": "湖州维保", "use_company_name": "湖州物业", "device_location": "3 幢",
                        "area_num": "330503"});
    let r = s.gql(save, json!({"i": {"id": rid, "kind": "RESCUE", "status": "CLOSED", "fields": closed}})).await;
    assert_eq!(r.data()["saveTicket"]["status"], "CLOSED", "{}", r.raw);
    s.dc.until("trap fault", || s.dc.pushes("put_ie_trap_fault").len() == 1).await;
    let tf = &s.dc.pushes("put_ie_trap_fault")[0].info;
    assert_eq!(
        (tf["data_source"].as_str(), tf["is_examine"].as_str(), tf["rescue_level"].as_str()),
        (Some("3"), Some("F"), Some("1"))
    );
    assert_eq!((tf["unique_id"].as_str(), tf["trap_people"].as_str()), (Some("204150"), Some("2")));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.dc.pushes("put_ie_elev_paras").len(), 3, "closing an ended rescue sends no second #");
    assert!(s.dc.errors().is_empty(), "{:?}", s.dc.errors());
}

#[tokio::test]
async fn the_data_center_pulls_and_subscribes_with_its_own_token() {
    let s = setup().await;
    s.elevator(
        "204150",
        "ELEVATOR",
        json!({"providerId": "P-1", "address": "湖州", "floors": "1,2,3", "streamUrl": "https://v.example/1.flv"}),
    )
    .await;
    s.elevator("204151", "ELEVATOR", json!({})).await;
    let (_, t) = s
        .telemetry(json!({"readings": [reading("204150", json!({"car_position": 3, "speed": 1.5, "car_status": 1,
        "car_direction": 1, "door_status": 1, "passenger_status": 1}))]}))
        .await;
    assert_eq!(t["accepted"], 1, "{t}");

    let stored = || async {
        let q = "{ inboundEvents(first: 1){ totalCount } }";
        s.gql(q, json!({})).await.data()["inboundEvents"]["totalCount"].as_i64().unwrap_or_default()
    };
    let before = stored().await;
    let bad = s.elev_api(&format!("action=get_token&app_key={IN_KEY}&app_secret=nope")).await;
    assert_eq!(bad["ret_code"], "300", "{bad}");
    assert_eq!(s.elev_api("action=get_dev_info&elev_id=204150").await["ret_code"], "301");
    assert_eq!(s.elev_api("action=get_dev_info&token=FORGED&elev_id=204150").await["ret_code"], "301");
    assert_eq!(stored().await, before, "unauthenticated calls are refused before anything is stored");
    let t = s.elev_api(&format!("action=get_token&app_key={IN_KEY}&app_secret={IN_SECRET}")).await;
    assert_eq!(t["ret_code"], "200", "{t}");
    let token = t["ret_token"].as_str().expect("token").to_owned();
    let info = s.elev_api(&format!("action=get_dev_info&token={token}&elev_id=204150")).await;
    assert_eq!(
        (info["elev_id"].as_str(), info["elev_provider_id"].as_str(), info["elev_floors"].as_str()),
        (Some("204150"), Some("P-1"), Some("1,2,3"))
    );
    let rt = s.elev_api(&format!("action=get_rt_info&token={token}&elev_id=204150")).await;
    assert_eq!(
        (rt["curr_floor"].as_str(), rt["curr_speed"].as_str(), rt["run_state"].as_str(), rt["run_trend"].as_str()),
        (Some("3"), Some("1.5"), Some("运行"), Some("上"))
    );
    assert_eq!((rt["door_state"].as_str(), rt["passenger_state"].as_str()), (Some("关"), Some("有人")));
    let url = s.elev_api(&format!("action=get_stream_url&token={token}&elev_id=204150")).await;
    assert_eq!(url["ret_data"]["stream_url"], "https://v.example/1.flv");
    let none = s.elev_api(&format!("action=get_stream_url&token={token}&elev_id=204151")).await;
    assert_eq!(none["ret_data"]["stream_url"], "");
    assert_eq!(s.elev_api(&format!("action=get_rt_info&token={token}&elev_id=000000")).await["ret_code"], "360");
    assert_eq!(s.elev_api(&format!("action=get_rt_info&token={token}")).await["ret_code"], "320");
    assert_eq!(s.elev_api(&format!("action=nope&token={token}")).await["ret_code"], "330");
    let notice = s.app.url(&format!("/hooks/{}/huzhou/elev_api?action=put_rt_notice&token={token}", s.integration));
    let malformed = s.app.http.post(&notice).body("{oops").send().await.expect("send");
    assert_eq!(malformed.status().as_u16(), 200);
    assert_eq!(malformed.json::<Value>().await.expect("json")["ret_code"], "330");

    // Another integration (here: another tenant's) does not accept this token.
    let root = s.app.admin_token().await;
    let other = tenant_with_admin(&s.app, &root).await;
    let r = s
        .app
        .configure_integration(
            &other.admin_token,
            json!({"kind": "HUZHOU_ELEVATOR", "name": "o",
        "settings": {"baseUrl": "http://127.0.0.1:9", "dcBaseUrl": "http://127.0.0.1:9"},
        "credentials": {"appKey": "a", "appSecret": "b", "inboundAppKey": IN_KEY, "inboundAppSecret": IN_SECRET}}),
        )
        .await;
    let other_id = r.data()["configureIntegration"]["id"].as_str().expect("id").to_owned();
    let u = s.app.url(&format!("/hooks/{other_id}/huzhou/elev_api?action=get_dev_info&token={token}&elev_id=204150"));
    let v: Value = s.app.http.get(u).send().await.expect("send").json().await.expect("json");
    assert_eq!(v["ret_code"], "301");
    // With its own token, the other integration does not see this tenant's elevator.
    let u = s
        .app
        .url(&format!("/hooks/{other_id}/huzhou/elev_api?action=get_token&app_key={IN_KEY}&app_secret={IN_SECRET}"));
    let v: Value = s.app.http.get(u).send().await.expect("send").json().await.expect("json");
    let other_token = v["ret_token"].as_str().expect("token").to_owned();
    for action in ["get_dev_info", "get_rt_info", "get_stream_url"] {
        let u =
            s.app.url(&format!("/hooks/{other_id}/huzhou/elev_api?action={action}&token={other_token}&elev_id=204150"));
        let v: Value = s.app.http.get(u).send().await.expect("send").json().await.expect("json");
        assert_eq!(v["ret_code"], "360", "{action}: {v}");
    }

    // 7.4: subscribe (POST JSON) -> a push each interval (1 s here) for the window (4 s).
    let started = Instant::now();
    let sub = s
        .app
        .http
        .post(&notice)
        .json(&json!({"unique_ids": "204150,204151", "subscribe": "1"}))
        .send()
        .await
        .expect("send");
    assert_eq!(sub.json::<Value>().await.expect("json")["ret_code"], "200");
    tokio::time::sleep(Duration::from_millis(6500)).await;
    let live = s.dc.pushes("put_ie_elev_things");
    assert_eq!(live.len(), 4, "one push per interval for the window, then none: {}", live.len());
    let spread = live.last().map(|p| p.at.duration_since(started)).unwrap_or_default();
    assert!(spread >= Duration::from_millis(2500), "spread over the window, not a burst: {spread:?}");
    for p in &live {
        let items = p.info["rt_data"].as_array().expect("items");
        assert_eq!(items.len(), 2, "both elevators in one request");
        let it = items.iter().find(|i| i["unique_id"] == "204150").expect("item");
        assert_eq!(
            (it["curr_floor"].as_str(), it["run_trend"].as_str(), it["door_state"].as_str()),
            (Some("3"), Some("1"), Some("2"))
        );
    }
    assert!(s.deliveries("huzhou.put_ie_elev_things").await.is_empty(), "live pushes are not stored deliveries");

    // GET form; a new subscribe extends the window (4 s here), subscribe=2 ends it early.
    let q = |sub: &str| format!("action=put_rt_notice&token={token}&unique_ids=204150&subscribe={sub}");
    let before = s.dc.pushes("put_ie_elev_things").len();
    assert_eq!(s.elev_api(&q("1")).await["ret_code"], "200");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(s.elev_api(&q("1")).await["ret_code"], "200");
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let n = s.dc.pushes("put_ie_elev_things").len();
    assert!(n - before >= 5, "pushed past the first window's 4: {}", n - before);
    assert_eq!(s.elev_api(&q("2")).await["ret_code"], "200");
    let n = s.dc.pushes("put_ie_elev_things").len();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(s.dc.pushes("put_ie_elev_things").len(), n, "nothing after subscribe=2");
    let last = s.dc.pushes("put_ie_elev_things").last().and_then(|p| p.info["rt_data"].as_array().map(Vec::len));
    assert_eq!(last, Some(1), "only the listed elevator");
    assert_eq!(s.elev_api(&q("3")).await["ret_code"], "330");
    // A too-long id of non-ASCII text is refused in the protocol's envelope, not a panic.
    let long = "电梯".repeat(30);
    let r = s.elev_api(&format!("action=put_rt_notice&token={token}&unique_ids={long}&subscribe=1")).await;
    assert_ne!(r["ret_code"], "200", "{r}");
    assert!(r["ret_msg"].as_str().is_some_and(|m| m.contains("电梯")), "{r}");

    // Raw calls are stored, without the secret or the token.
    let ev = s.gql("{ inboundEvents(first: 100){ totalCount edges { node { kind body headers } } } }", json!({})).await;
    assert!(ev.data()["inboundEvents"]["totalCount"].as_i64().unwrap_or_default() >= 10, "{}", ev.raw);
    assert!(!ev.raw.contains(IN_SECRET) && !ev.raw.contains(&token), "secrets in stored events");
    assert!(s.dc.errors().is_empty(), "{:?}", s.dc.errors());
}

/// Writes elevators straight to the table (upsertDevice would push 7.7 for each).
async fn many_elevators(s: &Setup, n: usize) -> Vec<String> {
    use sea_orm::ConnectionTrait;
    let db = &s.app.state.db;
    let ids: Vec<String> = (0..n).map(|k| format!("{:06}", 300_000 + k)).collect();
    let tenant: uuid::Uuid = s.tenant.id.parse().expect("uuid");
    let integration: uuid::Uuid = s.integration.parse().expect("uuid");
    let latest = json!({"car_position": {"value": 2, "ts": chrono::Utc::now().to_rfc3339()}});
    for ext in &ids {
        let sql = "INSERT INTO devices (id, tenant_id, integration_id, external_id, kind, name, search_text, attributes, latest, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, 'ELEVATOR', $4, $4, $5, $6, $7, $7)";
        let values: Vec<sea_orm::Value> = vec![
            uuid::Uuid::now_v7().into(),
            tenant.into(),
            integration.into(),
            ext.as_str().into(),
            json!({}).into(),
            latest.clone().into(),
            chrono::Utc::now().into(),
        ];
        db.execute_raw(sea_orm::Statement::from_sql_and_values(db.get_database_backend(), sql, values))
            .await
            .expect("insert");
    }
    ids
}

#[tokio::test]
async fn requests_hold_at_most_100_elevators() {
    let s = setup().await;
    let ids = many_elevators(&s, 150).await;
    s.run("ELEV_THINGS_DAILY").await;
    s.dc.until("both requests", || s.dc.pushes("put_ie_elev_things").len() == 2).await;
    let mut sizes: Vec<usize> =
        s.dc.pushes("put_ie_elev_things").iter().filter_map(|p| p.info["rt_data"].as_array().map(Vec::len)).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [50, 100]);

    let t = s.elev_api(&format!("action=get_token&app_key={IN_KEY}&app_secret={IN_SECRET}")).await;
    let token = t["ret_token"].as_str().expect("token");
    let notice = s.app.url(&format!("/hooks/{}/huzhou/elev_api?action=put_rt_notice&token={token}", s.integration));
    let sub = s
        .app
        .http
        .post(&notice)
        .json(&json!({"unique_ids": ids.join(","), "subscribe": 1}))
        .send()
        .await
        .expect("send");
    assert_eq!(sub.json::<Value>().await.expect("json")["ret_code"], "200");
    s.dc.until("the first round", || s.dc.pushes("put_ie_elev_things").len() >= 4).await;
    let live = s.dc.pushes("put_ie_elev_things");
    let mut seen: HashMap<String, usize> = HashMap::new();
    for p in &live[2..4] {
        let items = p.info["rt_data"].as_array().expect("items");
        assert!(items.len() <= 100, "{}", items.len());
        for i in items {
            *seen.entry(i["unique_id"].as_str().expect("id").to_owned()).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 150, "every elevator in the first round, once");
    assert!(seen.values().all(|n| *n == 1));
    assert!(s.dc.errors().is_empty(), "{:?}", s.dc.errors());
}

/// Two processes tick the same live schedule (issue 6): the claim of each slot in storage
/// makes every push go out from one of them only.
#[tokio::test]
async fn two_processes_send_each_live_push_once() {
    let s = setup().await;
    s.elevator("204160", "ELEVATOR", json!({})).await;
    s.elevator("204161", "ELEVATOR", json!({})).await;
    let mut env = vec![("RUST_LOG", "warn,jobs::live=debug".to_owned())];
    if let Some(redis) = std::env::var("TEST_REDIS_URL").ok().filter(|u| !u.is_empty()) {
        env.push(("REDIS_URL", redis));
    }
    let child = crate::utils::child::Child::start(&s.app, "worker", &env);
    s.dc.until("the second process ticking", || child.log().contains("huzhou live ticker started")).await;

    let t = s.elev_api(&format!("action=get_token&app_key={IN_KEY}&app_secret={IN_SECRET}")).await;
    let token = t["ret_token"].as_str().expect("token");
    let q = format!("action=put_rt_notice&token={token}&unique_ids=204160,204161&subscribe=1");
    assert_eq!(s.elev_api(&q).await["ret_code"], "200");
    // A push each interval (1 s) for the window (4 s), from either process.
    tokio::time::sleep(Duration::from_millis(6500)).await;
    let live = s.dc.pushes("put_ie_elev_things");
    assert_eq!(live.len(), 4, "each push once, not once per process: {}\n{}", live.len(), child.log());
    for p in &live {
        assert_eq!(p.info["rt_data"].as_array().map(Vec::len), Some(2), "both elevators in one request");
    }
    assert!(s.dc.errors().is_empty(), "{:?}", s.dc.errors());
}

/// The live schedule's storage: a slot reads its due pushes together with the live state
/// of the subscribing tenant's elevators; an ended subscription keeps its row, ended, so
/// a slot read before the end sees it (`changed_since`) before sending.
#[tokio::test]
async fn a_slot_reads_live_state_with_its_pushes_and_sees_ends_written_after_its_read() {
    use adapters::vendors::huzhou::HuzhouRepo;
    let s = setup().await;
    s.elevator("204150", "ELEVATOR", json!({})).await;
    let (status, _) = s.telemetry(json!({"readings": [reading("204150", json!({"car_position": 7}))]})).await;
    assert_eq!(status, 200);
    // Another tenant's elevator with the same unique code is not this subscription's.
    let root = s.app.admin_token().await;
    let other = crate::utils::tenant_with_admin(&s.app, &root).await;
    let r = s
        .app
        .configure_integration(
            &other.admin_token,
            json!({"kind": "HUZHOU_ELEVATOR", "name": "other", "settings": {"baseUrl": "http://127.0.0.1:9", "dcBaseUrl": "http://127.0.0.1:9"},
                   "credentials": {"appKey": "k", "appSecret": "s", "inboundAppKey": "ik", "inboundAppSecret": "is"}}),
        )
        .await;
    let other_integration = r.data()["configureIntegration"]["id"].as_str().expect("id").to_owned();
    let q = "mutation($i:UpsertDeviceInput!){ upsertDevice(input:$i){ id } }";
    let i = json!({"integrationId": other_integration, "externalId": "204151", "kind": "ELEVATOR", "name": "x"});
    s.app.gql(Some(&other.admin_token), q, json!({"i": i})).await.data();

    let repo = adapters::db::repos::SqlHuzhouRepo::new(s.app.state.db.clone());
    let tenant: domain::ids::TenantId = s.tenant.id.parse().expect("tenant");
    let integration: domain::ids::IntegrationId = s.integration.parse().expect("integration");
    // 204151 is the other tenant's (and of its integration), 999999 no device at all.
    let ids: Vec<String> = ["204150", "204151", "999999"].map(str::to_owned).to_vec();
    assert_eq!(repo.subscribe(tenant, integration, &ids, 1_000, 1_000, 10_000).await.expect("subscribe"), 3);
    let due = repo.due_in(2_000, 2_100).await.expect("due");
    let mine: Vec<_> = due.iter().filter(|d| d.integration_id == integration).collect();
    assert_eq!(mine.len(), 1, "{due:?}");
    assert_eq!((mine[0].unique_id.as_str(), mine[0].due_ms, mine[0].tenant_id), ("204150", 2_000, tenant));
    assert_eq!(mine[0].latest["car_position"]["value"], 7, "{:?}", mine[0].latest);
    assert!(repo.due_in(2_100, 2_200).await.expect("due").iter().all(|d| d.integration_id != integration));

    // Ended at 2,500: no longer due, and found as changed by a slot that read before.
    assert_eq!(repo.unsubscribe(tenant, integration, &ids[..1], 2_500).await.expect("end"), 1);
    assert_eq!(repo.unsubscribe(tenant, integration, &ids[..1], 2_600).await.expect("end"), 0, "already ended");
    let changed = repo.changed_since(2_400).await.expect("changed");
    let w = changed.iter().find(|w| w.integration_id == integration && w.unique_id == "204150").expect("window");
    assert!(w.covers(2_000) && !w.covers(3_000), "{w:?}");
    assert!(repo.due_in(3_000, 3_100).await.expect("due").iter().all(|d| d.integration_id != integration));
    // Another tenant cannot end this tenant's subscription.
    assert_eq!(repo.unsubscribe(other.id.parse().expect("t"), integration, &ids[1..2], 2_500).await.expect("end"), 0);
    // The ended row is kept a minute after its end, then pruned.
    repo.prune(2_500 + 30_000).await.expect("prune");
    assert!(repo.changed_since(2_400).await.expect("changed").iter().any(|w| w.unique_id == "204150"));
    repo.prune(10_000 + 61_000).await.expect("prune");
    assert!(repo.changed_since(0).await.expect("changed").iter().all(|w| w.integration_id != integration));
}

/// 7.7 pushes of one elevator arrive in the order of its changes: round after round, the
/// first push of three quick renames fails once (HTTP 500) and is retried, and still the
/// later names wait for it instead of overtaking it.
#[tokio::test]
async fn parameter_pushes_of_one_elevator_arrive_in_the_order_of_the_changes() {
    let s = setup().await;
    let q = "mutation($i:UpsertDeviceInput!){ upsertDevice(input:$i){ id } }";
    let mut sent = Vec::new();
    for round in 0..20 {
        s.dc.fail_next("put_ie_elev_paras", "ord-1", 1);
        for step in 0..3 {
            let name = format!("round {round} step {step}");
            let i = json!({"integrationId": s.integration, "externalId": "ord-1", "kind": "ELEVATOR", "name": name,
                           "attributes": {"providerId": "P-1", "address": "湖州市"}});
            let r = s.gql(q, json!({"i": i})).await;
            assert!(r.data()["upsertDevice"]["id"].is_string(), "{}", r.raw);
            sent.push(name);
        }
        let want = sent.len();
        s.dc.until("the round's pushes", || s.dc.pushes("put_ie_elev_paras").len() == want).await;
    }
    let arrived: Vec<String> =
        s.dc.pushes("put_ie_elev_paras")
            .iter()
            .map(|p| p.info["rt_paras"][0]["elev_name"].as_str().unwrap_or_default().to_owned())
            .collect();
    assert_eq!(arrived, sent, "7.7 pushes arrived out of the order of the changes");
    assert_eq!(s.dc.all("put_ie_elev_paras").len(), sent.len() + 20, "one failed attempt per round");
    assert!(s.dc.errors().is_empty(), "{:?}", s.dc.errors());
}

/// Refuses every send: the token test below sends nothing.
struct NoSends;

#[async_trait::async_trait]
impl domain::deliveries::DeliverySender for NoSends {
    async fn send(&self, d: &domain::deliveries::Delivery, _fresh: bool) -> domain::deliveries::SendReport {
        domain::deliveries::SendReport {
            request: d.kind.to_string(),
            http_status: None,
            vendor_code: None,
            vendor_message: None,
            verdict: domain::deliveries::Verdict::Permanent("no sends in this test".into()),
        }
    }
}

/// 7.1: a token the data center got from `get_token` works for exactly 2 hours on the
/// service's clock: accepted a millisecond before its lifetime runs out, refused at it.
#[tokio::test]
async fn an_inbound_token_expires_exactly_when_its_lifetime_runs_out() {
    use adapters::db::repos::{SqlDeviceRepo, SqlHuzhouRepo, SqlIntegrationRepo};
    use adapters::vendors::huzhou::{ApiRefusal, HuzhouPorts, HuzhouService};
    use chrono::{TimeZone, Utc};
    use domain::ManualClock;
    use domain::integrations::IntegrationRepo;

    let s = setup().await;
    let db = s.app.state.db.clone();
    let tenant: domain::ids::TenantId = s.tenant.id.parse().expect("tenant");
    let id: domain::ids::IntegrationId = s.integration.parse().expect("integration");
    let integration = SqlIntegrationRepo::new(db.clone()).get(tenant, id).await.expect("get").expect("integration");
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).single().expect("t0");
    let clock = Arc::new(ManualClock::new(t0));
    let huzhou = HuzhouService::new(HuzhouPorts {
        repo: Arc::new(SqlHuzhouRepo::new(db.clone())),
        devices: Arc::new(SqlDeviceRepo::new(db.clone())),
        integrations: Arc::new(SqlIntegrationRepo::new(db)),
        alarms: s.app.state.alarms.clone(),
        deliveries: s.app.state.deliveries.clone(),
        sender: Arc::new(NoSends),
        clock: clock.clone(),
    });
    let credentials = json!({"inboundAppKey": IN_KEY, "inboundAppSecret": IN_SECRET});
    let credentials = credentials.as_object().expect("object");
    let token = huzhou.issue_token(&integration, credentials, Some(IN_KEY), Some(IN_SECRET)).await.expect("token");

    let lifetime = chrono::Duration::hours(2);
    assert_eq!(huzhou.check_token(&integration, Some(&token)).await, Ok(()));
    clock.set(t0 + lifetime - chrono::Duration::milliseconds(1));
    assert_eq!(huzhou.check_token(&integration, Some(&token)).await, Ok(()), "valid until its last millisecond");
    clock.set(t0 + lifetime);
    assert_eq!(huzhou.check_token(&integration, Some(&token)).await, Err(ApiRefusal::BadToken), "expired");
    clock.set(t0 + lifetime + chrono::Duration::minutes(1));
    assert_eq!(huzhou.check_token(&integration, Some(&token)).await, Err(ApiRefusal::BadToken));
    // A token issued on the moved clock lives two hours from then.
    let fresh = huzhou.issue_token(&integration, credentials, Some(IN_KEY), Some(IN_SECRET)).await.expect("token");
    assert_eq!(huzhou.check_token(&integration, Some(&fresh)).await, Ok(()));
}

#[tokio::test]
async fn old_traffic_records_are_pruned_after_the_retention_period() {
    use sea_orm::{ConnectionTrait, Statement};
    let s = setup().await;
    // An applied inbound event, a delivered push with its attempt, audit entries.
    let t = s.elev_api(&format!("action=get_token&app_key={IN_KEY}&app_secret={IN_SECRET}")).await;
    assert_eq!(t["ret_code"], "200", "{t}");
    s.elevator("204150", "ELEVATOR", json!({})).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s.deliveries("huzhou.put_ie_elev_paras").await.iter().any(|d| d["state"] == "SUCCEEDED") {
        assert!(Instant::now() < deadline, "the 7.7 push never succeeded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let db = &s.app.state.db;
    let count = |table: &'static str| async move {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.expect("count");
        row.and_then(|r| r.try_get::<i64>("", "n").ok()).unwrap_or_default()
    };
    let before = (count("inbound_events").await, count("delivery_attempts").await, count("audit_log").await);
    assert!(before.0 >= 1 && before.1 >= 1 && before.2 >= 1, "{before:?}");
    let now = chrono::Utc::now();
    // Within the period (90 days by default) nothing goes.
    let kept = s.app.state.scheduler.apply_retention(now).await.expect("prune").expect("configured");
    assert_eq!(kept, domain::retention::Pruned::default());
    // 91 days on, all of it goes.
    let gone = s
        .app
        .state
        .scheduler
        .apply_retention(now + chrono::Duration::days(91))
        .await
        .expect("prune")
        .expect("configured");
    assert_eq!(
        (gone.inbound_events, gone.delivery_attempts, gone.audit_entries),
        (before.0 as u64, before.1 as u64, before.2 as u64)
    );
    assert_eq!((count("inbound_events").await, count("delivery_attempts").await, count("audit_log").await), (0, 0, 0));
}

/// A subscribing `put_rt_notice` is answered once stored and applied from the inbound
/// backlog. One that a process stored and stopped before applying is applied by the
/// sweep, once; a pull left so was never answered and is not applied later.
#[tokio::test]
async fn a_notice_left_unapplied_by_a_stopped_process_is_swept_up_once() {
    use domain::events::NewInboundEvent;
    let s = setup().await;
    s.elevator("204170", "ELEVATOR", json!({})).await;
    let tenant: domain::ids::TenantId = s.tenant.id.parse().expect("tenant");
    let left = |kind: &str, query: &str, body: &str| NewInboundEvent {
        integration_id: s.integration.parse().expect("integration"),
        protocol: "HUZHOU_ELEVATOR".into(),
        kind: kind.into(),
        dedup_key: format!("elev_api:left-{kind}"),
        headers: json!({"method": if body.is_empty() { "GET" } else { "POST" }, "query": query, "content-type": null}),
        body: body.into(),
        received_at: chrono::Utc::now() - chrono::Duration::minutes(30),
    };
    let events = &s.app.state.events;
    let notice = left("put_rt_notice", "action=put_rt_notice&token=***", r#"{"unique_ids":"204170","subscribe":"1"}"#);
    events.record(tenant, notice).await.expect("stored");
    let pull = left("get_rt_info", "action=get_rt_info&elev_id=204170&token=***", "");
    events.record(tenant, pull).await.expect("stored");
    let backlog = &s.app.state.inbound_backlog;
    assert_eq!(backlog.sweep(chrono::Utc::now()).await.expect("sweep"), 2);
    s.dc.until("the swept subscription's pushes", || s.dc.pushes("put_ie_elev_things").len() >= 2).await;
    let q = "query($k:String){ inboundEvents(filter:{kind:$k}){ edges{ node{ state } } } }";
    let setup = &s;
    let state = |kind: &'static str| async move {
        let r = setup.gql(q, json!({"k": kind})).await;
        r.data()["inboundEvents"]["edges"][0]["node"]["state"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(state("put_rt_notice").await, "PROCESSED");
    assert_eq!(state("get_rt_info").await, "IGNORED");
    assert_eq!(backlog.sweep(chrono::Utc::now()).await.expect("sweep"), 0, "applied once");
    let items = s.dc.pushes("put_ie_elev_things")[0].info["rt_data"].clone();
    assert_eq!(items[0]["unique_id"], "204170", "{items}");

    // Asked now, a subscription is answered at once and pushed from then on; the same
    // request resent is stored and applied once.
    s.elevator("204171", "ELEVATOR", json!({})).await;
    let t = s.elev_api(&format!("action=get_token&app_key={IN_KEY}&app_secret={IN_SECRET}")).await;
    let token = t["ret_token"].as_str().expect("token").to_owned();
    let url = s.app.url(&format!("/hooks/{}/huzhou/elev_api?action=put_rt_notice&token={token}", s.integration));
    let body = json!({"unique_ids": "204171", "subscribe": "1"});
    for _ in 0..2 {
        let r = s.app.http.post(&url).json(&body).send().await.expect("send");
        assert_eq!(r.json::<Value>().await.expect("json")["ret_code"], "200");
    }
    let has = |p: &crate::utils::fake::huzhou::Push| {
        p.info["rt_data"].as_array().is_some_and(|a| a.iter().any(|i| i["unique_id"] == "204171"))
    };
    s.dc.until("the new subscription's pushes", || {
        s.dc.pushes("put_ie_elev_things").iter().filter(|p| has(p)).count() >= 2
    })
    .await;
    let r = s.gql(q, json!({"k": "put_rt_notice"})).await;
    let states: Vec<&str> = r.data()["inboundEvents"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["state"].as_str())
        .collect();
    assert_eq!(states, ["PROCESSED", "PROCESSED"], "the swept one and the new one, once each");
    assert!(s.dc.errors().is_empty(), "{:?}", s.dc.errors());
}
