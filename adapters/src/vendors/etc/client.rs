//! Calls to a gantry's devices (seed 001 2.2, 3.2, 3.3; `PROTOCOLS.md` 2b):
//! `POST http://{device}:3699/remotecontrol.do` with the common fields, `binfile-md5` of
//! the body and `binfile-auth`. The device is the integration's `deviceHosts` entry for the
//! gantry, else the address the gantry last reported from, on port 3699.
//!
//! Control (`computerControl`, `cabinetControl`): code 1000 delivers (a cmd 10 answer's
//! `batterysTestResult` is kept as the delivery's result); 1003, 1005 and 1008 are tried
//! again; 1007 (the command failed) and the other refusals are final.
//!
//! `getCabinetImageVedio`: the answer is the file (its `binfile-md5` checked), kept as a
//! file of the cabinet; 1009 (none yet) is asked again up to [`MEDIA_TRIES`] times, then
//! recorded as `NO_FILE`.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use super::{DOOR_OPENING, sign, wire};
use crate::vendors::retryable_status;
use async_trait::async_trait;
use domain::deliveries::{Delivery, DeliveryRepo, DeliverySender, SendReport, Verdict};
use domain::devices::{DeviceFileState, DeviceFiles, FileContent};
use domain::ids::DeviceId;
use domain::integrations::IntegrationService;
use domain::{Clock, DomainError};
use serde_json::{Value, json};
use std::sync::Arc;

/// How many times a door-opening file is asked for before "no file" is recorded.
pub const MEDIA_TRIES: i32 = 4;

/// The largest file kept (bytes).
const MAX_FILE: usize = 32 * 1024 * 1024;

/// The largest control answer read (bytes).
const MAX_ANSWER: usize = 256 * 1024;

/// The port of every gantry device's control service.
const DEVICE_PORT: u16 = 3699;

/// Sends deliveries of kind `etc.*`.
#[derive(Clone)]
pub struct EtcSender {
    http: crate::vendors::Http,
    integrations: IntegrationService,
    results: Arc<dyn DeliveryRepo>,
    files: DeviceFiles,
    clock: Arc<dyn Clock>,
}

fn report(request: &str, status: Option<u16>, code: Option<&str>, msg: Option<&str>, v: Verdict) -> SendReport {
    SendReport {
        request: request.to_owned(),
        http_status: status.map(i32::from),
        vendor_code: code.map(str::to_owned),
        vendor_message: msg.map(str::to_owned),
        verdict: v,
    }
}

/// How a device's answer code is treated.
pub(crate) fn classify(code: &str, msg: &str) -> Verdict {
    let reason = format!("code {code}: {msg}");
    match wire::Code::parse(code) {
        Ok(wire::Code::Ok) => Verdict::Delivered,
        Ok(wire::Code::ClockSkew | wire::Code::TooFrequent | wire::Code::Unknown) => Verdict::Retry(reason),
        _ => Verdict::Permanent(reason),
    }
}

/// Reads at most `cap` bytes of a response body; `None` when it is longer or breaks off.
async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Option<Vec<u8>> {
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return None;
    }
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) if out.len() + c.len() <= cap => out.extend_from_slice(&c),
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) => return Some(out),
        }
    }
}

impl EtcSender {
    pub fn new(
        http: crate::vendors::Http,
        integrations: IntegrationService,
        results: Arc<dyn DeliveryRepo>,
        files: DeviceFiles,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { http, integrations, results, files, clock }
    }

    /// The device's `host:port`, the auth code, and how many tries a missing file gets
    /// (at most the integration's `retry.maxAttempts`).
    async fn endpoint(&self, d: &Delivery, gantry: &str) -> Result<(String, String, i32), Verdict> {
        let (integration, credentials) = match self.integrations.open_credentials(d.tenant_id, d.integration_id).await {
            Ok(found) => found,
            Err(DomainError::NotFound(_)) => return Err(Verdict::Permanent("the integration is gone".into())),
            Err(e) => return Err(Verdict::Retry(format!("loading the integration: {e}"))),
        };
        let Some(auth) = credentials.get("authCode").and_then(Value::as_str).filter(|s| !s.is_empty()) else {
            return Err(Verdict::Permanent("credentials.authCode is required".into()));
        };
        let configured = integration.settings.get("deviceHosts").and_then(|h| h.get(gantry)).and_then(Value::as_str);
        let reported = d.payload.get("address").and_then(Value::as_str).map(|ip| match ip.contains(':') {
            true => format!("[{ip}]:{DEVICE_PORT}"),
            false => format!("{ip}:{DEVICE_PORT}"),
        });
        let max_attempts = integration.settings.get("retry").and_then(|r| r.get("maxAttempts")).and_then(Value::as_i64);
        let tries = max_attempts.map_or(MEDIA_TRIES, |m| MEDIA_TRIES.min(i32::try_from(m).unwrap_or(MEDIA_TRIES)));
        match configured.map(str::to_owned).or(reported) {
            Some(host) => Ok((host, auth.to_owned(), tries)),
            None => Err(Verdict::Permanent(format!("no address for gantry {gantry}: set settings.deviceHosts"))),
        }
    }

