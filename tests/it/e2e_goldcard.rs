//! Gas meters over the CIS <-> DAS standard (seed 003, `PROTOCOLS.md` section 4) against an
//! in-process fake DAS that checks `AccessToken`, `Authorization` and each code's fields on
//! every call and keeps its own meters, prices and commands; the DAS's reports to us are
//! signed the same way.

use crate::utils::fake::goldcard::{APP_CODE, APP_SECRET, COMPANY, FACTOR, FakeDas, headers, serial};
use crate::utils::{Client, TestApp, nodes, quick_jobs, spawn_app_with, tenant_with_admin};
use serde_json::{Value, json};

const SAVE: &str = "mutation($i:SaveTariffInput!){ saveTariff(input:$i){ id version } }";
const ASSIGN: &str = "mutation($d:ID!,$t:ID!){ assignTariff(deviceId:$d, tariffId:$t){ id } }";
const RECHARGE: &str =
    "mutation($i:RechargeMeterInput!){ rechargeMeter(input:$i){ account{ balance } entry{ id amount } } }";
const ACCOUNT: &str = "query($d:ID!){ meterAccount(deviceId:$d){ balance cycleUsage
    ledger(first:50){ edges{ node{ kind amount volume balanceAfter reference } } } } }";

struct Gas {
    app: TestApp,
    api: Client,
    das: FakeDas,
    integration: String,
}

async fn setup() -> Gas {
    let das = FakeDas::start().await;
    let app = spawn_app_with(quick_jobs).await;
    let root = app.admin_token().await;
    let tenant = tenant_with_admin(&app, &root).await;
    let api = tenant.api.clone();
    let integration = api
        .integration(json!({"kind": "GOLDCARD", "name": "金卡", "settings": {
                                "baseUrl": das.base(), "companyCode": COMPANY, "factorNo": FACTOR,
                                "retry": {"initialDelaySecs": 1, "maxDelaySecs": 1, "maxAttempts": 5}},
                            "credentials": {"appCode": APP_CODE, "appSecret": APP_SECRET}}))
        .await
        .id;
    Gas { app, api, das, integration }
}

/// Today in Shanghai, `days` from now: `YYYYMMDD`.
fn date(days: i64) -> String {
    let t = chrono::Utc::now() + chrono::Duration::days(days);
    t.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("offset")).format("%Y%m%d").to_string()
}

/// A 2001 of `meter` with register `read` on the day `days` from today (Shanghai) at `time`.
fn reading(meter: &str, read: &str, days: i64, time: &str) -> Value {
    json!({
        "serialNo": serial(), "userNo": format!("u{meter}"), "deviceId": "", "factorNo": FACTOR, "meterNo": meter,
        "billingModel": "2", "readNum": read, "addGas": "", "readDate": date(days), "readTime": time,
        "batteryCap": "6.14", "semaphore": "59.0%", "valveState": "2", "curPrice": "0", "meterBalance": "0",
        "companyCode": COMPANY, "sdateTime": "2020-02-27"
    })
}

impl Gas {
    /// The DAS posts `body` to `code`, signed (`skew` seconds off, `secret` as given).
    async fn post_as(&self, code: &str, body: &[u8], secret: &str, skew: i64) -> (u16, Value) {
        let (token, auth) = headers(APP_CODE, secret, skew);
        let url = self.app.url(&format!("/hooks/{}/goldcard/api/collect/meter/{code}", self.integration));
        let r = self
            .app
            .http
            .post(url)
            .header("content-type", "application/json;charset=utf-8")
            .header("AccessToken", token)
            .header("Authorization", auth)
            .body(body.to_vec())
            .send()
            .await
            .expect("post");
        (r.status().as_u16(), r.json().await.expect("a JSON answer"))
    }

