//! Tickets and their files over HTTP.
