//! The five protocol families of `PROTOCOLS.md` and the settings/credentials each needs
//! (the table in `CONTRACT.md`, "Integration settings and credentials, by kind").

use crate::{DomainError, DomainResult};
use serde_json::{Map, Value};

crate::enums::string_enum!(
    /// Every device kind the integrations map into.
    DeviceKind, "kind" {
        /// Elevator (Huzhou: lift_type 1).
        Elevator = "ELEVATOR",
        /// Escalator (Huzhou: lift_type 2).
        Escalator = "ESCALATOR",
        /// ETC gantry: the frame whose PCs and cabinets report under its `gantryId`.
        Gantry = "GANTRY",
        /// ETC gantry industrial PC.
        GantryComputer = "GANTRY_COMPUTER",
        /// ETC gantry smart cabinet.
        GantryCabinet = "GANTRY_CABINET",
        /// A gantry cabinet's mains supply (`elec`).
        GantryMains = "GANTRY_MAINS",
        /// A gantry cabinet's rectifier module.
        GantryRectifier = "GANTRY_RECTIFIER",
        /// A gantry cabinet's UPS.
        GantryUps = "GANTRY_UPS",
        /// A gantry cabinet's air conditioner.
        GantryAirConditioner = "GANTRY_AIR_CONDITIONER",
        /// A gantry cabinet's thermo-hygrometer.
        GantryThermohygrometer = "GANTRY_THERMOHYGROMETER",
        /// A gantry cabinet's water (flooding) sensor.
        GantryWaterSensor = "GANTRY_WATER_SENSOR",
        /// A gantry cabinet's doors (access control).
        GantryDoors = "GANTRY_DOORS",
        /// A gantry cabinet's smoke sensor.
        GantrySmokeSensor = "GANTRY_SMOKE_SENSOR",
        /// A gantry cabinet's lightning protector (`thunderSpd`).
        GantryLightningProtection = "GANTRY_LIGHTNING_PROTECTION",
        /// Dingding smart lock.
        Lock = "LOCK",
        /// Dingding gateway (center).
        Gateway = "GATEWAY",
        /// Dingding electricity meter.
        ElectricityMeter = "ELECTRICITY_METER",
        /// Dingding electricity collector.
        Collector = "COLLECTOR",
        /// Dingding water meter.
        WaterMeter = "WATER_METER",
        /// Dingding water gateway.
        WaterGateway = "WATER_GATEWAY",
        /// IoT gas meter (CIS/DAS).
        GasMeter = "GAS_METER",
    }
);

/// Which vendor protocol an integration speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrationKind {
    /// Dingding (Yunding) smart-device open API: locks, gateways, meters.
    Dingding,
    /// IoT gas meters, CIS <-> DAS standard.
    Goldcard,
    /// Huzhou special-equipment data center: elevators.
    HuzhouElevator,
    /// ETC highway gantry PCs and cabinets.
    EtcGantry,
    /// Hazardous-chemical special work uploads to the regulator.
    Hazchem,
    /// The tenant's own HTTPS endpoint: alarm changes are posted to it, signed with
    /// HMAC-SHA256 (a Linkyard addition, not a vendor protocol).
    Webhook,
    /// An alarm notification channel (`saveNotificationChannel`): escalation policies'
    /// notices are posted to its URL, signed like Standard Webhooks. Saved only as a
    /// channel, never with `configureIntegration`.
    NotificationWebhook,
}

/// The shape a setting's value must have.
#[derive(Debug, Clone, Copy)]
enum SettingType {
    /// An absolute `http://` or `https://` URL.
    Url,
    /// A non-empty string.
    Text,
    /// An object mapping ids to `host:port`.
    HostMap,
    /// A positive integer.
    PositiveInt,
    /// An integer, 0 or more.
    NonNegativeInt,
    /// An object whose values are numbers.
    NumberMap,
}

struct SettingSpec {
    name: &'static str,
    ty: SettingType,
    default: Option<fn() -> Value>,
}

const fn req(name: &'static str, ty: SettingType) -> SettingSpec {
    SettingSpec { name, ty, default: None }
}

fn empty_map() -> Value {
    Value::Object(Map::new())
}

/// Settings every kind accepts: the delivery retry policy, the periodic jobs' schedules
/// and the time zone they are read in.
const COMMON_SETTINGS: [&str; 3] = ["retry", "schedules", "timezone"];

fn report_interval_default() -> Value {
    Value::from(600)
}