    async fn control(&self, d: &Delivery, request: &str, resp: reqwest::Response) -> SendReport {
        let status = resp.status().as_u16();
        let body = read_capped(resp, MAX_ANSWER).await;
        let Some(a) = body.as_deref().and_then(wire::answer) else {
            let v = if retryable_status(status) || body.is_none() {
                Verdict::Retry(format!("HTTP {status}: no answer"))
            } else {
                Verdict::Permanent(format!("HTTP {status}: not an answer"))
            };
            return report(request, Some(status), None, None, v);
        };
        let mut result = json!({"code": a.code, "msg": a.msg});
        if let (Some(b), Some(m)) = (&a.battery, result.as_object_mut()) {
            m.insert("batterysTestResult".into(), b.clone());
        }
        if let Err(e) = self.results.set_result(d.tenant_id, d.integration_id, &d.idempotency_key, &result).await {
            return report(
                request,
                Some(status),
                Some(&a.code),
                Some(&a.msg),
                Verdict::Retry(format!("recording: {e}")),
            );
        }
        report(request, Some(status), Some(&a.code), Some(&a.msg), classify(&a.code, &a.msg))
    }

    /// Keeps what the cabinet answered for a door opening.
    async fn media(
        &self,
        d: &Delivery,
        gantry: &str,
        tries: i32,
        request: &str,
        resp: reqwest::Response,
    ) -> SendReport {
        let status = resp.status().as_u16();
        let header = |n: &str| resp.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (content_type, disposition, md5) =
            (header("content-type"), header("content-disposition"), header("binfile-md5"));
        let params = d.payload.get("params").cloned().unwrap_or_default();
        let at = params.get("doorOpenTime").and_then(Value::as_str).unwrap_or_default().to_owned();
        let device = d.payload.get("deviceId").and_then(Value::as_str).and_then(|s| s.parse::<DeviceId>().ok());
        let Some(device) = device else {
            return report(request, Some(status), None, None, Verdict::Permanent("no cabinet device".into()));
        };
        let Some(bytes) = read_capped(resp, MAX_FILE).await else {
            return report(
                request,
                Some(status),
                None,
                None,
                Verdict::Retry("the file broke off or is too large".into()),
            );
        };
        let is_json = content_type.as_deref().is_some_and(|c| c.contains("json"));
        let coded = if is_json || disposition.is_none() { wire::answer(&bytes) } else { None };
        let keep = |outcome| self.files.keep(d.tenant_id, device, DOOR_OPENING, &at, outcome);
        let last_try = d.attempts >= tries;
        if let Some(a) = coded {
            let (code, msg) = (Some(a.code.as_str()), Some(a.msg.as_str()));
            if a.code != wire::Code::NoMedia.as_str() {
                return report(request, Some(status), code, msg, classify(&a.code, &a.msg));
            }
            if !last_try {
                return report(request, Some(status), code, msg, Verdict::Retry("1009: no file yet".into()));
            }
            let why = format!("no file after {} tries", d.attempts);
            return match keep(Err((DeviceFileState::NoFile, why))).await {
                Ok(_) => report(request, Some(status), code, msg, Verdict::Delivered),
                Err(e) => report(request, Some(status), code, msg, Verdict::Retry(format!("recording: {e}"))),
            };
        }
        if !(200..300).contains(&status) {
            let v = if retryable_status(status) {
                Verdict::Retry(format!("HTTP {status}"))
            } else {
                Verdict::Permanent(format!("HTTP {status}"))
            };
            return report(request, Some(status), None, None, v);
        }
        if !sign::md5_matches(md5.as_deref(), &bytes) {
            if !last_try {
                return report(
                    request,
                    Some(status),
                    None,
                    None,
                    Verdict::Retry("the file's binfile-md5 does not match".into()),
                );
            }
            let why = "the file's binfile-md5 never matched".to_owned();
            return match keep(Err((DeviceFileState::Failed, why.clone()))).await {
                Ok(_) => report(request, Some(status), None, None, Verdict::Permanent(why)),
                Err(e) => report(request, Some(status), None, None, Verdict::Retry(format!("recording: {e}"))),
            };
        }
        let stamp: String = at.chars().filter(char::is_ascii_digit).collect();
        let content = FileContent {
            filename: disposition
                .as_deref()
                .and_then(wire::attachment_name)
                .unwrap_or_else(|| format!("{gantry}_{stamp}.bin")),
            content_type: content_type
                .filter(|c| !c.is_empty() && c.len() <= 100)
                .unwrap_or_else(|| "application/octet-stream".into()),
            md5: sign::md5_hex(&bytes),
            bytes,
        };
        match keep(Ok(content)).await {
            Ok(_) => report(request, Some(status), Some("1000"), None, Verdict::Delivered),
            Err(e) => report(request, Some(status), None, None, Verdict::Retry(format!("keeping the file: {e}"))),
        }
    }
}

#[async_trait]
impl DeliverySender for EtcSender {
    async fn send(&self, d: &Delivery, _fresh_token: bool) -> SendReport {
        let text = |k: &str| d.payload.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (gantry, method) = (text("gantryId"), text("method"));
        let params = d.payload.get("params").cloned().unwrap_or_else(|| json!({}));
        let body = wire::request(&gantry, &method, self.clock.now().timestamp(), &params);
        let request = String::from_utf8_lossy(&body).into_owned();
        let (host, auth, tries) = match self.endpoint(d, &gantry).await {
            Ok(e) => e,
            Err(v) => return report(&request, None, None, None, v),
        };
        let sent = self
            .http
            .send(
                self.http
                    .post(format!("http://{host}/remotecontrol.do"))
                    .header("content-type", "application/json")
                    .header("binfile-md5", sign::md5_hex(&body))
                    .header("binfile-auth", auth)
                    .body(body),
            )
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return report(&request, None, None, None, crate::vendors::send_failure(e)),
        };
        if method == "getCabinetImageVedio" {
            self.media(d, &gantry, tries, &request, resp).await
        } else {
            self.control(d, &request, resp).await
        }
    }
}
