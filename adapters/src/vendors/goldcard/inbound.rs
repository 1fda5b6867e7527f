//! `POST /hooks/{integration_id}/goldcard/api/collect/meter/{2001,2002,2003}`: the DAS's
//! reports (seed 003 2.4.11-2.4.13, `PROTOCOLS.md` 4b).
//!
//! Headers first: a wrong `AccessToken`, `Authorization` or a `time` more than 300 s away
//! answers `echoCode` 0101 and nothing is stored. Then the request is stored raw under its
//! `serialNo` (a body without one under its digest) before anything is applied; a
//! `serialNo` already processed answers the same again and changes nothing. A malformed
//! body or a missing field answers 9999 naming it (the request stays stored, FAILED); a
//! `factorNo` other than the integration's answers 0404. Never an HTTP 5xx: every answer
//! is HTTP 200 with the seed's envelope.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use super::batch::{Body, Queued};
use super::sign;
use super::wire::{AlarmReport, CommandResult, Fields, Malformed, Reading};
use super::{Goldcard, ReadingAnswer};
use crate::vendors::inbound::{
    Accepted, HookAnswer, HookRequest, InboundProtocol, Opened, Outcome, Refusal, Rejected, Work, failure_note,
};
use async_trait::async_trait;
use domain::devices::Device;
use domain::events::{EventState, InboundEvent};
use domain::ingest::MeterOutcome;
use domain::integrations::IntegrationKind;
use serde_json::{Value, json};
use std::sync::Arc;

fn echo(code: &str, msg: impl Into<Value>) -> HookAnswer {
    HookAnswer::new(200, json!({"echoCode": code, "echoMsg": msg.into()}))
}

fn malformed(m: &Malformed) -> HookAnswer {
    echo("9999", m.0.clone())
}

/// A parsed report.
pub(crate) enum Report {
    Reading(Box<Reading>),
    Result(CommandResult),
    Alarm(AlarmReport),
}

/// What `accept` hands `apply`.
struct Parsed(Result<Report, Malformed>);

/// A `code` (2001, 2002, 2003) report from its body.
///
/// # Errors
/// Naming the first missing or malformed field.
pub(crate) fn parse(code: &str, body: &[u8]) -> Result<Report, Malformed> {
    let f = Fields::parse(body)?;
    Ok(match code {
        "2001" => Report::Reading(Box::new(Reading::read(&f)?)),
        "2002" => Report::Result(CommandResult::read(&f)?),
        _ => Report::Alarm(AlarmReport::read(&f)?),
    })
}

impl Report {
    pub(crate) fn head(&self) -> &super::wire::Head {
        match self {
            Self::Reading(r) => &r.head,
            Self::Result(r) => &r.head,
            Self::Alarm(a) => &a.head,
        }
    }
}

/// One of the DAS's three report paths.
pub struct GoldcardInbound {
    code: &'static str,
    path: &'static str,
    gas: Goldcard,
}

impl GoldcardInbound {
    /// The three protocols, one per report path.
    pub fn all(gas: &Goldcard) -> Vec<std::sync::Arc<dyn InboundProtocol>> {
        vec![
            std::sync::Arc::new(Self { code: "2001", path: "goldcard/api/collect/meter/2001", gas: gas.clone() }),
            std::sync::Arc::new(Self { code: "2002", path: "goldcard/api/collect/meter/2002", gas: gas.clone() }),
            std::sync::Arc::new(Self { code: "2003", path: "goldcard/api/collect/meter/2003", gas: gas.clone() }),
        ]
    }

