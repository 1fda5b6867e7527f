//! Seed 000 signing and its one time format (`PROTOCOLS.md` 1a, pinned):
//! - `timestamp`: `yyyyMMdd'T'HHmmss`, 15 characters, Asia/Shanghai time (UTC+8, no DST);
//! - token `sign` (3.2): uppercase hex MD5 of `appKey + appSecret + timestamp`;
//! - push `signature` (7.5 form, V2.2, for every action):
//!   uppercase hex MD5 of `&action={action}&timestamp={timestamp}&token={token}&`.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use chrono::{DateTime, FixedOffset, Utc};
use md5::{Digest, Md5};

/// Asia/Shanghai is UTC+8 all year.
fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| unreachable!("8 h is a valid offset"))
}

/// The seed's timestamp of `t`, e.g. `20211117T093000`.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.with_timezone(&shanghai()).format("%Y%m%dT%H%M%S").to_string()
}

fn md5_upper(s: &str) -> String {
    hex::encode_upper(Md5::digest(s.as_bytes()))
}

/// 3.2 token request `sign`.
pub fn token_sign(app_key: &str, app_secret: &str, timestamp: &str) -> String {
    md5_upper(&format!("{app_key}{app_secret}{timestamp}"))
}

/// `req_context.signature` of a push.
pub fn push_signature(action: &str, timestamp: &str, token: &str) -> String {
    md5_upper(&format!("&action={action}&timestamp={timestamp}&token={token}&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn token_sign_vector() {
        // PROTOCOLS.md, test vectors.
        assert_eq!(token_sign("demoKey", "demoSecret", "20211117T093000"), "DCF5E7942636B9299661AB1F8913F2D9");
    }

    #[test]
    fn push_signature_vector() {
        assert_eq!(push_signature("lift_alarm", "20211117T093000", "TOKEN123"), "39BA1447A89C488AFCAF10E83AAEF2C9");
    }

    #[test]
    fn timestamps_are_15_characters_of_shanghai_time() {
        let t = Utc.with_ymd_and_hms(2021, 11, 17, 1, 30, 0).single().expect("t");
        assert_eq!(timestamp(t), "20211117T093000");
        let t = Utc.with_ymd_and_hms(2021, 12, 31, 16, 0, 5).single().expect("t");
        assert_eq!(timestamp(t), "20220101T000005");
    }
}
