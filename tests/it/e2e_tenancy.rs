//! Tenant isolation for every query and mutation, and roles.

use crate::utils::{USER_PASSWORD, spawn_app, tenant_with_admin, unique};
use serde_json::json;

fn dingding(name: &str) -> serde_json::Value {
    json!({"kind": "DINGDING", "name": name, "settings": {"baseUrl": "http://127.0.0.1:9"},
           "credentials": {"clientId": format!("cid-{name}"), "clientSecret": format!("csecret-{name}")}})
}

#[tokio::test]
async fn platform_admin_onboards_two_tenants_that_cannot_see_each_other() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let a = tenant_with_admin(&app, &root).await;
    let b = tenant_with_admin(&app, &root).await;

    let ia = app.configure_integration(&a.admin_token, dingding("a")).await;
    let ia = ia.data()["configureIntegration"]["id"].as_str().expect("id").to_owned();
    let ib = app.configure_integration(&b.admin_token, dingding("b")).await;
    let ib = ib.data()["configureIntegration"]["id"].as_str().expect("id").to_owned();

    // Platform admin sees both tenants.
    let all = app.gql(Some(&root), "{ tenants(first: 100) { totalCount edges { node { id } } } }", json!({})).await;
    let ids: Vec<_> =
        all.data()["tenants"]["edges"].as_array().expect("edges").iter().map(|e| e["node"]["id"].clone()).collect();
    assert!(ids.contains(&json!(a.id)) && ids.contains(&json!(b.id)));

    for (me, other, mine, theirs) in [(&a, &b, &ia, &ib), (&b, &a, &ib, &ia)] {
        let t = Some(me.admin_token.as_str());
        // tenants: only its own.
        let r = app.gql(t, "{ tenants { totalCount edges { node { id } } } }", json!({})).await;
        assert_eq!(r.data()["tenants"]["totalCount"], 1);
        assert_eq!(r.data()["tenants"]["edges"][0]["node"]["id"], json!(me.id));
        // tenant(id)
        assert_eq!(
            app.gql(t, "query($id:ID!){ tenant(id:$id){ id } }", json!({"id": other.id})).await.code(),
            "NOT_FOUND"
        );
        assert_eq!(
            app.gql(t, "query($id:ID!){ tenant(id:$id){ id } }", json!({"id": me.id})).await.data()["tenant"]["id"],
            json!(me.id)
        );
        // users / user(id)
        let r = app.gql(t, "{ users { totalCount edges { node { id email } } } }", json!({})).await;
        assert_eq!(r.data()["users"]["totalCount"], 1);
        assert_eq!(r.data()["users"]["edges"][0]["node"]["email"], json!(me.admin_email));
        assert_eq!(
            app.gql(t, "query($id:ID!){ user(id:$id){ id } }", json!({"id": other.admin_id})).await.code(),
            "NOT_FOUND"
        );
        // me
        assert_eq!(app.gql(t, "{ me { id tenantId role } }", json!({})).await.data()["me"]["tenantId"], json!(me.id));
        // integrations / integration(id)
        let r = app.gql(t, "{ integrations { totalCount edges { node { id } } } }", json!({})).await;
        assert_eq!(r.data()["integrations"]["totalCount"], 1);
        assert_eq!(r.data()["integrations"]["edges"][0]["node"]["id"], json!(mine));
        assert_eq!(
            app.gql(t, "query($id:ID!){ integration(id:$id){ id } }", json!({"id": theirs})).await.code(),
            "NOT_FOUND"
        );
        // Mutations aimed at the other tenant's rows.
        let mut reconf = dingding("hijack");
        reconf["id"] = json!(theirs);
        assert_eq!(app.configure_integration(&me.admin_token, reconf).await.code(), "NOT_FOUND");
        let r =
            app.gql(t, "mutation($id:ID!){ rotateIntegrationSecret(id:$id){ secret } }", json!({"id": theirs})).await;
        assert_eq!(r.code(), "NOT_FOUND");
        let r = app.gql(t, "mutation($id:ID!){ createApiKey(integrationId:$id){ key } }", json!({"id": theirs})).await;
        assert_eq!(r.code(), "NOT_FOUND");
        let r = app
            .gql(
                t,
                "mutation($i:CreateUserInput!){ createUser(input:$i){ id } }",
                json!({"i": {"tenantId": other.id, "email": format!("x{}@e.com", unique()), "password": USER_PASSWORD, "role": "OPERATOR"}}),
            )
            .await;
        assert_eq!(r.code(), "NOT_FOUND");
        let r = app.gql(t, "mutation{ createTenant(input:{slug:\"sneaky\", name:\"x\"}){ id } }", json!({})).await;
        assert_eq!(r.code(), "FORBIDDEN");
    }

    // The other tenant's integration is untouched by the attempts above.
    let r = app.gql(Some(&b.admin_token), "query($id:ID!){ integration(id:$id){ name } }", json!({"id": ib})).await;
    assert_eq!(r.data()["integration"]["name"], "b");
}

