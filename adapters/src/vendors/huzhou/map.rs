//! Delivery payloads (seed field names, domain values) to the seed's `req_info`: the
//! payload is read into the action's wire type (values become strings, the times the
//! platform generates become the 15-character form, see `wire::Text` and `wire::Time`),
//! which also checks that every required field is there.
// Parsers of tenant and vendor input (issue 17): no indexing that can panic.
#![cfg_attr(not(test), warn(clippy::indexing_slicing))]

use super::wire;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An action the platform pushes: its host (`api_lift` on `baseUrl`, `api_dc` on
/// `dcBaseUrl`) and the `version` the seed's example sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Action {
    pub name: &'static str,
    pub dc: bool,
    pub version: &'static str,
}

const ACTIONS: [Action; 6] = [
    Action { name: "lift_alarm", dc: false, version: "2.0" },
    Action { name: "lift_maintain", dc: false, version: "2.0" },
    Action { name: "lift_notify", dc: false, version: "2.0" },
    Action { name: "put_ie_elev_things", dc: true, version: "1.0" },
    Action { name: "put_ie_elev_paras", dc: true, version: "1.0" },
    Action { name: "put_ie_trap_fault", dc: true, version: "1.0" },
];

/// The action of a delivery kind (`huzhou.lift_alarm` -> `lift_alarm`).
pub(super) fn action(kind: &str) -> Option<Action> {
    let name = kind.strip_prefix("huzhou.")?;
    ACTIONS.into_iter().find(|a| a.name == name)
}

fn typed<'a, T: Deserialize<'a> + Serialize>(v: &'a Value) -> Result<String, String> {
    let t = T::deserialize(v).map_err(|e| format!("payload does not fit the seed's fields: {e}"))?;
    serde_json::to_string(&t).map_err(|e| e.to_string())
}

/// The `req_info` of an action from a delivery payload, as JSON text.
///
/// # Errors
/// When a required field is missing or of the wrong shape (the message is permanent).
pub(super) fn req_info(action: Action, payload: &Value) -> Result<String, String> {
    let v = payload;
    match action.name {
        "lift_alarm" => typed::<wire::LiftAlarm>(v),
        "lift_maintain" => typed::<wire::LiftMaintain>(v),
        "lift_notify" => typed::<wire::LiftNotify>(v),
        "put_ie_elev_things" => typed::<wire::ElevThings>(v),
        "put_ie_elev_paras" => typed::<wire::ElevParas>(v),
        _ => typed::<wire::TrapFault>(v),
    }
}

/// A `ret_code` as text (`"200"` or `200`).
pub(super) fn code_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_become_strings_and_times_the_seed_form() {
        let p = json!({"unique_id": "204150", "lift_type": 1, "use_type": "1", "is_current_count": "1", "use_count": 42,
                       "use_starttime": "2021-11-16T09:30:00+08:00", "use_endtime": "2021-11-17T01:30:00Z"});
        let a = action("huzhou.lift_notify").expect("action");
        let info: Value = serde_json::from_str(&req_info(a, &p).expect("fits")).expect("json");
        assert_eq!(info["use_count"], "42");
        assert_eq!(info["lift_type"], "1");
        assert_eq!(info["use_starttime"], "20211116T093000");
        assert_eq!(info["use_endtime"], "20211117T093000");
        assert!(info.get("device_id").is_none(), "optional and empty: left out");
    }

    #[test]
    fn a_missing_required_field_is_refused() {
        let a = action("huzhou.lift_alarm").expect("action");
        let e = req_info(a, &json!({"unique_id": "1"})).expect_err("incomplete");
        assert!(e.contains("missing field"), "{e}");
        assert!(action("huzhou.nope").is_none());
        assert!(action("huzhou.put_ie_trap_fault").is_some_and(|a| a.dc));
    }
}
