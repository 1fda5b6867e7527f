//! The hazardous-chemicals regulator (seed 004, `PROTOCOLS.md` section 5), all out, against
//! an in-process fake regulator that checks the login's base64 password, the bearer token on
//! every call (401 without one), the envelope and every item's fields, and names failed
//! permit ids in its answer text.

use crate::utils::fake::hazchem::{FakeRegulator, PASSWORD, USERNAME};
use crate::utils::fake::until;
use crate::utils::{Client, TenantFixture, TestApp, nodes, quick_jobs, spawn_app_with, tenant_with_admin};
use serde_json::{Value, json};
use std::time::Duration;

const WORK_TICKET: &str = "/data/workorder/workTicket";
const TICKET_FILE: &str = "/data/workorder/ticketFile";
const GAS: &str = "/data/workorder/gasAlarm";
const DEPARTURE: &str = "/data/workorder/departureAlarm";
const WAIT: Duration = Duration::from_secs(30);

const SAVE: &str = "mutation($i:SaveTicketInput!){ saveTicket(input:$i){ id status fields } }";
const TICKET: &str = "query($i:ID!){ ticket(id:$i){ id status sync{ state lastError lastUploadAt }
    deliveries(first:50){ totalCount edges{ node{ kind state attempts{ outcome request } } } } } }";
const ATTACH: &str = "mutation($t:ID!,$f:Upload!){ attachTicketFile(ticketId:$t, file:$f){ id contentType } }";
const REPORT: &str = "mutation($i:ReportAlarmInput!){ reportAlarm(input:$i){ id } }";
const ALARM: &str = "query($i:ID!){ alarm(id:$i){ id state deliveries(first:10){ edges{ node{ kind state } } } } }";

struct Reg {
    _app: TestApp,
    api: Client,
    tenant: TenantFixture,
    fake: FakeRegulator,
    integration: String,
}

async fn setup() -> Reg {
    let app = spawn_app_with(quick_jobs).await;
    let root = app.admin_token().await;
    let tenant = tenant_with_admin(&app, &root).await;
    let api = tenant.api.clone();
    let fake = FakeRegulator::start().await;
    let integration = api.integration(fake.integration("危化监管")).await.id;
    Reg { _app: app, api, tenant, fake, integration }
}

/// Seed 004's own upload example with the level its Q&A 3 allows for hot work (02), no
/// `id` (the ticket's own goes), the status set by the ticket.
fn permit() -> Value {
    json!({
        "company_social_code": "91370200163569824H", "end_time": "2021-12-20 21:40", "gas_analyse": "0",
        "harm_type": "02", "lat": "36.04385097144345", "lng": "120.17930673061386", "safe_measure": "0",
        "start_time": "2021-12-20 13:56", "supervisor": "198441,245872", "supervisor_name": "冯三,贾新",
        "ticket_content": "硫胺酯 PP管焊接", "ticket_level": "02", "ticket_position": "硫氨酯装置",
        "ticket_type": "01", "worker": "22,33", "worker_name": "张三,李四", "workDept": "12343214",
        "workDept_name": "**建设工程",
        "video_code": "d3431e73cce84f4f9fb7ccc9d1b258f3,ef0b546eefa14b24bdbbac799dca21ec",
        "is_contractor_task": "0", "major_person": "王晓", "major_person_mobile": "19844112314",
        "is_changed": "1", "changed_reason": "", "is_cancelled": "1", "cancelled_reason": ""
    })
}

impl Reg {
    async fn save(&self, input: Value) -> Value {
        let r = self.api.gql(SAVE, json!({"i": input})).await;
        assert!(r.body.get("errors").is_none(), "{}", r.raw);
        r.data()["saveTicket"].clone()
    }

    async fn create(&self, status: &str, fields: Value) -> String {
        let t = self
            .save(json!({"kind": "WORK_PERMIT", "integrationId": self.integration, "status": status,
                                 "fields": fields}))
            .await;
        t["id"].as_str().expect("id").to_owned()
    }

    async fn ticket(&self, id: &str) -> Value {
        self.api.data(TICKET, json!({"i": id})).await["ticket"].clone()
    }

