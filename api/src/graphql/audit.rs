//! The audit extension: every root mutation by an authenticated caller is recorded (who,
//! tenant, which mutation, the id it returned, the outcome). Argument values are never
//! recorded, so no secret reaches the audit log.

use crate::app::AppState;
use crate::auth::Caller;
use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo};
use async_graphql::{ServerResult, Value};
use domain::audit::AuditEntry;
use domain::ids::EntryId;
use std::sync::Arc;

pub struct Audit;

impl ExtensionFactory for Audit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AuditExtension)
    }
}

struct AuditExtension;

#[async_trait::async_trait]
impl Extension for AuditExtension {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let audited = info.parent_type == "MutationRoot" && info.path_node.parent.is_none() && info.name != "login";
        if !audited {
            return next.run(ctx, info).await;
        }
        let action = info.name.to_owned();
        let result = next.run(ctx, info).await;
        if let (Some(st), Some(Caller::Authenticated(actor))) = (ctx.data_opt::<AppState>(), ctx.data_opt::<Caller>()) {
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
                Ok(Some(Value::Object(m))) => {
                    m.get("id").and_then(|v| if let Value::String(s) = v { Some(s.clone()) } else { None })
                }
                _ => None,
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
            };
            if let Err(e) = st.audit.record(entry).await {
                tracing::error!(error = %e, "audit entry not recorded");
            }
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
