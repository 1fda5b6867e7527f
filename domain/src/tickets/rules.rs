//! Ticket rules per kind: the statuses and the moves between them (the product's
//! workflows, here), and the engine that checks a kind's `fields` JSON against the field
//! table a vendor module registers for that kind (`TicketFields`). Pure functions, no I/O.
//!
//! The field tables keep the vendor document's field names and wire types, so an adapter
//! sends `fields` as they are; they live with their vendor in `adapters::vendors::<vendor>`.
//! Fields that mirror the ticket status (`Need::Status`) are set from it. Keys a table does
//! not know are kept: the vendor documents evolve.

use crate::enums::string_enum;
use crate::{DomainError, DomainResult};
use chrono::{DateTime, NaiveDateTime};
use serde_json::{Map, Value};

string_enum!(
    /// What a ticket is; each kind has its own statuses and `fields`.
    TicketKind, "kind" {
        /// Hazardous-chemical special work permit, reported to the safety regulator.
        WorkPermit = "WORK_PERMIT",
        /// Elevator maintenance or fault-repair record.
        Maintenance = "MAINTENANCE",
        /// Trapped-passenger rescue record.
        Rescue = "RESCUE",
        /// Booked installation of a device in a home.
        Installation = "INSTALLATION",
        /// After-sales repair of a device in a home.
        Repair = "REPAIR",
    }
);

string_enum!(
    /// `WORK_PERMIT` statuses.
    WorkPermitStatus, "status" {
        Applied = "APPLIED",
        Issued = "ISSUED",
        Accepted = "ACCEPTED",
        Voided = "VOIDED",
        Revoked = "REVOKED",
    }
);

string_enum!(
    /// `MAINTENANCE` statuses.
    MaintenanceStatus, "status" {
        Planned = "PLANNED",
        InProgress = "IN_PROGRESS",
        Done = "DONE",
        Cancelled = "CANCELLED",
    }
);

string_enum!(
    /// `RESCUE` statuses.
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
    /// `INSTALLATION` and `REPAIR` statuses.
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

/// The statuses a ticket of this kind may have, the initial one first.
pub fn statuses(kind: TicketKind) -> &'static [&'static str] {
    workflow(kind).statuses
}

/// The status a new ticket gets when the client gives none.
pub fn initial_status(kind: TicketKind) -> &'static str {
    workflow(kind).statuses[0]
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
    let allowed =
        from == to || workflow(kind).transitions.iter().any(|(f, targets)| *f == from && targets.contains(&to));
    if allowed { Ok(()) } else { Err(DomainError::InvalidTransition(format!("{}: {from} -> {to}", kind.as_str()))) }
}

/// Whether a ticket of `kind` in `status` may be deleted.
///
/// # Errors
/// `InvalidTransition("MAINTENANCE: DONE cannot be deleted ...")` when it may not (the
/// kind's deletable statuses are named).
pub fn check_delete(kind: TicketKind, status: &str) -> DomainResult<()> {
    let deletable = workflow(kind).deletable;
    if deletable.contains(&status) {
        return Ok(());
    }
    let hint = if deletable.is_empty() {
        "this kind is never deleted: close it through its workflow".to_owned()
    } else {
        format!("only while {}", deletable.join(" or "))
    };
    Err(DomainError::InvalidTransition(format!("{}: {status} cannot be deleted ({hint})", kind.as_str())))
}

