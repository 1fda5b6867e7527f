//! Account and key lifecycle (issue 17, issue 18): logout, password change, disabling and
//! demoting users, revoking telemetry API keys, all effective at once (also across two
//! instances on one database), audited; rotating the JWT secret and the credentials key.

use crate::utils::{
    ADMIN_PASSWORD, TestApp, USER_PASSWORD, nodes, spawn_app, spawn_app_with, tenant_with_admin, unique,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const ME: &str = "{ me { id email role disabled } }";
const LOGIN: &str = "mutation($e:String!,$p:String!){ login(email:$e,password:$p){ token } }";
const CHANGE_PASSWORD: &str =
    "mutation($c:String!,$n:String!){ changePassword(current:$c, new:$n){ token expiresAt user { id } } }";
const UPDATE_USER: &str = "mutation($id:ID!,$i:UpdateUserInput!){ updateUser(id:$id, input:$i){ id role disabled } }";
const API_KEYS: &str = "query($i:ID!){ apiKeys(integrationId:$i){ totalCount edges { node {
    id integrationId prefix createdAt lastUsedAt revokedAt } } } }";
const REVOKE: &str = "mutation($id:ID!){ revokeApiKey(id:$id){ id revokedAt } }";

/// A second server on the database of `app`, with its JWT secret and credentials key
/// (unless `tweak` changes them).
async fn sibling(app: &TestApp, tweak: impl FnOnce(&mut api::config::Config)) -> TestApp {
    let (url, jwt, key) =
        (app.database_url.clone(), app.state.config.jwt_secret.clone(), app.state.config.secret_key.clone());
    spawn_app_with(move |c| {
        c.database_url = url;
        c.jwt_secret = jwt;
        c.secret_key = key;
        tweak(c);
    })
    .await
}

/// A fresh 32-byte key in hex, as `LINKYARD_SECRET_KEY` and `LINKYARD_JWT_SECRET` take it.
fn new_key() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

async fn code_of_me(app: &TestApp, token: &str) -> Option<String> {
    app.api(token).query(ME, json!({})).await.err().and_then(|e| e.code)
}

