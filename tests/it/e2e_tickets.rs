//! Tickets over HTTP: the five kinds, their validation and workflows, files, isolation.

use crate::utils::{TestApp, USER_PASSWORD, spawn_app, tenant_with_admin};
use serde_json::{Value, json};

const SAVE: &str =
    "mutation($i:SaveTicketInput!){ saveTicket(input:$i){ id kind status fields externalId deviceId homeId } }";

fn permit() -> Value {
    json!({
        "company_social_code": "91370200163569824H", "end_time": "2021-12-20 21:40", "gas_analyse": "0",
        "harm_type": "02", "lat": "36.04385097144345", "lng": "120.17930673061386", "safe_measure": "0",
        "start_time": "2021-12-20 13:56", "supervisor": "198441,245872", "supervisor_name": "冯三,贾新",
        "ticket_content": "硫胺酯 PP管焊接", "ticket_level": "02", "ticket_position": "硫氨酯装置",
        "ticket_type": "01", "worker": "22,33", "worker_name": "张三,李四", "workDept": "12343214",
        "workDept_name": "**建设工程", "is_contractor_task": "0", "major_person": "王晓",
        "major_person_mobile": "19844112314", "is_changed": "1", "is_cancelled": "1"
    })
}

fn maintenance() -> Value {
    json!({
        "unique_id": "204150", "internal_id": "18181", "lift_type": "1", "maintain_type": "1",
        "contact_name": "张三", "contact_phone": "13811111111", "use_company": "深圳熊谷物业管理有限公司南浔分公司",
        "report_no": "ACH0844", "report_time": "20181025T062700"
    })
}

fn rescue() -> Value {
    json!({"unique_id": "123456", "serial_num": "TF20210317001", "fault_start_time": "20210317T122535",
           "alarm_accept_time": "20210317T122600"})
}

fn installation() -> Value {
    json!({"service_target": 2, "room_ids": ["55e155ba8eb018a374466d34"],
           "subscribe": {"date": 1464998400000_i64, "time": "101", "name": "测试", "phone": "18588787458"}})
}

fn repair() -> Value {
    json!({"service_target": 1, "room_ids": ["569082990da556a9755299bb"], "ticket_description": "维修",
           "subscribe": {"name": "测试", "phone": "18588787458", "time": "102"}})
}

async fn save(app: &TestApp, token: &str, input: Value) -> crate::utils::Gql {
    app.gql(Some(token), SAVE, json!({"i": input})).await
}

#[tokio::test]
async fn each_kind_is_created_with_its_initial_status_and_validated_per_kind() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let tok = t.admin_token.as_str();

    for (kind, fields, initial) in [
        ("WORK_PERMIT", permit(), "APPLIED"),
        ("MAINTENANCE", maintenance(), "PLANNED"),
        ("RESCUE", rescue(), "REPORTED"),
        ("INSTALLATION", installation(), "PENDING"),
        ("REPAIR", repair(), "PENDING"),
    ] {
        let r = save(&app, tok, json!({"kind": kind, "fields": fields})).await;
        let ticket = &r.data()["saveTicket"];
        assert_eq!(ticket["kind"], kind);
        assert_eq!(ticket["status"], initial, "{kind}");
        let statuses = app.gql(Some(tok), "query($k:TicketKind!){ ticketStatuses(kind:$k) }", json!({"k": kind})).await;
        assert_eq!(statuses.data()["ticketStatuses"][0], initial);
    }
    // Seed-driven mirrors: the permit's ticket_status follows the status; work orders carry service_type.
    let r = app
        .gql(Some(tok), "{ tickets(filter:{kind:WORK_PERMIT}){ totalCount edges{ node{ fields } } } }", json!({}))
        .await;
    assert_eq!(r.data()["tickets"]["totalCount"], 1);
    assert_eq!(r.data()["tickets"]["edges"][0]["node"]["fields"]["ticket_status"], "0");

    // Invalid tickets are refused naming the field.
    let mut missing = permit();
    missing.as_object_mut().expect("object").remove("ticket_content");
    let mut hot_level_03 = permit();
    hot_level_03["ticket_level"] = json!("03");
    let mut confined_with_level = permit();
    confined_with_level["ticket_type"] = json!("02");
    let mut ends_before_start = permit();
    ends_before_start["end_time"] = json!("2021-12-20 10:00");
    let mut bad_date = maintenance();
    bad_date["report_time"] = json!("2018-10-25 06:27");
    let mut no_rooms = installation();
    no_rooms["room_ids"] = json!([]);
    let mut repair_without_description = repair();
    repair_without_description.as_object_mut().expect("object").remove("ticket_description");
    for (kind, fields, field) in [
        ("WORK_PERMIT", missing, "fields.ticket_content"),
        ("WORK_PERMIT", hot_level_03, "fields.ticket_level"),
        ("WORK_PERMIT", confined_with_level, "fields.ticket_level"),
        ("WORK_PERMIT", ends_before_start, "fields.end_time"),
        ("MAINTENANCE", bad_date, "fields.report_time"),
        ("RESCUE", json!({"unique_id": "123456"}), "fields.serial_num"),
        ("INSTALLATION", no_rooms, "fields.room_ids"),
        ("REPAIR", repair_without_description, "fields.ticket_description"),
    ] {
        let r = save(&app, tok, json!({"kind": kind, "fields": fields})).await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{kind} {field}: {}", r.raw);
        assert_eq!(r.body["errors"][0]["extensions"]["field"], field, "{}", r.raw);
    }
    let r = save(&app, tok, json!({"kind": "RESCUE", "fields": [1, 2]})).await;
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "fields");
    let r = save(&app, tok, json!({"kind": "RESCUE", "status": "FLYING", "fields": rescue()})).await;
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "status");
    // Nothing invalid was stored.
    let r = app.gql(Some(tok), "{ tickets{ totalCount } }", json!({})).await;
    assert_eq!(r.data()["tickets"]["totalCount"], 5);
}

