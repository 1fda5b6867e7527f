//! Structured logs with tracing: JSON lines by default (`LINKYARD_LOG_FORMAT=text` for
//! humans), filtered by `RUST_LOG` (default `info`). Every line logged while serving a
//! request carries that request's `request_id`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let text = std::env::var("LINKYARD_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if text {
        builder.try_init()
    } else {
        builder.json().with_current_span(true).with_span_list(false).flatten_event(true).try_init()
    };
}
