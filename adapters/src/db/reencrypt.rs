//! `linkyard admin reencrypt`: every stored ciphertext sealed under the previous
//! credentials key (`LINKYARD_SECRET_KEY_PREVIOUS`) is sealed again under the current one,
//! so the previous key can be dropped. Ciphertexts live in integrations' credentials, lock
//! passwords' secrets and the payloads of deliveries that carry one (sealed strings inside
//! the JSON). A maintenance task over every tenant, run by an operator; idempotent.

use super::entities::{deliveries, dingding_lock_passwords, integrations};
use crate::crypto::{AesGcmSecretBox, looks_sealed};
use anyhow::Context as _;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::Value;

/// Rows read per query.
const BATCH: u64 = 500;

/// What `reencrypt` rewrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reencrypted {
    pub integrations: u64,
    pub lock_passwords: u64,
    pub deliveries: u64,
    /// Strings in delivery payloads that look sealed but open under neither key (text that
    /// merely starts like a sealed value, or a value of a key already dropped): left as they are.
    pub unopened: u64,
}

/// Seals every value found under the previous key again under the current one.
///
/// # Errors
/// When the storage fails, or a value opens under neither key (named by table and id,
/// never by content): nothing is lost, the rows done so far stay done.
pub async fn reencrypt(db: &DatabaseConnection, secrets: &AesGcmSecretBox) -> anyhow::Result<Reencrypted> {
    let mut done = Reencrypted::default();
    let mut after = uuid::Uuid::nil();
    loop {
        let rows = integrations::Entity::find()
            .filter(integrations::Column::Id.gt(after))
            .order_by_asc(integrations::Column::Id)
            .limit(BATCH)
            .all(db)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        for row in rows {
            let resealed = secrets
                .reseal(&row.credentials_sealed)
                .map_err(|_| anyhow::anyhow!("integration {}: credentials open under neither key", row.id))?;
            if let Some(sealed) = resealed {
                let mut am: integrations::ActiveModel = row.into();
                am.credentials_sealed = Set(sealed);
                am.update(db).await.context("storing re-encrypted credentials")?;
                done.integrations += 1;
            }
        }
    }
    let mut after = uuid::Uuid::nil();
    loop {
        let rows = dingding_lock_passwords::Entity::find()
            .filter(dingding_lock_passwords::Column::Id.gt(after))
            .filter(dingding_lock_passwords::Column::SealedSecret.is_not_null())
            .order_by_asc(dingding_lock_passwords::Column::Id)
            .limit(BATCH)
            .all(db)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        for row in rows {
            let Some(sealed) = row.sealed_secret.as_deref() else { continue };
            let resealed = secrets
                .reseal(sealed)
                .map_err(|_| anyhow::anyhow!("lock password {}: secret opens under neither key", row.id))?;
            if let Some(sealed) = resealed {
                let mut am: dingding_lock_passwords::ActiveModel = row.into();
                am.sealed_secret = Set(Some(sealed));
                am.update(db).await.context("storing a re-encrypted lock password")?;
                done.lock_passwords += 1;
            }
        }
    }
    let mut after = uuid::Uuid::nil();
    loop {
        let rows = deliveries::Entity::find()
            .filter(deliveries::Column::Id.gt(after))
            .order_by_asc(deliveries::Column::Id)
            .limit(BATCH)
            .all(db)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        for row in rows {
            let mut payload = row.payload.clone();
            let (changed, unopened) = reseal_json(&mut payload, secrets);
            if unopened > 0 {
                tracing::warn!(delivery_id = %row.id, unopened, "a payload string looks sealed but opens under neither key");
                done.unopened += unopened;
            }
            if changed {
                let mut am: deliveries::ActiveModel = row.into();
                am.payload = Set(payload);
                am.update(db).await.context("storing a re-encrypted delivery payload")?;
                done.deliveries += 1;
            }
        }
    }
    Ok(done)
}

/// Reseals every sealed string in `v`; answers whether any changed, and how many looked
/// sealed but opened under neither key.
fn reseal_json(v: &mut Value, secrets: &AesGcmSecretBox) -> (bool, u64) {
    match v {
        Value::String(s) if looks_sealed(s) => match secrets.reseal(s) {
            Ok(Some(new)) => {
                *s = new;
                (true, 0)
            }
            Ok(None) => (false, 0),
            Err(_) => (false, 1),
        },
        Value::Array(items) => items.iter_mut().fold((false, 0), |(c, u), item| {
            let (c2, u2) = reseal_json(item, secrets);
            (c | c2, u + u2)
        }),
        Value::Object(map) => map.values_mut().fold((false, 0), |(c, u), item| {
            let (c2, u2) = reseal_json(item, secrets);
            (c | c2, u + u2)
        }),
        _ => (false, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{generate_key, parse_key};
    use domain::security::SecretBox as _;

    #[test]
    fn sealed_strings_anywhere_in_a_payload_are_resealed() {
        let (old_key, new_key) = (parse_key(&generate_key()).expect("key"), parse_key(&generate_key()).expect("key"));
        let old = AesGcmSecretBox::new(old_key.clone()).expect("box");
        let rotating = AesGcmSecretBox::new(new_key.clone()).and_then(|b| b.with_previous(Some(old_key))).expect("box");
        let current = AesGcmSecretBox::new(new_key).expect("box");
        let mut payload = serde_json::json!({
            "AddPassword": {"sealed": old.seal(b"123456").expect("seal"), "name": "v1: not sealed?", "n": 3},
            "list": [rotating.seal(b"fresh").expect("seal")],
        });
        // "v1: not sealed?" looks sealed but opens under neither key: counted, left alone.
        assert_eq!(reseal_json(&mut payload, &rotating), (true, 1));
        assert_eq!(payload["AddPassword"]["name"], "v1: not sealed?");
        let sealed = payload["AddPassword"]["sealed"].as_str().expect("sealed");
        assert_eq!(current.open(sealed).expect("open"), b"123456");
        assert_eq!(reseal_json(&mut payload, &rotating), (false, 1), "a second run changes nothing");
    }
}
