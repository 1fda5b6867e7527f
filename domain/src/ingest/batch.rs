//! Meter reports applied in batches: many stored reports of one integration (a DAS's
//! readings under load) written in one unit with a fixed number of round trips,
//! whatever their count. Each report is applied exactly as [`IngestService::apply_answered`]
//! would apply its facts (`Status`, `Readings`, then `MeterTotal`s the source answers
//! itself): its event claimed, then finished PROCESSED with its answer, its device's status and readings written, its
//! registers billed in order on its meter's account, its answer kept with the event.
//! Reports of one meter in one batch are billed one after the other, in their order.

use super::{Held, IngestService};
use crate::DomainResult;
use crate::devices::{Device, DeviceStatus, NewReading, Observed};
use crate::ids::{DeviceId, InboundEventId, IntegrationId, TariffId, TenantId};
use crate::tariffs::billing::bill_reading;
use crate::tariffs::{AccountSteps, MeterAccount, MeterBill, Tariff};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// One stored report of a meter.
#[derive(Debug, Clone)]
pub struct MeterReport {
    pub event: InboundEventId,
    /// The meter's external id on the integration.
    pub external_id: String,
    pub status: DeviceStatus,
    pub readings: Vec<NewReading>,
    /// Its registers to bill, in order: (total, read at, ledger reference).
    pub totals: Vec<(Decimal, DateTime<Utc>, String)>,
}

/// What became of one report of a batch.
#[derive(Debug, Clone)]
pub enum MeterOutcome {
    /// Written now; its answer (built from its bills) is kept with its event.
    Applied { device: Box<Device>, answer: serde_json::Value },
    /// Its event was applied before: nothing written.
    Before,
    /// No such meter on the integration: nothing written (the event keeps its state).
    UnknownMeter,
}

/// Builds report `i`'s answer from its device and what its registers were billed.
pub type BatchAnswer<'a> = &'a (dyn Fn(usize, &Device, &[MeterBill]) -> serde_json::Value + Sync);

