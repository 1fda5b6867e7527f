//! The Dingding open API (`PROTOCOLS.md` 3) as a fake: it issues tokens for the test
//! client id and secret, refuses a call without a valid token (101) or on the wrong API
//! version, requires each state-changing interface's fields (seed 002), refuses plaintext
//! passwords and decrypts `encrypted_password` with the token's first 16 bytes, as the
//! real one does; refuses an interface called with a method its section does not name;
//! keeps the account's work orders (10.x: only a 待分配 one may be edited); and answers each
//! interface with data shaped like the seed's examples.

use super::{Answer, Exchange, FakeVendor, Judgement, Request};
use adapters::vendors::dingding::sign;
use axum::http::Method;
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long a call that must come may take.
const WAIT: Duration = Duration::from_secs(15);

pub const CLIENT_ID: &str = "cid-test";
pub const CLIENT_SECRET: &str = "csecret-test";

/// One call the fake accepted: its parameters (token removed), the decrypted password if
/// one was sent, and the token used.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub params: Map<String, Value>,
    pub password: Option<String>,
    pub token: String,
}

#[derive(Default)]
struct Inner {
    valid: Vec<String>,
    issued: usize,
    /// The next business call is answered ErrNo 102 and its token revoked.
    expire_next: bool,
    next_password_id: i64,
    next_service: i64,
    rejected: Vec<String>,
    /// The account's work orders (10.4 `ticket_info` shape).
    work_orders: Vec<Value>,
    /// Devices of dd-home-1 besides the four it starts with (5.5 entries).
    more_devices: Vec<Value>,
    /// The homes the account holds, as `add_home` and the calls after it left them:
    /// `{home fields..., "rooms": {room_id: {room_name, room_description}}}`.
    homes: std::collections::BTreeMap<String, Value>,
}

/// The repair order the account starts with (10.5's example).
fn first_work_order() -> Value {
    json!({
        "ticket_id": "20160511_81299", "ticket_state": 3, "service_type": 2, "service_target": 1,
        "relate_home": {"home_id": "dd-home-1", "rooms": [{"room_id": "dd-room-a", "room_name": "A"}]},
        "ticket_description": "维修",
        "confirm": {"name": "测试", "phone": "18588787458", "date": 1464998400000i64, "time": "102", "note": "测试"}
    })
}

/// The fake Dingding open API.
#[derive(Clone)]
pub struct FakeDingding {
    pub server: FakeVendor,
    inner: Arc<Mutex<Inner>>,
}

/// `/openapi/{version}/{name}` of a request.
fn route(r: &Request) -> Option<(&str, &str)> {
    r.path.strip_prefix("/openapi/")?.split_once('/')
}

/// The parameters of a call: a POST's JSON object, a GET's query.
fn params(r: &Request) -> Option<Map<String, Value>> {
    if r.method == Method::POST {
        match r.json() {
            Value::Object(m) if r.is_json() => Some(m),
            _ => None,
        }
    } else {
        Some(r.query.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
    }
}

fn call(r: &Request) -> Option<Call> {
    let mut params = params(r)?;
    let token = params.remove("access_token").and_then(|t| t.as_str().map(str::to_owned)).unwrap_or_default();
    let password =
        params.get("encrypted_password").and_then(Value::as_str).and_then(|ct| sign::decrypt_password(&token, ct).ok());
    Some(Call { method: r.method.clone(), params, password, token })
}

fn err(no: i64, msg: &str) -> Judgement {
    Judgement::Refuse(Answer::ok(json!({"ErrNo": no, "ErrMsg": msg})))
}

fn ok(mut v: Value) -> Judgement {
    v["ErrNo"] = json!(0);
    v["ErrMsg"] = json!("");
    Judgement::Accept(Some(Answer::ok(v)))
}

/// The methods an interface's section names (seed 002), where the fake checks them.
fn methods(name: &str) -> &'static [Method] {
    const GET: &[Method] = &[Method::GET];
    const POST: &[Method] = &[Method::POST];
    match name {
        // 5.4: "支持 GET 与 POST".
        "find_home_device" => &[Method::GET, Method::POST],
        "get_home_info"
        | "count_home_info"
        | "search_home_info"
        | "get_center_info_arr"
        | "get_elecollector_info_arr"
        | "get_ticket_by_id"
        | "get_ticket_by_home" => GET,
        "get_device_uuid"
        | "update_password_without_center"
        | "add_password_without_center"
        | "add_ticket"
        | "update_ticket"
        | "delete_ticket"
        | "update_ticket_state" => POST,
        _ => &[],
    }
}

