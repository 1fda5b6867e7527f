//! Ticket rules per kind: the statuses, the moves between them, and the kind-specific
//! `fields` JSON. Pure functions, no I/O.
//!
//! - `WORK_PERMIT`: seed 004 (数字危化特殊作业接口文档), 二.2 上传作业票数据接口
//!   (`/data/workorder/workTicket`) and its Q&A 2-4; times pinned to `yyyy-MM-dd HH:mm`
//!   by PROTOCOLS.md §5 (the seed's table says `yyyy-mm-dd HH:ss`, its example has minutes).
//! - `MAINTENANCE`: seed 000 (Huzhou elevator data center) 4.2 电梯维护推送 API, `lift_maintain`.
//! - `RESCUE`: seed 000 7.8 困人故障推送 API, `put_ie_trap_fault`.
//! - `INSTALLATION`, `REPAIR`: seed 002 (Dingding open API v2.0.16) section 10 工单
//!   (`add_ticket`, `update_ticket`, `get_ticket_by_id`, `update_ticket_state`): the two
//!   `service_type`s, 1 预约安装 and 2 售后维修.
//!
//! `fields` keep the seed's field names and wire types (strings for seeds 000 and 004, `Int`
//! where seed 002 says so), so an adapter sends them as they are. Fields that mirror the
//! ticket status (`ticket_status`, `ticket_state`) or the kind (`service_type`) are set from
//! it (a kind mirror given with another value is refused). Keys this module does not know are
//! kept: the vendor documents evolve.

use crate::enums::string_enum;
use crate::{DomainError, DomainResult};
use chrono::{DateTime, NaiveDateTime};
use serde_json::{Map, Value};

string_enum!(
    /// What a ticket is; each kind has its own statuses and `fields`.
    TicketKind, "kind" {
        /// Hazardous-chemical special work permit (seed 004).
        WorkPermit = "WORK_PERMIT",
        /// Elevator maintenance or fault-repair record (seed 000 `lift_maintain`).
        Maintenance = "MAINTENANCE",
        /// Trapped-passenger rescue record (seed 000 `put_ie_trap_fault`).
        Rescue = "RESCUE",
        /// Dingding booked-installation work order (seed 002 section 10, `service_type` 1).
        Installation = "INSTALLATION",
        /// Dingding after-sales repair work order (seed 002 section 10, `service_type` 2).
        Repair = "REPAIR",
    }
);

string_enum!(
    /// `WORK_PERMIT` statuses (seed 004 `ticket_status`, codes in `WORK_PERMIT_STATUS_CODES`).
    WorkPermitStatus, "status" {
        Applied = "APPLIED",
        Issued = "ISSUED",
        Accepted = "ACCEPTED",
        Voided = "VOIDED",
        Revoked = "REVOKED",
    }
);

string_enum!(
    /// `MAINTENANCE` statuses (seed 000 4.2 sends the `DONE` record).
    MaintenanceStatus, "status" {
        Planned = "PLANNED",
        InProgress = "IN_PROGRESS",
        Done = "DONE",
        Cancelled = "CANCELLED",
    }
);

string_enum!(
    /// `RESCUE` statuses (seed 000 7.8 sends the `CLOSED` record).
    RescueStatus, "status" {
        Reported = "REPORTED",
        Dispatched = "DISPATCHED",
        Acknowledged = "ACKNOWLEDGED",
        Arrived = "ARRIVED",
        Rescued = "RESCUED",
        Closed = "CLOSED",
        Cancelled = "CANCELLED",
    }
);

string_enum!(
    /// `INSTALLATION` and `REPAIR` statuses (seed 002 `ticket_state`, codes in
    /// `WORK_ORDER_STATE_CODES`).
    WorkOrderStatus, "status" {
        Pending = "PENDING",
        Unassigned = "UNASSIGNED",
        Assigned = "ASSIGNED",
        Completed = "COMPLETED",
        Closed = "CLOSED",
    }
);

/// A ticket's status, typed by its kind's workflow. The meaning of each status and the
/// moves between them are in the kind's rules below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketStatus {
    WorkPermit(WorkPermitStatus),
    Maintenance(MaintenanceStatus),
    Rescue(RescueStatus),
    /// `INSTALLATION` and `REPAIR` share one workflow.
    WorkOrder(WorkOrderStatus),
}

impl TicketStatus {
    /// A status of a ticket of `kind`.
    ///
    /// # Errors
    /// `Invalid { field: "status" }` if `status` is not one of `statuses(kind)`.
    pub fn parse(kind: TicketKind, status: &str) -> DomainResult<Self> {
        let status = parse_status(kind, status)?;
        Ok(match kind {
            TicketKind::WorkPermit => Self::WorkPermit(WorkPermitStatus::parse(status)?),
            TicketKind::Maintenance => Self::Maintenance(MaintenanceStatus::parse(status)?),
            TicketKind::Rescue => Self::Rescue(RescueStatus::parse(status)?),
            TicketKind::Installation | TicketKind::Repair => Self::WorkOrder(WorkOrderStatus::parse(status)?),
        })
    }

    /// The status a new ticket of `kind` gets when the client gives none.
    pub fn initial(kind: TicketKind) -> Self {
        match kind {
            TicketKind::WorkPermit => Self::WorkPermit(WorkPermitStatus::Applied),
            TicketKind::Maintenance => Self::Maintenance(MaintenanceStatus::Planned),
            TicketKind::Rescue => Self::Rescue(RescueStatus::Reported),
            TicketKind::Installation | TicketKind::Repair => Self::WorkOrder(WorkOrderStatus::Pending),
        }
    }

    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::WorkPermit(s) => s.as_str(),
            Self::Maintenance(s) => s.as_str(),
            Self::Rescue(s) => s.as_str(),
            Self::WorkOrder(s) => s.as_str(),
        }
    }
}

/// `WORK_PERMIT` statuses and the seed 004 `ticket_status` code each one is sent as.
/// The seed has no code 2.
pub const WORK_PERMIT_STATUS_CODES: &[(&str, &str)] = &[
    ("APPLIED", "0"),  // 未签发: filled in, not signed off yet
    ("ISSUED", "1"),   // 已签发: signed off, the work may go on
    ("ACCEPTED", "3"), // 已验收: work finished and checked
    ("VOIDED", "4"),   // 作废: made void
    ("REVOKED", "5"),  // 撤销: withdrawn
];

/// `INSTALLATION` and `REPAIR` statuses and the seed 002 `ticket_state` number (`Int` on
/// the wire, here as text) each one maps to and from.
pub const WORK_ORDER_STATE_CODES: &[(&str, &str)] = &[
    ("PENDING", "1"),    // 待处理: submitted, waiting to be handled
    ("UNASSIGNED", "2"), // 待分配: waiting for an installer; the only state update_ticket may edit
    ("ASSIGNED", "3"),   // 已分配: an installer / operator has it
    ("COMPLETED", "4"),  // 已完成
    ("CLOSED", "5"),     // 已关闭
];

/// The statuses a ticket of this kind may have, the initial one first.
pub fn statuses(kind: TicketKind) -> &'static [&'static str] {
    rules(kind).statuses
}

/// The status a new ticket gets when the client gives none.
pub fn initial_status(kind: TicketKind) -> &'static str {
    rules(kind).statuses[0]
}

/// # Errors
/// `Invalid { field: "status" }` if `status` is not one of `statuses(kind)`.
pub fn parse_status(kind: TicketKind, status: &str) -> DomainResult<&'static str> {
    let all = statuses(kind);
    all.iter().copied().find(|s| *s == status).ok_or_else(|| {
        DomainError::invalid(
            "status",
            format!("unknown {} status {status:?}; one of {}", kind.as_str(), all.join(", ")),
        )
    })
}

/// Whether a ticket may move from `from` to `to` (same status = allowed no-op).
///
/// # Errors
/// `Invalid { field: "status" }` if `to` is unknown; `InvalidTransition("WORK_PERMIT: ACCEPTED
/// -> APPLIED")` if the move is not allowed (backwards, out of a final status, or skipping a
/// step the kind does not let skip).
pub fn check_transition(kind: TicketKind, from: &str, to: &str) -> DomainResult<()> {
    let to = parse_status(kind, to)?;
    let allowed = from == to || rules(kind).transitions.iter().any(|(f, targets)| *f == from && targets.contains(&to));
    if allowed { Ok(()) } else { Err(DomainError::InvalidTransition(format!("{}: {from} -> {to}", kind.as_str()))) }
}