    /// Answers a report whose fields are all there.
    async fn handle(
        &self,
        hook: &Opened,
        event: &InboundEvent,
        _duplicate: bool,
        report: Report,
    ) -> (Outcome, HookAnswer) {
        let head = report.head().clone();
        let factor = hook.integration.settings.get("factorNo").and_then(Value::as_str).map(str::trim);
        if factor.is_some_and(|f| !f.is_empty() && f != head.factor_no) {
            let note = format!("factorNo {} is not this integration's", head.factor_no);
            return (Outcome::to_finish(EventState::Failed, Some(note)), echo("0404", "厂商编码(factorNo)错误"));
        }
        let rdate = sign::time(event.received_at);
        let gas = &self.gas;
        let report = match report {
            Report::Reading(r) => return self.reading(event, r, rdate).await,
            other => other,
        };
        let device = match gas.meter(event.tenant_id, event.integration_id, &head.meter_no).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                let note = format!("meter {} is not registered", head.meter_no);
                return (Outcome::to_finish(EventState::Failed, Some(note.clone())), echo("9999", note));
            }
            Err(e) => return internal(event, &e),
        };
        let device_id = head.device_id.clone().unwrap_or_else(|| super::das_device_id(&device));
        let ok = json!({
            "echoCode": "0000",
            "echoMsg": {"serialNo": head.serial_no, "deviceId": device_id, "rdateTime": rdate},
        });
        if let Report::Result(r) = &report {
            return match gas.apply_result(event, r).await {
                Ok(None) => (Outcome::to_finish(EventState::Processed, None), HookAnswer::new(200, ok)),
                Ok(Some(why)) => (Outcome::to_finish(EventState::Ignored, Some(why)), HookAnswer::new(200, ok)),
                Err(e) => internal(event, &e),
            };
        }
        if let Report::Alarm(a) = &report
            && let Err(e) = gas.apply_alarm(event, &device, a).await
        {
            return internal(event, &e);
        }
        (Outcome::finished(EventState::Processed), HookAnswer::new(200, ok))
    }
}

impl GoldcardInbound {
    /// A 2001, applied with the others in flight (`batch.rs`).
    async fn reading(&self, event: &InboundEvent, r: Box<Reading>, rdate: String) -> (Outcome, HookAnswer) {
        let head = r.head.clone();
        let meter_no = head.meter_no.clone();
        let body: Body = Arc::new(move |d: &Device, a: ReadingAnswer| {
            let device_id = head.device_id.clone().unwrap_or_else(|| super::das_device_id(d));
            let mut b = json!({
                "echoCode": "0000",
                "serialNo": head.serial_no,
                "userNo": head.user_no,
                "deviceId": device_id,
                "factorNo": head.factor_no,
                "meterNo": head.meter_no,
                "valvecontrol": a.valve,
                "rdateTime": rdate,
            });
            if let Some(m) = b.as_object_mut() {
                if let Some(p) = a.price {
                    m.insert("currentprice".into(), json!(p.normalize().to_string()));
                }
                if let Some(r) = a.remain {
                    m.insert("remainquantity".into(), json!(r.normalize().to_string()));
                }
            }
            b
        });
        let (tenant, integration) = (event.tenant_id, event.integration_id);
        let queued = |reply| Queued { tenant, integration, event: event.id, reading: r, body: body.clone(), reply };
        let unknown = || {
            let note = format!("meter {meter_no} is not registered");
            (Outcome::to_finish(EventState::Failed, Some(note.clone())), echo("9999", note))
        };
        match self.gas.batch.submit(queued).await {
            Ok(MeterOutcome::Applied { answer, .. }) => {
                (Outcome::answered(EventState::Processed), HookAnswer::new(200, answer))
            }
            Ok(MeterOutcome::UnknownMeter) => unknown(),
            // Applied meanwhile by a resend of it: answered from the account as it stands.
            Ok(MeterOutcome::Before) => match self.gas.answer_now(tenant, integration, &meter_no, &body).await {
                Ok(Some(b)) => (Outcome::answered(EventState::Processed), HookAnswer::new(200, b)),
                Ok(None) => unknown(),
                Err(e) => internal(event, &e),
            },
            Err(e) => internal(event, &e),
        }
    }
}

