//! What a query costs the database (issue 17.5): nested lookups in a list are batched per
//! request (the statement count does not grow with the page), `totalCount` is counted only
//! when asked, and a query whose lists multiply past the cost limit is refused before any
//! resolver runs. Statements are counted by the pool's metric callback
//! (`AppState::db_statements`); the app runs no workers, and each count is the least of
//! three runs, so nothing else running on the pool can inflate it.

use crate::utils::{TenantFixture, TestApp, spawn_app_with, tenant_with_admin, unique};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

async fn app() -> (TestApp, TenantFixture) {
    let app = spawn_app_with(|c| c.run_workers = false).await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    (app, t)
}

/// Statements one run of `query` issues (the least of three runs) and its answer.
async fn statements(app: &TestApp, token: &str, query: &str, vars: Value) -> (u64, crate::utils::Gql) {
    let mut least = u64::MAX;
    let mut last = None;
    for _ in 0..3 {
        let before = app.state.db_statements.load(Ordering::SeqCst);
        let r = app.gql(Some(token), query, vars.clone()).await;
        least = least.min(app.state.db_statements.load(Ordering::SeqCst) - before);
        last = Some(r);
    }
    (least, last.expect("ran"))
}

/// Twenty devices spread over two homes (one room each), each with one alarm.
async fn world(app: &TestApp, t: &TenantFixture) {
    let tok = Some(t.admin_token.as_str());
    let integ = app
        .configure_integration(
            &t.admin_token,
            json!({"kind": "ETC_GANTRY", "name": "cost", "settings": {},
                   "credentials": {"authCode": format!("auth-{}", unique())}}),
        )
        .await
        .id("configureIntegration");
    let mut homes = vec![];
    for h in 0..2 {
        let home = app
            .gql(tok, "mutation($n:String!){ addHome(input:{name:$n}){ id } }", json!({"n": format!("home-{h}")}))
            .await
            .id("addHome");
        let room = app
            .gql(tok, "mutation($h:ID!){ addRoom(input:{homeId:$h, name:\"hall\"}){ id } }", json!({"h": home}))
            .await
            .id("addRoom");
        homes.push((home, room));
    }
    for d in 0..20 {
        let (home, room) = &homes[d % 2];
        let dev = app
            .gql(
                tok,
                "mutation($i:UpsertDeviceInput!){ upsertDevice(input:$i){ id } }",
                json!({"i": {"integrationId": integ, "externalId": format!("dev-{d}"), "kind": "GANTRY",
                             "name": format!("device-{d}"), "homeId": home, "roomId": room}}),
            )
            .await
            .id("upsertDevice");
        app.gql(
            tok,
            "mutation($i:ReportAlarmInput!){ reportAlarm(input:$i){ id } }",
            json!({"i": {"deviceId": dev, "kind": "DOOR_OPEN", "severity": "WARNING"}}),
        )
        .await
        .id("reportAlarm");
    }
}

const ALARMS_WITH_DEVICES: &str = "query($n:Int){ alarms(first:$n){ edges{ node{ id timeline{ kind }
    device{ name home{ name rooms{ name } } room{ name } } } } } }";
const DEVICES_WITH_HOMES: &str =
    "query($n:Int){ devices(first:$n){ edges{ node{ name home{ name } room{ name } } } } }";