/// Validates the kind-specific `fields` object for a ticket in `status` and returns it
/// normalised: strings trimmed, comma lists tidied, codes in the seed's wire type, seed
/// defaults and status / kind mirrors filled in, unknown keys kept.
///
/// # Errors
/// `Invalid { field: "status" }` for an unknown status; `Invalid { field: "fields" }` when
/// `fields` is not an object; otherwise `Invalid { field: "fields.<name>" }` naming the first
/// offending field: missing, wrong type, code outside the seed's list, bad time format, or a
/// cross-field rule (permit level per type, times out of order ...).
pub fn validate_fields(kind: TicketKind, status: &str, fields: &Value) -> DomainResult<Value> {
    let status = parse_status(kind, status)?;
    let r = rules(kind);
    let obj = fields.as_object().ok_or_else(|| DomainError::invalid("fields", "must be a JSON object"))?;
    let out = check_object(r, status, r.fields, "fields.", obj)?;
    check_time_order(r, &out)?;
    (r.check)(&out)?;
    Ok(Value::Object(out))
}

// ---------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------

/// The rules of one kind.
struct Rules {
    /// The initial status first.
    statuses: &'static [&'static str],
    /// The main line of the workflow, for `Need::Since`. Side exits (CANCELLED) are not in
    /// it: a cancelled ticket needs only the always-required fields.
    progress: &'static [&'static str],
    /// Allowed moves: from, to.
    transitions: &'static [(&'static str, &'static [&'static str])],
    /// Status -> vendor code, for `Need::Status`.
    codes: &'static [(&'static str, &'static str)],
    fields: &'static [Spec],
    /// Time fields that must come in this order when present.
    time_order: &'static [&'static str],
    /// Whether two consecutive times of `time_order` must differ (start strictly before end).
    strict_order: bool,
    /// Cross-field rules beyond the time order.
    check: fn(&Map<String, Value>) -> DomainResult<()>,
}

fn rules(kind: TicketKind) -> &'static Rules {
    match kind {
        TicketKind::WorkPermit => &WORK_PERMIT,
        TicketKind::Maintenance => &MAINTENANCE,
        TicketKind::Rescue => &RESCUE,
        TicketKind::Installation => &INSTALLATION,
        TicketKind::Repair => &REPAIR,
    }
}