#[tokio::test]
async fn workflows_move_forward_and_refuse_going_back() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let tok = t.admin_token.as_str();

    // Rescue: each stage requires its own fields.
    let r = save(&app, tok, json!({"kind": "RESCUE", "fields": rescue()})).await;
    let id = r.data()["saveTicket"]["id"].clone();
    let r = save(&app, tok, json!({"id": id, "kind": "RESCUE", "status": "DISPATCHED"})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    let field = r.body["errors"][0]["extensions"]["field"].as_str().expect("field");
    assert!(["fields.task_open_time", "fields.primary_rescue_company"].contains(&field), "{}", r.raw);
    let r = save(
        &app,
        tok,
        json!({"id": id, "kind": "RESCUE", "status": "DISPATCHED",
               "fields": {"task_open_time": "20210317T122700", "primary_rescue_company": "湖州某电梯维保有限公司"}}),
    )
    .await;
    assert_eq!(r.data()["saveTicket"]["status"], "DISPATCHED");
    // Fields merge: the earlier ones are kept.
    assert_eq!(r.data()["saveTicket"]["fields"]["serial_num"], "TF20210317001");
    let r = save(&app, tok, json!({"id": id, "kind": "RESCUE", "status": "REPORTED"})).await;
    assert_eq!(r.code(), "CONFLICT", "{}", r.raw);
    let r = save(&app, tok, json!({"id": id, "kind": "MAINTENANCE", "status": "DONE"})).await;
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "kind");

    // Work permit: APPLIED -> ISSUED -> ACCEPTED; nothing after acceptance.
    let r = save(&app, tok, json!({"kind": "WORK_PERMIT", "fields": permit()})).await;
    let pid = r.data()["saveTicket"]["id"].clone();
    let r = save(&app, tok, json!({"id": pid, "kind": "WORK_PERMIT", "status": "ISSUED"})).await;
    assert_eq!(r.data()["saveTicket"]["fields"]["ticket_status"], "1");
    let r = save(&app, tok, json!({"id": pid, "kind": "WORK_PERMIT", "status": "ACCEPTED"})).await;
    assert_eq!(r.data()["saveTicket"]["status"], "ACCEPTED");
    let r = save(&app, tok, json!({"id": pid, "kind": "WORK_PERMIT", "status": "APPLIED"})).await;
    assert_eq!(r.code(), "CONFLICT");
    let r = save(&app, tok, json!({"id": pid, "kind": "WORK_PERMIT", "status": "VOIDED"})).await;
    assert_eq!(r.code(), "CONFLICT");

    // Lock work order: forward, and closed from anywhere; filters by status.
    let r = save(&app, tok, json!({"kind": "REPAIR", "fields": repair(), "externalId": "20160511_81299"})).await;
    let wid = r.data()["saveTicket"]["id"].clone();
    assert_eq!(r.data()["saveTicket"]["externalId"], "20160511_81299");
    let r = save(&app, tok, json!({"id": wid, "kind": "REPAIR", "status": "CLOSED"})).await;
    assert_eq!(r.data()["saveTicket"]["status"], "CLOSED");
    let r = app.gql(Some(tok), "{ tickets(filter:{kind:REPAIR, status:\"CLOSED\"}){ totalCount } }", json!({})).await;
    assert_eq!(r.data()["tickets"]["totalCount"], 1);
    let r = app
        .gql(Some(tok), "{ tickets(filter:{status:\"DISPATCHED\"}){ totalCount edges{node{id}} } }", json!({}))
        .await;
    assert_eq!(r.data()["tickets"]["edges"][0]["node"]["id"], id);
}

