//! Linkyard background jobs: the retry policy as data plus one pure function. Workers and
//! periodic pushes build on it (delivery engine).
#![forbid(unsafe_code)]

pub mod retry;