/// Huzhou 7.4 (V2.2): a subscribed elevator is pushed every 3 s for 3 minutes.
fn live_interval_default() -> Value {
    Value::from(3)
}

fn live_window_default() -> Value {
    Value::from(180)
}

fn min_report_default() -> Value {
    Value::from(1)
}

fn skew_default() -> Value {
    Value::from(300)
}

impl IntegrationKind {
    pub const ALL: [Self; 7] = [
        Self::Dingding,
        Self::Goldcard,
        Self::HuzhouElevator,
        Self::EtcGantry,
        Self::Hazchem,
        Self::Webhook,
        Self::NotificationWebhook,
    ];

    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Dingding => "DINGDING",
            Self::Goldcard => "GOLDCARD",
            Self::HuzhouElevator => "HUZHOU_ELEVATOR",
            Self::EtcGantry => "ETC_GANTRY",
            Self::Hazchem => "HAZCHEM",
            Self::Webhook => "WEBHOOK",
            Self::NotificationWebhook => "NOTIFICATION_WEBHOOK",
        }
    }

    /// # Errors
    /// `Invalid { field: "kind" }` on an unknown name.
    pub fn parse(s: &str) -> DomainResult<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| DomainError::invalid("kind", format!("unknown integration kind {s:?}")))
    }

    /// The path under `/hooks/{integration_id}/` where this kind's vendor calls us, if it does.
    pub const fn hook_path(&self) -> Option<&'static str> {
        match self {
            Self::Dingding => Some("dingding"),
            Self::Goldcard => Some("goldcard"),
            Self::HuzhouElevator => Some("huzhou/elev_api"),
            Self::EtcGantry => Some("etc/monitor.do"),
            Self::Hazchem | Self::Webhook | Self::NotificationWebhook => None,
        }
    }

    /// Whether this kind's callback URL ends in a per-integration hook token
    /// (`{hook_path}/{hook_token}`): for a vendor whose callbacks carry no credential of
    /// their own (Dingding signs with the URL only).
    pub const fn takes_hook_token(&self) -> bool {
        matches!(self, Self::Dingding)
    }

    /// The periodic jobs an integration of this kind has.
    pub const fn scheduled_jobs(&self) -> &'static [crate::schedules::ScheduledJob] {
        use crate::schedules::ScheduledJob;
        match self {
            Self::HuzhouElevator => &[ScheduledJob::LiftNotifyDaily, ScheduledJob::ElevThingsDaily],
            Self::Dingding => &[ScheduledJob::Sync],
            Self::Goldcard => &[ScheduledJob::DailyUsage],
            Self::EtcGantry => &[ScheduledJob::HeartbeatCheck],
            Self::Hazchem | Self::Webhook | Self::NotificationWebhook => &[],
        }
    }

    /// The credential that Linkyard issues for inbound calls, replaced by a secret rotation.
    pub const fn inbound_secret_field(&self) -> &'static str {
        match self {
            Self::HuzhouElevator => "inboundAppSecret",
            Self::EtcGantry => "authCode",
            Self::Webhook | Self::NotificationWebhook => "signingSecret",
            Self::Dingding | Self::Goldcard | Self::Hazchem => "hookSecret",
        }
    }

    fn settings_spec(&self) -> Vec<SettingSpec> {
        use SettingType::*;
        match self {
            Self::Dingding => vec![req("baseUrl", Url)],
            Self::Goldcard => vec![req("baseUrl", Url), req("companyCode", Text), req("factorNo", Text)],
            Self::HuzhouElevator => vec![
                req("baseUrl", Url),
                req("dcBaseUrl", Url),
                SettingSpec {
                    name: "subscriptionIntervalSeconds",
                    ty: PositiveInt,
                    default: Some(live_interval_default),
                },
                SettingSpec { name: "subscriptionWindowSeconds", ty: PositiveInt, default: Some(live_window_default) },
            ],
            Self::EtcGantry => vec![
                SettingSpec { name: "deviceHosts", ty: HostMap, default: Some(empty_map) },
                SettingSpec { name: "maxClockSkewSeconds", ty: PositiveInt, default: Some(skew_default) },
                SettingSpec { name: "reportIntervalSeconds", ty: PositiveInt, default: Some(report_interval_default) },
                // Two reports of one method (and cabinet) from one gantry closer than this
                // are refused with 1005.
                SettingSpec { name: "minReportIntervalSeconds", ty: NonNegativeInt, default: Some(min_report_default) },
                // PC alarm thresholds: `diskUsage`, `cpuUsage` (%), `cpuTemperature` (°C).
                SettingSpec { name: "thresholds", ty: NumberMap, default: Some(empty_map) },
            ],
            Self::Hazchem => vec![req("baseUrl", Url), req("systemName", Text), req("areaCode", Text)],
            Self::Webhook | Self::NotificationWebhook => vec![req("url", Url)],
        }
    }

    /// The credential names this kind requires (all strings).
    pub fn credential_names(&self) -> &'static [&'static str] {
        match self {
            Self::Dingding => &["clientId", "clientSecret"],
            Self::Goldcard => &["appCode", "appSecret"],
            Self::HuzhouElevator => &["appKey", "appSecret", "inboundAppKey", "inboundAppSecret"],
            Self::EtcGantry => &["authCode"],
            Self::Hazchem => &["username", "password"],
            Self::Webhook | Self::NotificationWebhook => &["signingSecret"],
        }
    }

    /// Validates settings against this kind's table and fills defaults.
    ///
    /// # Errors
    /// `Invalid { field: "settings.<name>" }` for a missing, mistyped or unknown setting.
    pub fn validate_settings(&self, settings: &Value) -> DomainResult<Value> {
        let empty = Map::new();
        let given = match settings {
            Value::Object(m) => m,
            Value::Null => &empty,
            _ => return Err(DomainError::invalid("settings", "must be a JSON object")),
        };
        let spec = self.settings_spec();
        // Every kind may override the delivery retry policy, its jobs' schedules and their
        // time zone.
        let retry = given.get("retry").filter(|v| !v.is_null());
        crate::deliveries::RetryPolicy::from_settings(retry)?;
        crate::schedules::validate_settings(*self, settings)?;
        if let Some(unknown) =
            given.keys().find(|k| !COMMON_SETTINGS.contains(&k.as_str()) && !spec.iter().any(|s| s.name == k.as_str()))
        {
            return Err(DomainError::invalid(
                format!("settings.{unknown}"),
                format!("unknown setting for {}", self.as_str()),
            ));
        }
        let mut out = Map::new();
        for s in spec {
            let field = format!("settings.{}", s.name);
            let value = match (given.get(s.name), s.default) {
                (Some(v), _) if !v.is_null() => v.clone(),
                (_, Some(default)) => default(),
                _ => return Err(DomainError::invalid(field, "is required")),
            };
            check_type(&field, s.ty, &value)?;
            out.insert(s.name.to_owned(), value);
        }
        for name in COMMON_SETTINGS {
            if let Some(v) = given.get(name).filter(|v| !v.is_null()) {
                out.insert(name.to_owned(), v.clone());
            }
        }
        Ok(Value::Object(out))
    }

    /// Validates credentials: every required name present as a non-empty string, no
    /// unknown names. Error messages name fields, never values.
    ///
    /// # Errors
    /// `Invalid { field: "credentials.<name>" }`.
    pub fn validate_credentials(&self, credentials: &Value) -> DomainResult<Map<String, Value>> {
        let Value::Object(given) = credentials else {
            return Err(DomainError::invalid("credentials", "must be a JSON object of strings"));
        };
        let names = self.credential_names();
        let extra = self.inbound_secret_field();
        if let Some(unknown) = given.keys().find(|k| !names.contains(&k.as_str()) && k.as_str() != extra) {
            return Err(DomainError::invalid(
                format!("credentials.{unknown}"),
                format!("unknown credential for {}", self.as_str()),
            ));
        }
        for name in names {
            match given.get(*name) {
                Some(Value::String(s)) if !s.trim().is_empty() => {}
                Some(_) => {
                    return Err(DomainError::invalid(format!("credentials.{name}"), "must be a non-empty string"));
                }
                None => return Err(DomainError::invalid(format!("credentials.{name}"), "is required")),
            }
        }
        if given.get(extra).is_some_and(|v| v.as_str().is_none_or(str::is_empty)) {
            return Err(DomainError::invalid(format!("credentials.{extra}"), "must be a non-empty string"));
        }
        Ok(given.clone())
    }
}