#[tokio::test]
async fn logout_refuses_the_same_token_on_the_next_request_on_every_instance() {
    let app = spawn_app().await;
    let other = sibling(&app, |_| {}).await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let second_session = app.login(&t.admin_email, USER_PASSWORD).await;
    assert!(app.api(&t.admin_token).query(ME, json!({})).await.is_ok());
    assert!(other.api(&t.admin_token).query(ME, json!({})).await.is_ok(), "the other instance accepts it too");

    let d = t.api.data("mutation{ logout }", json!({})).await;
    assert_eq!(d["logout"], true);
    assert_eq!(code_of_me(&app, &t.admin_token).await.as_deref(), Some("UNAUTHENTICATED"));
    assert_eq!(code_of_me(&other, &t.admin_token).await.as_deref(), Some("UNAUTHENTICATED"), "at once elsewhere");
    // Logout ends every session of the account.
    assert_eq!(code_of_me(&app, &second_session).await.as_deref(), Some("UNAUTHENTICATED"));
    let again = app.login(&t.admin_email, USER_PASSWORD).await;
    assert!(other.api(&again).query(ME, json!({})).await.is_ok(), "logging in again works");
    // Platform admins log out the same way.
    app.api(&root).data("mutation{ logout }", json!({})).await;
    assert_eq!(code_of_me(&app, &root).await.as_deref(), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn change_password_revokes_old_tokens_and_the_old_password() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let email = format!("op-{}@example.com", unique());
    app.create_user(&t.admin_token, &t.id, &email, USER_PASSWORD, "OPERATOR").await;
    let old = app.login(&email, USER_PASSWORD).await;
    let new_password = "a-brand-new-password-9";

    let r = app.api(&old).gql(CHANGE_PASSWORD, json!({"c": "not-the-password", "n": new_password})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "current");
    let r = app.api(&old).gql(CHANGE_PASSWORD, json!({"c": USER_PASSWORD, "n": "short"})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "new");
    assert!(app.api(&old).query(ME, json!({})).await.is_ok(), "refused changes revoke nothing");

    let d = app.api(&old).data(CHANGE_PASSWORD, json!({"c": USER_PASSWORD, "n": new_password})).await;
    let fresh = d["changePassword"]["token"].as_str().expect("token").to_owned();
    assert_eq!(code_of_me(&app, &old).await.as_deref(), Some("UNAUTHENTICATED"), "the old token is refused");
    let me = app.api(&fresh).data(ME, json!({})).await;
    assert_eq!(me["me"]["email"], json!(email));
    let r = app.gql(None, LOGIN, json!({"e": email, "p": USER_PASSWORD})).await;
    assert_eq!(r.code(), "UNAUTHENTICATED", "the old password is refused");
    assert!(app.login(&email, new_password).await.len() > 20);
    // Nothing answered carries a password.
    assert!(!d.to_string().contains(new_password));
}

#[tokio::test]
async fn wrong_current_passwords_count_like_failed_logins() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    // The test app locks an account out after 5 failures (see utils::spawn_app).
    for i in 0..5 {
        let r = t.api.gql(CHANGE_PASSWORD, json!({"c": format!("wrong-{i}-password"), "n": "whatever-new-pw-1"})).await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "attempt {i}");
    }
    let r = t.api.gql(CHANGE_PASSWORD, json!({"c": USER_PASSWORD, "n": "whatever-new-pw-1"})).await;
    assert_eq!(r.code(), "RATE_LIMITED", "even the right password waits out the lock");
    let r = app.gql(None, LOGIN, json!({"e": t.admin_email, "p": USER_PASSWORD})).await;
    assert_eq!(r.code(), "RATE_LIMITED", "and so does the login of that account");
}

#[tokio::test]
async fn a_disabled_user_is_refused_at_once_and_cannot_log_in() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let email = format!("op-{}@example.com", unique());
    let id = app.create_user(&t.admin_token, &t.id, &email, USER_PASSWORD, "OPERATOR").await;
    let token = app.login(&email, USER_PASSWORD).await;
    assert!(app.api(&token).query(ME, json!({})).await.is_ok());

    let d = t.api.data(UPDATE_USER, json!({"id": id, "i": {"disabled": true}})).await;
    assert_eq!(d["updateUser"]["disabled"], true);
    assert_eq!(code_of_me(&app, &token).await.as_deref(), Some("UNAUTHENTICATED"));
    let r = app.gql(None, LOGIN, json!({"e": email, "p": USER_PASSWORD})).await;
    assert_eq!(r.code(), "UNAUTHENTICATED");
    let users = t.api.data("{ users { edges { node { id disabled } } } }", json!({})).await;
    assert!(nodes(&users["users"]).iter().any(|u| u["id"] == json!(id) && u["disabled"] == true));

    // Enabled again: logins work, the tokens from before stay dead.
    t.api.data(UPDATE_USER, json!({"id": id, "i": {"disabled": false}})).await;
    assert_eq!(code_of_me(&app, &token).await.as_deref(), Some("UNAUTHENTICATED"));
    let again = app.login(&email, USER_PASSWORD).await;
    assert!(app.api(&again).query(ME, json!({})).await.is_ok());
}

