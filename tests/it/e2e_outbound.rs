//! The outbound guard (`LINKYARD_OUTBOUND_ALLOW`): a tenant cannot make the server call a
//! private or metadata address: not by a literal URL (refused when configured), not by a
//! name that resolves there, not by a redirect.

use crate::utils::fake::hazchem::FakeRegulator;
use crate::utils::{Client, quick_jobs, spawn_app_with, tenant_with_admin};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const SAVE: &str = "mutation($i:SaveTicketInput!){ saveTicket(input:$i){ id } }";
const SYNC: &str = "query($i:ID!){ ticket(id:$i){ sync{ state lastError } } }";

fn permit() -> Value {
    json!({
        "company_social_code": "91370200163569824H", "end_time": "2021-12-20 21:40", "gas_analyse": "0",
        "harm_type": "02", "lat": "36.04385097144345", "lng": "120.17930673061386", "safe_measure": "0",
        "start_time": "2021-12-20 13:56", "supervisor_name": "冯三", "ticket_content": "焊接", "ticket_level": "02",
        "ticket_position": "装置区", "ticket_type": "01", "worker_name": "张三", "workDept_name": "建设工程",
        "is_contractor_task": "0", "major_person": "王晓", "major_person_mobile": "19844112314"
    })
}

/// Waits for the permit's upload to fail; answers its error.
async fn failed_sync(api: &Client, id: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let t = api.data(SYNC, json!({"i": id})).await;
        if t["ticket"]["sync"]["state"] == "FAILED" {
            return t["ticket"]["sync"]["lastError"].as_str().unwrap_or_default().to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "the upload never failed: {t}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn literal_private_and_metadata_addresses_are_refused_when_configured() {
    let app = spawn_app_with(quick_jobs).await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let cases = [
        (
            json!({"kind": "HAZCHEM", "name": "h", "settings": {"baseUrl": "http://169.254.169.254/latest",
            "systemName": "s", "areaCode": "370211"}, "credentials": {"username": "u", "password": "p"}}),
            "settings.baseUrl",
        ),
        (
            json!({"kind": "HAZCHEM", "name": "h", "settings": {"baseUrl": "http://[::1]:6379",
            "systemName": "s", "areaCode": "370211"}, "credentials": {"username": "u", "password": "p"}}),
            "settings.baseUrl",
        ),
        (
            json!({"kind": "ETC_GANTRY", "name": "e", "settings": {"deviceHosts": {"G1": "10.0.0.7:3699"}},
            "credentials": {"authCode": "123456"}}),
            "settings.deviceHosts.G1",
        ),
    ];
    for (input, field) in cases {
        let r = t.api.configure_integration(input).await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.raw);
        assert_eq!(r.body["errors"][0]["extensions"]["field"], field, "{}", r.raw);
        assert!(r.raw.contains("LINKYARD_OUTBOUND_ALLOW"), "the error says how to allow it: {}", r.raw);
    }
    // The allowed loopback address of the test's fakes is accepted.
    let fake = FakeRegulator::start().await;
    let r = t.api.configure_integration(fake.integration("ok")).await;
    assert!(r.body.get("errors").is_none(), "{}", r.raw);
}

#[tokio::test]
async fn a_name_resolving_to_a_private_address_gets_a_clear_delivery_error_and_no_call() {
    let app = spawn_app_with(|c| {
        quick_jobs(c);
        c.outbound = Arc::new(adapters::vendors::OutboundGuard::default());
    })
    .await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let fake = FakeRegulator::start().await;
    let mut input = fake.integration("by-name");
    let port = fake.base().rsplit(':').next().expect("port").to_owned();
    input["settings"]["baseUrl"] = json!(format!("http://localhost:{port}"));
    let integration = t.api.integration(input).await.id;
    let id =
        t.api.data(SAVE, json!({"i": {"kind": "WORK_PERMIT", "integrationId": integration, "fields": permit()}})).await
            ["saveTicket"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
    let error = failed_sync(&t.api, &id).await;
    assert!(error.contains("refused: localhost resolves to"), "{error}");
    assert!(fake.server.requests().is_empty(), "nothing reached the fake: {:?}", fake.server.requests());
}

#[tokio::test]
async fn a_redirect_to_a_private_address_is_not_followed() {
    let app = spawn_app_with(quick_jobs).await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    // A server on an allowed address that sends every request to the metadata service.
    let redirector = axum::Router::new().fallback(|| async {
        (axum::http::StatusCode::FOUND, [(axum::http::header::LOCATION, "http://169.254.169.254/latest/meta-data")])
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, redirector).await });
    let integration = t
        .api
        .integration(json!({"kind": "HAZCHEM", "name": "r", "settings": {"baseUrl": base, "systemName": "s",
            "areaCode": "370211", "retry": {"initialDelaySecs": 1, "maxDelaySecs": 1, "maxAttempts": 2}},
            "credentials": {"username": "u", "password": "p"}}))
        .await
        .id;
    let id =
        t.api.data(SAVE, json!({"i": {"kind": "WORK_PERMIT", "integrationId": integration, "fields": permit()}})).await
            ["saveTicket"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
    let error = failed_sync(&t.api, &id).await;
    assert!(error.contains("169.254.169.254") && error.contains("refused"), "{error}");
}
