//! `POST /hooks/{integration_id}/dingding/{hook_token}`: Dingding event and service
//! callbacks (seed 002 sections 8, 9, 12, 13, 16). The sign carries no secret (an MD5 over
//! the URL and the body), so the URL does: the pipeline refuses a request without the
//! integration's hook token before anything else. The sign is checked as pinned in
//! `PROTOCOLS.md` 3b against the URL as registered (with the token the request used); a
//! bad sign answers 401 and stores nothing. The raw body is
//! stored under its dedup key (event: uuid+event+time; service: serviceid+service), applied
//! once, and answered `{"ErrNo":0,"ErrMsg":"ok"}`, undocumented callbacks included.
//! Callbacks of one device share a lane: a burst is applied from the backlog in arrival
//! order per device.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use super::{Callback, DingdingService, Handled, Known, map, sign, wire};
use crate::vendors::inbound::{
    Accepted, HookAnswer, HookRequest, InboundProtocol, Opened, Outcome, Refusal, Rejected, Work, failure_note,
};
use async_trait::async_trait;
use domain::events::{EventState, InboundEvent};
use domain::ids::IntegrationId;
use domain::ingest::{Applied, IngestService};
use domain::integrations::IntegrationKind;
use serde_json::{Value, json};

/// Dingding's own envelope.
fn answer(status: u16, err_no: i64, msg: &str) -> HookAnswer {
    let body = serde_json::to_value(wire::CallbackAnswer { err_no, err_msg: msg }).unwrap_or(Value::Null);
    HookAnswer::new(status, body)
}

/// The callback URL as registered: the one `hookUrl` shows, ending in the hook token.
pub fn hook_url(public_url: &str, integration: &IntegrationId, hook_token: &str) -> String {
    format!("{}/hooks/{integration}/dingding/{hook_token}", public_url.trim_end_matches('/'))
}

/// A parsed callback.
struct Parsed {
    name: String,
    callback: Callback,
}

impl DingdingInbound {
    /// Writes a run of callbacks' facts in one unit; when that fails, each alone (so one
    /// bad callback fails only itself).
    async fn write_run(
        &self,
        run: &mut Vec<(usize, &InboundEvent, Vec<domain::ingest::Fact>)>,
        out: &mut [Option<(Outcome, HookAnswer)>],
    ) {
        let Some((_, first, _)) = run.first() else { return };
        let tenant = first.tenant_id;
        let taken = std::mem::take(run);
        let batch = taken.iter().map(|(_, e, facts)| (e.id, facts.clone())).collect();
        let applied = self.ingest.apply_events(tenant, batch).await;
        if let Err(e) = &applied {
            tracing::warn!(error = %e, "a batch of Dingding callbacks failed; applying them one by one");
        }
        for (i, event, facts) in taken {
            let result = match &applied {
                Ok(_) => Ok(()),
                Err(_) => self.ingest.apply(tenant, Some(event.id), facts, None).await.map(drop),
            };
            let done = match result {
                Ok(()) => (Outcome::finished(EventState::Processed), answer(200, 0, "ok")),
                Err(e) => {
                    tracing::error!(error = ?e, inbound_event_id = %event.id, "applying a Dingding callback");
                    (Outcome::to_finish(EventState::Failed, Some(failure_note(&e))), self.refused(Refusal::Internal))
                }
            };
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(done);
            }
        }
    }
}

/// The Dingding inbound protocol.
pub struct DingdingInbound {
    service: DingdingService,
    ingest: IngestService,
    public_url: String,
}

impl DingdingInbound {
    pub fn new(service: DingdingService, ingest: IngestService, public_url: String) -> Self {
        Self { service, ingest, public_url }
    }
}

fn parsed(body: &wire::CallbackBody) -> (Option<String>, Work) {
    let work = Parsed { name: map::callback_name(body), callback: map::callback(body) };
    (Some(body.uuid.clone().unwrap_or_default()), Box::new(work))
}

