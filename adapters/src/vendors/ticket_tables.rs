//! The vendor modules' ticket field tables, as the application registers them: one valid
//! example per kind from its seed, and each rule of the tables.
#![allow(clippy::unwrap_used)]

use domain::tickets::{TicketFields, TicketKind};
use domain::{DomainError, DomainResult};
use serde_json::{Value, json};

/// The tables as `api::state` registers them.
fn validate_fields(kind: TicketKind, status: &str, fields: &Value) -> DomainResult<Value> {
    TicketFields::new()
        .with(super::hazchem::TICKET_RULES)
        .with(super::huzhou::TICKET_RULES)
        .with(super::dingding::TICKET_RULES)
        .validate(kind, status, fields)
}

#[test]
fn every_kind_has_a_table_and_the_status_code_tables_cover_the_statuses() {
    let all = TicketFields::new()
        .with(super::hazchem::TICKET_RULES)
        .with(super::huzhou::TICKET_RULES)
        .with(super::dingding::TICKET_RULES);
    for kind in TicketKind::ALL {
        assert!(all.covers(*kind), "{kind:?}");
    }
    let names = |t: &[(&'static str, &'static str)]| t.iter().map(|(s, _)| *s).collect::<Vec<_>>();
    let statuses = domain::tickets::statuses;
    assert_eq!(names(super::hazchem::tickets::WORK_PERMIT_STATUS_CODES), statuses(TicketKind::WorkPermit));
    assert_eq!(names(super::dingding::tickets::WORK_ORDER_STATE_CODES), statuses(TicketKind::Repair));
}

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