/// 6.14/6.15 `permission_end`: after the next full hour but one.
fn code_end_ok(end: &Value) -> bool {
    let end = end.as_i64().or_else(|| end.as_str().and_then(|s| s.parse().ok())).unwrap_or(0);
    let now = chrono::Utc::now().timestamp();
    end >= now - now.rem_euclid(3600) + 2 * 3600
}

/// Fields each state-changing interface must carry (seed 002).
fn required(name: &str) -> &'static [&'static str] {
    match name {
        "add_home" => &["home_id", "home_name", "country", "city", "zone", "location", "block"],
        "add_room" | "update_room" => &["home_id", "room_id", "room_name", "room_description"],
        "update_home" | "del_home" => &["home_id"],
        "add_rooms" => &["home_id", "rooms"],
        "del_room" => &["room_id"],
        "add_password" => &["uuid", "encrypted_password", "name", "is_default"],
        "update_password" => &["uuid", "password_id", "encrypted_password", "name"],
        "delete_password" | "frozen_password" | "unfrozen_password" => &["uuid", "password_id"],
        "add_password_without_center" => &["uuid", "phonenummer", "CMD", "name"],
        "update_password_without_center" => &["uuid", "phonenummer", "password_id", "name"],
        "get_device_uuid" => &["sn"],
        "find_home_device" => &["home_id"],
        "update_ticket" => &["ticket_id", "room_ids"],
        "delete_ticket" => &["ticket_id"],
        "add_ticket" => &["home_id", "service_target", "service_type", "room_ids", "subscribe"],
        "update_ticket_state" => &["ticket_id", "ticket_state"],
        "elemeter_switch_on" | "elemeter_switch_off" | "elemeter_read" => &["uuid"],
        "elemeter_charge" => &["uuid", "amount", "trade_num"],
        "elemeter_update_overdraft" => &["uuid", "overdraft"],
        "elemeter_set_eleprice_way" => &["uuid", "eleprice_way"],
        "read_watermeter" => &["uuid", "manufactory"],
        "auth_room" | "unauth_room" => &["phone", "home_id", "room_ids"],
        _ => &[],
    }
}

/// The vendor's checks, then its answer.
fn judge(g: &mut Inner, r: &Request) -> Judgement {
    let Some((version, name)) = route(r) else {
        return Judgement::Refuse(Answer::status(axum::http::StatusCode::NOT_FOUND, json!({})));
    };
    let Some(mut params) = params(r) else {
        return err(14001, "Content-Type must be application/json with a JSON object body");
    };
    if name == "access_token" {
        if params.get("client_id") != Some(&json!(CLIENT_ID))
            || params.get("client_secret") != Some(&json!(CLIENT_SECRET))
        {
            return err(14001, "bad client");
        }
        let token = format!("t{:02}x{}", g.issued, "0123456789abcdefghij");
        g.issued += 1;
        g.valid.push(token.clone());
        let expires = chrono::Utc::now().timestamp() + 7200;
        return ok(json!({"access_token": token, "expires_time": expires}));
    }
    let v2 = matches!(name, "auth_room" | "unauth_room" | "app_token");
    if (version == "v2") != v2 {
        g.rejected.push(format!("{name} on {version}"));
        return err(15007, "wrong version");
    }
    let allowed = methods(name);
    if !allowed.is_empty() && !allowed.contains(&r.method) {
        g.rejected.push(format!("{name} by {}", r.method));
        return err(14001, "method not allowed");
    }
    let token = params.remove("access_token").and_then(|t| t.as_str().map(str::to_owned)).unwrap_or_default();
    if !g.valid.contains(&token) {
        return err(101, "token invalid");
    }
    if g.expire_next {
        g.expire_next = false;
        g.valid.retain(|t| *t != token);
        return err(102, "token expired");
    }
    for field in required(name) {
        if params.get(*field).is_none_or(Value::is_null) {
            g.rejected.push(format!("{name} without {field}"));
            return err(14001, "missing parameter");
        }
    }
    if params.contains_key("password") {
        g.rejected.push(format!("{name} with a plaintext password"));
        return err(14001, "plaintext password");
    }
    if let Some(ct) = params.get("encrypted_password").and_then(Value::as_str)
        && sign::decrypt_password(&token, ct).is_err()
    {
        g.rejected.push(format!("{name} with an undecryptable password"));
        return err(14001, "cannot decrypt");
    }
    // 6.15: an end after the next full hour but one, except for the admin code (3000).
    if name == "update_password_without_center"
        && params.get("password_id") != Some(&json!(3000))
        && !params.get("permission_end").is_some_and(code_end_ok)
    {
        g.rejected.push(format!("{name} without a valid permission_end"));
        return err(14001, "permission_end");
    }
    if name == "update_ticket" && !params.get("room_ids").is_some_and(Value::is_array) {
        g.rejected.push(format!("{name} with room_ids not an array"));
        return err(14001, "room_ids");
    }
    answer(g, name, &params)
}

