//! The load tool's client: a raw c2s connection (plain TCP, SASL PLAIN, bind) to Prosody or
//! ejabberd, whose reader never builds an XML tree. It splits the stream into top-level
//! stanzas with a byte scan and inspects each with substring searches: the `from` and
//! `type` of presences, status 110 (self-presence), and a marker embedded in message bodies
//! (`~bm<sender>.<seq>.<send time µs>~`) that carries what counting and latency need;
//! marked messages with a XEP-0359 stanza-id (what an archive such as muc_mam adds) are
//! counted too.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use memchr::memmem;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedSender;

use muc_harness::ejabberd::PASSWORD;
use muc_harness::prosody::{DOMAIN, MUC_DOMAIN};
use muc_harness::xmpp::quick_ack;
use muc_harness::{err, Result};

/// Microseconds since the first call (the clock every marker and latency uses).
pub fn now_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// Room `r<n>` on the MUC service.
pub fn room_jid(room: u32) -> String {
    format!("r{room}@{MUC_DOMAIN}")
}

/// A nick: a kind letter (`n` for long-lived occupants, `c` for churners) and a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Nick {
    pub kind: u8,
    pub num: u32,
}

impl Nick {
    pub fn n(num: u32) -> Nick {
        Nick { kind: b'n', num }
    }
    pub fn c(num: u32) -> Nick {
        Nick { kind: b'c', num }
    }
    fn key(self, room: u32) -> u64 {
        ((room as u64) << 33) | ((self.kind as u64 & 1) << 32) | self.num as u64
    }
}

impl std::fmt::Display for Nick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.kind as char, self.num)
    }
}

pub fn join_xml(room: u32, nick: Nick) -> String {
    format!(
        "<presence to='{}/{nick}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>",
        room_jid(room)
    )
}

pub fn leave_xml(room: u32, nick: Nick) -> String {
    format!("<presence type='unavailable' to='{}/{nick}'/>", room_jid(room))
}

/// A groupchat message of about `size` bytes of body, carrying the marker.
pub fn groupchat_xml(room: u32, sender: u32, seq: u32, size: usize) -> String {
    let mut body = format!("~bm{sender}.{seq}.{}~", now_us());
    while body.len() < size {
        body.push_str(" lorem ipsum");
    }
    format!(
        "<message to='{}' type='groupchat' id='m{sender}.{seq}'><body>{body}</body></message>",
        room_jid(room)
    )
}

/// What a reader tells the scenario driver.
#[derive(Debug)]
pub enum EventKind {
    /// Own presence (status 110) in `room`: joined, or left if `left`.
    SelfPresence { room: u32, left: bool },
    /// The client's own groupchat message came back (the reflection).
    Echo,
    /// A stanza of type error (its start tag).
    Error(String),
    /// The stream ended.
    Closed(String),
}

#[derive(Debug)]
pub struct Event {
    pub client: u32,
    pub kind: EventKind,
}

/// Totals over all clients, for waiting until a scenario's deliveries have all arrived.
#[derive(Default)]
pub struct Totals {
    pub available: AtomicU64,
    pub unavailable: AtomicU64,
    pub marked: AtomicU64,
    /// Marked messages that carried a stanza-id (`urn:xmpp:sid:0`).
    pub stanza_ids: AtomicU64,
    pub other_messages: AtomicU64,
    pub errors: AtomicU64,
    /// Presences received by clients whose role is `tracked`.
    pub tracked_available: AtomicU64,
    pub tracked_unavailable: AtomicU64,
}

impl Totals {
    pub fn snapshot(&self) -> [u64; 5] {
        [
            self.available.load(Ordering::Relaxed),
            self.unavailable.load(Ordering::Relaxed),
            self.marked.load(Ordering::Relaxed),
            self.other_messages.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        ]
    }
}

/// What one client received, for the completeness check.
#[derive(Default)]
pub struct Received {
    pub available: u64,
    /// Available presences from `n` nicks (long-lived occupants).
    pub available_n: u64,
    pub unavailable: u64,
    /// Distinct (room, nick) of available / unavailable presences.
    pub available_set: HashSet<u64>,
    pub unavailable_set: HashSet<u64>,
    /// Distinct (sender, seq) of marked messages, and how many arrived twice.
    pub marked: HashSet<u64>,
    pub duplicates: u64,
    pub errors: Vec<String>,
    /// Send→receive latencies in µs (observer only).
    pub latencies: Vec<u32>,
    pub closed: Option<String>,
}

