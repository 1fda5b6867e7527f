//! `POST /hooks/{integration_id}/etc/monitor.do`: the gantry PCs' and cabinets' status
//! reports (seed 001 1.5-1.8, 2.1, 3.1; `PROTOCOLS.md` 2a), dispatched on `method`.
//!
//! Checked before anything is stored: `binfile-auth` (1001), `binfile-md5` of the raw body
//! (1004), then the body: JSON (1002), `version` (1006), `timeStamp` within
//! `maxClockSkewSeconds` (1003), `gantryId` and `method` (1002), the method's own body
//! (1002), and a second report of one gantry, method and cabinet sooner than
//! `minReportIntervalSeconds` after the last (1005). Then the report is stored raw (once:
//! a resend of the same body is recognised) and applied; an unknown method is kept and
//! answered 1008. Every answer is HTTP 200 with `{"code", "msg"}`.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use super::map::{self, Thresholds};
use super::wire::{self, Body, Code, Report};
use super::{Etc, sign};
use crate::vendors::inbound::{
    Accepted, HookAnswer, HookRequest, InboundProtocol, Opened, Outcome, Refusal, Rejected, Work, failure_note,
};
use async_trait::async_trait;
use domain::events::{EventState, InboundEvent};
use domain::integrations::IntegrationKind;
use serde_json::{Value, json};

fn answer(code: Code, detail: Option<&str>) -> HookAnswer {
    HookAnswer::new(200, code.answer(detail))
}

/// What `accept` hands `apply`: the report and where it came from.
struct Parsed {
    report: Report,
    peer: Option<String>,
}

/// The ETC inbound protocol.
pub struct EtcInbound {
    etc: Etc,
}

impl EtcInbound {
    pub fn new(etc: Etc) -> Self {
        Self { etc }
    }

    async fn handle(&self, hook: &Opened, event: &InboundEvent, p: Parsed) -> (Outcome, HookAnswer) {
        let report = p.report;
        if let Body::Other = report.body {
            let note = format!("unknown method {}", report.head.method);
            return (Outcome::to_finish(EventState::Failed, Some(note.clone())), answer(Code::Unknown, Some(&note)));
        }
        let (tenant, integration) = (event.tenant_id, event.integration_id);
        let named = map::devices_of(&report);
        let devices = match self.etc.ensure(tenant, integration, &named, p.peer.as_deref()).await {
            Ok(d) => d,
            Err(e) => return internal(event, &e),
        };
        let t = Thresholds::of(&hook.integration.settings);
        let mapped = map::facts(&report, &named, &devices, t, event.id);
        let gantry = devices.get(&report.head.gantry_id);
        let address = gantry.and_then(|g| g.attributes.get("address")).and_then(Value::as_str);
        // Asked before the facts are written: a report applied again asks once more, and
        // the idempotency key makes that a no-op.
        for door in &mapped.doors {
            let Some(cabinet) = devices.get(&door.cabinet_external) else { continue };
            if let Err(e) =
                self.etc.fetch_door_picture(tenant, integration, &report.head.gantry_id, cabinet, door, address).await
            {
                return internal(event, &e);
            }
        }
        match self.etc.ingest.apply(tenant, Some(event.id), mapped.facts, None).await {
            Ok(_) => (Outcome::finished(EventState::Processed), answer(Code::Ok, None)),
            Err(e) => internal(event, &e),
        }
    }
}

fn internal(event: &InboundEvent, e: &domain::DomainError) -> (Outcome, HookAnswer) {
    tracing::error!(error = ?e, inbound_event_id = %event.id, "applying an ETC status report");
    let failed = Outcome::to_finish(EventState::Failed, Some(failure_note(e)));
    (failed, answer(Code::Unknown, None))
}

fn setting(hook: &Opened, name: &str, default: i64) -> i64 {
    hook.integration.settings.get(name).and_then(Value::as_i64).unwrap_or(default)
}