    async fn wait_sync(&self, id: &str, state: &str) -> Value {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let t = self.ticket(id).await;
            if t["sync"]["state"] == state {
                return t;
            }
            assert!(std::time::Instant::now() < deadline, "permit {id} never {state}: {t}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The permits of every accepted `workTicket` upload, by id, in arrival order.
    fn uploaded(&self, id: &str) -> Vec<Value> {
        self.fake
            .bodies(WORK_TICKET)
            .iter()
            .flat_map(|b| b["data"].as_array().cloned().unwrap_or_default())
            .filter(|p| p["id"] == id)
            .collect()
    }
}

#[tokio::test]
async fn login_sends_the_base64_password_and_every_upload_carries_the_token() {
    let r = setup().await;
    let a = r.create("APPLIED", permit()).await;
    let b = r.create("APPLIED", permit()).await;
    r.wait_sync(&a, "SYNCED").await;
    r.wait_sync(&b, "SYNCED").await;
    // PROTOCOLS.md's vector: `textpassword` travels as `dGV4dHBhc3N3b3Jk`.
    assert_eq!(PASSWORD, "textpassword");
    assert_eq!(r.fake.logins(), vec![json!({"username": USERNAME, "password": "dGV4dHBhc3N3b3Jk"})]);
    assert_eq!(r.fake.issued(), 1, "the token is kept, not fetched per upload");
    let uploads = r.fake.server.requests().into_iter().filter(|q| q.path == WORK_TICKET).collect::<Vec<_>>();
    assert!(!uploads.is_empty());
    assert!(uploads.iter().all(|q| q.header("authorization").starts_with("Bearer Bq")), "bearer token on every call");
    assert_eq!(r.fake.errors(), Vec::<String>::new());
    // The permit went out as the seed names its fields, the ticket's id as its `id`.
    let sent = r.uploaded(&a).pop().expect("uploaded");
    assert_eq!(sent["ticket_status"], "0");
    assert_eq!(sent["worker_name"], "张三,李四");
    assert_eq!(sent["start_time"], "2021-12-20 13:56");
    let t = r.ticket(&a).await;
    assert!(t["sync"]["lastUploadAt"].is_string(), "{t}");
    assert_eq!(t["sync"]["lastError"], Value::Null);
}

#[tokio::test]
async fn a_401_logs_in_again_and_the_upload_is_retried_once() {
    let r = setup().await;
    let a = r.create("APPLIED", permit()).await;
    r.wait_sync(&a, "SYNCED").await;
    r.fake.revoke_tokens();
    r.save(json!({"id": a, "kind": "WORK_PERMIT", "status": "ISSUED"})).await;
    r.wait_sync(&a, "SYNCED").await;
    assert_eq!(r.fake.issued(), 2, "a new login after the 401");
    assert_eq!(r.fake.statuses(WORK_TICKET), vec![200, 401, 200]);
    let t = r.ticket(&a).await;
    let last = nodes(&t["deliveries"]).into_iter().next().expect("delivery");
    let outcomes: Vec<&str> =
        last["attempts"].as_array().expect("attempts").iter().filter_map(|x| x["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["TOKEN_EXPIRED", "SUCCEEDED"]);
    assert_eq!(r.uploaded(&a).last().expect("sent")["ticket_status"], "1");
}

#[tokio::test]
async fn a_permits_changes_reach_the_regulator_in_order_ending_with_the_latest() {
    let r = setup().await;
    let a = r.create("APPLIED", permit()).await;
    r.save(json!({"id": a, "kind": "WORK_PERMIT", "status": "ISSUED"})).await;
    r.save(json!({"id": a, "kind": "WORK_PERMIT", "fields": {"ticket_content": "管线焊接"}})).await;
    r.save(json!({"id": a, "kind": "WORK_PERMIT", "status": "ACCEPTED"})).await;
    r.wait_sync(&a, "SYNCED").await;
    let seen: Vec<(String, String)> = r
        .uploaded(&a)
        .iter()
        .map(|p| {
            (
                p["ticket_status"].as_str().unwrap_or("").to_owned(),
                p["ticket_content"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let order = |s: &str| ["0", "1", "3"].iter().position(|x| *x == s).expect("status");
    assert!(
        seen.windows(2).all(|w| order(&w[0].0) <= order(&w[1].0)),
        "never an older version after a newer: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&("3".to_owned(), "管线焊接".to_owned())));
    // Four saves, four deliveries in the permit's history, all delivered (those whose
    // version went out with an earlier one send nothing).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let t = r.ticket(&a).await;
        assert_eq!(t["deliveries"]["totalCount"], 4);
        if nodes(&t["deliveries"]).iter().all(|d| d["state"] == "SUCCEEDED") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{t}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(r.fake.errors(), Vec::<String>::new());
}

#[tokio::test]
async fn failed_ids_in_the_answer_mark_the_permit_failed_and_it_is_retried() {
    let r = setup().await;
    let good = r.create("APPLIED", permit()).await;
    r.wait_sync(&good, "SYNCED").await;
    let mut fields = permit();
    fields["id"] = json!("12833a0c-54b3-48c2-86f7-96d0f195cc7e");
    r.fake.refuse("12833a0c-54b3-48c2-86f7-96d0f195cc7e", "企业统一社会信用代码未登记");
    let bad = r.create("APPLIED", fields).await;
    let t = r.wait_sync(&bad, "FAILED").await;
    assert_eq!(t["sync"]["lastError"], "企业统一社会信用代码未登记");
    // Retried while refused ...
    until("a second refused upload", WAIT, || r.uploaded("12833a0c-54b3-48c2-86f7-96d0f195cc7e").len() >= 2).await;
    // ... and synced once the regulator takes it.
    r.fake.accept("12833a0c-54b3-48c2-86f7-96d0f195cc7e");
    let t = r.wait_sync(&bad, "SYNCED").await;
    assert_eq!(t["sync"]["lastError"], Value::Null);
    assert_eq!(r.ticket(&good).await["sync"]["state"], "SYNCED", "the other permit is untouched");
}

#[tokio::test]
async fn changes_that_pile_up_while_the_regulator_is_down_go_in_one_batch() {
    let r = setup().await;
    let first = r.create("APPLIED", permit()).await;
    r.wait_sync(&first, "SYNCED").await;
    // Down: the next uploads get 503 until the script runs out.
    r.fake.server.answer_next(
        WORK_TICKET,
        3,
        crate::utils::fake::Answer::status(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            json!({"code": 503, "msg": "维护中"}),
        ),
    );
    r.save(json!({"id": first, "kind": "WORK_PERMIT", "status": "ISSUED"})).await;
    let a = r.create("APPLIED", permit()).await;
    let b = r.create("APPLIED", permit()).await;
    let t = r.wait_sync(&first, "SYNCED").await;
    r.wait_sync(&a, "SYNCED").await;
    r.wait_sync(&b, "SYNCED").await;
    let batches: Vec<usize> =
        r.fake.bodies(WORK_TICKET).iter().map(|b| b["data"].as_array().map_or(0, Vec::len)).collect();
    assert_eq!(batches.last(), Some(&3), "the three waiting permits went together: {batches:?}");
    let delivered: Vec<usize> = r
        .fake
        .server
        .exchanges()
        .iter()
        .filter(|e| e.request.path == WORK_TICKET && e.answer.status == 200)
        .map(|e| e.request.json()["data"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(delivered, vec![1, 3], "one upload before the outage, one batch after it");
    assert_eq!(t["sync"]["state"], "SYNCED");
    assert_eq!(r.fake.errors(), Vec::<String>::new());
}

#[tokio::test]
async fn permit_rules_refuse_bad_input_by_field_and_send_nothing() {
    let r = setup().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"ticket_level": null}), "fields.ticket_level"),
        (json!({"ticket_type": "04", "ticket_level": "00"}), "fields.ticket_level"),
        (json!({"ticket_type": "05", "ticket_level": "04"}), "fields.ticket_level"),
        (json!({"ticket_type": "02", "ticket_level": "01"}), "fields.ticket_level"),
        (json!({"harm_type": "21"}), "fields.harm_type"),
        (json!({"start_time": "2021-12-20 13:56:00"}), "fields.start_time"),
        (json!({"lat": "95.1"}), "fields.lat"),
        (json!({"ticket_status": "2"}), "fields.ticket_status"),
    ];
    for (change, field) in cases {
        let mut fields = permit();
        for (k, v) in change.as_object().expect("obj") {
            if v.is_null() {
                fields.as_object_mut().expect("obj").remove(k);
            } else {
                fields[k] = v.clone();
            }
        }
        let g = r
            .api
            .gql(
                SAVE,
                json!({"i": {"kind": "WORK_PERMIT", "integrationId": r.integration, "status": "ISSUED",
                                     "fields": fields}}),
            )
            .await;
        assert_eq!(g.code(), "BAD_USER_INPUT", "{change}: {}", g.raw);
        assert_eq!(g.body["errors"][0]["extensions"]["field"], field, "{}", g.raw);
    }
    let g = r
        .api
        .gql(
            SAVE,
            json!({"i": {"kind": "WORK_PERMIT", "integrationId": r.integration, "status": "DONE",
                                          "fields": permit()}}),
        )
        .await;
    assert_eq!(g.code(), "BAD_USER_INPUT", "{}", g.raw);
    // The five statuses, by name.
    let statuses = r.api.data("{ ticketStatuses(kind: WORK_PERMIT) }", json!({})).await;
    assert_eq!(statuses["ticketStatuses"], json!(["APPLIED", "ISSUED", "ACCEPTED", "VOIDED", "REVOKED"]));
    // Transitions: an accepted permit does not go back.
    let a = r.create("ACCEPTED", permit()).await;
    let g = r.api.gql(SAVE, json!({"i": {"id": a, "kind": "WORK_PERMIT", "status": "ISSUED"}})).await;
    assert!(!g.code().is_empty(), "{}", g.raw);
    r.wait_sync(&a, "SYNCED").await;
    let sent: Vec<Value> =
        r.fake.bodies(WORK_TICKET).iter().flat_map(|b| b["data"].as_array().cloned().unwrap_or_default()).collect();
    assert_eq!(sent.len(), 1, "only the valid permit was sent: {sent:?}");
    assert_eq!(sent[0]["ticket_status"], "3");
}

/// A tiny PNG (the signature and an IHDR chunk are what matter) and a tiny PDF.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde";
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";

#[tokio::test]
async fn attachments_go_only_while_issued_or_accepted_and_a_minute_apart() {
    let r = setup().await;
    let a = r.create("APPLIED", permit()).await;
    let g = r.api.upload(ATTACH, json!({"t": a}), "f", PNG.to_vec(), "site.png").await;
    assert_eq!(g.code(), "BAD_USER_INPUT", "not while applied: {}", g.raw);
    r.save(json!({"id": a, "kind": "WORK_PERMIT", "status": "ISSUED"})).await;
    let g = r.api.upload(ATTACH, json!({"t": a}), "f", b"MZ\x90\0 an executable".to_vec(), "site.png").await;
    assert_eq!(g.code(), "BAD_USER_INPUT", "the content decides: {}", g.raw);
    assert_eq!(g.body["errors"][0]["extensions"]["field"], "file");
    let g = r.api.upload(ATTACH, json!({"t": a}), "f", PNG.to_vec(), "site.png").await;
    assert_eq!(g.data()["attachTicketFile"]["contentType"], "image/png", "{}", g.raw);
    let g = r.api.upload(ATTACH, json!({"t": a}), "f", PDF.to_vec(), "plan.pdf").await;
    assert_eq!(g.data()["attachTicketFile"]["contentType"], "application/pdf", "{}", g.raw);
    until("both attachments at the regulator", Duration::from_secs(90), || r.fake.files().len() >= 2).await;
    let files = r.fake.files();
    assert_eq!(files.iter().map(|f| f.wid.as_str()).collect::<Vec<_>>(), [a.as_str(), a.as_str()]);
    assert_eq!((files[0].bytes.as_slice(), files[1].bytes.as_slice()), (PNG, PDF));
    assert_eq!((files[0].content_type.as_str(), files[1].content_type.as_str()), ("image/png", "application/pdf"));
    assert_eq!(files[1].filename, "plan.pdf");
    let gap = files[1].at.duration_since(files[0].at);
    assert!(gap >= Duration::from_secs(60), "at least a minute between two sends of one permit: {gap:?}");
    // Each upload carried the token; the history shows them.
    assert!(
        r.fake
            .server
            .requests()
            .iter()
            .filter(|q| q.path == TICKET_FILE)
            .all(|q| q.header("authorization").starts_with("Bearer "))
    );
    let t = r.ticket(&a).await;
    let kinds: Vec<String> =
        nodes(&t["deliveries"]).iter().map(|d| d["kind"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "hazchem.ticket_file").count(), 2, "{kinds:?}");
    assert_eq!(r.fake.errors(), Vec::<String>::new());
}

#[tokio::test]
async fn gas_and_personnel_alarms_are_sent_on_raise_and_on_clear() {
    let r = setup().await;
    let mut fields = permit();
    fields["id"] = json!("12833a0c-54b3-48c2-86f7-96d0f195cc7e");
    let a = r.create("ISSUED", fields).await;
    let gas = r
        .api
        .data(
            REPORT,
            json!({"i": {"ticketId": a, "kind": "GAS_ANALYSIS", "severity": "MAJOR",
                                   "message": "采样分析超阈值", "attributes": {"alarm_type": "3"}}}),
        )
        .await["reportAlarm"]["id"]
        .as_str()
        .expect("alarm")
        .to_owned();
    let person = json!({"alarm_type": "1", "person_name": "张三", "person_type": "1", "card_no": "47cde602",
                        "alarm_lng": "120.17930673061386", "alarm_lat": "36.04385097144345"});
    let bad = r
        .api
        .gql(
            REPORT,
            json!({"i": {"ticketId": a, "kind": "PERSONNEL_DEPARTURE", "severity": "MAJOR",
                                  "message": "x", "attributes": {"alarm_type": "1", "person_name": "张三"}}}),
        )
        .await;
    assert_eq!(bad.code(), "BAD_USER_INPUT", "{}", bad.raw);
    assert_eq!(bad.body["errors"][0]["extensions"]["field"], "attributes.card_no");
    let dep = r
        .api
        .data(
            REPORT,
            json!({"i": {"ticketId": a, "kind": "PERSONNEL_DEPARTURE", "severity": "MAJOR",
                                   "message": "作业人员擅自离场", "attributes": person}}),
        )
        .await["reportAlarm"]["id"]
        .as_str()
        .expect("alarm")
        .to_owned();
    until("both raises", WAIT, || r.fake.bodies(GAS).len() == 1 && r.fake.bodies(DEPARTURE).len() == 1).await;
    for (id, note) in [(&gas, "复测合格"), (&dep, "人员已返回")] {
        let g = r
            .api
            .gql("mutation($i:ID!,$n:String){ clearAlarm(id:$i, note:$n){ state } }", json!({"i": id, "n": note}))
            .await;
        assert_eq!(g.data()["clearAlarm"]["state"], "CLEARED", "{}", g.raw);
    }
    until("both clears", WAIT, || r.fake.bodies(GAS).len() == 2 && r.fake.bodies(DEPARTURE).len() == 2).await;
    let g = r.fake.bodies(GAS);
    let (raise, clear) = (&g[0]["data"][0], &g[1]["data"][0]);
    assert_eq!(
        (raise["id"].as_str(), raise["ticket_id"].as_str()),
        (Some(gas.as_str()), Some("12833a0c-54b3-48c2-86f7-96d0f195cc7e"))
    );
    assert_eq!(raise["alarm_type"], "3");
    assert!(raise.get("handle_time").is_none(), "a raise has no handle_time: {raise}");
    assert_eq!(clear["id"], raise["id"]);
    assert!(clear["handle_time"].is_string(), "{clear}");
    assert_eq!(clear["handle_result"], "复测合格");
    let d = r.fake.bodies(DEPARTURE);
    assert_eq!(d[0]["data"][0]["card_no"], "47cde602");
    assert_eq!(d[0]["data"][0]["person_name"], "张三");
    assert_eq!(d[1]["data"][0]["handle_remark"], "人员已返回");
    assert_ne!(d[0]["dataId"], d[1]["dataId"], "a new dataId per request");
    let shown = r.api.data(ALARM, json!({"i": gas})).await;
    let kinds: Vec<Value> = nodes(&shown["alarm"]["deliveries"]).iter().map(|n| n["kind"].clone()).collect();
    assert_eq!(kinds, [json!("hazchem.gas_alarm"), json!("hazchem.gas_alarm")]);
    assert_eq!(r.fake.errors(), Vec::<String>::new());
}

#[tokio::test]
async fn another_tenant_sees_none_of_a_permits_uploads() {
    let r = setup().await;
    let a = r.create("APPLIED", permit()).await;
    r.wait_sync(&a, "SYNCED").await;
    let root = r._app.admin_token().await;
    let other = tenant_with_admin(&r._app, &root).await;
    let g = other.api.gql(TICKET, json!({"i": a})).await;
    assert_eq!(g.code(), "NOT_FOUND", "{}", g.raw);
    let d = other.api.deliveries(json!({"subject": format!("ticket:{a}")})).await;
    assert!(d.is_empty(), "{d:?}");
    let own = r.tenant.api.deliveries(json!({"subject": format!("ticket:{a}")})).await;
    assert_eq!(own.len(), 1);
}