/// A callback's body as text and as JSON, before its sign is checked.
pub(crate) fn unsigned(body: &[u8]) -> Result<(&str, Value), HookAnswer> {
    let Ok(raw) = std::str::from_utf8(body) else {
        return Err(answer(400, 14001, "the body is not UTF-8"));
    };
    match serde_json::from_str(raw) {
        Ok(v @ Value::Object(_)) => Ok((raw, v)),
        _ => Err(answer(400, 14001, "the body must be a JSON object")),
    }
}

/// A callback whose sign checked out (`raw` is its body, `fields` that body as JSON), as
/// it is stored and applied.
pub(crate) fn signed(raw: &str, fields: Value) -> Result<Accepted, HookAnswer> {
    let body: wire::CallbackBody =
        serde_json::from_value(fields).map_err(|e| answer(400, 14001, &format!("malformed callback: {e}")))?;
    let name = map::callback_name(&body);
    let (lane, work) = parsed(&body);
    Ok(Accepted {
        kind: if name.is_empty() { "unknown".to_owned() } else { name },
        dedup_key: map::dedup_key(&body, raw),
        headers: json!({}),
        body: map::redacted(raw, &body),
        lane,
        answer_first: false,
        work,
    })
}

#[async_trait]
impl InboundProtocol for DingdingInbound {
    fn path(&self) -> &'static str {
        "dingding"
    }

    fn path_token(&self) -> bool {
        true
    }

    fn protocol(&self) -> &'static str {
        IntegrationKind::Dingding.as_str()
    }

    fn serves(&self, kind: IntegrationKind) -> bool {
        kind == IntegrationKind::Dingding
    }

    /// A burst of callbacks resolves its integration once; the sign needs no credential.
    fn cached(&self) -> bool {
        true
    }

    fn refused(&self, why: Refusal) -> HookAnswer {
        match why {
            Refusal::UnknownIntegration => answer(404, 15006, "unknown integration"),
            Refusal::Disabled => answer(403, 15003, "integration disabled"),
            Refusal::BadHookToken => answer(401, 15014, "missing or wrong hook token"),
            Refusal::TooManyFailures => answer(429, 15029, "too many failed requests from this address"),
            Refusal::Internal => answer(500, 15000, "internal error"),
        }
    }

    async fn accept(&self, hook: &Opened, req: HookRequest) -> Result<Accepted, Rejected> {
        let Some(token) = req.hook_token.as_deref() else {
            return Err(self.refused(Refusal::BadHookToken).unauthenticated());
        };
        let (raw, fields) = unsigned(&req.body)?;
        let given = fields.get("sign").and_then(Value::as_str).unwrap_or_default();
        if !sign::verify(&hook_url(&self.public_url, &hook.integration.id, token), raw, given) {
            return Err(answer(401, 15014, "missing or wrong sign").unauthenticated());
        }
        signed(raw, fields).map_err(Into::into)
    }

    /// A resend is answered without applying it again, unless applying it failed before
    /// (then Dingding's resend is the second chance).
    fn repeat(&self, stored: &InboundEvent) -> Option<HookAnswer> {
        (stored.state != EventState::Failed).then(|| answer(200, 0, "ok"))
    }

    fn deferred(&self) -> HookAnswer {
        answer(200, 0, "ok")
    }

    async fn apply(&self, _hook: &Opened, event: &InboundEvent, _duplicate: bool, work: Work) -> (Outcome, HookAnswer) {
        let Ok(p) = work.downcast::<Parsed>() else {
            return (
                Outcome::to_finish(EventState::Failed, Some("not a callback".into())),
                self.refused(Refusal::Internal),
            );
        };
        let (tenant, integration) = (event.tenant_id, event.integration_id);
        let handled = self.service.handle(tenant, integration, event.id, &p.name, p.callback, None).await;
        let outcome = match handled {
            Ok(Handled::Processed) => Ok(Outcome::to_finish(EventState::Processed, None)),
            Ok(Handled::Ignored(why)) => Ok(Outcome::to_finish(EventState::Ignored, Some(why))),
            Ok(Handled::Facts(facts)) => match self.ingest.apply(tenant, Some(event.id), facts, None).await {
                Ok(Applied::Now | Applied::Before) => Ok(Outcome::finished(EventState::Processed)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match outcome {
            Ok(o) => (o, answer(200, 0, "ok")),
            Err(e) => {
                tracing::error!(error = ?e, inbound_event_id = %event.id, "applying a Dingding callback");
                // Stored, but not applied: a non-2xx answer makes Dingding send it again.
                let failed = Outcome::to_finish(EventState::Failed, Some(failure_note(&e)));
                (failed, self.refused(Refusal::Internal))
            }
        }
    }

    /// Runs of callbacks that only bring facts (`Callback::only_facts`: readings, states,
    /// alarms) are written in one unit each (`IngestService::apply_events`), their devices
    /// read in one query (`DingdingService::read_ahead`); any other callback ends the run
    /// and is applied alone, after it, so a lane keeps its order (and the next run reads
    /// its devices again: that callback may have installed one).
    async fn apply_batch(&self, hook: &Opened, items: Vec<(&InboundEvent, Work)>) -> Vec<(Outcome, HookAnswer)> {
        let mut slots: Vec<Option<(&InboundEvent, Result<Box<Parsed>, Work>)>> =
            items.into_iter().map(|(e, w)| Some((e, w.downcast::<Parsed>()))).collect();
        let mut out: Vec<Option<(Outcome, HookAnswer)>> = (0..slots.len()).map(|_| None).collect();
        let mut run: Vec<(usize, &InboundEvent, Vec<domain::ingest::Fact>)> = Vec::new();
        let mut known: Option<Known> = None;
        for i in 0..slots.len() {
            let Some((event, parsed)) = slots.get_mut(i).and_then(Option::take) else { continue };
            let p = match parsed {
                Ok(p) if p.callback.only_facts() => p,
                other => {
                    self.write_run(&mut run, &mut out).await;
                    known = None;
                    let work: Work = match other {
                        Ok(p) => p,
                        Err(w) => w,
                    };
                    let applied = self.apply(hook, event, false, work).await;
                    if let Some(slot) = out.get_mut(i) {
                        *slot = Some(applied);
                    }
                    continue;
                }
            };
            let (tenant, integration) = (event.tenant_id, event.integration_id);
            if known.is_none() {
                // The devices of this callback and of the ones after it in the run.
                let ahead = slots.get(i + 1..).unwrap_or_default().iter().map_while(|s| match s {
                    Some((_, Ok(q))) if q.callback.only_facts() => Some(q.callback.device_uuids()),
                    _ => None,
                });
                let mut uuids: Vec<String> =
                    std::iter::once(p.callback.device_uuids()).chain(ahead).flatten().map(str::to_owned).collect();
                uuids.sort_unstable();
                uuids.dedup();
                known = match self.service.read_ahead(tenant, integration, uuids).await {
                    Ok(k) => Some(k),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading a batch's devices ahead; reading them one by one");
                        Some(Known::new())
                    }
                };
            }
            let handled = self.service.handle(tenant, integration, event.id, &p.name, p.callback, known.as_ref()).await;
            let done = match handled {
                Ok(Handled::Facts(facts)) => {
                    run.push((i, event, facts));
                    continue;
                }
                Ok(Handled::Processed) => (Outcome::to_finish(EventState::Processed, None), answer(200, 0, "ok")),
                Ok(Handled::Ignored(why)) => (Outcome::to_finish(EventState::Ignored, Some(why)), answer(200, 0, "ok")),
                Err(e) => {
                    tracing::error!(error = ?e, inbound_event_id = %event.id, "applying a Dingding callback");
                    (Outcome::to_finish(EventState::Failed, Some(failure_note(&e))), self.refused(Refusal::Internal))
                }
            };
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(done);
            }
        }
        self.write_run(&mut run, &mut out).await;
        out.into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    (
                        Outcome::to_finish(EventState::Failed, Some("not applied".into())),
                        self.refused(Refusal::Internal),
                    )
                })
            })
            .collect()
    }

    fn reparse_supported(&self) -> bool {
        true
    }

    fn reparse(&self, event: &InboundEvent) -> Option<(Option<String>, Work)> {
        serde_json::from_str::<wire::CallbackBody>(&event.body).ok().map(|b| parsed(&b))
    }
}