#[tokio::test]
async fn nested_lookups_in_a_list_cost_the_same_statements_for_2_and_for_20_items() {
    let (app, t) = app().await;
    world(&app, &t).await;
    for q in [ALARMS_WITH_DEVICES, DEVICES_WITH_HOMES] {
        let (two, r2) = statements(&app, &t.admin_token, q, json!({"n": 2})).await;
        let (twenty, r20) = statements(&app, &t.admin_token, q, json!({"n": 20})).await;
        let edges = |r: &crate::utils::Gql| r.data().as_object().and_then(|o| o.values().next()).cloned();
        assert_eq!(edges(&r2).map(|c| c["edges"].as_array().map(Vec::len)), Some(Some(2)), "{}", r2.raw);
        let all = edges(&r20).unwrap_or_default();
        let all = all["edges"].as_array().cloned().unwrap_or_default();
        assert_eq!(all.len(), 20, "{}", r20.raw);
        // Every nested lookup answered, with its own row.
        for e in &all {
            let device = if e["node"]["device"].is_object() { &e["node"]["device"] } else { &e["node"] };
            let name = device["name"].as_str().unwrap_or_default();
            let n: usize = name.trim_start_matches("device-").parse().unwrap_or(99);
            assert_eq!(device["home"]["name"], json!(format!("home-{}", n % 2)), "{}", r20.raw);
            assert_eq!(device["room"]["name"], "hall", "{}", r20.raw);
        }
        assert!(two > 0, "the pool's statements are counted");
        assert_eq!(two, twenty, "statements for 2 and for 20 items of {q}");
    }
}

#[tokio::test]
async fn total_count_runs_its_count_only_when_asked() {
    let (app, t) = app().await;
    world(&app, &t).await;
    let (without, _) = statements(&app, &t.admin_token, "{ devices(first:5){ edges{ node{ id } } } }", json!({})).await;
    let (with, r) =
        statements(&app, &t.admin_token, "{ devices(first:5){ totalCount edges{ node{ id } } } }", json!({})).await;
    assert_eq!(r.data()["devices"]["totalCount"], 20, "{}", r.raw);
    // On PostgreSQL each statement of a tenant's request also names the tenant for
    // row-level security (`set_config` in its transaction): two statements per COUNT.
    let per_statement = if app.database_url.starts_with("postgres") { 2 } else { 1 };
    assert_eq!(with, without + per_statement, "one COUNT, only when totalCount is asked");
}

#[tokio::test]
async fn lists_nested_past_the_cost_limit_are_refused_before_they_run_and_a_normal_page_passes() {
    let (app, t) = app().await;
    world(&app, &t).await;
    let deep = "{ homes(first:100){ edges{ node{ devices(first:100){ edges{ node{
        alarms(first:100){ edges{ node{ id } } } } } } } } } }";
    let (n, r) = statements(&app, &t.admin_token, deep, json!({})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.raw);
    assert!(r.body["data"].is_null(), "{}", r.raw);
    let msg = r.body["errors"][0]["message"].as_str().unwrap_or_default();
    let limit = api::graphql::MAX_COMPLEXITY.to_string();
    assert!(msg.contains("costs") && msg.contains(&limit), "{msg}");
    // The caller's token is checked against the account (one read) before any document
    // runs: a document that reads nothing costs just that.
    let (auth_only, _) = statements(&app, &t.admin_token, "{ __typename }", json!({})).await;
    assert!(auth_only <= 1, "authentication reads the account once ({auth_only})");
    assert_eq!(n, auth_only, "refused before any resolver read anything");
    // The same through variables: the page sizes are read from them.
    let q = "query($n:Int){ homes(first:$n){ edges{ node{ devices(first:$n){ edges{ node{ name } } } } } } }";
    let r = app.gql(Some(&t.admin_token), q, json!({"n": 100})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.raw);

    // A page of 100 with its nested lookups, and two nested default pages, pass.
    let normal = "{ alarms(first:100){ totalCount pageInfo{ hasNextPage endCursor } edges{ cursor node{ id kind
        severity state message raisedAt lastSeenAt occurrences timeline{ at kind text }
        device{ id name kind online battery lastSeenAt home{ id name } room{ id name } } } } } }";
    let r = app.gql(Some(&t.admin_token), normal, json!({})).await;
    assert_eq!(r.data()["alarms"]["totalCount"], 20, "{}", r.raw);
    let r = app
        .gql(
            Some(&t.admin_token),
            "{ homes{ edges{ node{ name rooms{ name } devices{ totalCount edges{ node{ name } } } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(r.data()["homes"]["edges"].as_array().map(Vec::len), Some(2), "{}", r.raw);
}