impl Received {
    pub fn saw_available(&self, room: u32, nick: Nick) -> bool {
        self.available_set.contains(&nick.key(room))
    }
    pub fn saw_unavailable(&self, room: u32, nick: Nick) -> bool {
        self.unavailable_set.contains(&nick.key(room))
    }
    pub fn saw_message(&self, sender: u32, seq: u32) -> bool {
        self.marked.contains(&(((sender as u64) << 32) | seq as u64))
    }
}

/// What the reader of one client knows about its role.
pub struct Role {
    /// Echoes of this sender index are reported as events.
    pub sender: Option<u32>,
    /// Record latencies of every marked message.
    pub observer: bool,
    /// Count presences in the tracked totals.
    pub tracked: bool,
}

pub struct Client {
    pub idx: u32,
    writer: OwnedWriteHalf,
    pub received: Arc<Mutex<Received>>,
    pub role: Arc<Mutex<Role>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Client {
    pub async fn connect(
        addr: SocketAddr,
        idx: u32,
        totals: Arc<Totals>,
        events: UnboundedSender<Event>,
        timeout: Duration,
    ) -> Result<Client> {
        let user = format!("u{idx}");
        let (read, writer, jid, leftover) = tokio::time::timeout(timeout, handshake(addr, &user))
            .await
            .map_err(|_| err!("connecting as {user} timed out"))??;
        let received = Arc::new(Mutex::new(Received::default()));
        let role = Arc::new(Mutex::new(Role { sender: None, observer: false, tracked: true }));
        let reader = tokio::spawn(read_loop(
            read,
            leftover,
            ReaderCtx { idx, totals, events, received: received.clone(), role: role.clone() },
        ));
        let _ = jid;
        Ok(Client { idx, writer, received, role, reader })
    }

    pub async fn send(&mut self, xml: &str) -> Result<()> {
        self.writer.write_all(xml.as_bytes()).await.map_err(|e| err!("u{}: send failed: {e}", self.idx))
    }
}

async fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, pat: &[u8]) -> Result<usize> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = memmem::find(buf, pat) {
            // The end of the tag the pattern is in.
            if let Some(gt) = memchr::memchr(b'>', &buf[i..]) {
                return Ok(i + gt + 1);
            }
        }
        if memmem::find(buf, b"<failure").is_some() || memmem::find(buf, b"<stream:error").is_some() {
            return Err(err!("server refused: {}", String::from_utf8_lossy(buf)));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(err!("connection closed during the handshake"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn open_stream(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<()> {
    let header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{DOMAIN}' version='1.0'>"
    );
    stream.write_all(header.as_bytes()).await?;
    let end = read_until(stream, buf, b"</stream:features").await?;
    buf.drain(..end);
    Ok(())
}

/// SASL PLAIN and bind; returns the halves, the bound JID and bytes read past the bind reply.
async fn handshake(addr: SocketAddr, user: &str) -> Result<(OwnedReadHalf, OwnedWriteHalf, String, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| err!("cannot connect to {addr}: {e}"))?;
    stream.set_nodelay(true)?;
    let mut buf = Vec::new();
    open_stream(&mut stream, &mut buf).await?;
    // Prosody's bench config accepts any password; ejabberd's accounts have this one.
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{PASSWORD}"));
    let auth = format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>");
    stream.write_all(auth.as_bytes()).await?;
    let end = read_until(&mut stream, &mut buf, b"<success").await?;
    buf.drain(..end);
    open_stream(&mut stream, &mut buf).await?;
    let bind = "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>b</resource></bind></iq>";
    stream.write_all(bind.as_bytes()).await?;
    let end = read_until(&mut stream, &mut buf, b"</iq").await?;
    let reply = &buf[..end];
    let jid = match (memmem::find(reply, b"<jid>"), memmem::find(reply, b"</jid>")) {
        (Some(a), Some(b)) if a + 5 <= b => String::from_utf8_lossy(&reply[a + 5..b]).into_owned(),
        _ => return Err(err!("bind failed: {}", String::from_utf8_lossy(reply))),
    };
    let leftover = buf[end..].to_vec();
    let (read, writer) = stream.into_split();
    Ok((read, writer, jid, leftover))
}

struct ReaderCtx {
    idx: u32,
    totals: Arc<Totals>,
    events: UnboundedSender<Event>,
    received: Arc<Mutex<Received>>,
    role: Arc<Mutex<Role>>,
}

async fn read_loop(mut read: OwnedReadHalf, leftover: Vec<u8>, ctx: ReaderCtx) {
    let mut splitter = Splitter::new(1);
    let mut chunk = vec![0u8; 65536];
    let mut stanzas: Vec<(usize, usize)> = Vec::new();
    splitter.feed(&leftover, &mut stanzas);
    ctx.handle(&splitter, &stanzas);
    let why = loop {
        let n = match read.read(&mut chunk).await {
            Ok(0) => break "connection closed by server".to_owned(),
            Ok(n) => n,
            Err(e) => break format!("read failed: {e}"),
        };
        quick_ack(&read);
        splitter.feed(&chunk[..n], &mut stanzas);
        ctx.handle(&splitter, &stanzas);
        if splitter.ended {
            break "server closed the stream".to_owned();
        }
    };
    ctx.received.lock().unwrap().closed = Some(why.clone());
    let _ = ctx.events.send(Event { client: ctx.idx, kind: EventKind::Closed(why) });
}

impl ReaderCtx {
    fn handle(&self, splitter: &Splitter, stanzas: &[(usize, usize)]) {
        if stanzas.is_empty() {
            return;
        }
        let (sender, observer, tracked) = {
            let role = self.role.lock().unwrap();
            (role.sender, role.observer, role.tracked)
        };
        let now = now_us();
        let mut rec = self.received.lock().unwrap();
        for &(a, b) in stanzas {
            let s = &splitter.buf[a..b];
            let tag_end = memchr::memchr(b'>', s).map(|i| i + 1).unwrap_or(s.len());
            let tag = &s[..tag_end];
            let kind = attr(tag, b" type='");
            if kind == Some(b"error") {
                let text = String::from_utf8_lossy(s).into_owned();
                self.totals.errors.fetch_add(1, Ordering::Relaxed);
                rec.errors.push(text.clone());
                let _ = self.events.send(Event { client: self.idx, kind: EventKind::Error(text) });
                continue;
            }
            if s.starts_with(b"<presence") {
                let Some((room, nick)) = attr(tag, b" from='").and_then(parse_from) else { continue };
                let left = kind == Some(b"unavailable");
                if left {
                    rec.unavailable += 1;
                    rec.unavailable_set.insert(nick.key(room));
                    self.totals.unavailable.fetch_add(1, Ordering::Relaxed);
                    if tracked {
                        self.totals.tracked_unavailable.fetch_add(1, Ordering::Relaxed);
                    }
                } else {
                    rec.available += 1;
                    rec.available_n += (nick.kind == b'n') as u64;
                    rec.available_set.insert(nick.key(room));
                    self.totals.available.fetch_add(1, Ordering::Relaxed);
                    if tracked {
                        self.totals.tracked_available.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if memmem::find(s, b"code='110'").is_some() {
                    let _ = self
                        .events
                        .send(Event { client: self.idx, kind: EventKind::SelfPresence { room, left } });
                }
            } else if s.starts_with(b"<message") {
                match memmem::find(s, b"~bm").and_then(|i| parse_marker(&s[i + 3..])) {
                    Some((from, seq, sent)) => {
                        if !rec.marked.insert(((from as u64) << 32) | seq as u64) {
                            rec.duplicates += 1;
                        }
                        self.totals.marked.fetch_add(1, Ordering::Relaxed);
                        if memmem::find(s, b"urn:xmpp:sid:0").is_some() {
                            self.totals.stanza_ids.fetch_add(1, Ordering::Relaxed);
                        }
                        if observer {
                            rec.latencies.push(now.saturating_sub(sent).min(u32::MAX as u64) as u32);
                        }
                        if sender == Some(from) {
                            let _ = self.events.send(Event { client: self.idx, kind: EventKind::Echo });
                        }
                    }
                    None => {
                        self.totals.other_messages.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

/// The value of the attribute whose ` name='` prefix is given, in a start tag.
fn attr<'a>(tag: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let i = memmem::find(tag, prefix)? + prefix.len();
    let len = memchr::memchr(b'\'', &tag[i..])?;
    Some(&tag[i..i + len])
}

fn number(s: &[u8]) -> Option<(u64, &[u8])> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let n = std::str::from_utf8(&s[..digits]).ok()?.parse().ok()?;
    Some((n, &s[digits..]))
}

/// `r<room>@<service>/<kind><num>` → (room, nick).
fn parse_from(from: &[u8]) -> Option<(u32, Nick)> {
    let (room, rest) = number(from.strip_prefix(b"r")?)?;
    let slash = memchr::memchr(b'/', rest)?;
    let nick = &rest[slash + 1..];
    let kind = *nick.first()?;
    let (num, tail) = number(&nick[1..])?;
    if !tail.is_empty() {
        return None;
    }
    Some((room as u32, Nick { kind, num: num as u32 }))
}

/// `<sender>.<seq>.<µs>~` → (sender, seq, µs).
fn parse_marker(s: &[u8]) -> Option<(u32, u32, u64)> {
    let (sender, s) = number(s)?;
    let (seq, s) = number(s.strip_prefix(b".")?)?;
    let (sent, s) = number(s.strip_prefix(b".")?)?;
    s.strip_prefix(b"~")?;
    Some((sender as u32, seq as u32, sent))
}

/// Splits a byte stream into top-level elements (depth counted from the stream element).
/// Prosody and ejabberd escape `<` and `>` in text and attribute values, and send no
/// comments or CDATA, so a tag is always the bytes from a `<` to the next `>`.
pub struct Splitter {
    pub buf: Vec<u8>,
    depth: i32,
    pos: usize,
    start: usize,
    pub ended: bool,
}

impl Splitter {
    pub fn new(depth: i32) -> Splitter {
        Splitter { buf: Vec::new(), depth, pos: 0, start: 0, ended: false }
    }

    /// Appends `data`; `out` gets the (start, end) ranges in `buf` of the stanzas completed.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<(usize, usize)>) {
        out.clear();
        // Drop what earlier calls finished with: everything before the stanza in progress.
        let keep_from = if self.depth >= 2 { self.start } else { self.pos };
        if keep_from > 0 {
            self.buf.drain(..keep_from);
            self.pos -= keep_from;
            self.start = self.start.saturating_sub(keep_from);
        }
        self.buf.extend_from_slice(data);
        loop {
            let Some(lt) = memchr::memchr(b'<', &self.buf[self.pos..]).map(|i| self.pos + i) else {
                self.pos = self.buf.len();
                break;
            };
            let Some(gt) = memchr::memchr(b'>', &self.buf[lt..]).map(|i| lt + i) else {
                self.pos = lt;
                break;
            };
            let next = self.buf.get(lt + 1).copied();
            if next == Some(b'/') {
                self.depth -= 1;
                if self.depth == 1 {
                    out.push((self.start, gt + 1));
                } else if self.depth <= 0 {
                    self.ended = true;
                }
            } else if next == Some(b'?') || next == Some(b'!') {
            } else if self.buf[gt - 1] == b'/' {
                if self.depth == 1 {
                    out.push((lt, gt + 1));
                }
            } else {
                self.depth += 1;
                if self.depth == 2 {
                    self.start = lt;
                }
            }
            self.pos = gt + 1;
        }
    }
}

/// Connects clients `u<from>`..`u<from+count-1>`, at most 50 handshakes at a time, in
/// order of their index.
pub async fn connect_many(
    addrs: &[SocketAddr],
    from: u32,
    count: u32,
    totals: &Arc<Totals>,
    tx: &UnboundedSender<Event>,
) -> Result<Vec<Client>> {
    let mut set = tokio::task::JoinSet::new();
    let mut next = from;
    let mut got = Vec::new();
    while next < from + count || !set.is_empty() {
        while next < from + count && set.len() < 50 {
            let addr = addrs[next as usize % addrs.len()];
            set.spawn(Client::connect(addr, next, totals.clone(), tx.clone(), Duration::from_secs(30)));
            next += 1;
        }
        match set.join_next().await {
            Some(Ok(Ok(c))) => got.push(c),
            Some(Ok(Err(e))) => return Err(e),
            Some(Err(e)) => return Err(err!("connect task failed: {e}")),
            None => break,
        }
    }
    got.sort_by_key(|c| c.idx);
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitter_finds_stanzas_across_chunks() {
        let text = b"<presence from='r1@c/n2'><x xmlns='a'><item role='p'/><status code='110'/></x></presence><message type='groupchat'><body>~bm1.2.3~ x</body></message><iq id='x'/>";
        let mut s = Splitter::new(1);
        let mut out = Vec::new();
        let mut got = Vec::new();
        for chunk in text.chunks(7) {
            s.feed(chunk, &mut out);
            for &(a, b) in &out {
                got.push(String::from_utf8_lossy(&s.buf[a..b]).into_owned());
            }
        }
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].starts_with("<presence") && got[0].ends_with("</presence>"));
        assert!(got[2] == "<iq id='x'/>");
        assert_eq!(parse_from(b"r12@conference.localhost/c7"), Some((12, Nick::c(7))));
        assert_eq!(parse_marker(b"3.4.567~ pad"), Some((3, 4, 567)));
    }
}