/// The account's homes and rooms as the home and room calls change them (5.1-5.9): an
/// unknown home or room is refused as the real one refuses it.
fn homes(g: &mut Inner, name: &str, params: &Map<String, Value>) -> Option<Judgement> {
    let text = |k: &str| params.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let home_id = text("home_id");
    let missing = || Some(err(15006, "no such home or room"));
    match name {
        "add_home" => {
            let mut h = params.clone();
            h.insert("rooms".into(), json!({}));
            g.homes.insert(home_id, Value::Object(h));
            None
        }
        "update_home" => {
            let h = g.homes.get_mut(&home_id)?.as_object_mut()?;
            for k in ["home_name", "location", "sp_state", "description", "block"] {
                if let Some(v) = params.get(k) {
                    h.insert(k.into(), v.clone());
                }
            }
            None
        }
        "del_home" => {
            if g.homes.remove(&home_id).is_none() {
                return missing();
            }
            g.next_service += 1;
            Some(ok(json!({"serviceid": format!("svc-{}", g.next_service)})))
        }
        "add_room" | "update_room" => {
            let rooms = g.homes.get_mut(&home_id)?.get_mut("rooms")?.as_object_mut()?;
            if name == "update_room" && !rooms.contains_key(&text("room_id")) {
                return missing();
            }
            rooms.insert(
                text("room_id"),
                json!({"room_name": text("room_name"), "room_description": text("room_description")}),
            );
            None
        }
        "add_rooms" => {
            let list = params.get("rooms")?.as_array()?.clone();
            let rooms = g.homes.get_mut(&home_id)?.get_mut("rooms")?.as_object_mut()?;
            for r in list {
                let id = r.get("room_id").and_then(Value::as_str).unwrap_or_default().to_owned();
                rooms.insert(id, json!({"room_name": r["room_name"], "room_description": r["room_description"]}));
            }
            None
        }
        "del_room" => {
            let room = text("room_id");
            let found = g
                .homes
                .iter_mut()
                .filter(|(id, _)| home_id.is_empty() || **id == home_id)
                .filter_map(|(_, h)| h.get_mut("rooms")?.as_object_mut())
                .any(|rooms| rooms.remove(&room).is_some());
            if found { None } else { missing() }
        }
        _ => None,
    }
}

