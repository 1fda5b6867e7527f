//! Devices, homes, alarms, inbound events and the audit log over HTTP (written next).