/// The field tables of the ticket kinds, one per kind, as the vendor modules register them
/// (`adapters::vendors::<vendor>::TICKET_RULES`). Built once with the services.
#[derive(Clone, Default)]
pub struct TicketFields {
    by_kind: Vec<(TicketKind, &'static FieldRules)>,
    files: Vec<(TicketKind, &'static FileRules)>,
    /// The kinds a vendor module uploads to an outside system.
    uploaded: Vec<TicketKind>,
}

/// What a kind's attachments must be, when its vendor module says so (a regulator that
/// takes only images and PDFs, and only while the ticket is in certain statuses).
pub struct FileRules {
    /// The statuses a file may be attached in.
    pub statuses: &'static [&'static str],
    /// Largest file, in bytes (at most `MAX_FILE_BYTES` in any case).
    pub max_bytes: usize,
    /// The file's media type read from its content, or why it is refused.
    pub sniff: fn(&[u8]) -> Result<&'static str, String>,
}

impl TicketFields {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a vendor module's tables; a later table for the same kind replaces the earlier.
    #[must_use]
    pub fn with(mut self, tables: &[(TicketKind, &'static FieldRules)]) -> Self {
        for (kind, rules) in tables {
            self.by_kind.retain(|(k, _)| k != kind);
            self.by_kind.push((*kind, *rules));
        }
        self
    }

    /// Adds a vendor module's attachment rules; a later one for the same kind replaces the earlier.
    #[must_use]
    pub fn with_files(mut self, rules: &[(TicketKind, &'static FileRules)]) -> Self {
        for (kind, r) in rules {
            self.files.retain(|(k, _)| k != kind);
            self.files.push((*kind, *r));
        }
        self
    }

    /// The attachment rules of `kind`, if a vendor module registered some.
    pub fn files_of(&self, kind: TicketKind) -> Option<&'static FileRules> {
        self.files.iter().find(|(k, _)| *k == kind).map(|(_, r)| *r)
    }

    /// Marks `kinds` as uploaded by a vendor module: their tickets show an upload state.
    #[must_use]
    pub fn with_uploads(mut self, kinds: &[TicketKind]) -> Self {
        self.uploaded.extend_from_slice(kinds);
        self
    }

    /// Whether a vendor module uploads tickets of `kind`.
    pub fn uploads(&self, kind: TicketKind) -> bool {
        self.uploaded.contains(&kind)
    }

    /// Whether a vendor module registered a table for `kind`.
    pub fn covers(&self, kind: TicketKind) -> bool {
        self.by_kind.iter().any(|(k, _)| *k == kind)
    }

    /// Validates the kind-specific `fields` object for a ticket in `status` and returns it
    /// normalised: strings trimmed, comma lists tidied, codes in the table's wire type,
    /// defaults and status mirrors filled in, unknown keys kept. A kind no table is
    /// registered for keeps its fields as given.
    ///
    /// # Errors
    /// `Invalid { field: "status" }` for an unknown status; `Invalid { field: "fields" }` when
    /// `fields` is not an object; otherwise `Invalid { field: "fields.<name>" }` naming the
    /// first offending field: missing, wrong type, code outside the table's list, bad time
    /// format, or a cross-field rule (level per type, times out of order ...).
    pub fn validate(&self, kind: TicketKind, status: &str, fields: &Value) -> DomainResult<Value> {
        let status = parse_status(kind, status)?;
        let obj = fields.as_object().ok_or_else(|| DomainError::invalid("fields", "must be a JSON object"))?;
        let Some((_, rules)) = self.by_kind.iter().find(|(k, _)| *k == kind) else {
            return Ok(Value::Object(obj.clone()));
        };
        let r = Ctx { flow: workflow(kind), rules };
        let out = check_object(&r, status, rules.fields, "fields.", obj)?;
        check_time_order(&r, &out)?;
        (rules.check)(&out)?;
        Ok(Value::Object(out))
    }
}

// ---------------------------------------------------------------------------------------
// Workflows
// ---------------------------------------------------------------------------------------

/// The statuses of one kind and the moves between them.
struct Workflow {
    /// The initial status first.
    statuses: &'static [&'static str],
    /// The main line of the workflow, for `Need::Since`. Side exits (CANCELLED) are not in
    /// it: a cancelled ticket needs only the always-required fields.
    progress: &'static [&'static str],
    /// Allowed moves: from, to.
    transitions: &'static [(&'static str, &'static [&'static str])],
    /// The statuses in which a ticket may be deleted (nobody works on it yet and nothing
    /// was reported of it); a kind whose records go to a regulator has none: those are
    /// closed through their workflow (VOIDED, CANCELLED), never deleted.
    deletable: &'static [&'static str],
}