/// Every mutation of the schema (but `login`) must be refused to a VIEWER; this list is
/// checked against the schema so a new mutation cannot slip by untested.
#[tokio::test]
async fn viewer_gets_forbidden_on_every_mutation() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let t = tenant_with_admin(&app, &root).await;
    let dd = t.api.integration(dingding("v")).await;
    let (integ, hook) = (dd.id, dd.hook_url);
    let viewer_email = format!("viewer@{}.example.com", t.slug);
    app.create_user(&t.admin_token, &t.id, &viewer_email, USER_PASSWORD, "VIEWER").await;
    let viewer = app.login(&viewer_email, USER_PASSWORD).await;
    let operator_email = format!("op@{}.example.com", t.slug);
    app.create_user(&t.admin_token, &t.id, &operator_email, USER_PASSWORD, "OPERATOR").await;
    let operator = app.login(&operator_email, USER_PASSWORD).await;

    // An operator makes the rows the viewer's attempts aim at.
    let op = Some(operator.as_str());
    let device = app.api(&operator).device(&integ, "v-1", "LOCK", "door", json!({})).await;
    let etc =
        t.api.integration(json!({"kind": "ETC_GANTRY", "name": "e", "credentials": {"authCode": "123456"}})).await.id;
    let gantry = app.api(&operator).device(&etc, "G000211001002110010", "GANTRY", "g", json!({})).await;
    let home = app.gql(op, "mutation{ addHome(input:{name:\"h\"}){ id } }", json!({})).await;
    let home = home.data()["addHome"]["id"].as_str().expect("home").to_owned();
    let alarm = app
        .gql(
            op,
            "mutation($d:ID!){ reportAlarm(input:{deviceId:$d, kind:\"LOCK_LOW_BATTERY\", severity:MINOR}){ id } }",
            json!({"d": device}),
        )
        .await;
    let alarm = alarm.data()["reportAlarm"]["id"].as_str().expect("alarm").to_owned();
    let rescue = json!({"unique_id": "123456", "serial_num": "TF1", "fault_start_time": "20210317T122535",
                        "alarm_accept_time": "20210317T122600"});
    let ticket = app
        .gql(
            op,
            "mutation($i:SaveTicketInput!){ saveTicket(input:$i){ id } }",
            json!({"i": {"kind": "RESCUE", "fields": rescue}}),
        )
        .await;
    let ticket = ticket.data()["saveTicket"]["id"].as_str().expect("ticket").to_owned();
    let maintenance = json!({"unique_id": "204150", "internal_id": "18181", "lift_type": "1", "maintain_type": "1",
        "contact_name": "张三", "contact_phone": "13811111111", "use_company": "物业", "report_no": "ACH0844",
        "report_time": "20181025T062700"});
    let planned = app
        .gql(
            op,
            "mutation($i:SaveTicketInput!){ saveTicket(input:$i){ id } }",
            json!({"i": {"kind": "MAINTENANCE", "fields": maintenance}}),
        )
        .await;
    let planned = planned.data()["saveTicket"]["id"].as_str().expect("ticket").to_owned();
    let admin = Some(t.admin_token.as_str());
    let meter = t.api.device(&integ, "m-1", "ELECTRICITY_METER", "m", json!({})).await;
    let tariff = app
        .gql(
            admin,
            "mutation{ saveTariff(input:{code:\"E\", utility:ELECTRICITY, tiers:[{price:\"1\"}]}){ id } }",
            json!({}),
        )
        .await;
    let tariff = tariff.data()["saveTariff"]["id"].as_str().expect("tariff").to_owned();
    app.gql(
        admin,
        "mutation($d:ID!,$t:ID!){ assignTariff(deviceId:$d, tariffId:$t){ id } }",
        json!({"d": meter, "t": tariff}),
    )
    .await
    .data();

    // Dingding: five passwords set on the lock itself (signed pwdAddLocal callbacks), one per operation
    // below; the last under an activation code id (3025, 6.14).
    let mut pw = Vec::new();
    for id in [5, 6, 7, 8, 3025] {
        let body = json!({"event": "pwdAddLocal", "uuid": "v-1", "time": id, "detail": {"password": {"id": id}}});
        let mut signed = body.clone();
        signed["sign"] =
            json!(adapters::vendors::dingding::sign::callback_sign(&hook, &body.to_string()).expect("sign"));
        let resp = app.http.post(app.url(&crate::utils::hook_path(&hook))).body(signed.to_string()).send().await;
        assert_eq!(resp.expect("callback").status().as_u16(), 200);
        let r = app.gql(op, "query($d:ID!){ lockPasswords(deviceId:$d){ id passwordId } }", json!({"d": device})).await;
        let list = r.data()["lockPasswords"].as_array().expect("passwords").clone();
        let p = list.iter().find(|p| p["passwordId"] == id).expect("local password");
        pw.push(p["id"].as_str().expect("id").to_owned());
    }

    let dd_home = app
        .gql(op, "mutation($i:ID!){ addHome(input:{name:\"dd\", integrationId:$i}){ id } }", json!({"i": integ}))
        .await;
    let dd_home = dd_home.data()["addHome"]["id"].as_str().expect("home").to_owned();
    let dd_room =
        app.gql(op, "mutation($h:ID!){ addRoom(input:{homeId:$h, name:\"r\"}){ id } }", json!({"h": dd_home})).await;
    let dd_room = dd_room.data()["addRoom"]["id"].as_str().expect("room").to_owned();

    // Rows the lifecycle cases update or delete (the operator's attempts succeed).
    let spare_device = app.api(&operator).device(&etc, "G000211001002110099", "GANTRY", "spare", json!({})).await;
    let spare_home = app.gql(op, "mutation{ addHome(input:{name:\"spare\"}){ id } }", json!({})).await;
    let spare_home = spare_home.data()["addHome"]["id"].as_str().expect("home").to_owned();
    let room =
        app.gql(op, "mutation($h:ID!){ addRoom(input:{homeId:$h, name:\"r1\"}){ id } }", json!({"h": home})).await;
    let room = room.data()["addRoom"]["id"].as_str().expect("room").to_owned();
    let spare_room =
        app.gql(op, "mutation($h:ID!){ addRoom(input:{homeId:$h, name:\"r2\"}){ id } }", json!({"h": home})).await;
    let spare_room = spare_room.data()["addRoom"]["id"].as_str().expect("room").to_owned();

    // (name, query, variables, tenant admins only)
    let cases: Vec<(&str, String, serde_json::Value, bool)> = vec![
        (
            "updateDevice",
            "mutation($d:ID!){ updateDevice(id:$d, input:{name:\"renamed\"}){ id } }".into(),
            json!({"d": device}),
            false,
        ),
        ("deleteDevice", "mutation($d:ID!){ deleteDevice(id:$d){ id } }".into(), json!({"d": spare_device}), false),
        (
            "updateHome",
            "mutation($h:ID!){ updateHome(id:$h, input:{address:\"1 Main St\"}){ id } }".into(),
            json!({"h": home}),
            false,
        ),
        ("deleteHome", "mutation($h:ID!){ deleteHome(id:$h){ id } }".into(), json!({"h": spare_home}), false),
        (
            "addRooms",
            "mutation($h:ID!){ addRooms(homeId:$h, rooms:[{name:\"r3\"},{name:\"r4\"}]){ id } }".into(),
            json!({"h": home}),
            false,
        ),
        (
            "updateRoom",
            "mutation($r:ID!){ updateRoom(id:$r, input:{name:\"r1b\"}){ id } }".into(),
            json!({"r": room}),
            false,
        ),
        ("deleteRoom", "mutation($r:ID!){ deleteRoom(id:$r){ id } }".into(), json!({"r": spare_room}), false),
        (
            "updateIntegration",
            "mutation($i:ID!){ updateIntegration(id:$i, input:{name:\"etc-2\"}){ id } }".into(),
            json!({"i": etc}),
            true,
        ),
        ("disableIntegration", "mutation($i:ID!){ disableIntegration(id:$i){ id } }".into(), json!({"i": etc}), true),
        ("enableIntegration", "mutation($i:ID!){ enableIntegration(id:$i){ id } }".into(), json!({"i": etc}), true),
        (
            "addLockPassword",
            "mutation($d:ID!){ addLockPassword(input:{deviceId:$d, password:\"123456\", name:\"x\"}){ id } }".into(),
            json!({"d": device}),
            false,
        ),
        (
            "updateLockPassword",
            "mutation($i:ID!){ updateLockPassword(input:{id:$i, password:\"654321\"}){ id } }".into(),
            json!({"i": pw[0]}),
            false,
        ),
        ("deleteLockPassword", "mutation($i:ID!){ deleteLockPassword(id:$i){ id } }".into(), json!({"i": pw[1]}), false),
        ("freezeLockPassword", "mutation($i:ID!){ freezeLockPassword(id:$i){ id } }".into(), json!({"i": pw[2]}), false),
        (
            "unfreezeLockPassword",
            "mutation($i:ID!){ unfreezeLockPassword(id:$i){ id } }".into(),
            json!({"i": pw[3]}),
            false,
        ),
        (
            "addLockActivationCode",
            "mutation($d:ID!){ addLockActivationCode(input:{deviceId:$d, kind:TENANT, name:\"g\", phone:\"139\"}){ id } }"
                .into(),
            json!({"d": device}),
            false,
        ),
        (
            "revealActivationCode",
            "mutation($i:ID!){ revealActivationCode(id:$i) }".into(),
            json!({"i": uuid::Uuid::now_v7()}),
            true,
        ),
        (
            "revealLockPassword",
            "mutation($d:ID!){ revealLockPassword(deviceId:$d, which:ADMIN){ password } }".into(),
            json!({"d": device}),
            true,
        ),
        (
            "sendMeterCommand",
            "mutation($d:ID!){ sendMeterCommand(input:{deviceId:$d, command:READ}){ id } }".into(),
            json!({"d": meter}),
            false,
        ),
        (
            "sendGantryCommand",
            "mutation($d:ID!){ sendGantryCommand(input:{deviceId:$d, method:\"computerControl\", params:{updateNow:\"1\"}}){ id } }"
                .into(),
            json!({"d": gantry}),
            false,
        ),
        ("syncIntegration", "mutation($i:ID!){ syncIntegration(id:$i){ homes } }".into(), json!({"i": integ}), true),
        (
            "authorizeRoomBluetooth",
            "mutation($i:RoomBluetoothInput!){ authorizeRoomBluetooth(input:$i) }".into(),
            json!({"i": {"homeId": dd_home, "roomIds": [dd_room], "phone": "13800000000"}}),
            false,
        ),
        (
            "revokeRoomBluetooth",
            "mutation($i:RoomBluetoothInput!){ revokeRoomBluetooth(input:$i) }".into(),
            json!({"i": {"homeId": dd_home, "roomIds": [dd_room], "phone": "13800000000"}}),
            false,
        ),
        (
            "createTenant",
            "mutation{ createTenant(input:{slug:\"viewer-t\", name:\"x\"}){ id } }".into(),
            json!({}),
            true,
        ),
        (
            "createUser",
            "mutation($i:CreateUserInput!){ createUser(input:$i){ id } }".into(),
            json!({"i": {"tenantId": t.id, "email": "new@e.com", "password": USER_PASSWORD, "role": "VIEWER"}}),
            true,
        ),
        (
            "configureIntegration",
            "mutation($i:ConfigureIntegrationInput!){ configureIntegration(input:$i){ id } }".into(),
            json!({"i": dingding("viewer")}),
            true,
        ),
        (
            "rotateIntegrationSecret",
            "mutation($id:ID!){ rotateIntegrationSecret(id:$id){ secret } }".into(),
            json!({"id": integ}),
            true,
        ),
        (
            "revokeApiKey",
            "mutation($id:ID!){ revokeApiKey(id:$id){ id } }".into(),
            json!({"id": uuid::Uuid::now_v7()}),
            true,
        ),
        (
            "updateUser",
            "mutation($id:ID!){ updateUser(id:$id, input:{disabled:true}){ id } }".into(),
            json!({"id": uuid::Uuid::now_v7()}),
            true,
        ),
        (
            "createApiKey",
            "mutation($id:ID!){ createApiKey(integrationId:$id){ key } }".into(),
            json!({"id": integ}),
            true,
        ),
        (
            "upsertDevice",
            "mutation($i:UpsertDeviceInput!){ upsertDevice(input:$i){ id } }".into(),
            json!({"i": {"integrationId": integ, "externalId": "v-2", "kind": "GATEWAY", "name": "gw"}}),
            false,
        ),
        ("addHome", "mutation{ addHome(input:{name:\"h2\"}){ id } }".into(), json!({}), false),
        (
            "addRoom",
            "mutation($h:ID!){ addRoom(input:{homeId:$h, name:\"r\"}){ id } }".into(),
            json!({"h": home}),
            false,
        ),
        (
            "reportAlarm",
            "mutation($d:ID!){ reportAlarm(input:{deviceId:$d, kind:\"LOCK_TAMPER\", severity:MAJOR}){ id } }".into(),
            json!({"d": device}),
            false,
        ),
        (
            "commentAlarm",
            "mutation($id:ID!){ commentAlarm(id:$id, text:\"seen\"){ id } }".into(),
            json!({"id": alarm}),
            false,
        ),
        ("acknowledgeAlarm", "mutation($id:ID!){ acknowledgeAlarm(id:$id){ id } }".into(), json!({"id": alarm}), false),
        (
            "clearAlarm",
            "mutation($id:ID!){ clearAlarm(id:$id, note:\"ok\"){ id } }".into(),
            json!({"id": alarm}),
            false,
        ),
        (
            "saveTicket",
            "mutation($i:SaveTicketInput!){ saveTicket(input:$i){ id } }".into(),
            json!({"i": {"id": ticket, "kind": "RESCUE", "fields": {"handle_result": "ok"}}}),
            false,
        ),
        ("deleteTicket", "mutation($i:ID!){ deleteTicket(id:$i){ id } }".into(), json!({"i": planned}), false),
        (
            "updateLockActivationCode",
            "mutation($i:ID!){ updateLockActivationCode(input:{id:$i, phone:\"139\", endsAt:\"2036-01-01T00:00:00Z\"}){ id } }"
                .into(),
            json!({"i": pw[4]}),
            false,
        ),
        (
            "attachTicketFile",
            "mutation($t:ID!, $f:Upload!){ attachTicketFile(ticketId:$t, file:$f){ id } }".into(),
            json!({"t": ticket}),
            false,
        ),
        (
            "saveTariff",
            "mutation{ saveTariff(input:{code:\"V\", utility:GAS, tiers:[{price:\"2\"}]}){ id } }".into(),
            json!({}),
            true,
        ),
        (
            "assignTariff",
            "mutation($d:ID!,$t:ID!){ assignTariff(deviceId:$d, tariffId:$t){ id } }".into(),
            json!({"d": meter, "t": tariff}),
            true,
        ),
        (
            "rechargeMeter",
            "mutation($d:ID!){ rechargeMeter(input:{deviceId:$d, amount:\"5\"}){ entry{ id } } }".into(),
            json!({"d": meter}),
            false,
        ),
        (
            "setElectricityPrice",
            "mutation($t:ID!){ setElectricityPrice(tariffId:$t){ tariffId } }".into(),
            json!({"t": tariff}),
            true,
        ),
        (
            "retryDelivery",
            "mutation($id:ID!){ retryDelivery(id:$id){ id } }".into(),
            json!({"id": uuid::Uuid::now_v7()}),
            true,
        ),
        ("retryDeliveries", "mutation{ retryDeliveries(filter:{state:DEAD}) }".into(), json!({}), true),
        (
            "replayDeliveries",
            "mutation($i:ID!){ replayDeliveries(integrationId:$i, since:\"2026-01-01T00:00:00Z\", until:\"2026-01-02T00:00:00Z\") }"
                .into(),
            json!({"i": integ}),
            true,
        ),
        (
            "replayInboundEvent",
            "mutation($id:ID!){ replayInboundEvent(id:$id){ id } }".into(),
            json!({"id": uuid::Uuid::now_v7()}),
            false,
        ),
        (
            "saveEscalationPolicy",
            "mutation{ saveEscalationPolicy(input:{name:\"p\", minSeverity:MAJOR, ackWithinMinutes:5, channelIds:[]}){ id } }"
                .into(),
            json!({}),
            true,
        ),
        (
            "saveNotificationChannel",
            "mutation{ saveNotificationChannel(input:{name:\"c\", kind:WEBHOOK, url:\"https://example.com/h\"}){ secret } }"
                .into(),
            json!({}),
            true,
        ),
        (
            "runScheduledJob",
            "mutation($i:ID!){ runScheduledJob(integrationId:$i, job:HEARTBEAT_CHECK){ tick } }".into(),
            json!({"i": integ}),
            true,
        ),
        (
            "cancelMeterCommand",
            "mutation($d:ID!){ cancelMeterCommand(deliveryId:$d){ id } }".into(),
            json!({"d": uuid::Uuid::now_v7()}),
            true,
        ),
        (
            "cancelMeter",
            "mutation($d:ID!){ cancelMeter(deviceId:$d){ id } }".into(),
            json!({"d": meter}),
            true,
        ),
        (
            "replaceMeter",
            "mutation($d:ID!){ replaceMeter(input:{deviceId:$d, newExternalId:\"n-1\"}){ id } }".into(),
            json!({"d": meter}),
            true,
        ),
        (
            "adjustMeterBalance",
            "mutation($d:ID!){ adjustMeterBalance(deviceId:$d, amount:\"-1\"){ entry{ id } } }".into(),
            json!({"d": meter}),
            true,
        ),
    ];
    // Uploads travel as GraphQL multipart requests.
    let send = |token: String, name: &'static str, q: String, vars: serde_json::Value| {
        let app = &app;
        async move {
            if name == "attachTicketFile" {
                app.gql_upload(&token, &q, vars, "f", b"photo".to_vec(), "p.jpg").await
            } else {
                app.gql(Some(&token), &q, vars).await
            }
        }
    };
    let schema = app.gql(None, "{ __schema { mutationType { fields { name } } } }", json!({})).await;
    let mut names: Vec<String> = schema.data()["__schema"]["mutationType"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str().map(str::to_owned))
        // The caller's own account: every role may log in, log out and change its password.
        .filter(|n| !["login", "logout", "changePassword"].contains(&n.as_str()))
        .collect();
    names.sort();
    let mut covered: Vec<String> = cases.iter().map(|(n, ..)| (*n).to_owned()).collect();
    covered.sort();
    assert_eq!(names, covered, "every mutation needs a VIEWER case");

    for (name, q, vars, _) in &cases {
        let r = send(viewer.clone(), name, q.clone(), vars.clone()).await;
        assert_eq!(r.code(), "FORBIDDEN", "{name}: {}", r.raw);
    }
    // Operators are not tenant admins: no users, integrations or keys; but they run the floor.
    for (name, q, vars, admin_only) in &cases {
        let r = send(operator.clone(), name, q.clone(), vars.clone()).await;
        if *admin_only {
            assert_eq!(r.code(), "FORBIDDEN", "operator {name}: {}", r.raw);
        } else if *name == "replayInboundEvent" {
            // Operators may replay; there is no stored event of that id.
            assert_eq!(r.code(), "NOT_FOUND", "operator {name}: {}", r.raw);
        } else {
            assert!(r.body.get("errors").is_none(), "operator {name}: {}", r.raw);
        }
    }
    // Viewers read.
    let r = app.gql(Some(&viewer), "{ integrations { totalCount } me { role } }", json!({})).await;
    assert_eq!(r.data()["integrations"]["totalCount"], 2, "the Dingding and the ETC integration");
    assert_eq!(r.data()["me"]["role"], "VIEWER");
}

