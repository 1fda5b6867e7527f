//! Tariffs, meter accounts and ledgers over HTTP.