/// The seed's answer to an accepted call.
fn answer(g: &mut Inner, name: &str, params: &Map<String, Value>) -> Judgement {
    if matches!(name, "update_home" | "update_room")
        && !g.homes.contains_key(params.get("home_id").and_then(Value::as_str).unwrap_or_default())
    {
        return err(15006, "no such home");
    }
    if let Some(j) = homes(g, name, params) {
        return j;
    }
    match name {
        "add_password" => {
            g.next_password_id += 1;
            ok(json!({"id": 1000 + g.next_password_id}))
        }
        "add_password_without_center" => ok(json!({"id": "3025", "password": "654321", "code": "7788990011"})),
        "update_password_without_center" => {
            ok(json!({"id": params.get("password_id"), "password": "135246", "code": "5566778899"}))
        }
        "get_device_uuid" => {
            let sn = params.get("sn").and_then(Value::as_str).unwrap_or_default();
            ok(json!({"result": {"uuid": format!("uuid-of-{sn}"), "sn": sn, "center_uuid": "sync-gw", "type": "lock"}}))
        }
        "find_home_device" => {
            let home = params.get("home_id").and_then(Value::as_str).unwrap_or_default();
            if home != "dd-home-1" {
                return err(15006, "no such home");
            }
            ok(json!({"result": [
                {"type": "gateway", "sn": "cnjl0003", "uuid": "sync-gw", "room_id": ""},
                {"type": "room_lock", "sn": "lkjl0007", "uuid": "sync-lock", "room_id": "dd-room-a"}
            ]}))
        }
        "get_home_info" => {
            let by_home = params.get("home_id").and_then(Value::as_str);
            let by_device = params.get("uuid").and_then(Value::as_str);
            if by_device.is_some_and(|u| u.starts_with("wm") && params.get("manufactory").is_none()) {
                return err(14001, "a water meter needs manufactory");
            }
            if by_home.is_some_and(|h| h != "dd-home-1")
                || by_device.is_some_and(|u| !u.starts_with("sync-") && !u.starts_with("wm"))
            {
                return err(15006, "no such home");
            }
            ok(json!({"result": {
                "user_id": "13811417019", "home_id": "dd-home-1", "home_name": "FYBJ1607050013", "home_type": 1,
                "country": "中国", "province": "北京市", "city": "北京市", "zone": "昌平区",
                "location": "西环里小区27号楼3单元6层602室", "block": "西环里小区",
                "rooms": [{"room_name": "A", "room_id": "dd-room-a"}],
                "devices": [{"sn": "lkjl0007", "center_uuid": "sync-gw", "type": "lock", "description": null,
                             "room_id": "dd-room-a", "is_out": true, "uuid": "sync-lock"}]
            }}))
        }
        // Three homes; a filter narrows them to the one in 昌平区.
        "count_home_info" => {
            let filtered = ["home_name", "city", "zone", "block", "location"].iter().any(|k| params.contains_key(*k));
            ok(json!({"count": if filtered { 1 } else { 3 }}))
        }
        "get_center_info_arr" => ok(json!({"centers": [{
            "mac": "00:11:22:33:44:55", "sn": "cnjl0003151200005462", "bind_time": 1467686548, "onoff_line": 1,
            "onoff_time": 1467703222, "uuid": "sync-gw", "name": "gateway 5462", "model": "DSGW-010A",
            "model_name": "G2", "brand": "dding",
            "versions": {"kernel_version": "0.0.3.0", "zigbee_version": "1.0.0.2", "app_version": "0.1.4.12"}
        }]})),
        "get_elecollector_info_arr" => ok(json!({"elecollectors": [{
            "onoff_line": 1, "onoff_time": 1467703222761i64, "uuid": "7a271f01be337398e23fa7b4eed55dcb",
            "mac": "67DCD83DCFC1", "sn": "emjl0001160500000021", "bind_time": 1467686548346i64, "status": 1,
            "power": -1, "versions": {"zigbee_version": "3.1.3.2", "app_version": "1.2.3.0"},
            "center_description": "5722 小网关", "center_uuid": "73bdf3ed53313e82debce5c830b8069d",
            "lqi": 117, "lqi_refreshtime": 1467702632100i64, "model": "DSEM-B01", "model_name": "B01"
        }]})),
        "update_ticket_state" | "update_ticket" | "delete_ticket" | "get_ticket_by_id" => work_order(g, name, params),
        n if (n.starts_with("elemeter_") && !["fetch", "count", "query", "get_"].iter().any(|w| n.contains(w)))
            || n == "read_watermeter" =>
        {
            g.next_service += 1;
            ok(json!({"serviceid": format!("svc-{}", g.next_service)}))
        }
        "search_home_info" => {
            let offset = params.get("offset").and_then(Value::as_str).unwrap_or("0");
            if offset != "0" {
                return ok(json!({"home_list": []}));
            }
            ok(json!({"home_list": [{
                "home_id": "dd-home-1", "home_name": "FYBJ1607050013", "home_type": 1, "country": "中国",
                "city": "北京市", "zone": "昌平区", "block": "西环里小区", "location": "27号楼3单元602室",
                "rooms": [{"room_name": "A", "room_id": "dd-room-a"}],
                "devices": []
            }]}))
        }
        "find_home_devices" => {
            let mut devices = vec![
                json!({"type": "gateway", "sn": "cnjl0003", "uuid": "sync-gw", "room_id": ""}),
                json!({"type": "room_lock", "sn": "lkjl0007", "uuid": "sync-lock", "room_id": "dd-room-a"}),
                json!({"type": "elemeter", "sn": "em01", "uuid": "sync-meter", "room_id": "dd-room-a"}),
                json!({"type": "watermeter", "sn": "wm01", "uuid": "sync-water", "room_id": "dd-room-a", "manufactory": "cy"}),
            ];
            devices.extend(g.more_devices.iter().cloned());
            ok(json!({"result": {"dd-home-1": devices}}))
        }
        "get_elecollector_info" => ok(json!({"uuid": params.get("uuid"), "sn": "emjl0001160500000021",
            "onoff_line": 1, "lqi": 117, "name": "collector 21", "model": "DSEM-B01",
            "versions": {"zigbee_version": "3.1.3.2"}})),
        "get_water_gateway_info" => {
            ok(json!({"info": {"uuid": params.get("uuid"), "onoff": 0, "manufactory": "cy", "sn": "wg01"}}))
        }
        "get_center_info" => ok(json!({"uuid": "sync-gw", "sn": "cnjl0003", "onoff_line": 1, "name": "gateway 5462",
            "versions": {"app_version": "0.1.4.12"}})),
        "get_lock_info" => {
            ok(json!({"uuid": "sync-lock", "sn": "lkjl0007", "onoff_line": "2", "power": "64", "lqi": 117,
            "name": "lock 602", "center_uuid": "sync-gw", "versions": {"kernel_version": "0.0.3.0"}}))
        }
        "get_elemeter_info" => {
            ok(json!({"uuid": "sync-meter", "onoff_line": 1, "name": "meter", "consume_amount": "12.5",
            "enable_state": 1, "versions": {"elemeter_potocol_version": "07"}}))
        }
        "get_watermeter_info" => {
            ok(json!({"info": {"uuid": "sync-water", "onoff": 1, "manufactory": "cy", "meter_type": 1}}))
        }
        "fetch_passwords" => ok(json!({"passwords": [
            {"id": 999, "is_default": 1, "pwd_state": 2, "operation": 1, "operation_stage": 3, "name": "admin",
             "send_to": "", "permission": {"begin": 0, "end": 0, "status": 1}},
            {"id": "1002", "is_default": 0, "pwd_state": "5", "operation": 4, "operation_stage": 2, "description": "5108",
             "name": "tenant", "send_to": "13800000000", "permission": {"begin": 1700000000, "end": 1900000000, "status": 2}}
        ]})),
        "get_default_password_plaintext" => ok(json!({"password": "112233"})),
        "get_dynamic_password_plaintext" => ok(json!({"password": "445566", "invalid_time": 1900000000000i64})),
        "get_lock_events" => ok(
            json!({"lock_events": [{"time": 1467785486059i64, "eventid": 1, "source": 2, "sourceid": 1001, "source_name": "tenant"}]}),
        ),
        "count_lock_events" | "count_device_op_log" | "device_count_exceptions" | "elemeter_count_power_history" => {
            ok(json!({"count": 1}))
        }
        "search_device_op_log" => ok(json!({"op_list": [{"op_id": "20001", "timestamp": 1467785486059i64}]})),
        "device_fetch_exceptions" => {
            ok(json!({"device_exceptions": [{"type": 9106, "uuid": "x", "time": 1497507613599i64}]}))
        }
        "elemeter_fetch_power_history" => ok(json!({"history": [{"consume_amount": 0.16, "time": 1460801268345i64}]})),
        "elemeter_charge_query" => ok(json!({"charge_stage": 3})),
        "get_meter_record" => ok(
            json!({"records": [{"type": 1, "uuid": "wm", "manufactory": "cy", "device_amount": 7, "ctime": "2017-04-26T06:57:53.027Z", "room_amount": 7}]}),
        ),
        "count_meter_record" => ok(json!({"count": 1})),
        "app_token" => ok(json!({"token": "app-token-1"})),
        "get_ticket_by_home" => {
            let home = params.get("home_id").and_then(Value::as_str).unwrap_or_default();
            let kind: Option<i64> = params.get("service_type").and_then(Value::as_str).and_then(|k| k.parse().ok());
            let list: Vec<Value> = g
                .work_orders
                .iter()
                .filter(|t| t["relate_home"]["home_id"] == home && t["service_type"].as_i64() == kind)
                .cloned()
                .collect();
            if list.is_empty() {
                // Accepted, and answered "no record".
                return Judgement::Accept(Some(Answer::ok(json!({"ErrNo": 15006, "ErrMsg": "no record"}))));
            }
            ok(json!({"home_ticket_list": list}))
        }
        _ => ok(json!({})),
    }
}

