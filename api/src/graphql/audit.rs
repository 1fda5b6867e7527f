//! The audit extension: every root mutation by an authenticated caller is recorded (who,
//! tenant, which mutation, the id it returned, the outcome). Argument values are never
//! recorded, so no secret reaches the audit log. A mutation that changes an entity
//! (`CHANGES`) also records which one and its state before and after (`snapshots.rs`: the
//! fields the log keeps, never a secret); any other mutation returning an object with an
//! `id` records that object's type and id as its entity.

use super::snapshots::{self as snap, load};
use crate::app::AppState;
use crate::auth::Caller;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextResolve, ResolveInfo,
};
use async_graphql::{Name, Request, ServerResult, Value, Variables};
use domain::Actor;
use domain::audit::AuditEntry;
use domain::ids::EntryId;
use std::sync::{Arc, Mutex};

pub struct Audit;

impl ExtensionFactory for Audit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AuditExtension { variables: Mutex::new(Variables::default()) })
    }
}

/// One per request.
struct AuditExtension {
    /// The request's variables, to read the arguments that name the changed entity.
    variables: Mutex<Variables>,
}

/// Where a mutation names the entity it changes.
#[derive(Clone, Copy)]
enum Locate {
    /// The argument `.0`.
    Arg(&'static str),
    /// The field `.0` of the argument `input`; absent: a creation (the returned id).
    Input(&'static str),
    /// A device by `input.integrationId` and `input.externalId` (an upsert).
    DeviceByExternal,
    /// The latest version of the tariff `input.code` of `input.integrationId` (saving it
    /// adds a version: before is the one it supersedes, after the new one).
    TariffByCode,
    /// A creation: no before; the returned id.
    Returned,
}

/// The mutations that change an entity, with its type and where its id is. Names of
/// mutations this schema does not have yet cost nothing.
const CHANGES: &[(&str, &str, Locate)] = &[
    ("upsertDevice", snap::DEVICE, Locate::DeviceByExternal),
    ("updateDevice", snap::DEVICE, Locate::Arg("id")),
    ("deleteDevice", snap::DEVICE, Locate::Arg("id")),
    ("cancelMeter", snap::DEVICE, Locate::Arg("deviceId")),
    ("addHome", snap::HOME, Locate::Returned),
    ("updateHome", snap::HOME, Locate::Arg("id")),
    ("deleteHome", snap::HOME, Locate::Arg("id")),
    ("addRoom", snap::ROOM, Locate::Returned),
    ("updateRoom", snap::ROOM, Locate::Arg("id")),
    ("deleteRoom", snap::ROOM, Locate::Arg("id")),
    ("configureIntegration", snap::INTEGRATION, Locate::Input("id")),
    ("updateIntegration", snap::INTEGRATION, Locate::Arg("id")),
    ("disableIntegration", snap::INTEGRATION, Locate::Arg("id")),
    ("enableIntegration", snap::INTEGRATION, Locate::Arg("id")),
    ("rotateIntegrationSecret", snap::INTEGRATION, Locate::Arg("id")),
    ("reportAlarm", snap::ALARM, Locate::Returned),
    ("acknowledgeAlarm", snap::ALARM, Locate::Arg("id")),
    ("clearAlarm", snap::ALARM, Locate::Arg("id")),
    ("createUser", snap::USER, Locate::Returned),
    ("updateUser", snap::USER, Locate::Arg("id")),
    ("saveTariff", snap::TARIFF, Locate::TariffByCode),
    ("assignTariff", snap::METER_ACCOUNT, Locate::Arg("deviceId")),
    ("saveTicket", snap::TICKET, Locate::Input("id")),
    ("deleteTicket", snap::TICKET, Locate::Arg("id")),
];

impl AuditExtension {
    /// The argument `name` of the field, its variables substituted.
    fn arg(&self, info: &ResolveInfo<'_>, name: &str) -> Option<Value> {
        let raw = info.field.get_argument(name)?.node.clone();
        let vars = self.variables.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        raw.into_const_with(|v: Name| vars.get(&v).cloned().ok_or(())).ok()
    }

    fn input_field(&self, info: &ResolveInfo<'_>, field: &str) -> Option<String> {
        match self.arg(info, "input")? {
            Value::Object(m) => text(m.get(field)?),
            _ => None,
        }
    }

    /// The id of the entity before the mutation runs, when it names an existing one.
    async fn located(&self, st: &AppState, actor: &Actor, info: &ResolveInfo<'_>, how: Locate) -> Option<String> {
        match how {
            Locate::Arg(name) => text(&self.arg(info, name)?),
            Locate::Input(field) => self.input_field(info, field),
            Locate::DeviceByExternal => {
                let (i, e) = (self.input_field(info, "integrationId")?, self.input_field(info, "externalId")?);
                snap::device_by_external(st, actor, &i, &e).await
            }
            Locate::TariffByCode => {
                let code = self.input_field(info, "code")?;
                snap::latest_tariff(st, actor, self.input_field(info, "integrationId").as_deref(), &code).await
            }
            Locate::Returned => None,
        }
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// `Device!` -> `device`, `[Alarm!]!` -> `alarm`.
fn type_name(return_type: &str) -> String {
    let t = return_type.trim_matches(|c| matches!(c, '[' | ']' | '!'));
    let mut c = t.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}

#[async_trait::async_trait]
impl Extension for AuditExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        *self.variables.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = request.variables.clone();
        next.run(ctx, request).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let audited = info.parent_type == "MutationRoot" && info.path_node.parent.is_none() && info.name != "login";
        let caller = match (ctx.data_opt::<AppState>(), ctx.data_opt::<Caller>()) {
            (Some(st), Some(Caller::Authenticated(actor))) if audited => Some((st, *actor)),
            _ => None,
        };
        let Some((st, actor)) = caller else {
            return next.run(ctx, info).await;
        };
        let action = info.name.to_owned();
        let return_type = type_name(info.return_type);
        let change = CHANGES.iter().find(|(name, _, _)| *name == action).map(|(_, entity, how)| (*entity, *how));
        let (before_id, before) = match change {
            Some((entity, how)) => match self.located(st, &actor, &info, how).await {
                Some(id) => {
                    let snapshot = load(st, &actor, entity, &id).await;
                    (Some(id), snapshot)
                }
                None => (None, None),
            },
            None => (None, None),
        };
        let result = next.run(ctx, info).await;
        let outcome = match &result {
            Ok(_) => "OK".to_owned(),
            Err(e) => e
                .extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .and_then(|c| if let Value::String(s) = c { Some(s.clone()) } else { None })
                .unwrap_or_else(|| "ERROR".to_owned()),
        };
        let target = match &result {
            Ok(Some(Value::Object(m))) => m.get("id").and_then(text),
            _ => None,
        };
        let (entity_type, entity_id, before, after) = match change {
            Some((entity, how)) => {
                // An action on an existing entity changed the one its arguments name; a
                // creation or a save answers the id of what it left (a tariff's new version).
                let after_id = match how {
                    Locate::Arg(_) => before_id.clone().or_else(|| target.clone()),
                    _ => target.clone().or_else(|| before_id.clone()),
                };
                let after = match (&result, &after_id) {
                    (Ok(_), Some(id)) => load(st, &actor, entity, id).await,
                    _ => None,
                };
                let before = if result.is_ok() { before } else { None };
                (Some(entity.to_owned()), after_id, before, after)
            }
            None => match &target {
                Some(id) if !return_type.is_empty() => (Some(return_type), Some(id.clone()), None, None),
                _ => (None, None, None, None),
            },
        };
        let entry = AuditEntry {
            id: EntryId::new(),
            tenant_id: actor.tenant_id,
            actor_id: Some(actor.user_id),
            actor_role: Some(actor.role),
            action,
            target,
            outcome,
            at: chrono::Utc::now(),
            entity_type,
            entity_id,
            before,
            after,
        };
        if let Err(e) = st.audit.record(entry).await {
            tracing::error!(error = %e, "audit entry not recorded");
        }
        result
    }
}

/// Gives every error an `extensions.code`, on every transport: HTTP answers (`request`) and
/// each message of a subscription stream over WebSocket (`subscribe`), including parse and
/// validation errors.
pub struct Codes;

impl ExtensionFactory for Codes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CodesExtension)
    }
}

struct CodesExtension;

#[async_trait::async_trait]
impl Extension for CodesExtension {
    async fn request(
        &self,
        ctx: &ExtensionContext<'_>,
        next: async_graphql::extensions::NextRequest<'_>,
    ) -> async_graphql::Response {
        let mut resp = next.run(ctx).await;
        crate::error::ensure_codes(&mut resp);
        resp
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: futures::stream::BoxStream<'s, async_graphql::Response>,
        next: async_graphql::extensions::NextSubscribe<'_>,
    ) -> futures::stream::BoxStream<'s, async_graphql::Response> {
        use futures::StreamExt;
        next.run(ctx, stream)
            .map(|mut resp| {
                crate::error::ensure_codes(&mut resp);
                resp
            })
            .boxed()
    }
}
