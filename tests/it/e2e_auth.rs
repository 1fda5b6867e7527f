//! Login: one answer for a wrong email and a wrong password, throttling, tokens.

use crate::utils::{ADMIN_PASSWORD, USER_PASSWORD, spawn_app, spawn_app_with, tenant_with_admin};
use serde_json::json;

const LOGIN: &str =
    "mutation($e:String!,$p:String!){ login(email:$e,password:$p){ token expiresAt user { role tenantId } } }";

#[tokio::test]
async fn wrong_email_and_wrong_password_answer_the_same() {
    let app = spawn_app().await;
    let wrong_pw = app.gql(None, LOGIN, json!({"e": app.admin_email, "p": "not-the-password"})).await;
    let wrong_email = app.gql(None, LOGIN, json!({"e": "nobody@example.com", "p": ADMIN_PASSWORD})).await;
    assert_eq!(wrong_pw.code(), "UNAUTHENTICATED");
    assert_eq!(wrong_email.code(), "UNAUTHENTICATED");
    assert_eq!(wrong_pw.body["errors"][0]["message"], wrong_email.body["errors"][0]["message"]);
    assert!(wrong_pw.body["data"].is_null());
    // Emails are case-insensitive.
    let ok = app.gql(None, LOGIN, json!({"e": app.admin_email.to_uppercase(), "p": ADMIN_PASSWORD})).await;
    assert_eq!(ok.data()["login"]["user"]["role"], "PLATFORM_ADMIN");
    assert!(ok.data()["login"]["user"]["tenantId"].is_null());
}

#[tokio::test]
async fn repeated_failures_are_locked_out_and_success_resets() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    // The test app locks out after 5 failures (see utils::spawn_app).
    for i in 0..5 {
        let r = app.gql(None, LOGIN, json!({"e": t.admin_email, "p": format!("wrong-{i}")})).await;
        assert_eq!(r.code(), "UNAUTHENTICATED", "attempt {i}");
    }
    let r = app.gql(None, LOGIN, json!({"e": t.admin_email, "p": USER_PASSWORD})).await;
    assert_eq!(r.code(), "RATE_LIMITED", "even the right password waits out the lock");
    assert!(r.body["errors"][0]["extensions"]["retryAfterSeconds"].as_u64().is_some_and(|s| s > 0));
    // Another account is unaffected.
    let ok = app.gql(None, LOGIN, json!({"e": app.admin_email, "p": ADMIN_PASSWORD})).await;
    assert!(ok.data()["login"]["token"].is_string());
}

#[tokio::test]
async fn tokens_are_required_and_checked() {
    let app = spawn_app().await;
    let r = app.gql(None, "{ me { id } }", json!({})).await;
    assert_eq!(r.code(), "UNAUTHENTICATED");
    let r = app.gql(Some("not-a-jwt"), "{ me { id } }", json!({})).await;
    assert_eq!(r.code(), "UNAUTHENTICATED");
    // A token signed with another key is refused.
    let other = spawn_app().await;
    let foreign = other.admin_token().await;
    assert_eq!(app.gql(Some(&foreign), "{ me { id } }", json!({})).await.code(), "UNAUTHENTICATED");
    let root = app.admin_token().await;
    let me = app.gql(Some(&root), "{ me { email role } }", json!({})).await;
    assert_eq!(me.data()["me"]["email"], json!(app.admin_email));
    // Platform admins have no tenant data to read.
    assert_eq!(app.gql(Some(&root), "{ integrations { totalCount } }", json!({})).await.code(), "FORBIDDEN");
}