    async fn post(&self, code: &str, body: &Value) -> Value {
        let (status, answer) = self.post_as(code, body.to_string().as_bytes(), APP_SECRET, 0).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    async fn tariff(&self, code: &str, tiers: Value, effective_days: i64, clear: bool) -> String {
        let from = chrono::Utc::now() + chrono::Duration::days(effective_days);
        let r = self
            .api
            .gql(
                SAVE,
                json!({"i": {"integrationId": self.integration, "code": code, "utility": "GAS", "tiers": tiers,
                                    "cycleMonths": 1, "effectiveFrom": from.to_rfc3339(), "clearCycle": clear}}),
            )
            .await;
        r.id("saveTariff")
    }

    /// A centre-billed prepaid gas meter on `tariff` with `balance` paid in.
    async fn meter(&self, meter: &str, tariff: &str, overdraft: &str, balance: &str) -> String {
        let device = self
            .api
            .device(
                &self.integration,
                meter,
                "GAS_METER",
                &format!("表 {meter}"),
                json!({
                "userNo": format!("u{meter}"), "meterType": "441", "priceCode": "G1", "initialReading": "0",
                "payModel": "PREPAID", "billingModel": "CENTRE", "overdraft": overdraft}),
            )
            .await;
        self.api.data(ASSIGN, json!({"d": device, "t": tariff})).await;
        if balance != "0" {
            self.api
                .data(
                    RECHARGE,
                    json!({"i": {"deviceId": device, "amount": balance, "tradeNo": format!("init-{meter}")}}),
                )
                .await;
        }
        device
    }

    async fn account(&self, device: &str) -> Value {
        self.api.data(ACCOUNT, json!({"d": device})).await["meterAccount"].clone()
    }
}

fn tiers3() -> Value {
    json!([{"upTo": "10", "price": "1"}, {"upTo": "20", "price": "2"}, {"price": "3"}])
}

#[tokio::test]
async fn reports_are_refused_in_the_das_envelope_without_a_5xx() {
    let g = setup().await;
    let t = g.tariff("G1", tiers3(), -1, false).await;
    g.meter("201911261531", &t, "0", "0").await;
    let good = reading("201911261531", "1", 0, "101010");
    let bytes = good.to_string();
    // Wrong secret, or a time more than 300 s away: 0101, nothing stored.
    let (s, a) = g.post_as("2001", bytes.as_bytes(), "wrong-secret", 0).await;
    assert_eq!((s, a["echoCode"].as_str()), (200, Some("0101")), "{a}");
    let (s, a) = g.post_as("2001", bytes.as_bytes(), APP_SECRET, 400).await;
    assert_eq!((s, a["echoCode"].as_str()), (200, Some("0101")), "{a}");
    assert!(g.api.inbound_events(&g.integration).await.is_empty(), "refused headers store nothing");
    // Malformed JSON and a missing field: 9999 naming it.
    let (s, a) = g.post_as("2001", b"{\"serialNo\": ", APP_SECRET, 0).await;
    assert_eq!((s, a["echoCode"].as_str()), (200, Some("9999")), "{a}");
    let mut missing = good.clone();
    missing.as_object_mut().expect("object").remove("readNum");
    let a = g.post("2001", &missing).await;
    assert_eq!(a["echoCode"], "9999");
    assert!(a["echoMsg"].as_str().unwrap_or_default().contains("readNum"), "{a}");
    let mut alarm = json!({"serialNo": serial(), "userNo": "u", "factorNo": FACTOR, "meterNo": "201911261531",
                           "alarmType": "02", "alarmContent": "燃气泄漏", "alarmPriority": "9", "companyCode": COMPANY,
                           "sdateTime": "2019-11-21 16:32:50"});
    let a = g.post("2003", &alarm).await;
    assert!(a["echoMsg"].as_str().unwrap_or_default().contains("alarmPriority"), "{a}");
    // An unknown meter, another factory.
    let a = g.post("2001", &reading("999999999999", "1", 0, "101010")).await;
    assert_eq!(a["echoCode"], "9999");
    let mut other = reading("201911261531", "1", 0, "101010");
    other["factorNo"] = json!("0099");
    assert_eq!(g.post("2001", &other).await["echoCode"], "0404");
    // The good one still goes through; every request that passed the headers is stored.
    assert_eq!(g.post("2001", &good).await["echoCode"], "0000");
    alarm["alarmPriority"] = json!("3");
    assert_eq!(g.post("2003", &alarm).await["echoCode"], "0000");
    let events = g.api.inbound_events(&g.integration).await;
    assert_eq!(events.len(), 7, "{events:?}");
    assert_eq!(events.iter().filter(|e| e["state"] == "FAILED").count(), 5, "{events:?}");
    // A new secret works at once although the integration was just resolved (and cached),
    // and the old one stops working.
    g.api
        .integration(json!({"id": g.integration, "kind": "GOLDCARD", "name": "金卡",
                            "settings": {"baseUrl": g.das.base(), "companyCode": COMPANY, "factorNo": FACTOR},
                            "credentials": {"appCode": APP_CODE, "appSecret": "rotated-secret"}}))
        .await;
    let next = reading("201911261531", "2", 0, "111111").to_string();
    let (_, a) = g.post_as("2001", next.as_bytes(), "rotated-secret", 0).await;
    assert_eq!(a["echoCode"], "0000", "{a}");
    let (_, a) =
        g.post_as("2001", reading("201911261531", "3", 0, "121212").to_string().as_bytes(), APP_SECRET, 0).await;
    assert_eq!(a["echoCode"], "0101", "{a}");
}

#[tokio::test]
async fn a_reading_is_charged_tier_by_tier_and_a_resend_answers_the_same() {
    let g = setup().await;
    let t = g.tariff("G1", tiers3(), -1, false).await;
    let device = g.meter("201911261531", &t, "0", "100").await;
    // The DAS heard of the price, the meter and the switch to the price.
    g.das
        .until("1007, 1001 and 1008 delivered", || {
            let st = g.das.st();
            st.prices.contains_key("G1") && st.meters.contains_key("201911261531")
        })
        .await;
    g.das.until("1008 sent", || !g.das.bodies("1008").is_empty()).await;
    let report = reading("201911261531", "25", 0, "101010");
    let answer = g.post("2001", &report).await;
    assert_eq!(answer["echoCode"], "0000", "{answer}");
    assert_eq!(answer["serialNo"], report["serialNo"]);
    assert_eq!(answer["meterNo"], "201911261531");
    assert_eq!(answer["valvecontrol"], "2");
    assert_eq!(answer["currentprice"], "3", "25 m3 used: the third tier");
    assert_eq!(answer["remainquantity"], "55", "100 - (10x1 + 10x2 + 5x3)");
    // The same serialNo again: the same answer, nothing charged twice.
    assert_eq!(g.post("2001", &report).await, answer);
    let acc = g.account(&device).await;
    assert_eq!(acc["balance"], "55");
    let charges: Vec<Value> = nodes(&acc["ledger"]).into_iter().filter(|e| e["kind"] == "CHARGE").collect();
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!((charges[0]["amount"].as_str(), charges[0]["volume"].as_str()), (Some("-45"), Some("25")));
    // The reading and the meter's status are recorded.
    let d = g.api.data("query($d:ID!){ device(id:$d){ online signal latest } }", json!({"d": device})).await;
    assert_eq!(d["device"]["latest"]["volume"]["value"], "25");
    assert_eq!(d["device"]["signal"], 59);
    assert!(g.das.errors().is_empty(), "{:?}", g.das.errors());
}

#[tokio::test]
async fn the_valve_closes_once_and_reopens_once_under_repeated_reports() {
    let g = setup().await;
    let t = g.tariff("G1", json!([{"price": "1"}]), -1, false).await;
    let device = g.meter("201911261532", &t, "2", "10").await;
    let mut answers = Vec::new();
    // 13 m3 on 10 paid with an overdraft of 2: -3, the valve closes on that report only.
    for (i, read) in (13..33).enumerate() {
        let time = format!("10{:02}00", i);
        answers.push(g.post("2001", &reading("201911261532", &read.to_string(), 0, &time)).await);
    }
    let controls: Vec<&str> = answers.iter().map(|a| a["valvecontrol"].as_str().unwrap_or_default()).collect();
    assert_eq!(controls.iter().filter(|c| **c == "1").count(), 1, "{controls:?}");
    assert_eq!(controls[0], "1");
    assert!(controls[1..].iter().all(|c| *c == "2"), "{controls:?}");
    // A recharge that lifts it back opens the valve once, through a 1004.
    g.api.data(RECHARGE, json!({"i": {"deviceId": device, "amount": "100", "tradeNo": "pay-2"}})).await;
    g.api.data(RECHARGE, json!({"i": {"deviceId": device, "amount": "100", "tradeNo": "pay-2"}})).await;
    g.api.data(RECHARGE, json!({"i": {"deviceId": device, "amount": "5", "tradeNo": "pay-3"}})).await;
    g.das.until("the valve-open 1004", || !g.das.bodies("1004").is_empty()).await;
    for i in 0..5 {
        let a = g.post("2001", &reading("201911261532", &(40 + i).to_string(), 0, &format!("11{i:02}00"))).await;
        assert_eq!(a["valvecontrol"], "2", "{a}");
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let valves = g.das.bodies("1004");
    assert_eq!(valves.len(), 1, "{valves:?}");
    assert_eq!(valves[0]["paramNo"], "03");
    assert_eq!(valves[0]["paramContext"]["data"]["valveSet"], "0");
    assert!(g.das.errors().is_empty(), "{:?}", g.das.errors());
}

#[tokio::test]
async fn an_adjustment_applies_from_its_date_and_a_new_cycle_restarts_the_tiers() {
    let g = setup().await;
    let t = g.tariff("G1", tiers3(), -1, false).await;
    let device = g.meter("201911261533", &t, "0", "1000").await;
    // Tomorrow the price triples.
    g.tariff("G1", json!([{"upTo": "10", "price": "3"}, {"upTo": "20", "price": "6"}, {"price": "9"}]), 1, false).await;
    g.das.until("the adjustment reached the DAS", || g.das.st().prices.get("G1").is_some_and(|v| v.len() == 2)).await;
    let adjust = g.das.bodies("1007").pop().expect("1007");
    assert_eq!((adjust["priceProperty"].as_str(), adjust["priceVersion"].as_str()), (Some("2"), Some("V2")));
    assert_eq!(adjust["priceBeginDate"].as_str().map(|d| d.replace('-', "")), Some(date(1)));
    // Today: the old price.
    let a = g.post("2001", &reading("201911261533", "5", 0, "080000")).await;
    assert_eq!((a["remainquantity"].as_str(), a["currentprice"].as_str()), (Some("995"), Some("1")), "{a}");
    // The day after tomorrow: the new one, from the cycle volume of 5.
    let a = g.post("2001", &reading("201911261533", "12", 2, "080000")).await;
    assert_eq!(a["remainquantity"], "968", "995 - (5x3 + 2x6): {a}");
    // Two months on: a new cycle, the first tier again.
    let a = g.post("2001", &reading("201911261533", "14", 62, "080000")).await;
    assert_eq!(a["remainquantity"], "962", "968 - 2x3: {a}");
    assert_eq!(g.account(&device).await["cycleUsage"], "2");
}

#[tokio::test]
async fn alarms_are_raised_per_meter_and_type_with_their_priority() {
    let g = setup().await;
    let t = g.tariff("G1", tiers3(), -1, false).await;
    let device = g.meter("201911261534", &t, "0", "0").await;
    for _ in 0..2 {
        let a = g
            .post(
                "2003",
                &json!({"serialNo": serial(), "userNo": "u1", "deviceId": "", "factorNo": FACTOR,
                                 "meterNo": "201911261534", "alarmType": "02", "alarmContent": "燃气泄漏",
                                 "alarmPriority": "3", "companyCode": COMPANY, "sdateTime": "2019-11-21 16:32:50"}),
            )
            .await;
        assert_eq!(a["echoCode"], "0000", "{a}");
    }
    let low = json!({"serialNo": serial(), "userNo": "u1", "factorNo": FACTOR, "meterNo": "201911261534",
                     "alarmType": "07", "alarmContent": "强磁", "alarmPriority": "1", "companyCode": COMPANY,
                     "sdateTime": "2019-11-21 16:32:50"});
    assert_eq!(g.post("2003", &low).await["echoCode"], "0000");
    let q = "query($d:ID){ alarms(filter:{deviceId:$d}, first:10){ edges{ node{ kind severity occurrences vendorCode } } } }";
    let mut alarms = nodes(&g.api.data(q, json!({"d": device})).await["alarms"]);
    alarms.sort_by_key(|a| a["kind"].as_str().unwrap_or_default().to_owned());
    assert_eq!(alarms.len(), 2, "{alarms:?}");
    assert_eq!((alarms[0]["kind"].as_str(), alarms[0]["severity"].as_str()), (Some("GAS_LEAK"), Some("CRITICAL")));
    assert_eq!(alarms[0]["occurrences"], 2, "the same type on the same meter updates the open alarm");
    assert_eq!(
        (alarms[1]["kind"].as_str(), alarms[1]["severity"].as_str()),
        (Some("GAS_METER_MAGNETIC_INTERFERENCE"), Some("MINOR"))
    );
}

#[tokio::test]
async fn a_reading_before_the_registration_answer_is_billed() {
    let g = setup().await;
    // The DAS answers the registration only after 3 s.
    g.das.server.answer_next(
        "/api/v1/collect/meter/1001",
        1,
        crate::utils::fake::Answer::ok(json!({"echoCode": "0000", "echoMsg": {"serialNo": "", "deviceId": "d1"}}))
            .after(std::time::Duration::from_secs(3)),
    );
    let t = g.tariff("G1", tiers3(), -1, false).await;
    let device = g.meter("201911261535", &t, "0", "50").await;
    let a = g.post("2001", &reading("201911261535", "4", 0, "090000")).await;
    assert_eq!((a["echoCode"].as_str(), a["remainquantity"].as_str()), (Some("0000"), Some("46")), "{a}");
    g.das.until("the registration answered", || g.das.answers("1001").len() == 1).await;
    assert_eq!(g.account(&device).await["balance"], "46");
}

#[tokio::test]
async fn valve_commands_carry_their_execution_result() {
    let g = setup().await;
    let t = g.tariff("G1", tiers3(), -1, false).await;
    let device = g.meter("201911261536", &t, "0", "0").await;
    let q = "mutation($i:SendMeterCommandInput!){ sendMeterCommand(input:$i){ command stage } }";
    let r = g.api.data(q, json!({"i": {"deviceId": device, "command": "VALVE_CLOSE"}})).await;
    assert_eq!(r["sendMeterCommand"]["stage"], "PENDING");
    g.das.until("the 1004", || !g.das.st().commands.is_empty()).await;
    let (serial_no, body) = g.das.st().commands.iter().next().map(|(k, v)| (k.clone(), v.clone())).expect("command");
    assert_eq!(body["paramContext"]["data"]["valveSet"], "1");
    // The DAS reports that the meter executed it.
    let report = json!({"serialNo": serial(), "userNo": "u201911261536", "factorNo": FACTOR, "meterNo": "201911261536",
                        "sendSerialNo": serial_no, "paramNo": "03", "excuteState": "1", "companyCode": COMPANY,
                        "sdateTime": "20191121120000"});
    assert_eq!(g.post("2002", &report).await["echoCode"], "0000");
    let q = "query($s:String){ deliveries(filter:{subject:$s, kind:\"goldcard.1004\"}, first:10){ edges{ node{ state result } } } }";
    let commands = nodes(&g.api.data(q, json!({"s": format!("device:{device}")})).await["deliveries"]);
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert_eq!(
        (commands[0]["state"].as_str(), commands[0]["result"]["state"].as_str()),
        (Some("SUCCEEDED"), Some("EXECUTED"))
    );
    // Withdrawing it sends a 1005 naming it.
    let q =
        "query($s:String){ deliveries(filter:{subject:$s, kind:\"goldcard.1004\"}, first:1){ edges{ node{ id } } } }";
    let id = nodes(&g.api.data(q, json!({"s": format!("device:{device}")})).await["deliveries"])[0]["id"].clone();
    g.api.data("mutation($d:ID!){ cancelMeterCommand(deliveryId:$d){ id } }", json!({"d": id})).await;
    g.das.until("the 1005", || !g.das.bodies("1005").is_empty()).await;
    assert_eq!(g.das.bodies("1005")[0]["sendSerialNo"], json!(serial_no));
    // A result of a command we never sent is kept, not applied.
    let mut unknown = report.clone();
    unknown["serialNo"] = json!(serial());
    unknown["sendSerialNo"] = json!(serial());
    assert_eq!(g.post("2002", &unknown).await["echoCode"], "0000");
    let events = g.api.inbound_events(&g.integration).await;
    assert!(events.iter().any(|e| e["state"] == "IGNORED"), "{events:?}");
}

#[tokio::test]
async fn a_replaced_meter_keeps_its_balance_and_a_cancelled_one_is_cancelled_at_the_das() {
    let g = setup().await;
    let t = g.tariff("G1", tiers3(), -1, false).await;
    let device = g.meter("201911261537", &t, "0", "100").await;
    g.post("2001", &reading("201911261537", "15", 0, "080000")).await; // 10x1 + 5x2 = 20
    let q = "mutation($i:ReplaceMeterInput!){ replaceMeter(input:$i){ balance cycleUsage lastReading } }";
    let r = g.api.data(q, json!({"i": {"deviceId": device, "newExternalId": "202004081938", "newReading": "3"}})).await;
    assert_eq!(r["replaceMeter"]["balance"], "80");
    assert_eq!(r["replaceMeter"]["cycleUsage"], "15");
    g.das.until("the 1009", || g.das.st().meters.contains_key("202004081938")).await;
    let sent = g.das.bodies("1009").pop().expect("1009");
    assert_eq!(
        (sent["meterNo"].as_str(), sent["oldNum"].as_str(), sent["newNum"].as_str()),
        (Some("201911261537"), Some("15.0000"), Some("3.0000"))
    );
    // The new meter reports from its own register, on the same account and cycle.
    let a = g.post("2001", &reading("202004081938", "5", 0, "090000")).await;
    assert_eq!(a["remainquantity"], "76", "2 m3 in the second tier: {a}");
    assert_eq!(
        g.post("2001", &reading("201911261537", "16", 0, "091000")).await["echoCode"],
        "9999",
        "the old number is gone"
    );
    let q = "mutation($d:ID!,$r:String){ cancelMeter(deviceId:$d, reason:$r){ id } }";
    g.api.data(q, json!({"d": device, "r": "用户销户"})).await;
    g.das.until("the 1002", || !g.das.st().meters.contains_key("202004081938")).await;
    assert_eq!(g.das.bodies("1002")[0]["reason"], "用户销户");
    assert!(g.das.errors().is_empty(), "{:?}", g.das.errors());
}

#[tokio::test]
async fn the_daily_job_keeps_usage_per_day_and_bills_missed_readings_once() {
    let g = setup().await;
    let t = g.tariff("G1", tiers3(), -1, false).await;
    let device = g.meter("201911261538", &t, "0", "100").await;
    g.das.until("the meter registered", || g.das.st().meters.contains_key("201911261538")).await;
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("offset"))
        .date_naive();
    let day = yesterday.format("%Y-%m-%d").to_string();
    let read_at = format!("{day} 23:00:00");
    {
        let mut st = g.das.st();
        st.usage.insert(
            "201911261538".into(),
            vec![
                json!({"useDate": day, "price": "1", "useGas": "10", "useAmount": "10", "meterNo": "201911261538"}),
                json!({"useDate": day, "price": "2", "useGas": "2", "useAmount": "4", "meterNo": "201911261538"}),
            ],
        );
        st.latest.insert("201911261538".into(), ("12".into(), read_at));
    }
    for _ in 0..2 {
        let r = g.api.run_scheduled_job(&g.integration, "DAILY_USAGE").await;
        assert_eq!(r.data()["runScheduledJob"]["outcome"], "SUCCEEDED", "{}", r.raw);
    }
    let q = "query($d:ID!,$f:NaiveDate!,$t:NaiveDate!){ dailyUsage(deviceId:$d, from:$f, to:$t){ day volume amount prices } }";
    let r = g.api.data(q, json!({"d": device, "f": day, "t": day})).await;
    assert_eq!(r["dailyUsage"], json!([{"day": day, "volume": "12", "amount": "14", "prices": ["1", "2"]}]));
    // The reading the DAS had and we had not: billed once although the job ran twice.
    let acc = g.account(&device).await;
    assert_eq!(acc["balance"], "86", "100 - (10x1 + 2x2): {acc}");
    assert!(g.das.errors().is_empty(), "{:?}", g.das.errors());
}

#[tokio::test]
async fn readings_and_recharges_at_the_same_moment_lose_no_update() {
    let g = setup().await;
    let t = g.tariff("G1", json!([{"price": "1"}]), -1, false).await;
    let device = g.meter("201911261539", &t, "1000", "100").await;
    let readings = (1..=20).map(|k| {
        let g = &g;
        async move { g.post("2001", &reading("201911261539", &(k * 2).to_string(), 0, &format!("12{k:02}00"))).await }
    });
    let recharges = (1..=20).map(|k| {
        let (api, device) = (&g.api, device.clone());
        async move {
            api.data(RECHARGE, json!({"i": {"deviceId": device, "amount": "5", "tradeNo": format!("c-{k}")}})).await
        }
    });
    let (answers, _) = tokio::join!(futures::future::join_all(readings), futures::future::join_all(recharges));
    assert!(answers.iter().all(|a| a["echoCode"] == "0000"), "{answers:?}");
    let acc = g.account(&device).await;
    let entries = nodes(&acc["ledger"]);
    let sum: f64 = entries.iter().map(|e| e["amount"].as_str().unwrap_or("0").parse::<f64>().unwrap_or(0.0)).sum();
    let balance: f64 = acc["balance"].as_str().unwrap_or("0").parse().unwrap_or(-1.0);
    assert!((sum - balance).abs() < 1e-9, "the balance is the ledger's sum: {sum} vs {balance}");
    assert_eq!(entries.iter().filter(|e| e["kind"] == "RECHARGE").count(), 21);
    let charged: f64 = entries
        .iter()
        .filter(|e| e["kind"] == "CHARGE")
        .map(|e| e["volume"].as_str().unwrap_or("0").parse::<f64>().unwrap_or(0.0))
        .sum();
    let last: f64 = g.api.data("query($d:ID!){ meterAccount(deviceId:$d){ lastReading } }", json!({"d": device})).await
        ["meterAccount"]["lastReading"]
        .as_str()
        .unwrap_or("0")
        .parse()
        .unwrap_or(-1.0);
    assert!((charged - last).abs() < 1e-9, "every m3 up to the last register charged once: {charged} vs {last}");
    assert!((balance - (200.0 - charged)).abs() < 1e-9, "100 + 20x5 - charged = {balance}");
}

#[tokio::test]
async fn a_serial_replayed_after_a_restart_gets_the_same_answer() {
    let g = setup().await;
    let t = g.tariff("G1", tiers3(), -1, false).await;
    let device = g.meter("201911261540", &t, "0", "100").await;
    let report = reading("201911261540", "12", 0, "070000");
    let first = g.post("2001", &report).await;
    assert_eq!(first["remainquantity"], "86", "{first}");
    // The account moves on; then another process of the same deployment gets the resend.
    g.api.data(RECHARGE, json!({"i": {"deviceId": device, "amount": "50", "tradeNo": "later"}})).await;
    let mut child = crate::utils::child::Child::start(&g.app, "serve", &[]);
    child.wait_ready().await;
    let (token, auth) = headers(APP_CODE, APP_SECRET, 0);
    let again: Value = g
        .app
        .http
        .post(format!("{}/hooks/{}/goldcard/api/collect/meter/2001", child.base, g.integration))
        .header("content-type", "application/json;charset=utf-8")
        .header("AccessToken", token)
        .header("Authorization", auth)
        .body(report.to_string())
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    child.kill_hard();
    assert_eq!(again, first, "the answer it got the first time");
    let charges = nodes(&g.account(&device).await["ledger"]).into_iter().filter(|e| e["kind"] == "CHARGE").count();
    assert_eq!(charges, 1);
}

#[tokio::test]
async fn meter_details_are_asked_of_the_das_and_scoped_to_the_tenant() {
    let g = setup().await;
    let t = g.tariff("G1", tiers3(), -1, false).await;
    let device = g.meter("201911261539", &t, "0", "0").await;
    g.das.until("the meter registered", || g.das.st().meters.contains_key("201911261539")).await;
    g.das.st().latest.insert("201911261539".into(), ("42.5".into(), "2026-02-03 08:30:00".into()));
    let q = "query($d:ID!){ meterDetails(deviceId:$d){ dasDeviceId meterNo active installedOn reading valve
              balance price priceCode lastReadAt rechargeCount signal userName } }";
    let r = g.api.data(q, json!({"d": device})).await;
    assert_eq!(
        r["meterDetails"],
        json!({"dasDeviceId": "das-201911261539", "meterNo": "201911261539", "active": true,
               "installedOn": "2026-01-05", "reading": "42.5", "valve": "CLOSED", "balance": "12.5", "price": "2.5",
               "priceCode": "P1", "lastReadAt": "2026-02-03T00:30:00+00:00", "rechargeCount": 2, "signal": 80,
               "userName": "u201911261539"})
    );
    let sent = g.das.bodies("1014").pop().expect("a 1014");
    assert_eq!((sent["meterNo"].as_str(), sent["userNo"].as_str()), (Some("201911261539"), Some("u201911261539")));
    // A meter the DAS does not know: its reason, as an upstream failure.
    let unknown = g.meter("201911269999", &t, "0", "0").await;
    g.das.until("the second meter registered", || g.das.st().meters.contains_key("201911269999")).await;
    g.das.st().meters.remove("201911269999");
    let r = g.api.gql(q, json!({"d": unknown})).await;
    assert_eq!(r.code(), "UPSTREAM_FAILED", "{}", r.raw);
    assert!(r.raw.to_string().contains("9999"), "{}", r.raw);
    // Another tenant's admin cannot ask for it.
    let root = g.app.admin_token().await;
    let other = tenant_with_admin(&g.app, &root).await;
    let r = other.api.gql(q, json!({"d": device})).await;
    assert_eq!(r.code(), "NOT_FOUND", "{}", r.raw);
    let calls = g.das.bodies("1014").len();
    assert_eq!(calls, 2, "no call for another tenant's meter");
    assert!(g.das.errors().is_empty(), "{:?}", g.das.errors());
}