impl IngestService {
    /// Applies `reports` of `integration` in one unit (see the module doc); outcomes in
    /// the reports' order.
    ///
    /// # Errors
    /// Whatever a write returns; then nothing of the batch is written (the caller may
    /// apply the reports one by one).
    pub async fn apply_meter_reports(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        reports: &[MeterReport],
        answer: BatchAnswer<'_>,
    ) -> DomainResult<Vec<MeterOutcome>> {
        if self.billing.is_none() {
            return Err(crate::DomainError::Unknown(anyhow::anyhow!("meter batches need billing")));
        }
        let mut externals: Vec<String> = reports.iter().map(|r| r.external_id.clone()).collect();
        externals.sort();
        externals.dedup();
        // The meters and their accounts are locked in the unit (in id order), not in this
        // process: batches, recharges and other units of the same meter wait on the rows.
        let unit = self.units.begin().await?;
        let found = unit.devices().find_by_externals(tenant, integration, &externals).await?;
        let by_external: HashMap<&str, &Device> = found.iter().map(|d| (d.external_id.as_str(), d)).collect();
        let known: Vec<InboundEventId> =
            reports.iter().filter(|r| by_external.contains_key(r.external_id.as_str())).map(|r| r.event).collect();
        let claimed: HashSet<InboundEventId> = unit.claim_events(tenant, &known).await?.into_iter().collect();
        // A report twice in one batch (a resend queued beside its first) is applied once.
        let mut seen = HashSet::new();
        let now: Vec<usize> = (0..reports.len())
            .filter(|i| claimed.contains(&reports[*i].event) && seen.insert(reports[*i].event))
            .collect();

        // Status and readings: one entry per device, its reports' in order.
        let mut observed: Vec<Observed> = Vec::new();
        let mut slot: HashMap<DeviceId, usize> = HashMap::new();
        for &i in &now {
            let r = &reports[i];
            let d = by_external[r.external_id.as_str()];
            let at = *slot.entry(d.id).or_insert_with(|| {
                observed.push(Observed { device: d.clone(), status: DeviceStatus::default(), readings: Vec::new() });
                observed.len() - 1
            });
            let o = &mut observed[at];
            merge_status(&mut o.status, &r.status);
            o.readings.extend(r.readings.iter().cloned());
        }
        let held = Arc::new(Held::default());
        let devices = self.devices.within(unit.devices(), held.clone());
        let written = devices.observe_many(tenant, observed).await?;
        // The unit's repositories go before it commits.
        drop(devices);
        let written: HashMap<DeviceId, Device> = written.into_iter().map(|d| (d.id, d)).collect();

        // Billing: each meter's account, its reports' registers in order.
        let metered: Vec<DeviceId> = written.keys().copied().collect();
        let accounts = unit.accounts().lock_by_devices(tenant, &metered).await?;
        let mut tariffs: HashMap<TariffId, Vec<Tariff>> = HashMap::new();
        for t in accounts.iter().filter_map(|a| a.tariff_id) {
            if let std::collections::hash_map::Entry::Vacant(v) = tariffs.entry(t) {
                v.insert(unit.tariffs().versions_of(tenant, t).await?);
            }
        }
        let mut state: HashMap<DeviceId, AccountSteps> =
            accounts.into_iter().map(|a| (a.device_id, AccountSteps { expected: a, steps: Vec::new() })).collect();
        let mut outcomes = vec![MeterOutcome::Before; reports.len()];
        let mut answers = Vec::with_capacity(now.len());
        for (i, r) in reports.iter().enumerate() {
            if !by_external.contains_key(r.external_id.as_str()) {
                outcomes[i] = MeterOutcome::UnknownMeter;
            }
        }
        for &i in &now {
            let r = &reports[i];
            let device = &written[&by_external[r.external_id.as_str()].id];
            let mut bills = Vec::new();
            if let Some(acc) = state.get_mut(&device.id) {
                let versions = acc.expected.tariff_id.and_then(|t| tariffs.get(&t)).map_or(&[][..], Vec::as_slice);
                for (total, at, reference) in &r.totals {
                    let current = acc.steps.last().map_or(&acc.expected, |(a, _)| a).clone();
                    let bill = bill(current, versions, *total, *at, reference)?;
                    if let Some(step) = bill.1 {
                        acc.steps.push(step);
                    }
                    bills.push(bill.0);
                }
            }
            let a = answer(i, device, &bills);
            answers.push((r.event, a.clone()));
            outcomes[i] = MeterOutcome::Applied { device: Box::new(device.clone()), answer: a };
        }
        let steps: Vec<AccountSteps> = state.into_values().filter(|s| !s.steps.is_empty()).collect();
        unit.accounts().save_steps(tenant, steps).await?;
        unit.finish_answered(tenant, answers).await?;
        unit.commit().await?;
        self.release(&held).await;
        Ok(outcomes)
    }
}

/// A later report's status over an earlier one's (what `set_status` twice would leave).
pub(super) fn merge_status(into: &mut DeviceStatus, s: &DeviceStatus) {
    into.online = s.online.or(into.online);
    into.battery = s.battery.or(into.battery);
    into.signal = s.signal.or(into.signal);
    into.seen_at = s.seen_at.or(into.seen_at);
}

/// An account's state after a write, with the entry the write appends.
type Step = (MeterAccount, Option<crate::tariffs::LedgerDraft>);

/// One register billed on `current`: the bill, and the step to write (none when nothing
/// changed).
pub(super) fn bill(
    current: MeterAccount,
    versions: &[Tariff],
    total: Decimal,
    at: DateTime<Utc>,
    reference: &str,
) -> DomainResult<(MeterBill, Option<Step>)> {
    let mut next = current.clone();
    let b = bill_reading(&mut next, versions, total, at, reference.to_owned())?;
    let price = b.tariff.as_ref().map(|t| t.tiers.price_at(next.account.cycle_usage));
    let step = (b.entry.is_some() || next != current).then(|| (next.clone(), b.entry));
    Ok((MeterBill { account: next, entry: None, supply: b.supply, price, again: false }, step))
}