fn workflow(kind: TicketKind) -> &'static Workflow {
    match kind {
        TicketKind::WorkPermit => &WORK_PERMIT,
        TicketKind::Maintenance => &MAINTENANCE,
        TicketKind::Rescue => &RESCUE,
        TicketKind::Installation | TicketKind::Repair => &WORK_ORDER,
    }
}

static WORK_PERMIT: Workflow = Workflow {
    statuses: &[
        "APPLIED",  // filled in, not signed off yet
        "ISSUED",   // signed off, the work may go on
        "ACCEPTED", // work finished and checked
        "VOIDED",   // made void
        "REVOKED",  // withdrawn
    ],
    progress: &[],
    transitions: &[("APPLIED", &["ISSUED", "VOIDED", "REVOKED"]), ("ISSUED", &["ACCEPTED", "VOIDED", "REVOKED"])],
    // Uploaded to the regulator on creation, which has no delete: void or revoke it.
    deletable: &[],
};

static MAINTENANCE: Workflow = Workflow {
    statuses: &[
        "PLANNED",     // registered: a repair reported or a service booked
        "IN_PROGRESS", // the engineer is on site
        "DONE",        // finished: the record that is reported
        "CANCELLED",   // dropped before it was done
    ],
    progress: &["PLANNED", "IN_PROGRESS", "DONE"],
    transitions: &[("PLANNED", &["IN_PROGRESS", "DONE", "CANCELLED"]), ("IN_PROGRESS", &["DONE", "CANCELLED"])],
    // Reported to the data center only once DONE.
    deletable: &["PLANNED"],
};

static RESCUE: Workflow = Workflow {
    statuses: &[
        "REPORTED",     // alarm taken
        "DISPATCHED",   // task sent to a rescue unit
        "ACKNOWLEDGED", // the rescue unit took the task
        "ARRIVED",      // on site
        "RESCUED",      // people out
        "CLOSED",       // record complete: what is reported
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
    // A rescue is pushed to the data center as it starts: cancel it instead.
    deletable: &[],
};

static WORK_ORDER: Workflow = Workflow {
    statuses: &[
        "PENDING",    // submitted, waiting to be handled
        "UNASSIGNED", // waiting for an installer
        "ASSIGNED",   // an installer / operator has it
        "COMPLETED",
        "CLOSED",
    ],
    progress: &[],
    // Forward moves only (a synchronisation may see a step skipped); CLOSED from anywhere.
    transitions: &[
        ("PENDING", &["UNASSIGNED", "ASSIGNED", "COMPLETED", "CLOSED"]),
        ("UNASSIGNED", &["ASSIGNED", "COMPLETED", "CLOSED"]),
        ("ASSIGNED", &["COMPLETED", "CLOSED"]),
        ("COMPLETED", &["CLOSED"]),
    ],
    // Before an installer has it (seed 002 10.3 delete_ticket; 10.2 edits only 待分配 too).
    deletable: &["PENDING", "UNASSIGNED"],
};

// ---------------------------------------------------------------------------------------
// Field tables: the language vendor modules write theirs in
// ---------------------------------------------------------------------------------------

/// The field table of one kind.
pub struct FieldRules {
    /// Status -> the vendor's code, for `Need::Status`.
    pub codes: &'static [(&'static str, &'static str)],
    pub fields: &'static [Spec],
    /// Time fields that must come in this order when present.
    pub time_order: &'static [&'static str],
    /// Whether two consecutive times of `time_order` must differ (start strictly before end).
    pub strict_order: bool,
    /// Cross-field rules beyond the time order.
    pub check: fn(&Map<String, Value>) -> DomainResult<()>,
}

