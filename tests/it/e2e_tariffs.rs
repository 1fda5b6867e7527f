//! Tariffs, meter accounts and ledgers over HTTP.

use crate::utils::{TenantFixture, USER_PASSWORD, spawn_app, tenant_with_admin};
use serde_json::{Value, json};

const SAVE: &str = "mutation($i:SaveTariffInput!){ saveTariff(input:$i){ id code version utility cycleMonths clearCycle tiers{ upTo price } } }";
const ACCOUNT: &str = "query($d:ID!){ meterAccount(deviceId:$d){ id balance cycleUsage payModel billingModel overdraft tariff{ id version } ledger(first:50){ totalCount edges{ node{ kind amount balanceAfter reference } } } } }";
const RECHARGE: &str = "mutation($i:RechargeMeterInput!){ rechargeMeter(input:$i){ account{ balance } entry{ id kind amount balanceAfter reference } } }";

/// A tenant with one electricity meter; answers the meter's id.
async fn meter(t: &TenantFixture, kind: &str, external: &str) -> String {
    let integ = t
        .api
        .integration(json!({"kind": "DINGDING", "name": format!("dd-{external}"), "settings": {"baseUrl": "https://openapi.example.com"},
                            "credentials": {"clientId": "c", "clientSecret": "s"}}))
        .await;
    t.api
        .upsert_device(json!({"integrationId": integ.id, "externalId": external, "kind": kind, "name": external}))
        .await
}

fn tiers() -> Value {
    json!([{"upTo": "100", "price": "2.5"}, {"upTo": "200", "price": "3"}, {"upTo": null, "price": "4"}])
}

fn dec(v: &Value) -> f64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("decimal string, got {v}"))
}

#[tokio::test]
async fn tariffs_are_versioned_validated_and_assigned_to_matching_meters() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let tok = Some(t.admin_token.as_str());
    let elec = meter(&t, "ELECTRICITY_METER", "em-1").await;
    let lock = meter(&t, "LOCK", "lock-1").await;

    let v1 = app.gql(tok, SAVE, json!({"i": {"code": "RES", "utility": "ELECTRICITY", "tiers": tiers()}})).await;
    let v1 = v1.data()["saveTariff"].clone();
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["cycleMonths"], 12);
    assert_eq!(v1["tiers"].as_array().map(Vec::len), Some(3));
    let v2 = app
        .gql(
            tok,
            SAVE,
            json!({"i": {"code": "RES", "utility": "ELECTRICITY", "tiers": [{"price": "0.6"}], "clearCycle": true}}),
        )
        .await;
    let v2 = v2.data()["saveTariff"].clone();
    assert_eq!(v2["version"], 2);
    let gas = app.gql(tok, SAVE, json!({"i": {"code": "GAS-1", "utility": "GAS", "tiers": [{"price": "3.1"}]}})).await;
    let gas = gas.data()["saveTariff"]["id"].clone();

    let r = app.gql(tok, "{ tariffs(filter:{code:\"RES\"}){ totalCount edges{ node{ version } } } }", json!({})).await;
    assert_eq!(r.data()["tariffs"]["totalCount"], 2);
    assert_eq!(r.data()["tariffs"]["edges"][0]["node"]["version"], 2, "newest first");

    for (tiers, field) in [
        (json!([]), "tiers"),
        (json!([{"upTo": "200", "price": "1"}, {"upTo": "100", "price": "2"}]), "tiers[1].upTo"),
        (json!([{"upTo": null, "price": "1"}, {"upTo": null, "price": "2"}]), "tiers[0].upTo"),
        (json!([{"price": "-1"}]), "tiers[0].price"),
    ] {
        let r = app.gql(tok, SAVE, json!({"i": {"code": "BAD", "utility": "WATER", "tiers": tiers}})).await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.raw);
        assert_eq!(r.body["errors"][0]["extensions"]["field"], field, "{}", r.raw);
    }
    let r = app
        .gql(tok, SAVE, json!({"i": {"code": "BAD", "utility": "WATER", "tiers": [{"price": "1"}], "cycleMonths": 0}}))
        .await;
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "cycleMonths");

    let assign = "mutation($d:ID!,$t:ID!){ assignTariff(deviceId:$d, tariffId:$t, payModel:PREPAID, overdraft:\"10\"){ balance payModel overdraft tariffId } }";
    let r = app.gql(tok, assign, json!({"d": lock, "t": v1["id"]})).await;
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "deviceId");
    let r = app.gql(tok, assign, json!({"d": elec, "t": gas})).await;
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "tariffId");
    let r = app.gql(tok, assign, json!({"d": elec, "t": v1["id"]})).await;
    let acc = &r.data()["assignTariff"];
    assert_eq!(acc["payModel"], "PREPAID");
    assert_eq!(dec(&acc["balance"]), 0.0);
    assert_eq!(dec(&acc["overdraft"]), 10.0);
    let r = app.gql(tok, ACCOUNT, json!({"d": elec})).await;
    assert_eq!(r.data()["meterAccount"]["tariff"]["version"], 1);
    assert_eq!(app.gql(tok, ACCOUNT, json!({"d": lock})).await.code(), "NOT_FOUND");
}

