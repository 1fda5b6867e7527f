//! `INSTALLATION` and `REPAIR` fields: seed 002 (Dingding open API v2.0.16) section 10 工单
//! (`add_ticket`, `update_ticket`, `get_ticket_by_id`, `update_ticket_state`): the two
//! `service_type`s, 1 预约安装 and 2 售后维修. `Int` where the seed says so.

use domain::tickets::Need::{Always, Fill, Optional, Status};
use domain::tickets::{Code, FieldRules, Spec, Ty, f, no_check};

/// `INSTALLATION` and `REPAIR` statuses and the seed 002 `ticket_state` number (`Int` on
/// the wire, here as text) each one maps to and from.
pub const WORK_ORDER_STATE_CODES: &[(&str, &str)] = &[
    ("PENDING", "1"),    // 待处理: submitted, waiting to be handled
    ("UNASSIGNED", "2"), // 待分配: waiting for an installer; the only state update_ticket may edit
    ("ASSIGNED", "3"),   // 已分配: an installer / operator has it
    ("COMPLETED", "4"),  // 已完成
    ("CLOSED", "5"),     // 已关闭
];

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

/// The `INSTALLATION` field table.
pub static INSTALLATION: FieldRules = FieldRules {
    codes: WORK_ORDER_STATE_CODES,
    fields: INSTALLATION_FIELDS,
    time_order: &[],
    strict_order: false,
    check: no_check,
};

/// The `REPAIR` field table.
pub static REPAIR: FieldRules = FieldRules { fields: REPAIR_FIELDS, ..INSTALLATION };