#[tokio::test]
async fn files_attach_by_multipart_and_download_only_in_their_tenant() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let a = tenant_with_admin(&app, &root).await;
    let b = tenant_with_admin(&app, &root).await;
    let r = save(&app, &a.admin_token, json!({"kind": "RESCUE", "fields": rescue()})).await;
    let ticket = r.data()["saveTicket"]["id"].as_str().expect("id").to_owned();

    let upload = |token: String, ticket: String, bytes: Vec<u8>, name: &'static str| {
        let app = &app;
        async move {
            let ops = json!({
                "query": "mutation($t:ID!, $f:Upload!){ attachTicketFile(ticketId:$t, file:$f){ id filename contentType size url } }",
                "variables": {"t": ticket, "f": null}
            });
            let form = reqwest::multipart::Form::new()
                .text("operations", ops.to_string())
                .text("map", json!({"0": ["variables.f"]}).to_string())
                .part(
                    "0",
                    reqwest::multipart::Part::bytes(bytes).file_name(name).mime_str("image/jpeg").expect("mime"),
                );
            let resp =
                app.http.post(app.url("/graphql")).bearer_auth(token).multipart(form).send().await.expect("upload");
            let status = resp.status();
            let body: Value = resp.json().await.expect("json");
            (status, body)
        }
    };
    let photo: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (status, body) = upload(a.admin_token.clone(), ticket.clone(), photo.clone(), "../../etc/scene.jpg").await;
    assert_eq!(status, 200, "{body}");
    let file = &body["data"]["attachTicketFile"];
    assert_eq!(file["filename"], "scene.jpg");
    assert_eq!(file["size"], 200_000);
    let url = file["url"].as_str().expect("url").to_owned();

    let listed = app
        .gql(Some(&a.admin_token), "query($id:ID!){ ticket(id:$id){ files{ id filename } } }", json!({"id": ticket}))
        .await;
    assert_eq!(listed.data()["ticket"]["files"][0]["id"], file["id"]);

    let got = app.http.get(app.url(&url)).bearer_auth(&a.admin_token).send().await.expect("download");
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/jpeg");
    assert_eq!(got.bytes().await.expect("bytes").to_vec(), photo);
    // Another tenant, or nobody, cannot read it; another tenant cannot attach to the ticket.
    let other = app.http.get(app.url(&url)).bearer_auth(&b.admin_token).send().await.expect("download");
    assert_eq!(other.status(), 404);
    let anon = app.http.get(app.url(&url)).send().await.expect("download");
    assert_eq!(anon.status(), 401);
    let (_, body) = upload(b.admin_token.clone(), ticket.clone(), vec![1, 2, 3], "x.jpg").await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND", "{body}");
    // An empty file is refused.
    let (_, body) = upload(a.admin_token.clone(), ticket.clone(), Vec::new(), "empty.jpg").await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "file", "{body}");
    // A viewer cannot attach.
    let email = format!("viewer@{}.example.com", a.slug);
    app.create_user(&a.admin_token, &a.id, &email, USER_PASSWORD, "VIEWER").await;
    let viewer = app.login(&email, USER_PASSWORD).await;
    let (_, body) = upload(viewer, ticket.clone(), vec![1], "v.jpg").await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "FORBIDDEN", "{body}");
    let listed =
        app.gql(Some(&a.admin_token), "query($id:ID!){ ticket(id:$id){ files{ id } } }", json!({"id": ticket})).await;
    assert_eq!(listed.data()["ticket"]["files"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn tickets_are_tenant_scoped_for_every_query_and_mutation() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let a = tenant_with_admin(&app, &root).await;
    let b = tenant_with_admin(&app, &root).await;
    let r = save(&app, &b.admin_token, json!({"kind": "MAINTENANCE", "fields": maintenance()})).await;
    let theirs = r.data()["saveTicket"]["id"].clone();
    let integ = app
        .configure_integration(
            &b.admin_token,
            json!({"kind": "DINGDING", "name": "b", "settings": {"baseUrl": "https://openapi.example.com"},
                   "credentials": {"clientId": "c", "clientSecret": "s"}}),
        )
        .await;
    let their_integration = integ.data()["configureIntegration"]["id"].clone();
    let home = app.gql(Some(&b.admin_token), "mutation{ addHome(input:{name:\"b-home\"}){ id } }", json!({})).await;
    let their_home = home.data()["addHome"]["id"].clone();
    save(&app, &a.admin_token, json!({"kind": "RESCUE", "fields": rescue()})).await.data();

    let t = Some(a.admin_token.as_str());
    let r = app.gql(t, "{ tickets{ totalCount edges{ node{ kind } } } }", json!({})).await;
    assert_eq!(r.data()["tickets"]["totalCount"], 1);
    assert_eq!(r.data()["tickets"]["edges"][0]["node"]["kind"], "RESCUE");
    assert_eq!(app.gql(t, "query($id:ID!){ ticket(id:$id){ id } }", json!({"id": theirs})).await.code(), "NOT_FOUND");
    let r = save(&app, &a.admin_token, json!({"id": theirs, "kind": "MAINTENANCE", "status": "CANCELLED"})).await;
    assert_eq!(r.code(), "NOT_FOUND");
    let r =
        save(&app, &a.admin_token, json!({"kind": "RESCUE", "fields": rescue(), "integrationId": their_integration}))
            .await;
    assert_eq!(r.code(), "NOT_FOUND");
    let r = save(&app, &a.admin_token, json!({"kind": "RESCUE", "fields": rescue(), "homeId": their_home})).await;
    assert_eq!(r.code(), "NOT_FOUND");
    let r = app.gql(Some(&b.admin_token), "query($id:ID!){ ticket(id:$id){ status } }", json!({"id": theirs})).await;
    assert_eq!(r.data()["ticket"]["status"], "PLANNED");
}
