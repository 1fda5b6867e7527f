//! Seed 003 section 2.1 (and 5, "安全加密算法"): the headers of every call, both ways.
//! - `time`: `yyyyMMddHHmmss`, Asia/Shanghai time (UTC+8, no DST);
//! - `AccessToken`: uppercase hex MD5 of `appCode + appSecret + time`;
//! - `Authorization`: base64 of `appCode:time` (the same `time`).
//!
//! Inbound, the platform reads `time` back from `Authorization`, recomputes `AccessToken`,
//! and refuses a mismatch or a `time` more than [`MAX_SKEW_SECS`] away (`PROTOCOLS.md` 4b).
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use md5::{Digest, Md5};

/// How far an inbound `time` may be from ours.
pub const MAX_SKEW_SECS: i64 = 300;

/// Asia/Shanghai is UTC+8 all year.
pub(crate) fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| unreachable!("8 h is a valid offset"))
}

/// The seed's `yyyyMMddHHmmss` of `t`.
pub fn time(t: DateTime<Utc>) -> String {
    t.with_timezone(&shanghai()).format("%Y%m%d%H%M%S").to_string()
}

/// `AccessToken` for `app_code`, `app_secret` and `time`.
pub fn access_token(app_code: &str, app_secret: &str, time: &str) -> String {
    hex::encode_upper(Md5::digest(format!("{app_code}{app_secret}{time}").as_bytes()))
}

/// `Authorization` for `app_code` and `time`.
pub fn authorization(app_code: &str, time: &str) -> String {
    STANDARD.encode(format!("{app_code}:{time}"))
}

/// Why inbound headers are refused (all answered `echoCode` 0101).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    Missing(&'static str),
    Malformed,
    WrongApp,
    Stale,
    WrongToken,
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(h) => write!(f, "header {h} is missing"),
            Self::Malformed => f.write_str("Authorization is not base64 of appCode:yyyyMMddHHmmss"),
            Self::WrongApp => f.write_str("Authorization names another appCode"),
            Self::Stale => write!(f, "time is more than {MAX_SKEW_SECS} s away"),
            Self::WrongToken => f.write_str("AccessToken does not match"),
        }
    }
}

/// Checks inbound `AccessToken` and `Authorization` against our credentials at `now`.
///
/// # Errors
/// Which check failed.
pub fn verify(
    access: Option<&str>,
    auth: Option<&str>,
    app_code: &str,
    app_secret: &str,
    now: DateTime<Utc>,
) -> Result<(), HeaderError> {
    let auth = auth.ok_or(HeaderError::Missing("Authorization"))?;
    let access = access.ok_or(HeaderError::Missing("AccessToken"))?;
    let decoded = STANDARD.decode(auth.trim()).map_err(|_| HeaderError::Malformed)?;
    let decoded = String::from_utf8(decoded).map_err(|_| HeaderError::Malformed)?;
    let (code, time) = decoded.rsplit_once(':').ok_or(HeaderError::Malformed)?;
    let at = NaiveDateTime::parse_from_str(time, "%Y%m%d%H%M%S").map_err(|_| HeaderError::Malformed)?;
    let at = shanghai().from_local_datetime(&at).single().ok_or(HeaderError::Malformed)?;
    if code != app_code {
        return Err(HeaderError::WrongApp);
    }
    if (now - at.with_timezone(&Utc)).num_seconds().abs() > MAX_SKEW_SECS {
        return Err(HeaderError::Stale);
    }
    let want = access_token(app_code, app_secret, time);
    // Constant-time enough for a 32-character digest compared once per request.
    if !want.eq_ignore_ascii_case(access.trim()) {
        return Err(HeaderError::WrongToken);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_token_vector() {
        // PROTOCOLS.md, test vectors.
        assert_eq!(access_token("00000072", "s3cret", "20191127100056"), "ABD2629EFB5731A8E163A1CC6AC5300D");
    }

    #[test]
    fn authorization_vector() {
        // The seed's own example.
        assert_eq!(authorization("00000072", "20191127100056"), "MDAwMDAwNzI6MjAxOTExMjcxMDAwNTY=");
    }

    #[test]
    fn time_is_shanghai_time() {
        let t = Utc.with_ymd_and_hms(2019, 11, 27, 2, 0, 56).single().expect("t");
        assert_eq!(time(t), "20191127100056");
    }

    #[test]
    fn verify_accepts_ours_and_refuses_the_rest() {
        let now = Utc.with_ymd_and_hms(2019, 11, 27, 2, 0, 56).single().expect("t");
        let (tok, auth) =
            (access_token("00000072", "s3cret", "20191127100056"), authorization("00000072", "20191127100056"));
        assert_eq!(verify(Some(&tok), Some(&auth), "00000072", "s3cret", now), Ok(()));
        assert_eq!(verify(Some(&tok.to_lowercase()), Some(&auth), "00000072", "s3cret", now), Ok(()));
        assert_eq!(verify(Some(&tok), Some(&auth), "00000072", "other", now), Err(HeaderError::WrongToken));
        assert_eq!(verify(Some(&tok), Some(&auth), "00000073", "s3cret", now), Err(HeaderError::WrongApp));
        assert_eq!(verify(None, Some(&auth), "00000072", "s3cret", now), Err(HeaderError::Missing("AccessToken")));
        assert_eq!(verify(Some(&tok), Some("%%%"), "00000072", "s3cret", now), Err(HeaderError::Malformed));
        let later = now + chrono::Duration::seconds(301);
        assert_eq!(verify(Some(&tok), Some(&auth), "00000072", "s3cret", later), Err(HeaderError::Stale));
        let within = now - chrono::Duration::seconds(300);
        assert_eq!(verify(Some(&tok), Some(&auth), "00000072", "s3cret", within), Ok(()));
    }
}