#[tokio::test]
async fn concurrent_reports_of_many_meters_are_each_billed_once_in_order() {
    let g = setup().await;
    let t = g.tariff("G1", json!([{"price": "2"}]), -1, false).await;
    let meters: Vec<String> = (0..4).map(|m| format!("20191126160{m}")).collect();
    let mut devices = Vec::new();
    for m in &meters {
        devices.push(g.meter(m, &t, "0", "100").await);
    }
    // Ten reports per meter, all in flight at once: readings of one meter share batches.
    let bodies: Vec<Value> = (1..=10)
        .flat_map(|k| meters.iter().map(move |m| reading(m, &k.to_string(), 0, &format!("13{k:02}00"))))
        .collect();
    let answers = futures::future::join_all(bodies.iter().map(|b| g.post("2001", b))).await;
    assert!(answers.iter().all(|a| a["echoCode"] == "0000"), "{answers:?}");
    // Each report answers its own meter; a resend of every one answers the same again.
    for (b, a) in bodies.iter().zip(&answers) {
        assert_eq!((&a["meterNo"], &a["serialNo"]), (&b["meterNo"], &b["serialNo"]));
    }
    let again = futures::future::join_all(bodies.iter().map(|b| g.post("2001", b))).await;
    assert_eq!(again, answers, "resends answer what the first one got");
    for d in &devices {
        let acc = g.account(d).await;
        let charges: Vec<Value> = nodes(&acc["ledger"]).into_iter().filter(|e| e["kind"] == "CHARGE").collect();
        let volume: f64 =
            charges.iter().map(|e| e["volume"].as_str().unwrap_or("0").parse::<f64>().unwrap_or(0.0)).sum();
        // Whatever order they were applied in, the register went from 0 to 10 once.
        assert!((volume - 10.0).abs() < 1e-9, "charged {volume} m3: {acc}");
        assert_eq!(acc["balance"], "80", "{acc}");
        assert_eq!(acc["cycleUsage"], "10", "{acc}");
        let state = g.api.data("query($d:ID!){ device(id:$d){ latest } }", json!({"d": d})).await;
        assert_eq!(state["device"]["latest"]["volume"]["value"], "10", "the newest register is the latest: {state}");
    }
    let events = g.api.inbound_events(&g.integration).await;
    assert_eq!(events.iter().filter(|e| e["kind"] == "2001" && e["state"] == "PROCESSED").count(), 40);
}
