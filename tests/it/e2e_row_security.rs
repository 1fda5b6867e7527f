//! Row-level security on PostgreSQL (issue 17): the database itself keeps a tenant's
//! request to its tenant's rows, so a repository query that forgets its tenant filter
//! cannot leak or change another tenant's data. SQLite has no row-level security; these
//! tests check PostgreSQL runs only (CI runs both).

use crate::utils::{TestApp, spawn_app, tenant_with_admin};
use adapters::db::{Conn, with_tenant};
use domain::ids::TenantId;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;

fn is_postgres(app: &TestApp) -> bool {
    app.database_url.starts_with("postgres")
}

async fn add_home(app: &TestApp, token: &str, name: &str) -> String {
    let r = app.gql(Some(token), "mutation($n:String!){ addHome(input:{name:$n}){ id } }", json!({"n": name})).await;
    r.data()["addHome"]["id"].as_str().expect("home id").to_owned()
}

async fn home_names(conn: &Conn, sql: &str) -> Vec<(String, String)> {
    let rows = conn.query_all_raw(Statement::from_string(DbBackend::Postgres, sql)).await.expect("query");
    rows.iter()
        .map(|r| {
            let t: uuid::Uuid = r.try_get("", "tenant_id").expect("tenant_id");
            (t.to_string(), r.try_get::<String>("", "name").expect("name"))
        })
        .collect()
}

#[tokio::test]
async fn every_tenant_table_is_under_forced_row_level_security() {
    let app = spawn_app().await;
    if !is_postgres(&app) {
        return;
    }
    let db = adapters::db::connect(&app.database_url).await.expect("connect");
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT c.relname::text AS t, c.relrowsecurity AS on_, c.relforcerowsecurity AS forced, \
                    EXISTS (SELECT 1 FROM pg_policies p WHERE p.tablename = c.relname \
                            AND p.policyname = 'tenant_isolation') AS policy \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind = 'r' \
               AND (c.relname = 'tenants' OR EXISTS (SELECT 1 FROM information_schema.columns k \
                    WHERE k.table_schema = n.nspname AND k.table_name = c.relname AND k.column_name = 'tenant_id'))",
        ))
        .await
        .expect("catalog");
    assert!(rows.len() > 15, "the tenant tables are found ({})", rows.len());
    for r in rows {
        let table: String = r.try_get("", "t").expect("t");
        for col in ["on_", "forced", "policy"] {
            assert!(r.try_get::<bool>("", col).expect(col), "{table}: {col}");
        }
    }
    // The server does not connect as a role that skips the policies.
    let me = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT rolsuper OR rolbypassrls AS skips FROM pg_roles WHERE rolname = current_user",
        ))
        .await
        .expect("role")
        .expect("a role");
    assert!(!me.try_get::<bool>("", "skips").expect("skips"));
}

#[tokio::test]
async fn a_query_without_its_tenant_filter_sees_and_changes_only_the_scoped_tenant() {
    let app = spawn_app().await;
    if !is_postgres(&app) {
        return;
    }
    let root = app.admin_token().await;
    let a = tenant_with_admin(&app, &root).await;
    let b = tenant_with_admin(&app, &root).await;
    add_home(&app, &a.admin_token, "a-1").await;
    add_home(&app, &a.admin_token, "a-2").await;
    let b_home = add_home(&app, &b.admin_token, "b-1").await;
    let conn = Conn::from(adapters::db::connect(&app.database_url).await.expect("connect"));
    let tenant_a: TenantId = a.id.parse().expect("tenant id");
    let buggy = "SELECT tenant_id, name FROM homes ORDER BY name";

    // Outside a request's scope (workers): every row, as the repositories filter them.
    assert_eq!(home_names(&conn, buggy).await.len(), 3);

    // In tenant A's scope the same unfiltered query sees A's rows only.
    let seen = with_tenant(tenant_a, home_names(&conn, buggy)).await;
    assert_eq!(seen, vec![(a.id.clone(), "a-1".to_owned()), (a.id.clone(), "a-2".to_owned())]);

    // An unfiltered UPDATE changes A's rows only; B's home keeps its name.
    let changed = with_tenant(tenant_a, async {
        conn.execute_raw(Statement::from_string(DbBackend::Postgres, "UPDATE homes SET name = 'renamed'"))
            .await
            .expect("update")
            .rows_affected()
    })
    .await;
    assert_eq!(changed, 2);
    let r = app.gql(Some(&b.admin_token), "query($id:ID!){ home(id:$id){ name } }", json!({"id": b_home})).await;
    assert_eq!(r.data()["home"]["name"], "b-1");

    // Writing a row for another tenant from A's scope is refused by the policy's check.
    let forged = with_tenant(tenant_a, async {
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE homes SET tenant_id = $1 WHERE tenant_id = $2",
            [uuid::Uuid::parse_str(&b.id).expect("uuid").into(), uuid::Uuid::parse_str(&a.id).expect("uuid").into()],
        ))
        .await
    })
    .await;
    let err = forged.expect_err("moving rows to another tenant is refused").to_string();
    assert!(err.contains("row-level security"), "{err}");

    // A transaction of A's scope (units of work, repositories' writes) carries the tenant too.
    let in_tx = with_tenant(tenant_a, async {
        let tx = conn.begin_write().await.expect("begin");
        let n = tx
            .query_all_raw(Statement::from_string(DbBackend::Postgres, "SELECT tenant_id FROM homes"))
            .await
            .expect("select")
            .len();
        tx.commit().await.expect("commit");
        n
    })
    .await;
    assert_eq!(in_tx, 2);

    // And the GraphQL path runs in its caller's scope: B still reads its own home list.
    let r = app.gql(Some(&b.admin_token), "{ homes { totalCount } }", json!({})).await;
    assert_eq!(r.data()["homes"]["totalCount"], 1);
}

#[tokio::test]
async fn login_finds_an_account_of_another_tenant_whatever_token_comes_along() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let a = tenant_with_admin(&app, &root).await;
    let b = tenant_with_admin(&app, &root).await;
    // A browser still holding A's token signs in as B's admin: the request runs in A's
    // scope, but the account lookup is not A's to restrict.
    let r = app
        .gql(
            Some(&a.admin_token),
            "mutation($e:String!,$p:String!){ login(email:$e, password:$p){ token user { tenantId } } }",
            json!({"e": b.admin_email, "p": crate::utils::USER_PASSWORD}),
        )
        .await;
    assert_eq!(r.data()["login"]["user"]["tenantId"], json!(b.id));
}
