//! Keeps Rust panics from unwinding into the host (Lua or Erlang), and turns them into a
//! log line. Used by both bindings at their boundary.
//!
//! `run` catches the unwind; a panic hook (installed once, chained to the previous one)
//! records the message and location of panics raised inside `run` instead of printing them
//! to stderr, so the log line can say where the panic happened. Panics elsewhere in this
//! library still go to the previous hook. The hook is this library's own: a cdylib carries
//! its own copy of std, so other Rust modules in the same process are not affected.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// How many `run` calls are active on this thread (they nest when `handle` re-enters).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The last panic recorded by the hook inside `run`.
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// Stanzas carrying `<panic xmlns=TEST_NS/>` make a binding panic when its host was created
/// with its test option armed (Prosody: `_test_panic = true`; ejabberd: `test_panic: true`),
/// for the tests that a panic stays an error reply and a log line.
pub const TEST_NS: &str = "urn:xmpp:muc-rs:test:0";

pub fn install_hook() {
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if DEPTH.with(Cell::get) > 0 {
                let message = payload_text(info.payload());
                let text = match info.location() {
                    Some(at) => format!("{message} (at {}:{})", at.file(), at.line()),
                    None => message,
                };
                LAST.with(|last| *last.borrow_mut() = Some(text));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`; a panic inside it becomes `Err(message)`.
///
/// `AssertUnwindSafe`: after a panic the caller only logs and replies; the state `f` may
/// have left half-updated (the MUC host) is kept, by design, so the service keeps running.
pub fn run<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    DEPTH.with(|d| d.set(d.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    DEPTH.with(|d| d.set(d.get() - 1));
    result.map_err(|payload| {
        LAST.with(|last| last.borrow_mut().take()).unwrap_or_else(|| payload_text(&*payload))
    })
}

fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}