#[tokio::test]
async fn recharges_and_adjustments_keep_the_balance_equal_to_the_ledger() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let tok = Some(t.admin_token.as_str());
    let water = meter(&t, "WATER_METER", "wm-1").await;
    let tariff = app.gql(tok, SAVE, json!({"i": {"code": "W", "utility": "WATER", "tiers": [{"price": "3.5"}]}})).await;
    let tariff = tariff.data()["saveTariff"]["id"].clone();
    // Every meter has its account from registration: a recharge needs no tariff.
    let other = meter(&t, "WATER_METER", "wm-0").await;
    let r = app.gql(tok, RECHARGE, json!({"i": {"deviceId": other, "amount": "10", "tradeNo": "T-0"}})).await;
    assert_eq!(r.data()["rechargeMeter"]["account"]["balance"], "10", "{}", r.raw);
    let lock = meter(&t, "LOCK", "lock-0").await;
    let r = app.gql(tok, RECHARGE, json!({"i": {"deviceId": lock, "amount": "10"}})).await;
    assert_eq!(r.code(), "NOT_FOUND", "a lock has no account");
    app.gql(
        tok,
        "mutation($d:ID!,$t:ID!){ assignTariff(deviceId:$d, tariffId:$t){ id } }",
        json!({"d": water, "t": tariff}),
    )
    .await
    .data();

    let first = app.gql(tok, RECHARGE, json!({"i": {"deviceId": water, "amount": "100.50", "tradeNo": "T-1"}})).await;
    let entry = first.data()["rechargeMeter"]["entry"].clone();
    assert_eq!(entry["kind"], "RECHARGE");
    assert_eq!(dec(&entry["balanceAfter"]), 100.5);
    // The same trade again answers the first entry and changes nothing.
    let again = app.gql(tok, RECHARGE, json!({"i": {"deviceId": water, "amount": "100.50", "tradeNo": "T-1"}})).await;
    assert_eq!(again.data()["rechargeMeter"]["entry"]["id"], entry["id"]);
    let clash = app.gql(tok, RECHARGE, json!({"i": {"deviceId": water, "amount": "5", "tradeNo": "T-1"}})).await;
    assert_eq!(clash.code(), "CONFLICT");
    for amount in ["0", "-5"] {
        let r = app.gql(tok, RECHARGE, json!({"i": {"deviceId": water, "amount": amount}})).await;
        assert_eq!(r.body["errors"][0]["extensions"]["field"], "amount", "{}", r.raw);
    }
    app.gql(tok, RECHARGE, json!({"i": {"deviceId": water, "amount": "20", "tradeNo": "T-2"}})).await.data();
    let adj = "mutation($d:ID!,$a:Decimal!){ adjustMeterBalance(deviceId:$d, amount:$a, reason:\"meter swap\"){ entry{ kind amount } account{ balance } } }";
    let r = app.gql(tok, adj, json!({"d": water, "a": "-0.25"})).await;
    assert_eq!(r.data()["adjustMeterBalance"]["entry"]["kind"], "ADJUSTMENT");

    let r = app.gql(tok, ACCOUNT, json!({"d": water})).await;
    let acc = &r.data()["meterAccount"];
    assert_eq!(dec(&acc["balance"]), 120.25);
    let entries = acc["ledger"]["edges"].as_array().expect("edges");
    assert_eq!(acc["ledger"]["totalCount"], 3);
    let sum: f64 = entries.iter().map(|e| dec(&e["node"]["amount"])).sum();
    assert!((sum - 120.25).abs() < 1e-9, "ledger sums to {sum}");
    assert_eq!(dec(&entries[0]["node"]["balanceAfter"]), 120.25, "newest first, running balance");

    // Concurrent recharges all land: compare-and-set retries instead of losing one.
    let futs = (0..8).map(|i| {
        let app = &app;
        let water = water.clone();
        let tok = t.admin_token.clone();
        async move {
            app.gql(Some(&tok), RECHARGE, json!({"i": {"deviceId": water, "amount": "1", "tradeNo": format!("C-{i}")}}))
                .await
        }
    });
    for r in futures::future::join_all(futs).await {
        r.data();
    }
    let r = app.gql(tok, ACCOUNT, json!({"d": water})).await;
    assert_eq!(dec(&r.data()["meterAccount"]["balance"]), 128.25);
    assert_eq!(r.data()["meterAccount"]["ledger"]["totalCount"], 11);

    // Roles: viewers neither recharge nor adjust; operators recharge but do not adjust.
    for (role, can_recharge) in [("VIEWER", false), ("OPERATOR", true)] {
        let email = format!("{}@{}.example.com", role.to_lowercase(), t.slug);
        app.create_user(&t.admin_token, &t.id, &email, USER_PASSWORD, role).await;
        let token = app.login(&email, USER_PASSWORD).await;
        let r =
            app.gql(Some(&token), RECHARGE, json!({"i": {"deviceId": water, "amount": "1", "tradeNo": role}})).await;
        if can_recharge {
            r.data();
        } else {
            assert_eq!(r.code(), "FORBIDDEN");
        }
        assert_eq!(app.gql(Some(&token), adj, json!({"d": water, "a": "1"})).await.code(), "FORBIDDEN");
        let r =
            app.gql(Some(&token), SAVE, json!({"i": {"code": "X", "utility": "GAS", "tiers": [{"price": "1"}]}})).await;
        assert_eq!(r.code(), "FORBIDDEN");
    }
}