/// When a field must be there.
#[derive(Clone, Copy)]
pub enum Need {
    Always,
    /// May be absent; an empty string is kept as is.
    Optional,
    /// Required once the ticket has reached this status of its workflow's main line.
    Since(&'static str),
    /// Required from that status, and then filled with the default when absent.
    SinceOr(&'static str, &'static str),
    /// Filled with the default when absent or empty.
    Fill(&'static str),
    /// Mirrors the ticket status as its vendor code (`FieldRules::codes`): always set from
    /// the status. A given value must be a code of some status; it is then replaced, so
    /// fields stored under the previous status validate again after a move. The field's
    /// `Ty` only gives the wire type (string or `Int`).
    Status,
}

/// A field's type and format. Strings are trimmed; a required field may not be empty.
pub enum Ty {
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
    /// A slot code of the list, or a Unix timestamp in milliseconds.
    SlotOrMillis(&'static [Code]),
    /// A nested object with its own fields.
    Object(&'static [Spec]),
}

/// One field of `fields`.
pub struct Spec {
    pub name: &'static str,
    pub need: Need,
    pub ty: Ty,
}

/// A field: its name, when it is needed, its type.
pub const fn f(name: &'static str, need: Need, ty: Ty) -> Spec {
    Spec { name, need, ty }
}

/// A vendor's code and its meaning (the vendor's words, then English).
pub type Code = (&'static str, &'static str);

/// A cross-field rule that checks nothing.
///
/// # Errors
/// Never.
pub fn no_check(_: &Map<String, Value>) -> DomainResult<()> {
    Ok(())
}

/// A normalised string field, or "" when absent: for cross-field rules.
pub fn text_of<'a>(o: &'a Map<String, Value>, name: &str) -> &'a str {
    o.get(name).and_then(Value::as_str).unwrap_or("")
}

use Need::{Always, Fill, Optional, Since, SinceOr, Status};

/// A kind's workflow and its field table, while checking.
struct Ctx<'a> {
    flow: &'static Workflow,
    rules: &'a FieldRules,
}

// ---------------------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------------------

fn check_object(
    r: &Ctx<'_>,
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
fn reached(r: &Ctx<'_>, need: Need, status: &str) -> bool {
    let rank = |s: &str| r.flow.progress.iter().position(|p| *p == s);
    match need {
        Always | Fill(_) | Status => true,
        Optional => false,
        Since(from) | SinceOr(from, _) => matches!((rank(status), rank(from)), (Some(a), Some(b)) if a >= b),
    }
}

/// The vendor code mirroring `status`, in the field's wire type. A given value must be one
/// of the kind's codes (it may be the previous status's).
fn status_code(r: &Ctx<'_>, status: &str, spec: &Spec, given: Option<&Value>, path: &str) -> DomainResult<Value> {
    let code = r
        .rules
        .codes
        .iter()
        .find(|(s, _)| *s == status)
        .map(|(_, c)| *c)
        .ok_or_else(|| DomainError::invalid("status", format!("{status} has no vendor code")))?;
    if let Some(v) = given
        && !r.rules.codes.iter().any(|(_, c)| scalar_text(v).as_deref() == Some(*c))
    {
        let codes: Vec<&str> = r.rules.codes.iter().map(|(_, c)| *c).collect();
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
fn normalise(r: &Ctx<'_>, status: &str, ty: &Ty, v: &Value, path: &str) -> DomainResult<Value> {
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
fn check_time_order(r: &Ctx<'_>, o: &Map<String, Value>) -> DomainResult<()> {
    let mut last: Option<(&str, NaiveDateTime)> = None;
    for name in r.rules.time_order {
        let format = r.rules.fields.iter().find_map(|s| match s.ty {
            Ty::Time(format, _) if s.name == *name => Some(format),
            _ => None,
        });
        let Some(t) = format.and_then(|format| parse_time(text_of(o, name), format)) else { continue };
        if let Some((prev, p)) = last
            && (t < p || (r.rules.strict_order && t == p))
        {
            let relation = if r.rules.strict_order { "after" } else { "no earlier than" };
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_tickets_nobody_works_on_and_nothing_was_reported_of_may_be_deleted() {
        assert!(check_delete(TicketKind::Installation, "PENDING").is_ok());
        assert!(check_delete(TicketKind::Repair, "UNASSIGNED").is_ok());
        assert!(check_delete(TicketKind::Maintenance, "PLANNED").is_ok());
        for (kind, status) in [
            (TicketKind::Installation, "ASSIGNED"),
            (TicketKind::Repair, "COMPLETED"),
            (TicketKind::Maintenance, "DONE"),
            (TicketKind::WorkPermit, "APPLIED"),
            (TicketKind::Rescue, "REPORTED"),
        ] {
            assert!(
                matches!(check_delete(kind, status), Err(DomainError::InvalidTransition(_))),
                "{} {status}",
                kind.as_str()
            );
        }
    }

    /// A made-up vendor's table for the rescue workflow: one field of each need.
    static RESCUE_TABLE: FieldRules = FieldRules {
        codes: &[
            ("REPORTED", "1"),
            ("DISPATCHED", "2"),
            ("ACKNOWLEDGED", "3"),
            ("ARRIVED", "4"),
            ("RESCUED", "5"),
            ("CLOSED", "6"),
            ("CANCELLED", "9"),
        ],
        fields: &[
            f("reported_at", Always, Ty::Time("%Y-%m-%d %H:%M", "yyyy-MM-dd HH:mm")),
            f("arrived_at", Since("ARRIVED"), Ty::Time("%Y-%m-%d %H:%M", "yyyy-MM-dd HH:mm")),
            f("people", SinceOr("RESCUED", "0"), Ty::Count),
            f("source", Fill("3"), Ty::Code(&[("3", "monitoring"), ("4", "phone")])),
            f("note", Optional, Ty::Text),
            f("state", Status, Ty::IntCode(&[])),
        ],
        time_order: &["reported_at", "arrived_at"],
        strict_order: true,
        check: no_check,
    };

    fn table() -> TicketFields {
        TicketFields::new().with(&[(TicketKind::Rescue, &RESCUE_TABLE)])
    }

    fn invalid_field(r: DomainResult<Value>) -> String {
        match r {
            Err(DomainError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn the_engine_applies_a_registered_table_by_the_workflow_step() {
        let t = table();
        let early = t.validate(TicketKind::Rescue, "REPORTED", &json!({"reported_at": " 2026-01-02 03:04 ", "x": 1}));
        let early = early.unwrap();
        assert_eq!(early, json!({"reported_at": "2026-01-02 03:04", "source": "3", "state": 1, "x": 1}));
        assert_eq!(invalid_field(t.validate(TicketKind::Rescue, "ARRIVED", &early)), "fields.arrived_at");
        let rescued = t
            .validate(
                TicketKind::Rescue,
                "RESCUED",
                &json!({"reported_at": "2026-01-02 03:04", "arrived_at": "2026-01-02 03:30"}),
            )
            .unwrap();
        assert_eq!((rescued["people"].clone(), rescued["state"].clone()), (json!("0"), json!(5)));
        // A cancelled ticket left the main line: only the always-needed fields.
        assert!(t.validate(TicketKind::Rescue, "CANCELLED", &json!({"reported_at": "2026-01-02 03:04"})).is_ok());
        let backwards = json!({"reported_at": "2026-01-02 03:04", "arrived_at": "2026-01-02 03:04"});
        assert_eq!(invalid_field(t.validate(TicketKind::Rescue, "ARRIVED", &backwards)), "fields.arrived_at");
        assert_eq!(
            invalid_field(t.validate(
                TicketKind::Rescue,
                "REPORTED",
                &json!({"reported_at": "2026-01-02 03:04", "state": 7})
            )),
            "fields.state"
        );
        assert_eq!(invalid_field(t.validate(TicketKind::Rescue, "REPORTED", &json!("x"))), "fields");
        assert_eq!(invalid_field(t.validate(TicketKind::Rescue, "DONE", &json!({}))), "status");
    }

    #[test]
    fn a_kind_without_a_table_keeps_its_fields_as_given() {
        let t = table();
        assert!(!t.covers(TicketKind::Repair));
        let given = json!({"anything": [1, 2], "x": " y "});
        assert_eq!(t.validate(TicketKind::Repair, "PENDING", &given).unwrap(), given);
        assert_eq!(invalid_field(t.validate(TicketKind::Repair, "PENDING", &json!([1]))), "fields");
        assert_eq!(invalid_field(t.validate(TicketKind::Repair, "DONE", &given)), "status");
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
        // Every table entry names real statuses, and every progress step is a status.
        for kind in TicketKind::ALL {
            let r = workflow(*kind);
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
