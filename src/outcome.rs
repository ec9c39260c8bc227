//! What handling one stanza produces: records to store, stanzas to deliver, steps left to
//! the host's modules, and log lines (see [`crate::protocol`]).

use crate::hooks::Event;
use crate::protocol::{Question, Store};
use crate::xml::{error_reply, StanzaError};
use jid::Jid;
use minidom::Element;

/// One stanza to deliver to one or more recipients.
///
/// The stanza carries no `to`: the host sets it for each recipient in turn, so a
/// broadcast builds its payload once instead of once per recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub stanza: Element,
    pub to: Vec<Jid>,
    /// A hint: the same stanza is likely to be delivered again (an occupant's presence in
    /// a big room goes to every later newcomer), so a host may keep what it built for it.
    pub repeatable: bool,
}

impl Delivery {
    pub fn new(stanza: Element, to: Vec<Jid>) -> Delivery {
        Delivery { stanza, to, repeatable: false }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Everything the host must do after one call into the core, in order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// Written before anything else is done; then the host calls
    /// [`crate::MucHost::confirm`] (see [`crate::protocol`]).
    pub stores: Vec<Store>,
    pub deliveries: Vec<Delivery>,
    /// Steps left to the host's modules, each with the number of deliveries that go out
    /// before it (see [`crate::hooks`]).
    pub events: Vec<(usize, Event)>,
    pub log: Vec<(LogLevel, String)>,
    /// Set when the core stopped to ask its host: nothing changed and nothing else is to
    /// be done; the host answers and hands the stanza back (see [`crate::protocol`]).
    pub ask: Option<Question>,
}

impl Outcome {
    pub fn send(&mut self, stanza: Element, to: Jid) {
        self.send_many(stanza, vec![to]);
    }

    /// Once the core stopped to ask, nothing more goes out (a step that asked returns an
    /// error its caller would answer with).
    pub fn send_many(&mut self, stanza: Element, to: Vec<Jid>) {
        if !to.is_empty() && self.ask.is_none() {
            self.deliveries.push(Delivery::new(stanza, to));
        }
    }

    /// Like `send_many`, for a stanza that will likely be sent again unchanged.
    pub fn send_repeatable(&mut self, stanza: Element, to: Vec<Jid>) {
        if !to.is_empty() && self.ask.is_none() {
            self.deliveries.push(Delivery { stanza, to, repeatable: true });
        }
    }

    /// Answers `stanza` with an error from `by` (the room or the service; `None`: no
    /// `by`), unless it is itself an error.
    pub fn error(&mut self, stanza: &Element, error: StanzaError, by: Option<&str>) {
        if stanza.attr("type") == Some("error") {
            return;
        }
        if let Some(to) = stanza.attr("from").and_then(|f| f.parse::<Jid>().ok()) {
            self.send(error_reply(stanza, &error, by), to);
        }
    }

    pub fn log(&mut self, level: LogLevel, message: impl Into<String>) {
        self.log.push((level, message.into()));
    }

    /// Leaves a step to the host, after the deliveries queued so far.
    pub fn fire(&mut self, event: Event) {
        if self.ask.is_some() {
            return;
        }
        self.events.push((self.deliveries.len(), event));
    }

    /// Stops to ask the host: what was queued is forgotten (it will be queued again when
    /// the core runs with the answer).
    pub fn ask(&mut self, question: Question) {
        self.deliveries.clear();
        self.events.clear();
        self.stores.clear();
        self.ask = Some(question);
    }

    /// The module question asked, if that is what the core stopped for.
    pub fn module_question(&self) -> Option<&crate::hooks::Question> {
        match &self.ask {
            Some(Question::Module(question)) => Some(question),
            _ => None,
        }
    }

    /// Where the queue stands now, to go back to with [`Outcome::truncate`].
    pub fn mark(&self) -> (usize, usize) {
        (self.deliveries.len(), self.events.len())
    }

    /// Forgets what was queued since `mark` (a change that was undone).
    pub fn truncate(&mut self, (deliveries, events): (usize, usize)) {
        self.deliveries.truncate(deliveries);
        self.events.truncate(events);
    }
}
