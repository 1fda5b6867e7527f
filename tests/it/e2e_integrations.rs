//! Integrations: per-kind validation, hook URLs, write-only encrypted credentials,
//! secret rotation and API keys — and no secret in any answer or log line.

use crate::utils::{logs, spawn_app, tenant_with_admin};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

#[tokio::test]
async fn settings_are_validated_per_kind() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let cases = [
        (
            json!({"kind": "HUZHOU_ELEVATOR", "name": "h", "settings": {"baseUrl": "https://a.example"},
                "credentials": {"appKey": "k", "appSecret": "s", "inboundAppKey": "ik", "inboundAppSecret": "is"}}),
            "settings.dcBaseUrl",
        ),
        (
            json!({"kind": "GOLDCARD", "name": "g", "settings": {"baseUrl": "not a url", "companyCode": "c", "factorNo": "f"},
                "credentials": {"appCode": "a", "appSecret": "s"}}),
            "settings.baseUrl",
        ),
        (
            json!({"kind": "HAZCHEM", "name": "z", "settings": {"baseUrl": "https://r.example", "systemName": "s", "areaCode": "330500"},
                "credentials": {"username": "u"}}),
            "credentials.password",
        ),
        (
            json!({"kind": "DINGDING", "name": "d", "settings": {"baseUrl": "https://o.example", "typo": 1},
                "credentials": {"clientId": "a", "clientSecret": "b"}}),
            "settings.typo",
        ),
        (
            json!({"kind": "ETC_GANTRY", "name": "e", "settings": {"maxClockSkewSeconds": -5}, "credentials": {"authCode": "123456"}}),
            "settings.maxClockSkewSeconds",
        ),
        (json!({"kind": "DINGDING", "name": "d", "settings": {"baseUrl": "https://o.example"}}), "credentials"),
    ];
    for (input, field) in cases {
        let r = app.configure_integration(&t.admin_token, input).await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.raw);
        assert_eq!(r.body["errors"][0]["extensions"]["field"], field, "{}", r.raw);
    }
    let r = app
        .configure_integration(
            &t.admin_token,
            json!({"kind": "ETC_GANTRY", "name": "e", "credentials": {"authCode": "123456"}}),
        )
        .await;
    let i = &r.data()["configureIntegration"];
    assert_eq!(
        i["settings"],
        json!({"deviceHosts": {}, "maxClockSkewSeconds": 300, "minReportIntervalSeconds": 1,
            "reportIntervalSeconds": 600, "thresholds": {}})
    );
    assert_eq!(
        i["hookUrl"],
        json!(format!("https://linkyard.test/hooks/{}/etc/monitor.do", i["id"].as_str().expect("id")))
    );
    assert_eq!(r.body["errors"], serde_json::Value::Null);
}

#[tokio::test]
async fn hook_urls_follow_the_public_url() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let r = app
        .configure_integration(
            &t.admin_token,
            json!({"kind": "HUZHOU_ELEVATOR", "name": "hz", "settings": {"baseUrl": "https://lift.example", "dcBaseUrl": "https://dc.example"},
                   "credentials": {"appKey": "k", "appSecret": "s", "inboundAppKey": "ik", "inboundAppSecret": "is"}}),
        )
        .await;
    let i = &r.data()["configureIntegration"];
    let id = i["id"].as_str().expect("id");
    assert_eq!(i["kind"], "HUZHOU_ELEVATOR");
    assert_eq!(i["hookUrl"], json!(format!("https://linkyard.test/hooks/{id}/huzhou/elev_api")));
    assert_eq!(i["telemetryUrl"], json!(format!("https://linkyard.test/hooks/{id}/telemetry")));
    let r = app
        .configure_integration(
            &t.admin_token,
            json!({"kind": "HAZCHEM", "name": "hc", "settings": {"baseUrl": "https://r.example", "systemName": "s", "areaCode": "330500"},
                   "credentials": {"username": "u", "password": "p"}}),
        )
        .await;
    assert!(r.data()["configureIntegration"]["hookUrl"].is_null(), "hazchem is outbound only");
}

