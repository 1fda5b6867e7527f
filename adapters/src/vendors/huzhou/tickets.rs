//! `MAINTENANCE` and `RESCUE` fields: seed 000 (湖州 elevator data center) 4.2 电梯维护推送
//! API (`lift_maintain`, the `DONE` record) and 7.8 困人故障推送 API (`put_ie_trap_fault`,
//! the `CLOSED` record). Field names and wire types (strings) are the seed's.

use domain::DomainResult;
use domain::tickets::Need::{Always, Fill, Optional, Since, SinceOr};
use domain::tickets::{Code, FieldRules, Spec, Ty, f, no_check, text_of};
use serde_json::{Map, Value};

/// Seed 000 times: 年月日T时分秒, 15 characters, e.g. `20190701T160308` (Asia/Shanghai).
const HUZHOU_TIME: Ty = Ty::Time("%Y%m%dT%H%M%S", "yyyyMMddTHHmmss");

/// Seed 000 4.2 `lift_type`.
const LIFT_TYPES: &[Code] = &[("1", "电梯(垂直升降) elevator"), ("2", "自动扶梯 escalator")];

/// Seed 000 4.2 `maintain_type` (the seed: only 1 needs uploading for now).
const MAINTAIN_TYPES: &[Code] = &[("1", "故障检修 fault repair"), ("2", "日常维护(保养) routine maintenance")];

/// Seed 000 4.2 `fault_type`, `fault_info`, `fault_cause`: "如无具体信息，则填写 正常".
const NO_INFO: &str = "正常";

static MAINTENANCE_FIELDS: &[Spec] = &[
    // `unique_id` is required unless `device_id` stands in for it (`maintenance_check`).
    f("unique_id", Optional, Ty::Text),
    f("device_id", Optional, Ty::Text),
    // For a fault repair: the alarm's `internal_id`; for routine maintenance: this record's.
    f("internal_id", Always, Ty::Text),
    f("lift_type", Always, Ty::Code(LIFT_TYPES)),
    f("maintain_type", Always, Ty::Code(MAINTAIN_TYPES)),
    f("contact_name", Always, Ty::Text),
    f("contact_phone", Always, Ty::Phone),
    f("use_company", Always, Ty::Text),
    f("use_city", Optional, Ty::Text),
    f("use_street", Optional, Ty::Text),
    f("report_no", Always, Ty::Text),
    f("report_time", Always, HUZHOU_TIME),
    f("deal_engineer", Since("IN_PROGRESS"), Ty::List),
    f("arrive_time", Since("IN_PROGRESS"), HUZHOU_TIME),
    // Minutes from the report to setting off.
    f("response_time", Since("IN_PROGRESS"), Ty::Count),
    f("fault_type", SinceOr("DONE", NO_INFO), Ty::Text),
    f("fault_info", SinceOr("DONE", NO_INFO), Ty::Text),
    f("fault_cause", SinceOr("DONE", NO_INFO), Ty::Text),
    f("deal_result", Since("DONE"), Ty::Text),
    // Minutes spent on the repair.
    f("deal_time", Since("DONE"), Ty::Count),
    f("finish_time", Since("DONE"), HUZHOU_TIME),
    f("passengers_info", Optional, Ty::Text),
];

/// The `MAINTENANCE` field table.
pub static MAINTENANCE: FieldRules = FieldRules {
    codes: &[],
    fields: MAINTENANCE_FIELDS,
    time_order: &["report_time", "arrive_time", "finish_time"],
    strict_order: false,
    check: maintenance_check,
};

/// Seed 000 4.2: `unique_id` (Y), or `device_id` in its place while the elevator has none.
fn maintenance_check(o: &Map<String, Value>) -> DomainResult<()> {
    if text_of(o, "unique_id").is_empty() && text_of(o, "device_id").is_empty() {
        return Err(domain::DomainError::invalid(
            "fields.unique_id",
            "required (or device_id while the elevator has none)",
        ));
    }
    Ok(())
}

/// Seed 000 7.8 `data_source`; an equipment vendor (this platform) sends 3.
const DATA_SOURCES: &[Code] = &[
    ("1", "智慧电梯 smart-elevator platform"),
    ("2", "96333 elevator emergency line"),
    ("3", "智能监控 smart monitoring"),
];

/// Seed 000 7.8 `is_examine` (是否纳入考核), default F.
const EXAMINE: &[Code] = &[("T", "纳入考核 counted in assessment"), ("F", "不纳入考核 not counted")];

/// Seed 000 7.8 `rescue_level` (救援级别), default 1; the seed gives no further meaning.
const RESCUE_LEVELS: &[Code] = &[("1", "一级 level 1"), ("2", "二级 level 2"), ("3", "三级 level 3")];

static RESCUE_FIELDS: &[Spec] = &[
    f("unique_id", Always, Ty::Text),
    // Unique: links the trapped-passenger fault record.
    f("serial_num", Always, Ty::Text),
    f("data_source", Fill("3"), Ty::Code(DATA_SOURCES)),
    f("is_examine", Fill("F"), Ty::Code(EXAMINE)),
    f("rescue_level", Fill("1"), Ty::Code(RESCUE_LEVELS)),
    f("fault_start_time", Always, HUZHOU_TIME),
    f("alarm_accept_time", Always, HUZHOU_TIME),
    f("primary_rescue_company", Since("DISPATCHED"), Ty::Text),
    f("secondary_rescue_company", Optional, Ty::Text),
    f("task_open_time", Since("DISPATCHED"), HUZHOU_TIME),
    f("task_accept_time", Since("ACKNOWLEDGED"), HUZHOU_TIME),
    f("arrive_time", Since("ARRIVED"), HUZHOU_TIME),
    f("rescue_time", Since("RESCUED"), HUZHOU_TIME),
    f("trap_people", Since("RESCUED"), Ty::Count),
    f("handle_result", Since("CLOSED"), Ty::Text),
    f("scene_describe", Since("CLOSED"), Ty::Text),
    f("fault_cause", Since("CLOSED"), Ty::Text),
    f("main_company_name", Since("CLOSED"), Ty::Text),
    f("use_company_name", Since("CLOSED"), Ty::Text),
    f("device_location", Since("CLOSED"), Ty::Text),
    f("area_num", Since("CLOSED"), Ty::Area),
];

/// The `RESCUE` field table.
pub static RESCUE: FieldRules = FieldRules {
    codes: &[],
    fields: RESCUE_FIELDS,
    time_order: &[
        "fault_start_time",
        "alarm_accept_time",
        "task_open_time",
        "task_accept_time",
        "arrive_time",
        "rescue_time",
    ],
    strict_order: false,
    check: no_check,
};