fn internal(event: &InboundEvent, e: &domain::DomainError) -> (Outcome, HookAnswer) {
    tracing::error!(error = ?e, inbound_event_id = %event.id, "applying a gas DAS report");
    // Stored, not applied: the DAS sends it again (or an operator replays it).
    let failed = Outcome::to_finish(EventState::Failed, Some(failure_note(e)));
    (failed, echo("9995", "服务未启动: try again"))
}

#[async_trait]
impl InboundProtocol for GoldcardInbound {
    fn path(&self) -> &'static str {
        self.path
    }

    fn protocol(&self) -> &'static str {
        IntegrationKind::Goldcard.as_str()
    }

    fn serves(&self, kind: IntegrationKind) -> bool {
        kind == IntegrationKind::Goldcard
    }

    /// The three report paths share one `protocol`; each stored report's `kind` is its code.
    fn owns(&self, event: &InboundEvent) -> bool {
        event.protocol == self.protocol() && event.kind == self.code
    }

    /// Reports come in bursts: the integration is resolved from a recent lookup (a refusal
    /// is checked again under the stored credentials, so a new secret works at once).
    fn cached(&self) -> bool {
        true
    }

    /// A `serialNo` already processed is answered the same again.
    fn keeps_answer(&self) -> bool {
        true
    }

    fn refused(&self, why: Refusal) -> HookAnswer {
        match why {
            Refusal::UnknownIntegration => {
                HookAnswer::new(404, json!({"echoCode": "9999", "echoMsg": "unknown integration"}))
            }
            Refusal::Disabled => HookAnswer::new(403, json!({"echoCode": "9999", "echoMsg": "integration disabled"})),
            Refusal::BadHookToken => echo("0101", "Token 校验未通过"),
            Refusal::TooManyFailures => HookAnswer::new(
                429,
                json!({"echoCode": "9999", "echoMsg": "too many failed requests from this address"}),
            ),
            Refusal::Internal => echo("9995", "服务未启动: try again"),
        }
    }

    async fn accept(&self, hook: &Opened, req: HookRequest) -> Result<Accepted, Rejected> {
        let cred = |k: &str| hook.credentials.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (app_code, app_secret) = (cred("appCode"), cred("appSecret"));
        if app_code.is_empty() || app_secret.is_empty() {
            return Err(echo("0101", "Token 校验未通过: the integration has no appCode/appSecret").unauthenticated());
        }
        let now = self.gas.now();
        if let Err(e) =
            sign::verify(req.header("accesstoken"), req.header("authorization"), &app_code, &app_secret, now)
        {
            return Err(echo("0101", format!("Token 校验未通过(检查 AccessToken 和 Authorization 是否正确): {e}"))
                .unauthenticated());
        }
        let parsed = parse(self.code, &req.body);
        let dedup_key = match &parsed {
            Ok(r) => format!("{}:{}", self.code, r.head().serial_no),
            Err(_) => format!("{}:invalid:{}", self.code, crate::crypto::sha256_hex(&req.body)),
        };
        Ok(Accepted {
            kind: self.code.to_owned(),
            dedup_key,
            headers: json!({"content-type": req.header("content-type")}),
            body: String::from_utf8_lossy(&req.body).into_owned(),
            lane: None,
            answer_first: false,
            work: Box::new(Parsed(parsed)),
        })
    }

    async fn apply(&self, hook: &Opened, event: &InboundEvent, duplicate: bool, work: Work) -> (Outcome, HookAnswer) {
        let Ok(parsed) = work.downcast::<Parsed>() else {
            return (Outcome::to_finish(EventState::Failed, None), self.refused(Refusal::Internal));
        };
        match parsed.0 {
            Ok(report) => self.handle(hook, event, duplicate, report).await,
            Err(m) => (Outcome::to_finish(EventState::Failed, Some(m.0.clone())), malformed(&m)),
        }
    }

    fn reparse_supported(&self) -> bool {
        true
    }

    fn reparse(&self, event: &InboundEvent) -> Option<(Option<String>, Work)> {
        parse(self.code, event.body.as_bytes()).ok().map(|r| (None, Box::new(Parsed(Ok(r))) as Work))
    }
}
