//! The one GraphQL client of the tests: a server's base URL, an HTTP client and (for most
//! calls) a bearer token. Every call asserts HTTP 200 (GraphQL errors come with 200);
//! `query` answers `data` or the first error with its `extensions.code`, `gql` the raw
//! answer for tests that read both. The mutations many files repeat live here once.

use serde_json::{Value, json};
use std::fmt;

const CONFIGURE_INTEGRATION: &str = "mutation($i:ConfigureIntegrationInput!){ configureIntegration(input:$i){ id kind name hookUrl telemetryUrl settings credentialNames } }";
const UPSERT_DEVICE: &str = "mutation($i:UpsertDeviceInput!){ upsertDevice(input:$i){ id } }";

/// A GraphQL client of one server, acting as one user (or none).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// A GraphQL answer: the parsed body and its text.
#[derive(Debug)]
pub struct Gql {
    pub body: Value,
    pub raw: String,
}

/// The first error of a GraphQL answer.
#[derive(Debug, Clone)]
pub struct GqlError {
    /// `extensions.code`, when the server gave one.
    pub code: Option<String>,
    pub message: String,
    /// The whole `extensions` object (`field`, `retryAfterSeconds` ...).
    pub extensions: Value,
    /// The whole answer, for failure messages.
    pub raw: String,
}

impl fmt::Display for GqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.message, self.code.as_deref().unwrap_or("no code"), self.raw)
    }
}

impl Gql {
    /// `data`, asserting there were no errors.
    pub fn data(&self) -> &Value {
        assert!(self.body.get("errors").is_none(), "unexpected errors: {}", self.raw);
        &self.body["data"]
    }

    /// The `extensions.code` of the first error (panics when there is none).
    pub fn code(&self) -> String {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {}", self.raw))
            .to_owned()
    }

    /// `data`, or the first error.
    pub fn into_result(self) -> Result<Value, GqlError> {
        match self.body.get("errors") {
            None => Ok(self.body["data"].clone()),
            Some(errors) => {
                let first = &errors[0];
                Err(GqlError {
                    code: first["extensions"]["code"].as_str().map(str::to_owned),
                    message: first["message"].as_str().unwrap_or_default().to_owned(),
                    extensions: first["extensions"].clone(),
                    raw: self.raw,
                })
            }
        }
    }

    /// `data.<field>.id`, asserting there were no errors.
    pub fn id(&self, field: &str) -> String {
        self.data()[field]["id"].as_str().unwrap_or_else(|| panic!("no {field}.id in {}", self.raw)).to_owned()
    }
}

