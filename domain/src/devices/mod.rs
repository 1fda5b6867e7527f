//! Devices of every kind the five protocols bring, their live state, latest readings and
//! reading history.

mod files;
mod models;
mod ports;
mod service;

pub use files::{DeviceFile, DeviceFileRepo, DeviceFileState, DeviceFiles, FileContent};
pub use models::{
    Device, DeviceFilter, DeviceKind, DeviceStatus, ExternalId, NewReading, Observed, Reading, UpsertDevice,
};
pub use ports::DeviceRepo;
pub use service::{DeviceChanges, DeviceService, MAX_READINGS, UpsertDeviceInput};