#[tokio::test]
async fn same_email_in_two_tenants_needs_the_tenant_named() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let a = tenant_with_admin(&app, &root).await;
    let b = tenant_with_admin(&app, &root).await;
    let email = format!("shared@{}.example.com", a.slug);
    app.create_user(&root, &a.id, &email, USER_PASSWORD, "OPERATOR").await;
    app.create_user(&root, &b.id, &email, USER_PASSWORD, "VIEWER").await;
    let r = app.gql(None, LOGIN, json!({"e": email, "p": USER_PASSWORD})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    let q =
        "mutation($e:String!,$p:String!,$t:String){ login(email:$e,password:$p,tenant:$t){ user { role tenantId } } }";
    let r = app.gql(None, q, json!({"e": email, "p": USER_PASSWORD, "t": b.slug})).await;
    assert_eq!(r.data()["login"]["user"]["role"], "VIEWER");
    assert_eq!(r.data()["login"]["user"]["tenantId"], json!(b.id));
}

#[tokio::test]
async fn a_same_email_account_in_another_tenant_neither_unlocks_nor_is_locked_by_the_other() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let a = tenant_with_admin(&app, &root).await;
    let b = tenant_with_admin(&app, &root).await;
    let email = format!("twin@{}.example.com", a.slug);
    app.create_user(&root, &a.id, &email, USER_PASSWORD, "OPERATOR").await;
    app.create_user(&root, &b.id, &email, "other-password-Qw7!", "VIEWER").await;
    let q = "mutation($e:String!,$p:String!,$t:String){ login(email:$e,password:$p,tenant:$t){ user { tenantId } } }";
    // Tenant a's account is locked out by failures against it ...
    for i in 0..5 {
        let r = app.gql(None, q, json!({"e": email, "p": format!("wrong-{i}"), "t": a.slug})).await;
        assert_eq!(r.code(), "UNAUTHENTICATED", "attempt {i}");
    }
    assert_eq!(app.gql(None, q, json!({"e": email, "p": USER_PASSWORD, "t": a.slug})).await.code(), "RATE_LIMITED");
    // ... which does not lock tenant b's account of the same email,
    let ok = app.gql(None, q, json!({"e": email, "p": "other-password-Qw7!", "t": b.slug})).await;
    assert_eq!(ok.data()["login"]["user"]["tenantId"], json!(b.id), "{}", ok.raw);
    // ... and b's success does not unlock a's.
    assert_eq!(app.gql(None, q, json!({"e": email, "p": USER_PASSWORD, "t": a.slug})).await.code(), "RATE_LIMITED");
}

#[tokio::test]
async fn one_request_checks_one_password_whatever_its_aliases() {
    let app = spawn_app().await;
    let q = "mutation($e:String!,$p:String!){ a: login(email:$e,password:$p){ token } b: login(email:$e,password:$p){ token } \
             c: login(email:$e,password:$p){ token } }";
    let r = app.gql(None, q, json!({"e": app.admin_email, "p": ADMIN_PASSWORD})).await;
    let errors = r.body["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(errors.len(), 2, "{}", r.raw);
    assert!(errors.iter().all(|e| e["extensions"]["code"] == "RATE_LIMITED"), "{}", r.raw);
}

#[tokio::test]
async fn password_checks_per_client_address_are_budgeted() {
    let app = spawn_app_with(|c| c.login_hashes_per_minute = 3).await;
    for i in 0..3 {
        let r = app.gql(None, LOGIN, json!({"e": format!("nobody{i}@example.com"), "p": "x"})).await;
        assert_eq!(r.code(), "UNAUTHENTICATED", "attempt {i}");
    }
    let r = app.gql(None, LOGIN, json!({"e": app.admin_email, "p": ADMIN_PASSWORD})).await;
    assert_eq!(r.code(), "RATE_LIMITED", "{}", r.raw);
}

#[tokio::test]
async fn one_client_address_spraying_many_emails_is_locked_out() {
    let app = spawn_app().await;
    // The test app locks an account after 5 failures, an address after 25.
    for i in 0..25 {
        let r = app.gql(None, LOGIN, json!({"e": format!("spray{i}@example.com"), "p": "guess"})).await;
        assert_eq!(r.code(), "UNAUTHENTICATED", "attempt {i}");
    }
    let r = app.gql(None, LOGIN, json!({"e": app.admin_email, "p": ADMIN_PASSWORD})).await;
    assert_eq!(r.code(), "RATE_LIMITED", "{}", r.raw);
}