#[tokio::test]
async fn roles_change_at_once_and_a_tenant_keeps_an_enabled_admin() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    for input in [json!({"disabled": true}), json!({"role": "OPERATOR"})] {
        let r = t.api.gql(UPDATE_USER, json!({"id": t.admin_id, "i": input})).await;
        assert_eq!(r.code(), "CONFLICT", "the last admin cannot remove themselves: {input}");
    }
    let r = app.api(&root).gql(UPDATE_USER, json!({"id": t.admin_id, "i": {"disabled": true}})).await;
    assert_eq!(r.code(), "CONFLICT", "nor can a platform admin leave the tenant without one");
    let r = t.api.gql(UPDATE_USER, json!({"id": t.admin_id, "i": {"role": "PLATFORM_ADMIN"}})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT");

    // With a second admin, the first may step down; the stored role holds at once.
    let email = format!("admin2-{}@example.com", unique());
    let second = app.create_user(&root, &t.id, &email, USER_PASSWORD, "OPERATOR").await;
    let second_token = app.login(&email, USER_PASSWORD).await;
    assert_eq!(
        app.api(&second_token).query("{ users { totalCount } }", json!({})).await.err().and_then(|e| e.code).as_deref(),
        Some("FORBIDDEN")
    );
    let d = app.api(&root).data(UPDATE_USER, json!({"id": second, "i": {"role": "TENANT_ADMIN"}})).await;
    assert_eq!(d["updateUser"]["role"], "TENANT_ADMIN");
    assert!(app.api(&second_token).query("{ users { totalCount } }", json!({})).await.is_ok(), "promoted at once");
    let d = t.api.data(UPDATE_USER, json!({"id": t.admin_id, "i": {"role": "VIEWER"}})).await;
    assert_eq!(d["updateUser"]["role"], "VIEWER");
    let r = t.api.gql(UPDATE_USER, json!({"id": second, "i": {"disabled": true}})).await;
    assert_eq!(r.code(), "FORBIDDEN", "a viewer changes no user, whatever their token said");
    let r = app.api(&second_token).gql(UPDATE_USER, json!({"id": second, "i": {"role": "VIEWER"}})).await;
    assert_eq!(r.code(), "CONFLICT", "now the second admin is the last one");
}

#[tokio::test]
async fn api_keys_are_listed_without_secrets_and_revoked_at_once() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let integration =
        t.api.integration(json!({"kind": "ETC_GANTRY", "name": "e", "credentials": {"authCode": "123456"}})).await.id;
    let k1 = t.api.create_api_key(&integration).await;
    let k2 = t.api.create_api_key(&integration).await;
    let post = |key: String| {
        let (http, url) = (app.http.clone(), app.url(&format!("/hooks/{integration}/telemetry")));
        async move {
            let r = http.post(url).header("x-api-key", key).json(&json!({"readings": []})).send().await.expect("post");
            r.status().as_u16()
        }
    };
    assert_eq!(post(k1.clone()).await, 200);

    let listed = t.api.data(API_KEYS, json!({"i": integration})).await;
    let raw = listed.to_string();
    assert!(!raw.contains(&k1) && !raw.contains(&k2), "listing shows no key");
    let keys = nodes(&listed["apiKeys"]);
    assert_eq!(keys.len(), 2);
    let first = keys.iter().find(|k| k1.starts_with(k["prefix"].as_str().expect("prefix"))).expect("k1 listed");
    assert!(first["lastUsedAt"].is_string(), "the accepted key shows its use");
    assert!(first["revokedAt"].is_null());
    let first_id = first["id"].as_str().expect("id").to_owned();

    let d = t.api.data(REVOKE, json!({"id": first_id})).await;
    let revoked_at = d["revokeApiKey"]["revokedAt"].clone();
    assert!(revoked_at.is_string());
    assert_eq!(post(k1.clone()).await, 401, "refused from the next request on");
    assert_eq!(post(k2.clone()).await, 200, "the other key still works");
    let d = t.api.data(REVOKE, json!({"id": first_id})).await;
    assert_eq!(d["revokeApiKey"]["revokedAt"], revoked_at, "revoking again changes nothing");
    let listed = t.api.data(API_KEYS, json!({"i": integration})).await;
    assert!(nodes(&listed["apiKeys"]).iter().any(|k| k["id"] == json!(first_id) && k["revokedAt"] == revoked_at));

    // Operators see no keys.
    let email = format!("op-{}@example.com", unique());
    app.create_user(&t.admin_token, &t.id, &email, USER_PASSWORD, "OPERATOR").await;
    let op = app.api(&app.login(&email, USER_PASSWORD).await);
    assert_eq!(op.gql(API_KEYS, json!({"i": integration})).await.code(), "FORBIDDEN");
    assert_eq!(op.gql(REVOKE, json!({"id": first_id})).await.code(), "FORBIDDEN");
}

