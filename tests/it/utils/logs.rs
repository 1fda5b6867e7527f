//! Captures every log line of the servers under test so tests
//! can search them for secrets.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

fn logs() -> &'static Mutex<Vec<u8>> {
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut l) = logs().lock() {
            l.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs a process-wide subscriber at `debug` that writes into memory.
pub fn init() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug,hyper=info,h2=info,reqwest=info,rustls=info"))
            .json()
            .with_current_span(true)
            .with_writer(|| Capture)
            .try_init();
    });
}

/// Everything logged so far, by every server of this process.
pub fn captured() -> String {
    logs().lock().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default()
}