#[async_trait]
impl InboundProtocol for EtcInbound {
    fn path(&self) -> &'static str {
        "etc/monitor.do"
    }

    fn protocol(&self) -> &'static str {
        IntegrationKind::EtcGantry.as_str()
    }

    fn serves(&self, kind: IntegrationKind) -> bool {
        super::serves(kind)
    }

    /// Gantries report in bursts: the integration is resolved from a recent lookup (a
    /// refusal is checked again under the stored credentials).
    fn cached(&self) -> bool {
        true
    }

    fn refused(&self, why: Refusal) -> HookAnswer {
        match why {
            Refusal::UnknownIntegration => HookAnswer::new(404, Code::NoPermission.answer(Some("unknown integration"))),
            Refusal::Disabled => HookAnswer::new(403, Code::NoPermission.answer(Some("integration disabled"))),
            Refusal::BadHookToken => HookAnswer::new(401, Code::NoPermission.answer(Some("hook token"))),
            Refusal::TooManyFailures => {
                HookAnswer::new(429, Code::TooFrequent.answer(Some("too many failed requests from this address")))
            }
            Refusal::Internal => answer(Code::Unknown, Some("try again")),
        }
    }

    async fn accept(&self, hook: &Opened, req: HookRequest) -> Result<Accepted, Rejected> {
        let code = hook.credentials.get("authCode").and_then(Value::as_str).unwrap_or_default();
        if !sign::auth_matches(req.header("binfile-auth"), code) {
            return Err(answer(Code::NoPermission, Some("binfile-auth")).unauthenticated());
        }
        if !sign::md5_matches(req.header("binfile-md5"), &req.body) {
            return Err(answer(Code::BadSignature, Some("binfile-md5 is not the MD5 of the body")).into());
        }
        let now = self.etc.now().timestamp();
        let skew = setting(hook, "maxClockSkewSeconds", 300);
        let report = wire::parse(&req.body, now, skew).map_err(|r| answer(r.code, Some(&r.detail)))?;
        let min = setting(hook, "minReportIntervalSeconds", 1);
        let digest = sign::md5_hex(&req.body);
        if min > 0 && !matches!(report.body, Body::Other) {
            let key = (hook.integration.id, report.series());
            let ts = report.head.time_stamp;
            match self.etc.series.get(&key) {
                // The same body again is a resend (recognised when stored), not a new report.
                Some((_, last_digest)) if last_digest == digest => {}
                Some((last, _)) if last.abs_diff(ts) < min.unsigned_abs() => {
                    return Err(answer(Code::TooFrequent, Some(&format!("at most one report per {min} s"))).into());
                }
                Some((last, _)) if last > ts => {}
                _ => self.etc.series.put(key, (ts, digest.clone())),
            }
        }
        let peer = req.peer.map(|p| p.ip().to_string());
        let lane = (!matches!(report.body, Body::Other)).then(|| report.head.gantry_id.clone());
        Ok(Accepted {
            kind: report.head.method.clone(),
            dedup_key: format!("{}:{digest}", report.head.gantry_id),
            headers: json!({"content-type": req.header("content-type"), "peer": peer}),
            body: String::from_utf8_lossy(&req.body).into_owned(),
            lane,
            answer_first: false,
            work: Box::new(Parsed { report, peer }),
        })
    }

    fn repeat(&self, stored: &InboundEvent) -> Option<HookAnswer> {
        (stored.state != EventState::Failed).then(|| answer(Code::Ok, None))
    }

    fn deferred(&self) -> HookAnswer {
        answer(Code::Ok, None)
    }

    async fn apply(&self, hook: &Opened, event: &InboundEvent, _duplicate: bool, work: Work) -> (Outcome, HookAnswer) {
        match work.downcast::<Parsed>() {
            Ok(p) => self.handle(hook, event, *p).await,
            Err(_) => (Outcome::to_finish(EventState::Failed, None), self.refused(Refusal::Internal)),
        }
    }

    fn reparse_supported(&self) -> bool {
        true
    }

    fn reparse(&self, event: &InboundEvent) -> Option<(Option<String>, Work)> {
        // Stored reports passed the clock check when they came.
        let report = wire::parse(event.body.as_bytes(), 0, i64::MAX).ok()?;
        let peer = event.headers.get("peer").and_then(Value::as_str).map(str::to_owned);
        let lane = (!matches!(report.body, Body::Other)).then(|| report.head.gantry_id.clone());
        Some((lane, Box::new(Parsed { report, peer })))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::wire;
    use proptest::prelude::*;

    /// A status report, mangled: bytes flipped, cut, keys and values replaced.
    fn seed_body() -> String {
        r#"{"gantryId":"G000211001002110010","method":"cabinetStatusUpdate","timeStamp":"1564734526","version":"1001",
        "cabinetStatus":{"id":"1","elec":[{"id":"1","status":"1","voltage":"220","warningMsg":""}],
        "doors":{"status":"1","frontDoorClosed":"0","frontDoorChangeTime":"2019-08-28 01:15:01.321"},
        " thunderSpd":[{"id":"1","status":"1"," lightningCount ":"1"}]}}"#
            .to_owned()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn mangled_reports_never_panic_and_always_have_a_code(
            cut in 0usize..600,
            flips in proptest::collection::vec((0usize..600, any::<u8>()), 0..8),
            junk in "\\PC{0,40}",
        ) {
            let mut bytes = seed_body().into_bytes();
            for (i, b) in flips {
                if let Some(x) = bytes.get_mut(i) {
                    *x = b;
                }
            }
            bytes.truncate(cut.max(1));
            bytes.extend_from_slice(junk.as_bytes());
            match wire::parse(&bytes, 1_564_734_526, 300) {
                Ok(r) => {
                    let _ = super::super::map::devices_of(&r);
                }
                Err(r) => prop_assert!(r.code.as_str().starts_with("100")),
            }
        }

        #[test]
        fn any_json_values_in_a_report_parse_or_answer_a_code(v in arb_json()) {
            let mut body: serde_json::Value = serde_json::from_str(&seed_body()).unwrap();
            body["cabinetStatus"]["elec"] = v.clone();
            body["cabinetStatus"]["doors"] = v.clone();
            body["computerStatus"] = v;
            let bytes = serde_json::to_vec(&body).unwrap();
            let parsed = wire::parse(&bytes, 1_564_734_526, 300);
            prop_assert!(parsed.is_ok() || parsed.as_ref().err().is_some_and(|r| r.code == wire::Code::BadParams));
        }
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "\\PC{0,12}".prop_map(serde_json::Value::from),
            Just(serde_json::Value::from("NoData")),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::hash_map("\\PC{0,8}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