fn check_type(field: &str, ty: SettingType, v: &Value) -> DomainResult<()> {
    let ok = match ty {
        SettingType::Url => v.as_str().is_some_and(is_http_url),
        SettingType::Text => v.as_str().is_some_and(|s| !s.trim().is_empty()),
        SettingType::PositiveInt => v.as_u64().is_some_and(|n| n > 0),
        SettingType::NonNegativeInt => v.as_u64().is_some(),
        SettingType::NumberMap => v.as_object().is_some_and(|m| m.values().all(Value::is_number)),
        SettingType::HostMap => v.as_object().is_some_and(|m| m.values().all(|h| h.as_str().is_some_and(is_host_port))),
    };
    if ok {
        return Ok(());
    }
    let what = match ty {
        SettingType::Url => "must be an absolute http(s) URL",
        SettingType::Text => "must be a non-empty string",
        SettingType::PositiveInt => "must be a positive integer",
        SettingType::NonNegativeInt => "must be an integer, 0 or more",
        SettingType::NumberMap => "must map names to numbers",
        SettingType::HostMap => "must map gantry ids to \"host:port\"",
    };
    Err(DomainError::invalid(field, what))
}

fn is_http_url(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !r.chars().any(char::is_whitespace)
    })
}

fn is_host_port(s: &str) -> bool {
    s.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_are_checked_per_kind() {
        let k = IntegrationKind::HuzhouElevator;
        assert!(k.validate_settings(&json!({"baseUrl": "https://a.example", "dcBaseUrl": "http://b:8080/x"})).is_ok());
        let err = k.validate_settings(&json!({"baseUrl": "https://a.example"})).err();
        assert!(matches!(err, Some(DomainError::Invalid { field, .. }) if field == "settings.dcBaseUrl"));
        let err = k.validate_settings(&json!({"baseUrl": "ftp://x", "dcBaseUrl": "http://b"})).err();
        assert!(matches!(err, Some(DomainError::Invalid { field, .. }) if field == "settings.baseUrl"));
        let err = k.validate_settings(&json!({"baseUrl": "http://a", "dcBaseUrl": "http://b", "x": 1})).err();
        assert!(matches!(err, Some(DomainError::Invalid { field, .. }) if field == "settings.x"));
    }

    #[test]
    fn etc_defaults_are_filled() {
        let v = IntegrationKind::EtcGantry.validate_settings(&json!({})).expect("defaults");
        assert_eq!(
            v,
            json!({
                "deviceHosts": {}, "maxClockSkewSeconds": 300, "minReportIntervalSeconds": 1,
                "reportIntervalSeconds": 600, "thresholds": {}
            })
        );
        assert!(IntegrationKind::EtcGantry.validate_settings(&json!({"deviceHosts": {"G1": "10.0.0.1"}})).is_err());
        assert!(IntegrationKind::EtcGantry.validate_settings(&json!({"deviceHosts": {"G1": "10.0.0.1:3699"}})).is_ok());
    }

    #[test]
    fn credential_errors_never_echo_values() {
        let err = IntegrationKind::Dingding
            .validate_credentials(&json!({"clientId": "id", "clientSecret": 12345987}))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("credentials.clientSecret"));
        assert!(!err.contains("12345987"));
        assert!(IntegrationKind::Dingding.validate_credentials(&json!({"clientId": "id"})).is_err());
    }

    #[test]
    fn kinds_round_trip() {
        for k in IntegrationKind::ALL {
            assert_eq!(IntegrationKind::parse(k.as_str()).ok(), Some(k));
        }
    }

    #[test]
    fn schedule_settings_are_checked_per_kind() {
        let ok = serde_json::json!({"schedules": {"HEARTBEAT_CHECK": "*/10 * * * * *"}, "timezone": "Asia/Urumqi"});
        assert!(crate::schedules::validate_settings(IntegrationKind::EtcGantry, &ok).is_ok());
        let wrong_kind = serde_json::json!({"schedules": {"SYNC": "0 0 3 * * *"}});
        assert!(crate::schedules::validate_settings(IntegrationKind::EtcGantry, &wrong_kind).is_err());
        let bad_cron = serde_json::json!({"schedules": {"HEARTBEAT_CHECK": "every minute"}});
        let e = crate::schedules::validate_settings(IntegrationKind::EtcGantry, &bad_cron).expect_err("bad cron");
        assert!(e.to_string().contains("settings.schedules.HEARTBEAT_CHECK"), "{e}");
        let bad_tz = serde_json::json!({"timezone": "Mars/Base"});
        assert!(crate::schedules::validate_settings(IntegrationKind::EtcGantry, &bad_tz).is_err());
    }
}
