//! Test harness for muc_rs: runs Prosody-style scansion scripts (`.scs`) with real XMPP
//! clients against a real Prosody that it starts itself.
//!
//! The pieces are usable on their own (restart tests and benchmarks reuse them):
//! - [`prosody`]: find installs, write a config, start/stop Prosody, inspect its log;
//! - [`xmpp`]: a lean async c2s client (plain TCP, SASL PLAIN, bind, kept stanza queue);
//! - [`xml`]: incremental stream parser and a compact serializer;
//! - [`script`]: the `.scs` parser; [`matcher`]: scansion's stanza matching rules;
//! - [`runner`]: runs one parsed script against one Prosody;
//! - [`core_runner`]: runs one in process against muc_rs's core, through [`core_host`];
//! - [`postgres`]: a throwaway PostgreSQL server on loopback for storage tests.

pub mod core_host;
pub mod core_runner;
pub mod ejabberd;
pub mod matcher;
pub mod postgres;
pub mod prosody;
pub mod runner;
pub mod script;
pub mod xml;
pub mod xmpp;

use std::fmt;

/// The harness's error: a message meant for a person reading a test report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(msg: impl Into<String>) -> Self {
        Error(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error(format!("I/O error: {e}"))
    }
}

impl From<minidom::Error> for Error {
    fn from(e: minidom::Error) -> Self {
        Error(format!("XML error: {e}"))
    }
}

/// Builds an [`Error`] from a format string.
#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => { $crate::Error(format!($($arg)*)) };
}

/// The entry of the harness's tools: parses the command line (a usage error exits 2) and
/// runs the tool on a single-threaded tokio runtime.
pub fn run_tool<C, F>(
    parse: impl FnOnce() -> std::result::Result<C, String>,
    run: impl FnOnce(C) -> F,
) -> std::process::ExitCode
where
    F: std::future::Future<Output = std::process::ExitCode>,
{
    let cli = match parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(run(cli))
}

/// A command-line path made absolute against the current directory (Prosody configs need
/// absolute paths).
pub fn absolute_path(p: String) -> std::path::PathBuf {
    let p = std::path::PathBuf::from(p);
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
    }
}