#[tokio::test]
async fn another_tenants_admin_can_neither_see_nor_change_users_or_keys() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let a = tenant_with_admin(&app, &root).await;
    let b = tenant_with_admin(&app, &root).await;
    let integration =
        a.api.integration(json!({"kind": "ETC_GANTRY", "name": "e", "credentials": {"authCode": "123456"}})).await.id;
    let key = a.api.create_api_key(&integration).await;
    let key_id = nodes(&a.api.data(API_KEYS, json!({"i": integration})).await["apiKeys"])[0]["id"].clone();

    assert_eq!(b.api.gql(API_KEYS, json!({"i": integration})).await.code(), "NOT_FOUND");
    assert_eq!(b.api.gql(REVOKE, json!({"id": key_id})).await.code(), "NOT_FOUND");
    let r = b.api.gql(UPDATE_USER, json!({"id": a.admin_id, "i": {"disabled": true}})).await;
    assert_eq!(r.code(), "NOT_FOUND");
    // Nothing changed in tenant A.
    assert!(app.api(&a.admin_token).query(ME, json!({})).await.is_ok());
    let status = app
        .http
        .post(app.url(&format!("/hooks/{integration}/telemetry")))
        .header("x-api-key", &key)
        .json(&json!({"readings": []}))
        .send()
        .await
        .expect("post")
        .status();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn lifecycle_mutations_are_audited() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let email = format!("op-{}@example.com", unique());
    let id = app.create_user(&t.admin_token, &t.id, &email, USER_PASSWORD, "OPERATOR").await;
    let integration =
        t.api.integration(json!({"kind": "ETC_GANTRY", "name": "e", "credentials": {"authCode": "123456"}})).await.id;
    t.api.create_api_key(&integration).await;
    let key_id = nodes(&t.api.data(API_KEYS, json!({"i": integration})).await["apiKeys"])[0]["id"].clone();
    t.api.data(REVOKE, json!({"id": key_id})).await;
    t.api.data(UPDATE_USER, json!({"id": id, "i": {"role": "VIEWER"}})).await;
    t.api.gql(UPDATE_USER, json!({"id": t.admin_id, "i": {"disabled": true}})).await;
    let d = t.api.data(CHANGE_PASSWORD, json!({"c": USER_PASSWORD, "n": "another-password-77"})).await;
    let token = d["changePassword"]["token"].as_str().expect("token").to_owned();
    app.api(&token).data("mutation{ logout }", json!({})).await;

    let fresh = app.login(&t.admin_email, "another-password-77").await;
    let q = "{ auditLog(first: 100) { edges { node { action target outcome actorId } } } }";
    let log = nodes(&app.api(&fresh).data(q, json!({})).await["auditLog"]);
    let has = |action: &str, target: Option<&Value>, outcome: &str| {
        log.iter().any(|e| e["action"] == action && e["outcome"] == outcome && target.is_none_or(|t| &e["target"] == t))
    };
    assert!(has("revokeApiKey", Some(&key_id), "OK"), "{log:?}");
    assert!(has("updateUser", Some(&json!(id)), "OK"), "{log:?}");
    assert!(has("updateUser", None, "CONFLICT"), "refusals are audited too: {log:?}");
    assert!(has("changePassword", None, "OK"), "{log:?}");
    assert!(has("logout", None, "OK"), "{log:?}");
    let raw = serde_json::to_string(&log).expect("json");
    assert!(!raw.contains("another-password-77") && !raw.contains(USER_PASSWORD), "no password is audited");
}