#[tokio::test]
async fn uniqueness_rules_answer_conflict() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let a = tenant_with_admin(&app, &root).await;
    let b = tenant_with_admin(&app, &root).await;
    let r = app
        .gql(
            Some(&root),
            "mutation($s:String!){ createTenant(input:{slug:$s, name:\"again\"}){ id } }",
            json!({"s": a.slug}),
        )
        .await;
    assert_eq!(r.code(), "CONFLICT");
    let r =
        app.gql(Some(&root), "mutation{ createTenant(input:{slug:\"Bad Slug\", name:\"x\"}){ id } }", json!({})).await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "slug");

    let dup = json!({"i": {"tenantId": a.id, "email": a.admin_email.to_uppercase(), "password": USER_PASSWORD, "role": "OPERATOR"}});
    let r = app.gql(Some(&root), "mutation($i:CreateUserInput!){ createUser(input:$i){ id } }", dup).await;
    assert_eq!(r.code(), "CONFLICT");
    // The same email in another tenant is a different account.
    app.create_user(&root, &b.id, &a.admin_email, "other-tenant-password", "VIEWER").await;
    // Platform admins belong to no tenant.
    let r = app
        .gql(
            Some(&root),
            "mutation($i:CreateUserInput!){ createUser(input:$i){ id } }",
            json!({"i": {"tenantId": a.id, "email": "p@e.com", "password": USER_PASSWORD, "role": "PLATFORM_ADMIN"}}),
        )
        .await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    // Duplicate integration name in one tenant.
    app.configure_integration(&a.admin_token, dingding("same")).await.data();
    assert_eq!(app.configure_integration(&a.admin_token, dingding("same")).await.code(), "CONFLICT");
    app.configure_integration(&b.admin_token, dingding("same")).await.data();
}

