//! `muc-bench`: muc_rs against stock mod_muc on the same Prosody (or, with `--ejabberd`,
//! mod_muc_rs against ejabberd's own mod_muc on the same ejabberd), under the same load.
//! See `harness/src/bin/muc-bench.rs` for the command line.

pub mod client;
pub mod report;
pub mod scenario;
pub mod server;