#[tokio::test]
async fn credentials_are_write_only_encrypted_and_never_logged() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let client_secret = format!("DDSECRET-{}", crate::utils::unique());
    let client_id = format!("DDCLIENT-{}", crate::utils::unique());
    let mut answers = Vec::new();

    let r = app
        .configure_integration(
            &t.admin_token,
            json!({"kind": "DINGDING", "name": "dd", "settings": {"baseUrl": "https://openapi.example.com"},
                   "credentials": {"clientId": client_id, "clientSecret": client_secret}}),
        )
        .await;
    answers.push(r.raw.clone());
    let id = r.data()["configureIntegration"]["id"].as_str().expect("id").to_owned();
    assert_eq!(r.data()["configureIntegration"]["credentialNames"], json!(["clientId", "clientSecret"]));

    // A failing reconfiguration must not echo the secret either.
    let bad_secret = format!("BADSECRET-{}", crate::utils::unique());
    let r = app
        .configure_integration(
            &t.admin_token,
            json!({"id": id, "kind": "DINGDING", "name": "dd", "settings": {"baseUrl": "https://openapi.example.com"},
                   "credentials": {"clientId": 42, "clientSecret": bad_secret}}),
        )
        .await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    answers.push(r.raw.clone());

    // Reconfigure without credentials keeps them.
    let r = app
        .configure_integration(
            &t.admin_token,
            json!({"id": id, "kind": "DINGDING", "name": "dd-renamed", "settings": {"baseUrl": "https://openapi2.example.com"}}),
        )
        .await;
    assert_eq!(r.data()["configureIntegration"]["credentialNames"], json!(["clientId", "clientSecret"]));
    answers.push(r.raw.clone());

    let full = "query($id:ID!){ integration(id:$id){ id kind name settings hookUrl telemetryUrl credentialNames secretRotatedAt createdAt updatedAt } integrations { edges { node { id settings credentialNames } } } }";
    answers.push(app.gql(Some(&t.admin_token), full, json!({"id": id})).await.raw);

    // Rotation: the new secret is shown once, then never again.
    let r = app
        .gql(Some(&t.admin_token), "mutation($id:ID!){ rotateIntegrationSecret(id:$id){ field secret integration { credentialNames secretRotatedAt } } }", json!({"id": id}))
        .await;
    let rotated = r.data()["rotateIntegrationSecret"]["secret"].as_str().expect("secret").to_owned();
    assert_eq!(r.data()["rotateIntegrationSecret"]["field"], "hookSecret");
    assert!(rotated.len() >= 32);
    assert!(r.data()["rotateIntegrationSecret"]["integration"]["secretRotatedAt"].is_string());
    let r2 = app
        .gql(Some(&t.admin_token), "mutation($id:ID!){ rotateIntegrationSecret(id:$id){ secret } }", json!({"id": id}))
        .await;
    assert_ne!(r2.data()["rotateIntegrationSecret"]["secret"].as_str(), Some(rotated.as_str()));

    // API keys: shown once, stored as a digest.
    let r = app
        .gql(
            Some(&t.admin_token),
            "mutation($id:ID!){ createApiKey(integrationId:$id){ id integrationId prefix key } }",
            json!({"id": id}),
        )
        .await;
    let key = r.data()["createApiKey"]["key"].as_str().expect("key").to_owned();
    assert!(key.starts_with("lk_") && key.starts_with(r.data()["createApiKey"]["prefix"].as_str().expect("prefix")));
    assert_eq!(r.data()["createApiKey"]["integrationId"], json!(id));

    answers.push(app.gql(Some(&t.admin_token), full, json!({"id": id})).await.raw);
    for a in &answers {
        for secret in [&client_secret, &client_id, &bad_secret, &rotated, &key] {
            assert!(!a.contains(secret.as_str()), "an answer leaked a secret: {a}");
        }
    }

    // At rest: sealed, not plaintext; API keys stored as digests.
    let db = sea_orm::Database::connect(&app.database_url).await.expect("db");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT credentials_sealed FROM integrations".to_owned(),
        ))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    let sealed: String = rows[0].try_get("", "credentials_sealed").expect("column");
    assert!(sealed.starts_with("v1:"));
    for secret in [&client_secret, &client_id, &rotated] {
        assert!(!sealed.contains(secret.as_str()));
    }
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT key_digest, prefix FROM api_keys".to_owned(),
        ))
        .await
        .expect("rows");
    let digest: String = rows[0].try_get("", "key_digest").expect("column");
    assert_eq!(digest.len(), 64);
    assert!(!digest.contains(&key));
    let _ = db.close().await;

    let logs = logs::captured();
    assert!(logs.contains("request_id"), "logs were captured");
    for secret in [
        &client_secret,
        &client_id,
        &bad_secret,
        &rotated,
        &key,
        &crate::utils::ADMIN_PASSWORD.to_owned(),
        &crate::utils::USER_PASSWORD.to_owned(),
    ] {
        assert!(!logs.contains(secret.as_str()), "a log line leaked a secret");
    }
}

#[tokio::test]
async fn rotation_replaces_the_kinds_inbound_credential() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let r = app
        .configure_integration(
            &t.admin_token,
            json!({"kind": "ETC_GANTRY", "name": "etc", "credentials": {"authCode": "123456"}}),
        )
        .await;
    let id = r.data()["configureIntegration"]["id"].as_str().expect("id").to_owned();
    let r = app
        .gql(
            Some(&t.admin_token),
            "mutation($id:ID!){ rotateIntegrationSecret(id:$id){ field integration { credentialNames } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.data()["rotateIntegrationSecret"]["field"], "authCode");
    assert_eq!(r.data()["rotateIntegrationSecret"]["integration"]["credentialNames"], json!(["authCode"]));
    // The kind cannot change on reconfiguration.
    let r = app
        .configure_integration(
            &t.admin_token,
            json!({"id": id, "kind": "DINGDING", "name": "etc", "settings": {"baseUrl": "https://o.example"}, "credentials": {"clientId": "a", "clientSecret": "b"}}),
        )
        .await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "kind");
}