#[tokio::test]
async fn lists_are_relay_connections() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    for _ in 0..3 {
        app.create_tenant(&root, &format!("p-{}", unique())).await;
    }
    let q = "query($a:String){ tenants(first:2, after:$a){ totalCount pageInfo{ hasNextPage hasPreviousPage endCursor } edges{ cursor node{ id } } } }";
    let p1 = app.gql(Some(&root), q, json!({"a": null})).await;
    let c = &p1.data()["tenants"];
    assert_eq!(c["totalCount"], 3);
    assert_eq!(c["edges"].as_array().map(Vec::len), Some(2));
    assert_eq!(c["pageInfo"]["hasNextPage"], true);
    let p2 = app.gql(Some(&root), q, json!({"a": c["pageInfo"]["endCursor"]})).await;
    let c2 = &p2.data()["tenants"];
    assert_eq!(c2["edges"].as_array().map(Vec::len), Some(1));
    assert_eq!(c2["pageInfo"]["hasNextPage"], false);
    assert_eq!(c2["pageInfo"]["hasPreviousPage"], true);
    assert_ne!(c2["edges"][0]["node"]["id"], c["edges"][0]["node"]["id"]);
    assert_eq!(
        app.gql(Some(&root), "{ tenants(first: 1000){ totalCount } }", json!({})).await.code(),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.gql(Some(&root), "{ tenants(after: \"nope\"){ totalCount } }", json!({})).await.code(),
        "BAD_USER_INPUT"
    );
}
