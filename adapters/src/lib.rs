//! Linkyard adapters: implementations of the domain ports (sea-orm repositories, crypto,
//! throttles, Redis) and, later, one module per vendor client.
#![forbid(unsafe_code)]

pub mod bus;
pub mod cache;
pub mod crypto;
pub mod db;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod redis_store;
pub mod storage;
pub mod throttle;
pub mod ticks;
pub mod vendors;