#[tokio::test]
async fn a_token_signed_with_the_previous_jwt_secret_works_only_while_it_is_configured() {
    let app = spawn_app().await;
    let old_secret = app.state.config.jwt_secret.clone();
    let old_token = app.admin_token().await;
    let rotated_secret = SecretString::from(new_key());
    let (s1, s2) = (rotated_secret.clone(), rotated_secret.clone());
    let rotating = sibling(&app, move |c| {
        c.jwt_secret = s1;
        c.jwt_secret_previous = Some(old_secret);
    })
    .await;
    let rotated = sibling(&app, move |c| c.jwt_secret = s2).await;

    let me = rotating.api(&old_token).data(ME, json!({})).await;
    assert_eq!(me["me"]["email"], json!(app.admin_email), "the previous secret still verifies");
    assert_eq!(code_of_me(&rotated, &old_token).await.as_deref(), Some("UNAUTHENTICATED"), "not once dropped");
    // New tokens are signed with the current secret.
    let new_token = rotating.login(&app.admin_email, ADMIN_PASSWORD).await;
    assert!(rotated.api(&new_token).query(ME, json!({})).await.is_ok());
    assert_eq!(code_of_me(&app, &new_token).await.as_deref(), Some("UNAUTHENTICATED"));
    assert_ne!(rotated_secret.expose_secret(), app.state.config.jwt_secret.expose_secret());
}

/// One column of one row, read straight from the app's database.
async fn column<T: sea_orm::TryGetable>(app: &TestApp, table: &'static str, col: &'static str, id: uuid::Uuid) -> T {
    use sea_orm::ConnectionTrait;
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let q = Query::select().column(col).from(table).and_where(Expr::col("id").eq(id)).to_owned();
    let row = app.state.db.query_one(&q).await.expect("select").expect("row");
    row.try_get("", col).expect("column")
}