/// 10.2, 10.3, 10.4, 10.6 on the account's work orders: an unknown id is "no record"; only
/// a 待分配 (2) order may be edited (10.2).
fn work_order(g: &mut Inner, name: &str, params: &Map<String, Value>) -> Judgement {
    let id = params.get("ticket_id").and_then(Value::as_str).unwrap_or_default();
    let Some(at) = g.work_orders.iter().position(|t| t["ticket_id"] == id) else {
        return err(15006, "no record");
    };
    let order = &mut g.work_orders[at];
    match name {
        "get_ticket_by_id" => ok(json!({"ticket_info": order})),
        "update_ticket_state" => {
            order["ticket_state"] = params["ticket_state"].clone();
            ok(json!({}))
        }
        "update_ticket" if order["ticket_state"] != json!(2) => {
            let refused = format!("update_ticket of {id} in state {}", order["ticket_state"]);
            g.rejected.push(refused);
            err(16003, "only a ticket waiting for assignment can be changed")
        }
        "update_ticket" => {
            order["room_ids"] = params["room_ids"].clone();
            for (k, v) in params.iter().filter(|(k, _)| ["subscribe", "ticket_description"].contains(&k.as_str())) {
                order[k.as_str()] = v.clone();
            }
            ok(json!({}))
        }
        _ => {
            g.work_orders.remove(at);
            ok(json!({}))
        }
    }
}