#[tokio::test]
async fn tariffs_and_accounts_are_tenant_scoped() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let a = tenant_with_admin(&app, &root).await;
    let b = tenant_with_admin(&app, &root).await;
    let their_meter = meter(&b, "GAS_METER", "gm-b").await;
    let their_tariff = app
        .gql(Some(&b.admin_token), SAVE, json!({"i": {"code": "B", "utility": "GAS", "tiers": [{"price": "2"}]}}))
        .await;
    let their_tariff = their_tariff.data()["saveTariff"]["id"].clone();
    app.gql(
        Some(&b.admin_token),
        "mutation($d:ID!,$t:ID!){ assignTariff(deviceId:$d, tariffId:$t){ id } }",
        json!({"d": their_meter, "t": their_tariff}),
    )
    .await
    .data();
    let my_meter = meter(&a, "GAS_METER", "gm-a").await;

    let t = Some(a.admin_token.as_str());
    assert_eq!(app.gql(t, "{ tariffs{ totalCount } }", json!({})).await.data()["tariffs"]["totalCount"], 0);
    assert_eq!(
        app.gql(t, "query($id:ID!){ tariff(id:$id){ id } }", json!({"id": their_tariff})).await.code(),
        "NOT_FOUND"
    );
    assert_eq!(app.gql(t, ACCOUNT, json!({"d": their_meter})).await.code(), "NOT_FOUND");
    let assign = "mutation($d:ID!,$t:ID!){ assignTariff(deviceId:$d, tariffId:$t){ id } }";
    assert_eq!(app.gql(t, assign, json!({"d": my_meter, "t": their_tariff})).await.code(), "NOT_FOUND");
    assert_eq!(app.gql(t, assign, json!({"d": their_meter, "t": their_tariff})).await.code(), "NOT_FOUND");
    let r = app.gql(t, RECHARGE, json!({"i": {"deviceId": their_meter, "amount": "50"}})).await;
    assert_eq!(r.code(), "NOT_FOUND");
    let adj = "mutation($d:ID!){ adjustMeterBalance(deviceId:$d, amount:\"5\"){ entry{ id } } }";
    assert_eq!(app.gql(t, adj, json!({"d": their_meter})).await.code(), "NOT_FOUND");
    let r = app.gql(Some(&b.admin_token), ACCOUNT, json!({"d": their_meter})).await;
    assert_eq!(dec(&r.data()["meterAccount"]["balance"]), 0.0);
    assert_eq!(r.data()["meterAccount"]["ledger"]["totalCount"], 0);
}

