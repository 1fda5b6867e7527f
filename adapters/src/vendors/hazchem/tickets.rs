//! `WORK_PERMIT` fields: seed 004 (数字危化特殊作业接口文档), 二.2 上传作业票数据接口
//! (`/data/workorder/workTicket`) and its Q&A 2-4; times pinned to `yyyy-MM-dd HH:mm` by
//! PROTOCOLS.md §5 (the seed's table says `yyyy-mm-dd HH:ss`, its example has minutes).
//! Field names and wire types (strings) are the seed's, so the upload sends them as they are.

use domain::DomainResult;
use domain::tickets::Need::{Always, Fill, Optional, Status};
use domain::tickets::{Code, FieldRules, Spec, Ty, f, text_of};
use serde_json::{Map, Value};

/// `WORK_PERMIT` statuses and the seed 004 `ticket_status` code each one is sent as.
/// The seed has no code 2.
pub const WORK_PERMIT_STATUS_CODES: &[(&str, &str)] = &[
    ("APPLIED", "0"),  // 未签发: filled in, not signed off yet
    ("ISSUED", "1"),   // 已签发: signed off, the work may go on
    ("ACCEPTED", "3"), // 已验收: work finished and checked
    ("VOIDED", "4"),   // 作废: made void
    ("REVOKED", "5"),  // 撤销: withdrawn
];

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

/// The `WORK_PERMIT` field table.
pub static WORK_PERMIT: FieldRules = FieldRules {
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
            return Err(domain::DomainError::invalid(
                "fields.ticket_level",
                format!("ticket_type {ticket_type} ({meaning}) requires one of {}", levels.join(", ")),
            ));
        }
        None if !level.is_empty() => {
            return Err(domain::DomainError::invalid(
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
            return Err(domain::DomainError::invalid(
                format!("fields.{cards}"),
                format!("{} entries but {names} has {}", c.split(',').count(), n.split(',').count()),
            ));
        }
    }
    Ok(())
}

/// Seed 004 二.3: attachments are images or PDFs, taken only while the permit is issued
/// (1) or accepted (3). The seed gives no size limit; 10 MiB keeps one upload well inside
/// a request timeout on the regulator's dedicated line.
pub static PERMIT_FILES: domain::tickets::FileRules =
    domain::tickets::FileRules { statuses: &["ISSUED", "ACCEPTED"], max_bytes: 10 * 1024 * 1024, sniff: image_or_pdf };

/// The media type of an image or PDF, read from its first bytes.
fn image_or_pdf(bytes: &[u8]) -> Result<&'static str, String> {
    const TAKEN: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/bmp", "image/webp", "application/pdf"];
    match infer::get(bytes).map(|t| t.mime_type()) {
        Some(m) if TAKEN.contains(&m) => Ok(m),
        Some(m) => Err(format!("a work permit takes images (JPEG, PNG, GIF, BMP, WebP) or PDF files, not {m}")),
        None => Err("a work permit takes images (JPEG, PNG, GIF, BMP, WebP) or PDF files; this is neither".into()),
    }
}

#[cfg(test)]
mod file_tests {
    use super::image_or_pdf;

    #[test]
    fn images_and_pdfs_are_known_by_their_content() {
        assert_eq!(image_or_pdf(b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n"), Ok("application/pdf"));
        assert_eq!(image_or_pdf(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Ok("image/png"));
        assert_eq!(image_or_pdf(b"\xFF\xD8\xFF\xE0\0\x10JFIF\0"), Ok("image/jpeg"));
        assert!(image_or_pdf(b"PK\x03\x04 a zip file").is_err());
        assert!(image_or_pdf(b"<html>not a picture</html>").is_err());
    }
}