/// The accepted business calls of interface `name` among `exchanges`.
fn calls(exchanges: &[Exchange], name: &str) -> Vec<Call> {
    exchanges
        .iter()
        .filter(|e| e.accepted && route(&e.request).is_some_and(|(_, n)| n == name && n != "access_token"))
        .filter_map(|e| call(&e.request))
        .collect()
}

impl FakeDingding {
    /// Starts the fake on 127.0.0.1.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner { work_orders: vec![first_work_order()], ..Inner::default() }));
        let state = inner.clone();
        let server = FakeVendor::start_with(move |r| judge(&mut state.lock().expect("lock"), r)).await;
        Self { server, inner }
    }

    /// The base URL to configure.
    pub fn base(&self) -> &str {
        self.server.base()
    }

    fn st(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("lock")
    }

    /// The accepted business calls of interface `name`, in arrival order.
    pub fn calls(&self, name: &str) -> Vec<Call> {
        calls(&self.server.exchanges(), name)
    }

    /// Waits until the calls of `name` satisfy `done`; answers them.
    pub async fn wait_calls(&self, name: &str, done: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let what = format!("Dingding calls of {name}");
        calls(&self.server.wait_for(&what, WAIT, |e| done(&calls(e, name))).await, name)
    }

    /// Waits for the first call of `name`; answers it.
    pub async fn first_call(&self, name: &str) -> Call {
        self.wait_calls(name, |c| !c.is_empty()).await.remove(0)
    }

    /// Tokens issued so far.
    /// The homes the account holds now (`add_home` and what came after it).
    pub fn homes(&self) -> std::collections::BTreeMap<String, Value> {
        self.st().homes.clone()
    }

    pub fn token_count(&self) -> usize {
        self.st().issued
    }

    /// Answers the next business call ErrNo 102 (token expired) and revokes its token.
    pub fn expire_next(&self) {
        self.st().expire_next = true;
    }

    /// Adds a device to dd-home-1 (a 5.5 entry: `type`, `sn`, `uuid`, `room_id`).
    pub fn add_home_device(&self, device: Value) {
        self.st().more_devices.push(device);
    }

    /// Adds a work order to the account (10.4 `ticket_info` shape).
    pub fn add_work_order(&self, order: Value) {
        self.st().work_orders.push(order);
    }

    /// The account's work order `id`, as the fake keeps it.
    pub fn work_order(&self, id: &str) -> Option<Value> {
        self.st().work_orders.iter().find(|t| t["ticket_id"] == id).cloned()
    }

    /// Requests the fake refused for their shape (must stay empty).
    pub fn rejected(&self) -> Vec<String> {
        self.st().rejected.clone()
    }
}