/// The nodes of a connection (`{ edges { node } }`).
pub fn nodes(connection: &Value) -> Vec<Value> {
    connection["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("not a connection: {connection}"))
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// A configured integration.
#[derive(Debug, Clone)]
pub struct Integration {
    pub id: String,
    pub hook_url: String,
}

impl Client {
    /// A client of the server at `base`, acting as nobody.
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        Self { http, base: base.to_owned(), token: None }
    }

    /// The same server, acting as the holder of `token`.
    pub fn as_user(&self, token: &str) -> Self {
        Self { token: Some(token.to_owned()), ..self.clone() }
    }

    /// Posts a query; asserts the HTTP status is 200 and the body JSON.
    pub async fn gql(&self, query: &str, variables: Value) -> Gql {
        let req =
            self.http.post(format!("{}/graphql", self.base)).json(&json!({"query": query, "variables": variables}));
        self.send(req).await
    }

    /// `data`, or the first error with its code.
    pub async fn query(&self, query: &str, variables: Value) -> Result<Value, GqlError> {
        self.gql(query, variables).await.into_result()
    }

    /// `data`, asserting there were no errors.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        self.query(query, variables).await.unwrap_or_else(|e| panic!("unexpected errors: {e}"))
    }

    /// A GraphQL multipart request (the GraphQL multipart spec) uploading `bytes` as the
    /// variable `var`.
    pub async fn upload(&self, query: &str, mut variables: Value, var: &str, bytes: Vec<u8>, filename: &str) -> Gql {
        variables[var] = Value::Null;
        let ops = json!({"query": query, "variables": variables});
        let form = reqwest::multipart::Form::new()
            .text("operations", ops.to_string())
            .text("map", json!({"0": [format!("variables.{var}")]}).to_string())
            .part(
                "0",
                reqwest::multipart::Part::bytes(bytes)
                    .file_name(filename.to_owned())
                    .mime_str("application/octet-stream")
                    .expect("mime"),
            );
        self.send(self.http.post(format!("{}/graphql", self.base)).multipart(form)).await
    }

    async fn send(&self, mut req: reqwest::RequestBuilder) -> Gql {
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let raw = resp.text().await.expect("body");
        let body: Value = serde_json::from_str(&raw).unwrap_or_else(|_| panic!("not JSON: {raw}"));
        assert_eq!(status, 200, "{raw}");
        Gql { body, raw }
    }

    /// Logs in; answers the token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let d = self
            .data(
                "mutation($e:String!,$p:String!){ login(email:$e,password:$p){ token } }",
                json!({"e": email, "p": password}),
            )
            .await;
        d["login"]["token"].as_str().expect("token").to_owned()
    }

    /// Creates a tenant (as a platform admin); answers its id.
    pub async fn create_tenant(&self, slug: &str) -> String {
        let r = self
            .gql(
                "mutation($i:CreateTenantInput!){ createTenant(input:$i){ id slug } }",
                json!({"i": {"slug": slug, "name": format!("Tenant {slug}")}}),
            )
            .await;
        r.id("createTenant")
    }

    /// Creates a user; answers its id.
    pub async fn create_user(&self, tenant: &str, email: &str, password: &str, role: &str) -> String {
        let r = self
            .gql(
                "mutation($i:CreateUserInput!){ createUser(input:$i){ id role } }",
                json!({"i": {"tenantId": tenant, "email": email, "password": password, "role": role}}),
            )
            .await;
        r.id("createUser")
    }

    /// `configureIntegration`, its answer as it came (tests of refusals read the error).
    pub async fn configure_integration(&self, input: Value) -> Gql {
        self.gql(CONFIGURE_INTEGRATION, json!({"i": input})).await
    }

    /// Configures an integration that must be accepted.
    pub async fn integration(&self, input: Value) -> Integration {
        let r = self.configure_integration(input).await;
        let i = &r.data()["configureIntegration"];
        let hook_url = i["hookUrl"].as_str().unwrap_or_default().to_owned();
        Integration { id: r.id("configureIntegration"), hook_url }
    }

    /// Creates an API key of an integration; answers the key.
    pub async fn create_api_key(&self, integration: &str) -> String {
        let d = self.data("mutation($i:ID!){ createApiKey(integrationId:$i){ key } }", json!({"i": integration})).await;
        d["createApiKey"]["key"].as_str().expect("key").to_owned()
    }

    /// `upsertDevice` with `input` (an `UpsertDeviceInput`); answers the device id.
    pub async fn upsert_device(&self, input: Value) -> String {
        self.gql(UPSERT_DEVICE, json!({"i": input})).await.id("upsertDevice")
    }

    /// A device of `integration` named by its external id; answers its id.
    pub async fn device(&self, integration: &str, external: &str, kind: &str, name: &str, attributes: Value) -> String {
        self.upsert_device(json!({"integrationId": integration, "externalId": external, "kind": kind, "name": name,
                                  "attributes": attributes}))
            .await
    }

    /// Runs a scheduled job of an integration now; the `runScheduledJob` answer as it came.
    pub async fn run_scheduled_job(&self, integration: &str, job: &str) -> Gql {
        let q = "mutation($i:ID!,$j:ScheduledJob!){ runScheduledJob(integrationId:$i, job:$j){ job trigger outcome detail integrationId } }";
        self.gql(q, json!({"i": integration, "j": job})).await
    }

    /// The inbound events of an integration (at most 100, newest first).
    pub async fn inbound_events(&self, integration: &str) -> Vec<Value> {
        let q = "query($i:ID){ inboundEvents(filter:{integrationId:$i}, first:100){ totalCount edges { node { kind dedupKey state body error } } } }";
        nodes(&self.data(q, json!({"i": integration})).await["inboundEvents"])
    }

    /// Deliveries matching `filter` (a `DeliveryFilterInput`), with their attempts.
    pub async fn deliveries(&self, filter: Value) -> Vec<Value> {
        let q = "query($f:DeliveryFilterInput){ deliveries(filter:$f, first:100){ edges { node {
                   id kind state idempotencyKey orderKey attemptCount payload attempts { number outcome httpStatus request } } } } }";
        nodes(&self.data(q, json!({"f": filter})).await["deliveries"])
    }
}
