//! ETC gantries: control commands (`sendGantryCommand`) and the files devices hand over
//! (`deviceFiles`, door-opening pictures) with their expiring download links.

use super::deliveries::DeliveryGql;
use super::enums::DeviceFileStateGql;
use super::{actor, parse_id, state};
use crate::error::GqlResultExt;
use async_graphql::{Context, ID, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::devices::DeviceFile;
use domain::ids::DeviceId;

/// A file a device handed over (or the record that it had none).
#[derive(SimpleObject)]
#[graphql(name = "DeviceFile")]
pub struct DeviceFileGql {
    pub id: ID,
    pub device_id: ID,
    /// Why it was taken: `DOOR_OPENING`.
    pub purpose: String,
    /// The moment it shows, as the device names it (`yyyy-MM-dd hh:mm:ss.zzz`).
    pub taken_at: String,
    pub state: DeviceFileStateGql,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub size: Option<i64>,
    /// MD5 of the content, hex, as the device sent it and as verified.
    pub md5: Option<String>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    /// A link that downloads the file without a token, for 15 minutes (`STORED` only).
    pub download_url: Option<String>,
}

fn to_gql(f: DeviceFile, download_url: Option<String>) -> DeviceFileGql {
    DeviceFileGql {
        id: ID(f.id.to_string()),
        device_id: ID(f.device_id.to_string()),
        purpose: f.purpose,
        taken_at: f.taken_at,
        state: f.state.into(),
        filename: f.filename,
        content_type: f.content_type,
        size: f.size,
        md5: f.md5,
        note: f.note,
        created_at: f.created_at,
        download_url,
    }
}

#[derive(Default)]
pub struct GantryQuery;

#[Object]
impl GantryQuery {
    /// The files a device handed over (an ETC cabinet's door-opening pictures), newest first.
    async fn device_files(&self, ctx: &Context<'_>, device_id: ID) -> async_graphql::Result<Vec<DeviceFileGql>> {
        let id: DeviceId = parse_id("deviceId", &device_id)?;
        let st = state(ctx);
        let files = st.device_files.list(&actor(ctx)?, id).await.gql()?;
        let base = st.config.public_url.trim_end_matches('/');
        files
            .into_iter()
            .map(|f| {
                let url = match f.state {
                    domain::devices::DeviceFileState::Stored => Some(format!(
                        "{base}/files/devices/{}?token={}",
                        f.id,
                        st.jwt.file_link(f.tenant_id, f.id).gql()?
                    )),
                    _ => None,
                };
                Ok(to_gql(f, url))
            })
            .collect()
    }
}

/// A control command for a gantry's PC or cabinet (seed 001 2.2, 3.2).
#[derive(InputObject)]
pub struct SendGantryCommandInput {
    /// The gantry, or any of its PCs, cabinets or units (the same gantry is addressed).
    pub device_id: ID,
    /// `computerControl` or `cabinetControl`.
    pub method: String,
    /// The method's object as the seed names it: `updateNow`, `setServer`, `setFrequency`,
    /// or (cabinets) `cmd` 1-10 with that command's parameters.
    pub params: Json<serde_json::Value>,
}

#[derive(Default)]
pub struct GantryMutation;

#[Object]
impl GantryMutation {
    /// Sends a control command to a gantry device through the delivery engine (operators);
    /// the device's answer code is on the delivery's attempts, a battery test result (cmd
    /// 10) in its `result`. Parameters are checked first: nothing is sent on a bad one.
    async fn send_gantry_command(
        &self,
        ctx: &Context<'_>,
        input: SendGantryCommandInput,
    ) -> async_graphql::Result<DeliveryGql> {
        let id: DeviceId = parse_id("deviceId", &input.device_id)?;
        let d = state(ctx).etc.send_command(&actor(ctx)?, id, &input.method, &input.params.0).await.gql()?;
        Ok(d.into())
    }
}