#[tokio::test]
async fn electricity_prices_bind_to_tenant_home_and_room_and_the_way_picks_one() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let tok = Some(t.admin_token.as_str());
    let home = app.gql(tok, "mutation{ addHome(input:{name:\"Block A\"}){ id } }", json!({})).await;
    let home = home.data()["addHome"]["id"].clone();
    let room =
        app.gql(tok, "mutation($h:ID!){ addRoom(input:{homeId:$h, name:\"101\"}){ id } }", json!({"h": home})).await;
    let room = room.data()["addRoom"]["id"].clone();
    let em = meter(&t, "ELECTRICITY_METER", "em-price").await;
    let integ = app.gql(tok, "query($id:ID!){ device(id:$id){ integrationId } }", json!({"id": em})).await;
    let integ = integ.data()["device"]["integrationId"].clone();
    app.gql(
        tok,
        "mutation($i:UpsertDeviceInput!){ upsertDevice(input:$i){ id } }",
        json!({"i": {"integrationId": integ, "externalId": "em-price", "kind": "ELECTRICITY_METER", "name": "em", "roomId": room}}),
    )
    .await
    .data();
    let mut ids = Vec::new();
    for code in ["UNIFIED", "HOME", "ROOM"] {
        let r =
            app.gql(tok, SAVE, json!({"i": {"code": code, "utility": "ELECTRICITY", "tiers": [{"price": "1"}]}})).await;
        ids.push(r.data()["saveTariff"]["id"].clone());
    }
    let gas = app.gql(tok, SAVE, json!({"i": {"code": "G", "utility": "GAS", "tiers": [{"price": "1"}]}})).await;
    let gas = gas.data()["saveTariff"]["id"].clone();
    let set = "mutation($h:ID,$r:ID,$t:ID,$w:PriceWay){ setElectricityPrice(homeId:$h, roomId:$r, tariffId:$t, priceWay:$w){ homeId roomId tariffId priceWay } }";
    let effective = "query($id:ID!){ device(id:$id){ tariff{ code } } }";

    assert_eq!(app.gql(tok, effective, json!({"id": em})).await.data()["device"]["tariff"], Value::Null);
    app.gql(tok, set, json!({"t": ids[0]})).await.data();
    assert_eq!(app.gql(tok, effective, json!({"id": em})).await.data()["device"]["tariff"]["code"], "UNIFIED");
    app.gql(tok, set, json!({"h": home, "t": ids[1]})).await.data();
    assert_eq!(app.gql(tok, effective, json!({"id": em})).await.data()["device"]["tariff"]["code"], "HOME");
    app.gql(tok, set, json!({"h": home, "r": room, "t": ids[2]})).await.data();
    assert_eq!(
        app.gql(tok, effective, json!({"id": em})).await.data()["device"]["tariff"]["code"],
        "HOME",
        "way HOME by default"
    );
    let r = app.gql(tok, set, json!({"h": home, "w": "ROOM"})).await;
    assert_eq!(r.data()["setElectricityPrice"].as_array().map(Vec::len), Some(3));
    assert_eq!(app.gql(tok, effective, json!({"id": em})).await.data()["device"]["tariff"]["code"], "ROOM");
    app.gql(tok, set, json!({"h": home, "w": "UNIFIED"})).await.data();
    assert_eq!(app.gql(tok, effective, json!({"id": em})).await.data()["device"]["tariff"]["code"], "UNIFIED");

    // A meter's own tariff wins over any price.
    app.gql(
        tok,
        "mutation($d:ID!,$t:ID!){ assignTariff(deviceId:$d, tariffId:$t){ id } }",
        json!({"d": em, "t": ids[2]}),
    )
    .await
    .data();
    assert_eq!(app.gql(tok, effective, json!({"id": em})).await.data()["device"]["tariff"]["code"], "ROOM");

    for (vars, field) in [
        (json!({"h": home, "t": gas}), "tariffId"),
        (json!({"r": room, "t": ids[0]}), "homeId"),
        (json!({"w": "ROOM"}), "priceWay"),
        (json!({"h": home}), "tariffId"),
    ] {
        let r = app.gql(tok, set, vars).await;
        assert_eq!(r.body["errors"][0]["extensions"]["field"], field, "{}", r.raw);
    }
    let r =
        app.gql(tok, "query($h:ID!){ electricityPrices(homeId:$h){ tariffId priceWay } }", json!({"h": home})).await;
    assert_eq!(r.data()["electricityPrices"].as_array().map(Vec::len), Some(3));

    // Another tenant sees none of it and cannot bind to this home.
    let other = tenant_with_admin(&app, &root).await;
    let o = Some(other.admin_token.as_str());
    let r = app.gql(o, "query($h:ID!){ electricityPrices(homeId:$h){ tariffId } }", json!({"h": home})).await;
    assert_eq!(r.data()["electricityPrices"].as_array().map(Vec::len), Some(0));
    let mine = app.gql(o, SAVE, json!({"i": {"code": "O", "utility": "ELECTRICITY", "tiers": [{"price": "9"}]}})).await;
    let mine = mine.data()["saveTariff"]["id"].clone();
    assert_eq!(app.gql(o, set, json!({"h": home, "t": mine})).await.code(), "NOT_FOUND");
    assert_eq!(app.gql(o, set, json!({"t": ids[0]})).await.code(), "NOT_FOUND");
    assert_eq!(app.gql(o, effective, json!({"id": em})).await.code(), "NOT_FOUND");
}
