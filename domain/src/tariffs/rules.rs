//! Tariff rules (being written).