/// When a field must be there.
#[derive(Clone, Copy)]
enum Need {
    Always,
    /// May be absent; an empty string is kept as is.
    Optional,
    /// Required once the ticket has reached this status of `Rules::progress`.
    Since(&'static str),
    /// Required from that status, and then filled with the seed's default when absent.
    SinceOr(&'static str, &'static str),
    /// Filled with the seed's default when absent or empty.
    Fill(&'static str),
    /// Mirrors the ticket status as its vendor code (`Rules::codes`): always set from the
    /// status. A given value must be a code of some status; it is then replaced, so fields
    /// stored under the previous status validate again after a move. The field's `Ty` only
    /// gives the wire type (string or `Int`).
    Status,
}

/// A field's type and format. Strings are trimmed; a required field may not be empty.
enum Ty {
    /// Free text.
    Text,
    /// One code of the list, a string on the wire (a JSON integer with that text is accepted).
    Code(&'static [Code]),
    /// One code of the list, an `Int` on the wire (a string of digits is accepted).
    IntCode(&'static [Code]),
    /// Codes of the list separated by English commas, e.g. `"02,08"`.
    Codes(&'static [Code]),
    /// Non-empty items separated by English commas (names, card numbers).
    List,
    /// A date-time string: chrono format and its human shape.
    Time(&'static str, &'static str),
    /// A whole number >= 0 as a string (minutes, people).
    Count,
    /// A decimal degree within +-bound, as a string (WGS84).
    Coord(f64),
    /// A mainland mobile number: 11 digits starting with 1.
    Mobile,
    /// A phone number: digits with optional `+`, `-`, spaces, parentheses.
    Phone,
    /// A unified social credit code (统一社会信用代码): 18 characters.
    CreditCode,
    /// A six-digit administrative area code.
    Area,
    /// A non-empty array of non-empty strings.
    Ids,
    /// A Unix timestamp in milliseconds, an `Int` on the wire.
    Millis,
    /// A visit slot code, or a Unix timestamp in milliseconds (seed 002 `subscribe.time`).
    SlotOrMillis(&'static [Code]),
    /// A nested object with its own fields.
    Object(&'static [Spec]),
}

/// One field of `fields`.
struct Spec {
    name: &'static str,
    need: Need,
    ty: Ty,
}

const fn f(name: &'static str, need: Need, ty: Ty) -> Spec {
    Spec { name, need, ty }
}

/// A seed's code and its meaning (the seed's words, then English).
type Code = (&'static str, &'static str);

use Need::{Always, Fill, Optional, Since, SinceOr, Status};

// --- WORK_PERMIT: seed 004 -------------------------------------------------------------

/// Seed 004 Q&A 3: `ticket_type`.
const TICKET_TYPES: &[Code] = &[
    ("01", "动火作业 hot work"),
    ("02", "进入受限空间作业 confined-space entry"),
    ("03", "盲板抽堵作业 blind-plate insertion and removal"),
    ("04", "高处作业 work at height"),
    ("05", "吊装作业 lifting"),
    ("06", "临时用电作业 temporary power"),
    ("07", "动土作业 excavation"),
    ("08", "断路作业 road closure"),
    ("09", "倒罐作业 tank transfer"),
    ("10", "清罐作业 tank cleaning"),
    ("11", "切水作业 water draining"),
    ("12", "检维修作业 maintenance and repair"),
];

/// Seed 004 field table: `ticket_level`; which ones a type takes is `LEVELS_BY_TYPE`.
const TICKET_LEVELS: &[Code] =
    &[("00", "特级 special"), ("01", "一级 first"), ("02", "二级 second"), ("03", "三级 third"), ("04", "其他 other")];

/// Seed 004 Q&A 3: the types that require a `ticket_level`, and the levels each allows.
/// Every other type takes none.
const LEVELS_BY_TYPE: &[(&str, &[&str])] = &[
    ("01", &["00", "01", "02"]),       // 特级 / 一级 / 二级动火作业
    ("04", &["01", "02", "03", "04"]), // 一级 / 二级 / 三级 / 特殊高处作业
    ("05", &["01", "02", "03"]),       // 一级 / 二级 / 三级吊装作业
];

/// Seed 004 Q&A 2: `harm_type` (危害识别类型).
const HARM_TYPES: &[Code] = &[
    ("01", "物体打击 struck by object"),
    ("02", "触电 electric shock"),
    ("03", "车辆伤害 vehicle injury"),
    ("04", "机械伤害 machinery injury"),
    ("05", "起重伤害 lifting injury"),
    ("06", "淹溺 drowning"),
    ("07", "灼烫 burns"),
    ("08", "火灾 fire"),
    ("09", "高处坠落 fall from height"),
    ("10", "坍塌 collapse"),
    ("11", "冒顶片帮 roof or side fall"),
    ("12", "透水 water inrush"),
    ("13", "放炮 blasting"),
    ("14", "火药爆炸 explosive blast"),
    ("15", "瓦斯爆炸 gas explosion"),
    ("16", "锅炉爆炸 boiler explosion"),
    ("17", "容器爆炸 vessel explosion"),
    ("18", "其他爆炸 other explosion"),
    ("19", "中毒和窒息 poisoning and asphyxiation"),
    ("20", "其他伤害 other injury"),
];

/// Seed 004 flags (`gas_analyse`, `safe_measure`, `is_contractor_task`, `is_changed`,
/// `is_cancelled`): note 0 is yes. `is_changed` / `is_cancelled` default to 1 (Q&A 4).
const YES_NO: &[Code] = &[("0", "是 yes"), ("1", "否 no")];

const PERMIT_TIME: Ty = Ty::Time("%Y-%m-%d %H:%M", "yyyy-MM-dd HH:mm");

static WORK_PERMIT_FIELDS: &[Spec] = &[
    f("ticket_type", Always, Ty::Code(TICKET_TYPES)),
    f("ticket_level", Optional, Ty::Code(TICKET_LEVELS)),
    f("start_time", Always, PERMIT_TIME),
    f("end_time", Always, PERMIT_TIME),
    f("ticket_position", Always, Ty::Text),
    f("ticket_content", Always, Ty::Text),
    f("harm_type", Optional, Ty::Codes(HARM_TYPES)),
    f("company_social_code", Always, Ty::CreditCode),
    f("gas_analyse", Always, Ty::Code(YES_NO)),
    f("safe_measure", Always, Ty::Code(YES_NO)),
    f("ticket_status", Status, Ty::Code(&[])),
    f("lng", Always, Ty::Coord(180.0)),
    f("lat", Always, Ty::Coord(90.0)),
    f("supervisor", Optional, Ty::List),
    f("supervisor_name", Always, Ty::List),
    f("worker", Optional, Ty::List),
    f("worker_name", Always, Ty::List),
    f("workDept", Optional, Ty::List),
    f("workDept_name", Always, Ty::List),
    f("video_code", Optional, Ty::List),
    f("is_contractor_task", Always, Ty::Code(YES_NO)),
    f("major_person", Always, Ty::Text),
    f("major_person_mobile", Always, Ty::Mobile),
    f("is_changed", Fill("1"), Ty::Code(YES_NO)),
    f("changed_reason", Optional, Ty::Text),
    f("is_cancelled", Fill("1"), Ty::Code(YES_NO)),
    f("cancelled_reason", Optional, Ty::Text),
    // The upload's `id` is the ticket's own id; kept when given.
    f("id", Optional, Ty::Text),
];

static WORK_PERMIT: Rules = Rules {
    statuses: &["APPLIED", "ISSUED", "ACCEPTED", "VOIDED", "REVOKED"],
    progress: &[],
    transitions: &[("APPLIED", &["ISSUED", "VOIDED", "REVOKED"]), ("ISSUED", &["ACCEPTED", "VOIDED", "REVOKED"])],
    codes: WORK_PERMIT_STATUS_CODES,
    fields: WORK_PERMIT_FIELDS,
    time_order: &["start_time", "end_time"],
    strict_order: true,
    check: permit_check,
};

/// Q&A 3: `ticket_level` per `ticket_type`; card-number lists as long as their name lists.
fn permit_check(o: &Map<String, Value>) -> DomainResult<()> {
    let ticket_type = text_of(o, "ticket_type");
    let level = text_of(o, "ticket_level");
    let meaning = TICKET_TYPES.iter().find(|(c, _)| *c == ticket_type).map_or("", |(_, m)| *m);
    match LEVELS_BY_TYPE.iter().find(|(t, _)| *t == ticket_type) {
        Some((_, levels)) if !levels.contains(&level) => {
            return Err(DomainError::invalid(
                "fields.ticket_level",
                format!("ticket_type {ticket_type} ({meaning}) requires one of {}", levels.join(", ")),
            ));
        }
        None if !level.is_empty() => {
            return Err(DomainError::invalid(
                "fields.ticket_level",
                format!("ticket_type {ticket_type} ({meaning}) takes no level; leave it empty"),
            ));
        }
        _ => {}
    }
    for (cards, names) in [("supervisor", "supervisor_name"), ("worker", "worker_name"), ("workDept", "workDept_name")]
    {
        let (c, n) = (text_of(o, cards), text_of(o, names));
        if !c.is_empty() && c.split(',').count() != n.split(',').count() {
            return Err(DomainError::invalid(
                format!("fields.{cards}"),
                format!("{} entries but {names} has {}", c.split(',').count(), n.split(',').count()),
            ));
        }
    }
    Ok(())
}

// --- MAINTENANCE and RESCUE: seed 000 ----------------------------------------------------

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

static MAINTENANCE: Rules = Rules {
    statuses: &[
        "PLANNED",     // registered: a repair reported (report_no, report_time) or a service booked
        "IN_PROGRESS", // the engineer is on site (arrive_time)
        "DONE",        // finished (finish_time, deal_result ...): the record lift_maintain sends
        "CANCELLED",   // dropped before it was done
    ],
    progress: &["PLANNED", "IN_PROGRESS", "DONE"],
    transitions: &[("PLANNED", &["IN_PROGRESS", "DONE", "CANCELLED"]), ("IN_PROGRESS", &["DONE", "CANCELLED"])],
    codes: &[],
    fields: MAINTENANCE_FIELDS,
    time_order: &["report_time", "arrive_time", "finish_time"],
    strict_order: false,
    check: maintenance_check,
};

/// Seed 000 4.2: `unique_id` (Y), or `device_id` in its place while the elevator has none.
fn maintenance_check(o: &Map<String, Value>) -> DomainResult<()> {
    if text_of(o, "unique_id").is_empty() && text_of(o, "device_id").is_empty() {
        return Err(DomainError::invalid("fields.unique_id", "required (or device_id while the elevator has none)"));
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

static RESCUE: Rules = Rules {
    statuses: &[
        "REPORTED",     // 接警: alarm taken (fault_start_time, alarm_accept_time)
        "DISPATCHED",   // 派单: task sent to a rescue unit (task_open_time)
        "ACKNOWLEDGED", // 接单: the rescue unit took the task (task_accept_time)
        "ARRIVED",      // 到达: on site (arrive_time)
        "RESCUED",      // 救出: people out (rescue_time, trap_people)
        "CLOSED",       // record complete (handle_result ...): what put_ie_trap_fault sends
        "CANCELLED",    // false alarm, or nobody left to free
    ],
    progress: &["REPORTED", "DISPATCHED", "ACKNOWLEDGED", "ARRIVED", "RESCUED", "CLOSED"],
    // Steps may be skipped forward (a late entry); the fields of skipped steps are then required.
    transitions: &[
        ("REPORTED", &["DISPATCHED", "ACKNOWLEDGED", "ARRIVED", "RESCUED", "CANCELLED"]),
        ("DISPATCHED", &["ACKNOWLEDGED", "ARRIVED", "RESCUED", "CANCELLED"]),
        ("ACKNOWLEDGED", &["ARRIVED", "RESCUED", "CANCELLED"]),
        ("ARRIVED", &["RESCUED", "CANCELLED"]),
        ("RESCUED", &["CLOSED"]),
    ],
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

// --- INSTALLATION and REPAIR: seed 002 section 10 ---------------------------------------

/// Seed 002 10.1 `service_target` (工单服务对象).
const SERVICE_TARGETS: &[Code] = &[("1", "网关 gateway"), ("2", "门锁 lock"), ("3", "电表 electricity meter")];

/// Seed 002 10.1 `subscribe.time`, unless a timestamp.
const VISIT_SLOTS: &[Code] =
    &[("100", "全天 all day"), ("101", "上午 morning"), ("102", "下午 afternoon"), ("103", "晚上 evening")];

/// Seed 002 10.1 `subscribe` (预约): `date` only counts by its day.
macro_rules! subscribe {
    ($date:expr) => {
        [
            f("date", $date, Ty::Millis),
            f("time", Always, Ty::SlotOrMillis(VISIT_SLOTS)),
            f("name", Always, Ty::Text),
            f("phone", Always, Ty::Mobile),
            f("note", Optional, Ty::Text),
        ]
    };
}
static INSTALL_SUBSCRIBE: &[Spec] = &subscribe!(Always);
/// "service_type 为 2 时, 不需要此字段": a repair has no booked date.
static REPAIR_SUBSCRIBE: &[Spec] = &subscribe!(Optional);

static INSTALLATION_FIELDS: &[Spec] = &[
    // Dingding's home id; the adapter fills it from the ticket's home when absent.
    f("home_id", Optional, Ty::Text),
    f("service_target", Always, Ty::IntCode(SERVICE_TARGETS)),
    f("service_type", Fill("1"), Ty::IntCode(&[("1", "预约安装 booked installation")])),
    f("room_ids", Always, Ty::Ids),
    f("subscribe", Always, Ty::Object(INSTALL_SUBSCRIBE)),
    f("ticket_description", Optional, Ty::Text),
    f("ticket_state", Status, Ty::IntCode(&[])),
];

static REPAIR_FIELDS: &[Spec] = &[
    f("home_id", Optional, Ty::Text),
    f("service_target", Always, Ty::IntCode(SERVICE_TARGETS)),
    f("service_type", Fill("2"), Ty::IntCode(&[("2", "售后维修 after-sales repair")])),
    f("room_ids", Always, Ty::Ids),
    f("subscribe", Always, Ty::Object(REPAIR_SUBSCRIBE)),
    // "service_type 为 2 时需要".
    f("ticket_description", Always, Ty::Text),
    f("ticket_state", Status, Ty::IntCode(&[])),
];

const WORK_ORDER_STATUSES: &[&str] = &["PENDING", "UNASSIGNED", "ASSIGNED", "COMPLETED", "CLOSED"];
/// Forward moves only (a synchronisation may see a step skipped); CLOSED from anywhere.
const WORK_ORDER_TRANSITIONS: &[(&str, &[&str])] = &[
    ("PENDING", &["UNASSIGNED", "ASSIGNED", "COMPLETED", "CLOSED"]),
    ("UNASSIGNED", &["ASSIGNED", "COMPLETED", "CLOSED"]),
    ("ASSIGNED", &["COMPLETED", "CLOSED"]),
    ("COMPLETED", &["CLOSED"]),
];

static INSTALLATION: Rules = Rules {
    statuses: WORK_ORDER_STATUSES,
    progress: &[],
    transitions: WORK_ORDER_TRANSITIONS,
    codes: WORK_ORDER_STATE_CODES,
    fields: INSTALLATION_FIELDS,
    time_order: &[],
    strict_order: false,
    check: no_check,
};

static REPAIR: Rules = Rules { fields: REPAIR_FIELDS, ..INSTALLATION };

fn no_check(_: &Map<String, Value>) -> DomainResult<()> {
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------------------

fn check_object(
    r: &Rules,
    status: &str,
    specs: &[Spec],
    prefix: &str,
    obj: &Map<String, Value>,
) -> DomainResult<Map<String, Value>> {
    let mut out = obj.clone();
    for spec in specs {
        let path = format!("{prefix}{}", spec.name);
        let raw = obj.get(spec.name);
        let given = raw.filter(|v| !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty()));
        let value = match (spec.need, given) {
            (Status, given) => Some(status_code(r, status, spec, given, &path)?),
            (_, Some(v)) => Some(normalise(r, status, &spec.ty, v, &path)?),
            (Fill(d) | SinceOr(_, d), None) if reached(r, spec.need, status) => {
                Some(normalise(r, status, &spec.ty, &Value::from(d), &path)?)
            }
            (need, None) if reached(r, need, status) => return Err(DomainError::invalid(path, "required")),
            // An optional blank string stays, trimmed.
            (_, None) => raw.filter(|v| v.is_string()).map(|_| Value::String(String::new())),
        };
        if let Some(v) = value {
            out.insert(spec.name.to_owned(), v);
        }
    }
    Ok(out)
}

/// Whether `need` makes the field required (or defaulted) in `status`.
fn reached(r: &Rules, need: Need, status: &str) -> bool {
    let rank = |s: &str| r.progress.iter().position(|p| *p == s);
    match need {
        Always | Fill(_) | Status => true,
        Optional => false,
        Since(from) | SinceOr(from, _) => matches!((rank(status), rank(from)), (Some(a), Some(b)) if a >= b),
    }
}

/// The vendor code mirroring `status`, in the field's wire type. A given value must be one
/// of the kind's codes (it may be the previous status's).
fn status_code(r: &Rules, status: &str, spec: &Spec, given: Option<&Value>, path: &str) -> DomainResult<Value> {
    let code = r
        .codes
        .iter()
        .find(|(s, _)| *s == status)
        .map(|(_, c)| *c)
        .ok_or_else(|| DomainError::invalid("status", format!("{status} has no vendor code")))?;
    if let Some(v) = given
        && !r.codes.iter().any(|(_, c)| scalar_text(v).as_deref() == Some(*c))
    {
        let codes: Vec<&str> = r.codes.iter().map(|(_, c)| *c).collect();
        return Err(DomainError::invalid(
            path,
            format!("unknown code; one of {} (set from the status)", codes.join(", ")),
        ));
    }
    Ok(match spec.ty {
        Ty::IntCode(_) => int_value(code, path)?,
        _ => Value::String(code.to_owned()),
    })
}

/// Checks one present, non-blank value and returns its normalised form.
fn normalise(r: &Rules, status: &str, ty: &Ty, v: &Value, path: &str) -> DomainResult<Value> {
    let bad = |message: String| DomainError::invalid(path, message);
    let string = || v.as_str().map(str::trim).ok_or_else(|| bad("must be a string".into()));
    let scalar = || scalar_text(v).ok_or_else(|| bad("must be a string or a whole number".into()));
    let in_list = |s: &str, list: &[Code]| {
        if list.iter().any(|(c, _)| *c == s) {
            Ok(())
        } else {
            let codes: Vec<&str> = list.iter().map(|(c, _)| *c).collect();
            Err(bad(format!("unknown code {s:?}; one of {}", codes.join(", "))))
        }
    };
    Ok(match ty {
        Ty::Text => Value::from(string()?),
        Ty::Code(list) => {
            let s = scalar()?;
            in_list(&s, list)?;
            Value::String(s)
        }
        Ty::IntCode(list) => {
            let s = scalar()?;
            in_list(&s, list)?;
            int_value(&s, path)?
        }
        Ty::Codes(list) => {
            let items = comma_list(string()?).map_err(bad)?;
            for item in &items {
                in_list(item, list)?;
            }
            Value::String(items.join(","))
        }
        Ty::List => Value::String(comma_list(string()?).map_err(bad)?.join(",")),
        Ty::Time(format, shape) => {
            let s = string()?;
            parse_time(s, format).ok_or_else(|| bad(format!("a time like {shape}")))?;
            Value::from(s)
        }
        Ty::Count => {
            let s = scalar()?;
            let n: u64 = s.parse().map_err(|_| bad("a whole number >= 0".into()))?;
            Value::String(n.to_string())
        }
        Ty::Coord(bound) => {
            let s = match v {
                Value::Number(n) => n.to_string(),
                _ => string()?.to_owned(),
            };
            match s.parse::<f64>() {
                Ok(x) if x.is_finite() && x.abs() <= *bound => Value::String(s),
                _ => return Err(bad(format!("a decimal degree between -{bound} and {bound}"))),
            }
        }
        Ty::Mobile => {
            let s = string()?;
            let ok = s.len() == 11 && s.starts_with('1') && s.bytes().all(|b| b.is_ascii_digit());
            if !ok {
                return Err(bad("an 11-digit mobile number".into()));
            }
            Value::from(s)
        }
        Ty::Phone => {
            let s = string()?;
            let digits = s.bytes().filter(u8::is_ascii_digit).count();
            let ok = (5..=20).contains(&digits) && s.chars().all(|c| c.is_ascii_digit() || "+-() ".contains(c));
            if !ok {
                return Err(bad("a phone number".into()));
            }
            Value::from(s)
        }
        Ty::CreditCode => {
            // GB 32100-2015: 18 characters of 0-9 and A-Z without I, O, S, V, Z.
            let s = string()?.to_ascii_uppercase();
            let ok = s.len() == 18 && s.bytes().all(|b| b"0123456789ABCDEFGHJKLMNPQRTUWXY".contains(&b));
            if !ok {
                return Err(bad("an 18-character unified social credit code".into()));
            }
            Value::String(s)
        }
        Ty::Area => {
            let s = scalar()?;
            if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("a six-digit area code".into()));
            }
            Value::String(s)
        }
        Ty::Ids => {
            let items = v.as_array().ok_or_else(|| bad("must be an array of ids".into()))?;
            let ids = items
                .iter()
                .map(|i| i.as_str().map(str::trim).filter(|s| !s.is_empty()).map(Value::from))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("ids must be non-empty strings".into()))?;
            if ids.is_empty() {
                return Err(bad("at least one id".into()));
            }
            Value::Array(ids)
        }
        Ty::Millis => millis(&scalar()?).ok_or_else(|| bad("a Unix timestamp in milliseconds".into()))?,
        Ty::SlotOrMillis(slots) => {
            let s = scalar()?;
            if slots.iter().any(|(c, _)| *c == s) {
                Value::String(s)
            } else {
                let codes: Vec<&str> = slots.iter().map(|(c, _)| *c).collect();
                millis(&s)
                    .ok_or_else(|| bad(format!("one of {} or a Unix timestamp in milliseconds", codes.join(", "))))?
            }
        }
        Ty::Object(specs) => {
            let obj = v.as_object().ok_or_else(|| bad("must be an object".into()))?;
            Value::Object(check_object(r, status, specs, &format!("{path}."), obj)?)
        }
    })
}

/// Fields of `time_order` that are present must not go backwards (nor repeat, if strict).
fn check_time_order(r: &Rules, o: &Map<String, Value>) -> DomainResult<()> {
    let mut last: Option<(&str, NaiveDateTime)> = None;
    for name in r.time_order {
        let format = r.fields.iter().find_map(|s| match s.ty {
            Ty::Time(format, _) if s.name == *name => Some(format),
            _ => None,
        });
        let Some(t) = format.and_then(|format| parse_time(text_of(o, name), format)) else { continue };
        if let Some((prev, p)) = last
            && (t < p || (r.strict_order && t == p))
        {
            let relation = if r.strict_order { "after" } else { "no earlier than" };
            return Err(DomainError::invalid(format!("fields.{name}"), format!("must be {relation} {prev}")));
        }
        last = Some((name, t));
    }
    Ok(())
}

/// Strict: the text must be exactly the format's rendering (no missing zero padding).
fn parse_time(s: &str, format: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, format).ok().filter(|t| t.format(format).to_string() == s)
}

/// A Unix timestamp in milliseconds: 13 digits (2001 to 2286), so that seconds or a slot
/// code are not taken for one.
fn millis(s: &str) -> Option<Value> {
    let n: i64 = s.parse().ok()?;
    ((1_000_000_000_000..10_000_000_000_000).contains(&n) && DateTime::from_timestamp_millis(n).is_some())
        .then(|| Value::from(n))
}

fn int_value(s: &str, path: &str) -> DomainResult<Value> {
    s.parse::<i64>().map(Value::from).map_err(|_| DomainError::invalid(path, "must be a whole number"))
}

/// A string (trimmed) or a whole JSON number, as text.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// Splits on English commas, trimming each item; refuses empty items.
fn comma_list(s: &str) -> Result<Vec<&str>, String> {
    let items: Vec<&str> = s.split(',').map(str::trim).collect();
    if items.iter().any(|i| i.is_empty()) {
        return Err("an empty item in the comma-separated list".into());
    }
    Ok(items)
}

/// A normalised string field, or "" when absent.
fn text_of<'a>(o: &'a Map<String, Value>, name: &str) -> &'a str {
    o.get(name).and_then(Value::as_str).unwrap_or("")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The field an `Invalid` error names (panics on any other error or on success).
    fn invalid_field(r: DomainResult<Value>) -> String {
        match r {
            Err(DomainError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn without(v: &Value, key: &str) -> Value {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove(key);
        v
    }

    fn with(v: &Value, key: &str, value: Value) -> Value {
        let mut v = v.clone();
        v.as_object_mut().unwrap().insert(key.to_owned(), value);
        v
    }

    /// Seed 004's own upload example (`data[0]`), verbatim.
    fn permit_seed_example() -> Value {
        json!({
            "company_social_code": "91370200163569824H",
            "end_time": "2021-12-20 21:40",
            "gas_analyse": "0",
            "harm_type": "02",
            "id": "12833a0c-54b3-48c2-86f7-96d0f195cc7e",
            "lat": "36.04385097144345",
            "lng": "120.17930673061386",
            "safe_measure": "0",
            "start_time": "2021-12-20 13:56",
            "supervisor": "198441,245872",
            "supervisor_name": "冯三,贾新",
            "ticket_content": "硫胺酯 PP管焊接",
            "ticket_level": "03",
            "ticket_position": "硫氨酯装置",
            "ticket_status": "1",
            "ticket_type": "01",
            "worker": "22,33",
            "worker_name": "张三,李四",
            "workDept": "12343214",
            "workDept_name": "**建设工程",
            "video_code": "d3431e73cce84f4f9fb7ccc9d1b258f3,ef0b546eefa14b24bdbbac799dca21ec",
            "is_contractor_task": "0",
            "major_person": "王晓",
            "major_person_mobile": "19844112314",
            "is_changed": "0",
            "changed_reason": "",
            "is_cancelled": "0",
            "cancelled_reason": ""
        })
    }

    /// The seed example with the one change its own Q&A 3 requires: hot work (01) has no
    /// level 03, so level 02.
    fn permit() -> Value {
        with(&permit_seed_example(), "ticket_level", json!("02"))
    }

    /// Seed 000 4.2's `req_info` example with what its own table requires: `report_time`
    /// moved to the day of the repair (the example reports a year after finishing) and a
    /// `deal_result` (Y, empty in the example).
    fn maintenance() -> Value {
        json!({
            "unique_id": "204150",
            "device_id": "31103305032017010031",
            "internal_id": "18181",
            "lift_type": "1",
            "maintain_type": "1",
            "fault_type": "静止 - 平层 - 门关闭",
            "fault_info": "",
            "fault_cause": "",
            "deal_result": "更换门锁开关，试运行正常",
            "deal_time": "10",
            "deal_engineer": "张大力",
            "contact_name": "张三",
            "contact_phone": "13811111111",
            "use_company": "深圳熊谷物业管理有限公司南浔分公司",
            "use_city": "南浔区",
            "use_street": "经济开发区",
            "report_no": "ACH0844",
            "report_time": "20181025T062700",
            "arrive_time": "20181025T064200",
            "finish_time": "20181025T073000",
            "response_time": "15",
            "passengers_info": "业主 2 名"
        })
    }

    /// Seed 000 7.8's keys (its example has placeholders for values) with real values.
    fn rescue() -> Value {
        json!({
            "unique_id": "123456",
            "data_source": "3",
            "serial_num": "TF20210317001",
            "main_company_name": "湖州某电梯维保有限公司",
            "use_company_name": "湖州某物业服务有限公司",
            "is_examine": "T",
            "primary_rescue_company": "湖州某电梯维保有限公司",
            "secondary_rescue_company": "",
            "device_location": "3 幢 1 单元",
            "fault_start_time": "20210317T122535",
            "handle_result": "盘车放人，乘客安全撤离",
            "trap_people": "2",
            "scene_describe": "轿厢停在 5-6 层之间",
            "fault_cause": "门锁回路断开",
            "area_num": "330502",
            "alarm_accept_time": "20210317T122600",
            "task_open_time": "20210317T122700",
            "task_accept_time": "20210317T122800",
            "arrive_time": "20210317T124000",
            "rescue_time": "20210317T125000",
            "rescue_level": 1
        })
    }

    /// Seed 002 10.4's `ticket_info` example (a repair in state 2), with the `room_ids` and
    /// `subscribe` that add_ticket requires (the subscribe taken from its `confirm`).
    fn repair() -> Value {
        json!({
            "ticket_id": "20160511_81299",
            "ticket_state": 2,
            "service_type": 2,
            "service_target": 1,
            "relate_home": {
                "home_id": "569082990da556a9755299bb", "home_alias": "569082990da556a9755299bb",
                "home_name": "20160109", "user_id": "18515222534", "province": "珠海市", "city": "珠海市",
                "block": "test", "location": "dasdas", "region": 99,
                "rooms": [{"room_id": "569082990da556a9755299bb", "room_name": "default"}]
            },
            "ticket_description": "维修",
            "operator_1": {"op_id": "18518677998", "op_name": "xiaocun", "op_phone": "18518677998"},
            "operator_2": {"op_id": "18700154887", "op_name": "installer", "op_phone": "18700154887"},
            "confirm": {"name": "测试", "phone": "18588787458", "date": 1464998400000_i64, "time": "102", "note": "测试测试"},
            "room_ids": ["569082990da556a9755299bb"],
            "subscribe": {"name": "测试", "phone": "18588787458", "time": "102", "note": "测试测试"}
        })
    }

    fn installation() -> Value {
        json!({
            "home_id": "569082990da556a9755299bb",
            "service_target": 2,
            "room_ids": ["55e155ba8eb018a374466d34", "55e155ba8eb018a374466d35"],
            "subscribe": {"date": 1464998400000_i64, "time": "101", "name": "测试", "phone": "18588787458"}
        })
    }

    /// A valid example per kind, with the status it is valid in.
    fn examples() -> Vec<(TicketKind, &'static str, Value)> {
        vec![
            (TicketKind::WorkPermit, "ISSUED", permit()),
            (TicketKind::Maintenance, "DONE", maintenance()),
            (TicketKind::Rescue, "CLOSED", rescue()),
            (TicketKind::Installation, "PENDING", installation()),
            (TicketKind::Repair, "UNASSIGNED", repair()),
        ]
    }

    #[test]
    fn a_valid_example_per_kind_passes_and_normalising_is_idempotent() {
        for (kind, status, fields) in examples() {
            let once = validate_fields(kind, status, &fields).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            let twice = validate_fields(kind, status, &once).unwrap_or_else(|e| panic!("{kind:?} again: {e}"));
            assert_eq!(once, twice, "{kind:?}");
        }
    }

    #[test]
    fn the_seed_permit_example_breaks_its_own_level_rule() {
        let r = validate_fields(TicketKind::WorkPermit, "ISSUED", &permit_seed_example());
        assert_eq!(invalid_field(r), "fields.ticket_level");
    }

    #[test]
    fn normalisation_fills_mirrors_and_defaults_trims_and_keeps_unknown_keys() {
        let mut p = without(&without(&without(&permit(), "ticket_status"), "is_changed"), "is_cancelled");
        p = with(&p, "ticket_content", json!("  焊接  "));
        p = with(&p, "worker_name", json!(" 张三 , 李四 "));
        p = with(&p, "lng", json!(120.5));
        p = with(&p, "vendor_extra", json!({"a": 1}));
        let out = validate_fields(TicketKind::WorkPermit, "APPLIED", &p).unwrap();
        assert_eq!(out["ticket_status"], "0");
        assert_eq!(out["is_changed"], "1");
        assert_eq!(out["is_cancelled"], "1");
        assert_eq!(out["ticket_content"], "焊接");
        assert_eq!(out["worker_name"], "张三,李四");
        assert_eq!(out["lng"], "120.5");
        assert_eq!(out["vendor_extra"], json!({"a": 1}));
        assert_eq!(out["changed_reason"], "");

        let r = validate_fields(TicketKind::Rescue, "CLOSED", &without(&rescue(), "is_examine")).unwrap();
        assert_eq!((r["is_examine"].clone(), r["rescue_level"].clone()), (json!("F"), json!("1")));
        let m = validate_fields(TicketKind::Maintenance, "DONE", &maintenance()).unwrap();
        assert_eq!((m["fault_info"].clone(), m["fault_cause"].clone()), (json!("正常"), json!("正常")));

        let d = with(&with(&repair(), "service_target", json!("3")), "ticket_state", json!("2"));
        let d = validate_fields(TicketKind::Repair, "UNASSIGNED", &d).unwrap();
        assert_eq!((d["service_target"].clone(), d["ticket_state"].clone()), (json!(3), json!(2)));
        let i = validate_fields(TicketKind::Installation, "ASSIGNED", &installation()).unwrap();
        assert_eq!((i["service_type"].clone(), i["ticket_state"].clone()), (json!(1), json!(3)));
    }

    #[test]
    fn each_kind_refuses_a_missing_required_field_by_name() {
        let cases: &[(TicketKind, &str, Value, &str)] = &[
            (TicketKind::WorkPermit, "ISSUED", permit(), "ticket_type"),
            (TicketKind::WorkPermit, "ISSUED", permit(), "start_time"),
            (TicketKind::WorkPermit, "ISSUED", permit(), "company_social_code"),
            (TicketKind::WorkPermit, "ISSUED", permit(), "worker_name"),
            (TicketKind::WorkPermit, "ISSUED", permit(), "major_person_mobile"),
            (TicketKind::Maintenance, "PLANNED", maintenance(), "report_no"),
            (TicketKind::Maintenance, "IN_PROGRESS", maintenance(), "arrive_time"),
            (TicketKind::Maintenance, "DONE", maintenance(), "finish_time"),
            (TicketKind::Maintenance, "DONE", maintenance(), "deal_result"),
            (TicketKind::Rescue, "REPORTED", rescue(), "serial_num"),
            (TicketKind::Rescue, "DISPATCHED", rescue(), "task_open_time"),
            (TicketKind::Rescue, "RESCUED", rescue(), "rescue_time"),
            (TicketKind::Rescue, "CLOSED", rescue(), "handle_result"),
            (TicketKind::Installation, "PENDING", installation(), "room_ids"),
            (TicketKind::Installation, "PENDING", installation(), "subscribe"),
            (TicketKind::Repair, "UNASSIGNED", repair(), "ticket_description"),
            (TicketKind::Repair, "UNASSIGNED", repair(), "service_target"),
        ];
        for (kind, status, fields, name) in cases {
            let r = validate_fields(*kind, status, &without(fields, name));
            assert_eq!(invalid_field(r), format!("fields.{name}"), "{kind:?} {status} without {name}");
            // A blank string is as missing as an absent key.
            let r = validate_fields(*kind, status, &with(fields, name, json!("  ")));
            assert_eq!(invalid_field(r), format!("fields.{name}"), "{kind:?} {status} blank {name}");
        }
        // Nested: an installation's booked date; a repair needs none.
        let mut no_date = installation();
        no_date["subscribe"].as_object_mut().unwrap().remove("date");
        let r = validate_fields(TicketKind::Installation, "PENDING", &no_date);
        assert_eq!(invalid_field(r), "fields.subscribe.date");
        assert!(validate_fields(TicketKind::Repair, "UNASSIGNED", &repair()).is_ok());
        // Maintenance: unique_id, or device_id in its place.
        let m = without(&maintenance(), "unique_id");
        assert!(validate_fields(TicketKind::Maintenance, "DONE", &m).is_ok());
        let r = validate_fields(TicketKind::Maintenance, "DONE", &without(&m, "device_id"));
        assert_eq!(invalid_field(r), "fields.unique_id");
    }

    #[test]
    fn later_steps_fields_are_not_required_early_nor_on_cancel() {
        let planned = json!({"unique_id": "204150", "internal_id": "18181", "lift_type": "1", "maintain_type": "2",
            "contact_name": "张三", "contact_phone": "0572-1234567", "use_company": "某物业", "report_no": "ACH0845",
            "report_time": "20181025T062700"});
        for status in ["PLANNED", "CANCELLED"] {
            let out = validate_fields(TicketKind::Maintenance, status, &planned).unwrap();
            assert!(out.get("fault_info").is_none(), "no default before DONE");
        }
        let r = validate_fields(TicketKind::Maintenance, "IN_PROGRESS", &planned);
        assert_eq!(invalid_field(r), "fields.deal_engineer");

        let reported = json!({"unique_id": "123456", "serial_num": "TF1", "fault_start_time": "20210317T122535",
            "alarm_accept_time": "20210317T122600"});
        for status in ["REPORTED", "CANCELLED"] {
            assert!(validate_fields(TicketKind::Rescue, status, &reported).is_ok(), "{status}");
        }
        let r = validate_fields(TicketKind::Rescue, "ACKNOWLEDGED", &reported);
        assert_eq!(invalid_field(r), "fields.primary_rescue_company");
    }

    #[test]
    fn work_permit_level_follows_the_ticket_type() {
        let cases: &[(&str, Option<&str>, bool)] = &[
            ("01", Some("00"), true),
            ("01", Some("01"), true),
            ("01", Some("02"), true),
            ("01", Some("03"), false),
            ("01", Some("04"), false),
            ("01", None, false),
            ("01", Some(""), false),
            ("04", Some("01"), true),
            ("04", Some("04"), true),
            ("04", Some("00"), false),
            ("04", None, false),
            ("05", Some("01"), true),
            ("05", Some("03"), true),
            ("05", Some("00"), false),
            ("05", Some("04"), false),
            ("02", None, true),
            ("02", Some(""), true),
            ("02", Some("01"), false),
            ("12", None, true),
            ("12", Some("04"), false),
            ("01", Some("05"), false),
        ];
        for (ticket_type, level, ok) in cases {
            let mut p = with(&without(&permit(), "ticket_level"), "ticket_type", json!(ticket_type));
            if let Some(level) = level {
                p = with(&p, "ticket_level", json!(level));
            }
            let r = validate_fields(TicketKind::WorkPermit, "ISSUED", &p);
            if *ok {
                assert!(r.is_ok(), "type {ticket_type} level {level:?}: {r:?}");
            } else {
                assert_eq!(invalid_field(r), "fields.ticket_level", "type {ticket_type} level {level:?}");
            }
        }
    }

    #[test]
    fn codes_outside_the_seed_lists_are_refused() {
        let cases: &[(TicketKind, &str, Value, &str, Value)] = &[
            (TicketKind::WorkPermit, "ISSUED", permit(), "ticket_type", json!("13")),
            (TicketKind::WorkPermit, "ISSUED", permit(), "ticket_type", json!(1)),
            (TicketKind::WorkPermit, "ISSUED", permit(), "harm_type", json!("21")),
            (TicketKind::WorkPermit, "ISSUED", permit(), "harm_type", json!("02,99")),
            (TicketKind::WorkPermit, "ISSUED", permit(), "harm_type", json!("02,,08")),
            (TicketKind::WorkPermit, "ISSUED", permit(), "gas_analyse", json!("2")),
            (TicketKind::WorkPermit, "ISSUED", permit(), "is_cancelled", json!("Y")),
            (TicketKind::WorkPermit, "ISSUED", permit(), "ticket_status", json!("2")),
            (TicketKind::WorkPermit, "ISSUED", permit(), "major_person_mobile", json!("1984411231")),
            (TicketKind::WorkPermit, "ISSUED", permit(), "company_social_code", json!("91370200163569824")),
            (TicketKind::WorkPermit, "ISSUED", permit(), "lat", json!("91.2")),
            (TicketKind::WorkPermit, "ISSUED", permit(), "ticket_content", json!(42)),
            (TicketKind::Maintenance, "DONE", maintenance(), "lift_type", json!("3")),
            (TicketKind::Maintenance, "DONE", maintenance(), "maintain_type", json!("0")),
            (TicketKind::Maintenance, "DONE", maintenance(), "deal_time", json!("-5")),
            (TicketKind::Rescue, "CLOSED", rescue(), "data_source", json!("4")),
            (TicketKind::Rescue, "CLOSED", rescue(), "is_examine", json!("Y")),
            (TicketKind::Rescue, "CLOSED", rescue(), "rescue_level", json!(4)),
            (TicketKind::Rescue, "CLOSED", rescue(), "area_num", json!("33050")),
            (TicketKind::Installation, "PENDING", installation(), "service_target", json!(4)),
            (TicketKind::Installation, "PENDING", installation(), "service_type", json!(2)),
            (TicketKind::Repair, "UNASSIGNED", repair(), "service_type", json!(1)),
            (TicketKind::Repair, "UNASSIGNED", repair(), "ticket_state", json!(6)),
            (TicketKind::Repair, "UNASSIGNED", repair(), "room_ids", json!([])),
            (TicketKind::Repair, "UNASSIGNED", repair(), "room_ids", json!("569082990da556a9755299bb")),
        ];
        for (kind, status, fields, name, value) in cases {
            let r = validate_fields(*kind, status, &with(fields, name, value.clone()));
            assert_eq!(invalid_field(r), format!("fields.{name}"), "{kind:?} {name} = {value}");
        }
        let mut bad_slot = installation();
        bad_slot["subscribe"]["time"] = json!("104");
        let r = validate_fields(TicketKind::Installation, "PENDING", &bad_slot);
        assert_eq!(invalid_field(r), "fields.subscribe.time");
        bad_slot["subscribe"]["time"] = json!(1464998400_i64); // seconds, not milliseconds
        let r = validate_fields(TicketKind::Installation, "PENDING", &bad_slot);
        assert_eq!(invalid_field(r), "fields.subscribe.time");
        bad_slot["subscribe"]["time"] = json!(1464998400000_i64);
        assert!(validate_fields(TicketKind::Installation, "PENDING", &bad_slot).is_ok());
    }

    #[test]
    fn status_mirrors_follow_the_status_when_stored_fields_are_validated_again() {
        let applied = validate_fields(TicketKind::WorkPermit, "APPLIED", &permit()).unwrap();
        assert_eq!(applied["ticket_status"], "0");
        let issued = validate_fields(TicketKind::WorkPermit, "ISSUED", &applied).unwrap();
        assert_eq!(issued["ticket_status"], "1");
        let pending = validate_fields(TicketKind::Repair, "PENDING", &repair()).unwrap();
        assert_eq!(pending["ticket_state"], 1);
        let closed = validate_fields(TicketKind::Repair, "CLOSED", &pending).unwrap();
        assert_eq!(closed["ticket_state"], 5);
    }

    #[test]
    fn multiple_harm_types_are_accepted() {
        let out = validate_fields(TicketKind::WorkPermit, "ISSUED", &with(&permit(), "harm_type", json!("02, 08,19")));
        assert_eq!(out.unwrap()["harm_type"], "02,08,19");
    }

    #[test]
    fn bad_times_are_refused() {
        let cases: &[(TicketKind, &str, Value, &str, &str)] = &[
            (TicketKind::WorkPermit, "ISSUED", permit(), "start_time", "2021-12-20 13:56:00"),
            (TicketKind::WorkPermit, "ISSUED", permit(), "start_time", "2021/12/20 13:56"),
            (TicketKind::WorkPermit, "ISSUED", permit(), "start_time", "2021-12-20 1:56"),
            (TicketKind::WorkPermit, "ISSUED", permit(), "end_time", "2021-02-30 21:40"),
            (TicketKind::WorkPermit, "ISSUED", permit(), "end_time", "2021-12-20T21:40"),
            (TicketKind::Maintenance, "DONE", maintenance(), "report_time", "2018-10-25 06:27:00"),
            (TicketKind::Maintenance, "DONE", maintenance(), "finish_time", "20181025T0730"),
            (TicketKind::Rescue, "CLOSED", rescue(), "fault_start_time", "20210230T122535"),
        ];
        for (kind, status, fields, name, value) in cases {
            let r = validate_fields(*kind, status, &with(fields, name, json!(value)));
            assert_eq!(invalid_field(r), format!("fields.{name}"), "{kind:?} {name} = {value}");
        }
        let mut bad = installation();
        bad["subscribe"]["date"] = json!("yesterday");
        assert_eq!(invalid_field(validate_fields(TicketKind::Installation, "PENDING", &bad)), "fields.subscribe.date");
    }

    #[test]
    fn times_out_of_order_are_refused() {
        // (kind, status, example, field changed, new value, field named: the later of the pair)
        let cases: &[(TicketKind, &str, Value, &str, &str, &str)] = &[
            // Permit: end strictly after start.
            (TicketKind::WorkPermit, "ISSUED", permit(), "end_time", "2021-12-20 13:55", "end_time"),
            (TicketKind::WorkPermit, "ISSUED", permit(), "end_time", "2021-12-20 13:56", "end_time"),
            (TicketKind::WorkPermit, "ISSUED", permit(), "start_time", "2021-12-21 08:00", "end_time"),
            // Seed 000 4.2's example as printed reports a year after arriving.
            (TicketKind::Maintenance, "DONE", maintenance(), "report_time", "20190719T062700", "arrive_time"),
            (TicketKind::Maintenance, "DONE", maintenance(), "finish_time", "20181025T064100", "finish_time"),
            (TicketKind::Rescue, "CLOSED", rescue(), "rescue_time", "20210317T123959", "rescue_time"),
            (TicketKind::Rescue, "CLOSED", rescue(), "alarm_accept_time", "20210317T122534", "alarm_accept_time"),
        ];
        for (kind, status, fields, name, value, named) in cases {
            let r = validate_fields(*kind, status, &with(fields, name, json!(value)));
            assert_eq!(invalid_field(r), format!("fields.{named}"), "{kind:?} {name} = {value}");
        }
        // Equal steps are fine for records.
        let same = with(&maintenance(), "arrive_time", json!("20181025T062700"));
        assert!(validate_fields(TicketKind::Maintenance, "DONE", &same).is_ok());
    }

    #[test]
    fn permit_card_lists_match_their_name_lists() {
        let r = validate_fields(TicketKind::WorkPermit, "ISSUED", &with(&permit(), "worker", json!("22")));
        assert_eq!(invalid_field(r), "fields.worker");
        let ok = without(&permit(), "supervisor");
        assert!(validate_fields(TicketKind::WorkPermit, "ISSUED", &ok).is_ok());
    }

    #[test]
    fn fields_must_be_an_object_and_status_known() {
        assert_eq!(invalid_field(validate_fields(TicketKind::Repair, "PENDING", &json!([1]))), "fields");
        assert_eq!(invalid_field(validate_fields(TicketKind::Repair, "DONE", &repair())), "status");
    }

    #[test]
    fn statuses_and_initial_statuses() {
        assert_eq!(statuses(TicketKind::WorkPermit), ["APPLIED", "ISSUED", "ACCEPTED", "VOIDED", "REVOKED"]);
        assert_eq!(statuses(TicketKind::Maintenance), ["PLANNED", "IN_PROGRESS", "DONE", "CANCELLED"]);
        assert_eq!(
            statuses(TicketKind::Rescue),
            ["REPORTED", "DISPATCHED", "ACKNOWLEDGED", "ARRIVED", "RESCUED", "CLOSED", "CANCELLED"]
        );
        for kind in [TicketKind::Installation, TicketKind::Repair] {
            assert_eq!(statuses(kind), ["PENDING", "UNASSIGNED", "ASSIGNED", "COMPLETED", "CLOSED"]);
        }
        let initial: Vec<&str> = TicketKind::ALL.iter().map(|k| initial_status(*k)).collect();
        assert_eq!(initial, ["APPLIED", "PLANNED", "REPORTED", "PENDING", "PENDING"]);
        // The vendor code tables cover exactly the statuses.
        let names = |t: &[(&'static str, &'static str)]| t.iter().map(|(s, _)| *s).collect::<Vec<_>>();
        assert_eq!(names(WORK_PERMIT_STATUS_CODES), statuses(TicketKind::WorkPermit));
        assert_eq!(names(WORK_ORDER_STATE_CODES), statuses(TicketKind::Repair));
        // Every table entry names real statuses, and every progress step is a status.
        for kind in TicketKind::ALL {
            let r = rules(*kind);
            for (from, targets) in r.transitions {
                assert!(r.statuses.contains(from), "{kind:?} {from}");
                assert!(targets.iter().all(|t| r.statuses.contains(t)), "{kind:?} {targets:?}");
            }
            assert!(r.progress.iter().all(|p| r.statuses.contains(p)), "{kind:?}");
        }
    }

    #[test]
    fn parse_status_refuses_unknown() {
        assert_eq!(parse_status(TicketKind::WorkPermit, "ISSUED").unwrap(), "ISSUED");
        for (kind, s) in [
            (TicketKind::WorkPermit, "issued"),
            (TicketKind::WorkPermit, "DONE"),
            (TicketKind::Maintenance, "1"),
            (TicketKind::Rescue, ""),
            (TicketKind::Installation, "REPORTED"),
        ] {
            match parse_status(kind, s) {
                Err(DomainError::Invalid { field, .. }) => assert_eq!(field, "status"),
                other => panic!("{kind:?} {s:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn transitions() {
        let allowed: &[(TicketKind, &[&str])] = &[
            (TicketKind::WorkPermit, &["APPLIED", "ISSUED", "ACCEPTED"]),
            (TicketKind::WorkPermit, &["APPLIED", "REVOKED"]),
            (TicketKind::WorkPermit, &["APPLIED", "ISSUED", "VOIDED"]),
            (TicketKind::Maintenance, &["PLANNED", "IN_PROGRESS", "DONE"]),
            (TicketKind::Maintenance, &["PLANNED", "DONE"]),
            (TicketKind::Maintenance, &["PLANNED", "IN_PROGRESS", "CANCELLED"]),
            (TicketKind::Rescue, &["REPORTED", "DISPATCHED", "ACKNOWLEDGED", "ARRIVED", "RESCUED", "CLOSED"]),
            (TicketKind::Rescue, &["REPORTED", "ARRIVED", "CANCELLED"]),
            (TicketKind::Installation, &["PENDING", "UNASSIGNED", "ASSIGNED", "COMPLETED", "CLOSED"]),
            (TicketKind::Repair, &["PENDING", "ASSIGNED", "CLOSED"]),
        ];
        for (kind, path) in allowed {
            for pair in path.windows(2) {
                check_transition(*kind, pair[0], pair[1]).unwrap_or_else(|e| panic!("{kind:?} {pair:?}: {e}"));
            }
            for s in *path {
                check_transition(*kind, s, s).unwrap_or_else(|e| panic!("{kind:?} {s} no-op: {e}"));
            }
        }
        let refused: &[(TicketKind, &str, &str)] = &[
            (TicketKind::WorkPermit, "ISSUED", "APPLIED"),
            (TicketKind::WorkPermit, "APPLIED", "ACCEPTED"),
            (TicketKind::WorkPermit, "ACCEPTED", "REVOKED"),
            (TicketKind::WorkPermit, "VOIDED", "ISSUED"),
            (TicketKind::Maintenance, "DONE", "IN_PROGRESS"),
            (TicketKind::Maintenance, "CANCELLED", "PLANNED"),
            (TicketKind::Maintenance, "DONE", "CANCELLED"),
            (TicketKind::Rescue, "ARRIVED", "DISPATCHED"),
            (TicketKind::Rescue, "RESCUED", "CANCELLED"),
            (TicketKind::Rescue, "REPORTED", "CLOSED"),
            (TicketKind::Rescue, "CLOSED", "REPORTED"),
            (TicketKind::Installation, "ASSIGNED", "UNASSIGNED"),
            (TicketKind::Repair, "CLOSED", "PENDING"),
            (TicketKind::Repair, "COMPLETED", "ASSIGNED"),
        ];
        for (kind, from, to) in refused {
            match check_transition(*kind, from, to) {
                Err(DomainError::InvalidTransition(m)) => assert_eq!(m, format!("{}: {from} -> {to}", kind.as_str())),
                other => panic!("{kind:?} {from} -> {to}: {other:?}"),
            }
        }
        match check_transition(TicketKind::WorkPermit, "APPLIED", "CLOSED") {
            Err(DomainError::Invalid { field, .. }) => assert_eq!(field, "status"),
            other => panic!("unknown target: {other:?}"),
        }
    }

    #[test]
    fn typed_statuses_are_the_rules_statuses() {
        let names = |all: Vec<&'static str>| all;
        assert_eq!(names(WorkPermitStatus::ALL.iter().map(|s| s.as_str()).collect()), statuses(TicketKind::WorkPermit));
        assert_eq!(
            names(MaintenanceStatus::ALL.iter().map(|s| s.as_str()).collect()),
            statuses(TicketKind::Maintenance)
        );
        assert_eq!(names(RescueStatus::ALL.iter().map(|s| s.as_str()).collect()), statuses(TicketKind::Rescue));
        for kind in [TicketKind::Installation, TicketKind::Repair] {
            assert_eq!(names(WorkOrderStatus::ALL.iter().map(|s| s.as_str()).collect()), statuses(kind));
        }
        for kind in TicketKind::ALL {
            assert_eq!(TicketStatus::initial(*kind).as_str(), initial_status(*kind));
            for s in statuses(*kind) {
                assert_eq!(TicketStatus::parse(*kind, s).expect("status").as_str(), *s);
            }
        }
        assert!(TicketStatus::parse(TicketKind::Maintenance, "CLOSED").is_err(), "a rescue status");
    }

    #[test]
    fn kind_parses_and_prints() {
        for kind in TicketKind::ALL {
            assert_eq!(TicketKind::parse(kind.as_str()).unwrap(), *kind);
        }
        assert!(TicketKind::parse("PERMIT").is_err());
    }
}