fn reencrypt(app: &TestApp, current: &str, previous: &str) -> String {
    let mut cmd = std::process::Command::new(crate::utils::child::linkyard_bin());
    for (var, _) in std::env::vars() {
        if var.starts_with("LINKYARD_") || var == "DATABASE_URL" || var == "REDIS_URL" {
            cmd.env_remove(var);
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cmd
        .args(["admin", "reencrypt"])
        .current_dir(dir.path())
        .env("DATABASE_URL", &app.database_url)
        .env("LINKYARD_JWT_SECRET", app.state.config.jwt_secret.expose_secret())
        .env("LINKYARD_SECRET_KEY", current)
        .env("LINKYARD_SECRET_KEY_PREVIOUS", previous)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run reencrypt");
    assert!(out.status.success(), "reencrypt: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn credentials_sealed_under_the_previous_key_open_during_rotation_and_after_reencrypt() {
    use adapters::crypto::{AesGcmSecretBox, parse_key};
    use domain::security::SecretBox as _;
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let (old_key, new_key) = (app.state.config.secret_key.expose_secret().to_owned(), new_key());
    let old_box = AesGcmSecretBox::new(parse_key(&old_key).expect("key")).expect("box");
    let new_box = AesGcmSecretBox::new(parse_key(&new_key).expect("key")).expect("box");
    let kept = t
        .api
        .integration(json!({"kind": "ETC_GANTRY", "name": "kept", "credentials": {"authCode": "123456"}}))
        .await
        .id;
    let rotated =
        t.api.integration(json!({"kind": "ETC_GANTRY", "name": "rot", "credentials": {"authCode": "654321"}})).await.id;
    // A lock password's secret and a delivery payload sealed under the old key, as the lock
    // module writes them.
    let device = t.api.device(&kept, "G0001", "GANTRY_CABINET", "cabinet 1", json!({})).await;
    let (pw_id, delivery_id, now) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), chrono::Utc::now());
    let id = |s: &str| uuid::Uuid::parse_str(s).expect("uuid");
    let payload = json!({"AddPassword": {"sealed": old_box.seal(b"135790").expect("seal"), "name": "door"}});
    {
        use sea_orm::ConnectionTrait;
        use sea_orm::sea_query::Query;
        let pw = Query::insert()
            .into_table("dingding_lock_passwords")
            .columns([
                "id",
                "tenant_id",
                "integration_id",
                "device_id",
                "kind",
                "name",
                "sealed_secret",
                "deleted",
                "created_at",
                "updated_at",
            ])
            .values_panic([
                pw_id.into(),
                id(&t.id).into(),
                id(&kept).into(),
                id(&device).into(),
                "PLATFORM".into(),
                "door".into(),
                old_box.seal(b"246810").expect("seal").into(),
                false.into(),
                now.into(),
                now.into(),
            ])
            .to_owned();
        app.state.db.execute(&pw).await.expect("insert a lock password");
        let delivery = Query::insert()
            .into_table("deliveries")
            .columns([
                "id",
                "tenant_id",
                "integration_id",
                "kind",
                "idempotency_key",
                "payload",
                "state",
                "attempts",
                "created_at",
                "updated_at",
            ])
            .values_panic([
                delivery_id.into(),
                id(&t.id).into(),
                id(&kept).into(),
                "dingding.add_password".into(),
                format!("k-{delivery_id}").into(),
                payload.into(),
                "DEAD".into(),
                1i32.into(),
                now.into(),
                now.into(),
            ])
            .to_owned();
        app.state.db.execute(&delivery).await.expect("insert a delivery");
    }

    let tenant: domain::ids::TenantId = t.id.parse().expect("tenant id");
    let open = |app: &TestApp, id: &str| {
        let (integrations, id) = (app.state.integrations.clone(), id.parse().expect("integration id"));
        async move { integrations.open_credentials(tenant, id).await.map(|(_, m)| m["authCode"].clone()) }
    };
    let (k1, k2) = (SecretString::from(new_key.clone()), SecretString::from(new_key.clone()));
    let old = SecretString::from(old_key.clone());
    let rotating = sibling(&app, move |c| {
        c.secret_key = k1;
        c.secret_key_previous = Some(old);
    })
    .await;
    let current_only = sibling(&app, move |c| c.secret_key = k2).await;
    assert_eq!(open(&rotating, &kept).await.expect("opens during rotation"), json!("123456"));
    assert!(open(&current_only, &kept).await.is_err(), "without the previous key the old value does not open");

    // What the rotating instance writes is sealed under the current key.
    let r = rotating
        .api(&t.admin_token)
        .data("mutation($id:ID!){ rotateIntegrationSecret(id:$id){ secret } }", json!({"id": rotated}))
        .await;
    let secret = r["rotateIntegrationSecret"]["secret"].clone();
    assert_eq!(open(&current_only, &rotated).await.expect("opens under the current key"), secret);
    assert!(open(&app, &rotated).await.is_err(), "not under the old one");

    let out = reencrypt(&app, &new_key, &old_key);
    assert!(out.contains("1 integrations, 1 lock passwords, 1 deliveries"), "{out}");
    assert_eq!(open(&current_only, &kept).await.expect("opens after reencrypt"), json!("123456"));
    assert_eq!(open(&current_only, &rotated).await.expect("still opens"), secret);
    let sealed: String = column(&app, "dingding_lock_passwords", "sealed_secret", pw_id).await;
    assert_eq!(new_box.open(&sealed).expect("lock password under the current key"), b"246810");
    let payload: Value = column(&app, "deliveries", "payload", delivery_id).await;
    let sealed = payload["AddPassword"]["sealed"].as_str().expect("sealed");
    assert_eq!(new_box.open(sealed).expect("payload under the current key"), b"135790");
    assert_eq!(payload["AddPassword"]["name"], "door");
    let out = reencrypt(&app, &new_key, &old_key);
    assert!(out.contains("0 integrations, 0 lock passwords, 0 deliveries"), "a second run changes nothing: {out}");
}
