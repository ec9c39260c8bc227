//! A lean async XMPP client for tests: plain TCP, SASL PLAIN, stream restart, resource
//! binding. It sends nothing on its own (no presence, no roster request) and keeps every
//! received stanza in arrival order until the caller takes it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::xml::{self, StreamEvent, StreamParser, NS_STREAM};
use crate::{err, Error, Result};

const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// Id prefix of the hidden pings used by [`Connection::sync`].
const SYNC_ID: &str = "scansion-sync-";

pub struct ConnectOptions {
    pub addr: SocketAddr,
    /// `user@domain`, optionally with a resource (used when `resource` is `None`).
    pub jid: String,
    pub password: String,
    /// `None` lets the server pick a random resource.
    pub resource: Option<String>,
    /// Limit for the whole handshake.
    pub timeout: Duration,
    /// Keep a serialized copy of all traffic (for reports; a load test wants it off).
    pub record_traffic: bool,
}

/// One line of a connection's traffic log.
#[derive(Debug, Clone)]
pub struct Traffic {
    pub at: Instant,
    pub incoming: bool,
    pub xml: String,
}

/// Reads stream events from the socket; a stream restart swaps in a fresh parser.
struct XmlReader {
    read: OwnedReadHalf,
    buf: Vec<u8>,
    parser: StreamParser,
}

impl XmlReader {
    /// Cancel-safe: bytes are only consumed by the synchronous parse step.
    async fn next(&mut self) -> Result<StreamEvent> {
        let mut chunk = [0u8; 16384];
        loop {
            let mut slice = &self.buf[..];
            let parsed = self.parser.parse(&mut slice);
            let used = self.buf.len() - slice.len();
            self.buf.drain(..used);
            if let Some(ev) = parsed? {
                return Ok(ev);
            }
            let n = self.read.read(&mut chunk).await?;
            if n == 0 {
                return Err(err!("connection closed by server"));
            }
            quick_ack(&self.read);
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn next_stanza(&mut self) -> Result<Element> {
        match self.next().await? {
            StreamEvent::Stanza(el) => Ok(el),
            StreamEvent::Header(_) => Err(err!("unexpected stream header")),
            StreamEvent::End => Err(err!("server closed the stream")),
        }
    }
}

/// Acks at once instead of after the delayed-ACK timer: Prosody keeps Nagle on, so without
/// this a small reply (like a sync ping's) can wait ~40 ms for our ACK of the data before it.
/// Linux clears the flag after use, hence after every read.
pub fn quick_ack(read: &OwnedReadHalf) {
    use std::os::fd::AsRawFd;
    let fd = read.as_ref().as_raw_fd();
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on a socket we own, with a correctly sized option value.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

enum Incoming {
    /// A stanza and when it arrived.
    Stanza(Instant, Element),
    /// The stream ended; the text says how.
    End(String),
}

pub struct Connection {
    jid: FullJid,
    writer: OwnedWriteHalf,
    rx: mpsc::UnboundedReceiver<Incoming>,
    reader: JoinHandle<()>,
    kept: VecDeque<Element>,
    /// Why the stream ended, once it has.
    ended: Option<String>,
    next_sync: u64,
    record_traffic: bool,
    traffic: Vec<Traffic>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Connection {
    /// Connects, authenticates with SASL PLAIN and binds a resource.
    pub async fn connect(opts: &ConnectOptions) -> Result<Connection> {
        tokio::time::timeout(opts.timeout, Self::handshake(opts))
            .await
            .map_err(|_| err!("connecting as {} timed out", opts.jid))?
    }

    async fn handshake(opts: &ConnectOptions) -> Result<Connection> {
        let jid = Jid::new(&opts.jid).map_err(|e| err!("bad jid {:?}: {e}", opts.jid))?;
        let bare: BareJid = jid.to_bare();
        let user = bare.node().ok_or_else(|| err!("jid {bare} has no user part"))?.to_string();
        let domain = bare.domain().to_string();
        let resource = opts.resource.clone().or_else(|| jid.resource().map(|r| r.to_string()));

        let stream =
            TcpStream::connect(opts.addr).await.map_err(|e| err!("cannot connect to {}: {e}", opts.addr))?;
        stream.set_nodelay(true)?;
        let (read, mut writer) = stream.into_split();
        let mut reader = XmlReader { read, buf: Vec::new(), parser: StreamParser::new() };

        let features = open_stream(&mut reader, &mut writer, &domain).await?;
        let mechs = features
            .get_child("mechanisms", NS_SASL)
            .map(|m| m.children().map(|c| c.text()).collect::<Vec<_>>())
            .unwrap_or_default();
        if !mechs.iter().any(|m| m == "PLAIN") {
            return Err(err!("server offers no SASL PLAIN (mechanisms: {mechs:?})"));
        }
        let creds = format!("\0{user}\0{}", opts.password);
        let auth = format!(
            "<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{}</auth>",
            base64::engine::general_purpose::STANDARD.encode(creds)
        );
        writer.write_all(auth.as_bytes()).await?;
        let answer = reader.next_stanza().await?;
        if !answer.is("success", NS_SASL) {
            return Err(err!("authentication as {bare} failed: {}", xml::to_string(&answer)));
        }

        // SASL success: both sides restart their streams.
        reader.parser = StreamParser::new();
        let features = open_stream(&mut reader, &mut writer, &domain).await?;
        if features.get_child("bind", NS_BIND).is_none() {
            return Err(err!("server offers no resource binding"));
        }
        let resource_xml =
            resource.map(|r| format!("<resource>{}</resource>", xml::escape(&r))).unwrap_or_default();
        let bind = format!("<iq type='set' id='bind-1'><bind xmlns='{NS_BIND}'>{resource_xml}</bind></iq>");
        writer.write_all(bind.as_bytes()).await?;
        let answer = reader.next_stanza().await?;
        let bound =
            answer.get_child("bind", NS_BIND).and_then(|b| b.get_child("jid", NS_BIND)).map(|j| j.text());
        let jid = match (answer.attr("type"), bound) {
            (Some("result"), Some(j)) => {
                FullJid::new(&j).map_err(|e| err!("server bound a bad jid {j:?}: {e}"))?
            }
            _ => return Err(err!("bind failed: {}", xml::to_string(&answer))),
        };

        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(reader, tx));
        Ok(Connection {
            jid,
            writer,
            rx,
            reader,
            kept: VecDeque::new(),
            ended: None,
            next_sync: 0,
            record_traffic: opts.record_traffic,
            traffic: Vec::new(),
        })
    }

    /// The full JID bound at connect.
    pub fn jid(&self) -> &FullJid {
        &self.jid
    }

    /// Everything sent and received so far, except the hidden sync pings (if recorded).
    pub fn traffic(&self) -> &[Traffic] {
        &self.traffic
    }

    /// Why the stream ended, if it has.
    pub fn ended(&self) -> Option<&str> {
        self.ended.as_deref()
    }

    pub async fn send(&mut self, el: &Element) -> Result<()> {
        let text = xml::to_string(el);
        self.send_raw(&text).await
    }

    pub async fn send_raw(&mut self, text: &str) -> Result<()> {
        if self.record_traffic {
            self.traffic.push(Traffic { at: Instant::now(), incoming: false, xml: text.to_owned() });
        }
        self.write(text).await
    }

    async fn write(&mut self, text: &str) -> Result<()> {
        self.writer.write_all(text.as_bytes()).await.map_err(|e| err!("sending as {} failed: {e}", self.jid))
    }

    /// Files an incoming item; returns the id if it is a sync reply (not kept).
    fn accept(&mut self, item: Incoming) -> Option<String> {
        match item {
            Incoming::Stanza(at, el) => {
                if el.name() == "iq" {
                    if let Some(id) = el.attr("id").filter(|id| id.starts_with(SYNC_ID)) {
                        return Some(id.to_owned());
                    }
                }
                if self.record_traffic {
                    self.traffic.push(Traffic { at, incoming: true, xml: xml::to_string(&el) });
                }
                self.kept.push_back(el);
            }
            Incoming::End(why) => {
                if self.ended.is_none() {
                    self.ended = Some(why);
                }
            }
        }
        None
    }

    /// Moves whatever has already arrived into the kept queue, without waiting.
    pub fn pump(&mut self) {
        while let Ok(item) = self.rx.try_recv() {
            self.accept(item);
        }
    }

    /// Waits for one more item from the reader, up to `deadline`: `Some(sync reply id or
    /// None)` when an item came, `None` on timeout or once the stream has ended.
    async fn wait_one(&mut self, deadline: Instant) -> Option<Option<String>> {
        if self.ended.is_some() && self.rx.is_empty() {
            return None;
        }
        match tokio::time::timeout_at(deadline.into(), self.rx.recv()).await {
            Ok(Some(item)) => Some(self.accept(item)),
            Ok(None) => {
                self.ended.get_or_insert_with(|| "reader stopped".into());
                None
            }
            Err(_) => None,
        }
    }

    /// Round trip of a ping to the server: once it is answered, the server has processed
    /// everything this client sent before, and what it sent us before the answer is kept.
    pub async fn sync(&mut self, timeout: Duration) -> Result<()> {
        self.next_sync += 1;
        let id = format!("{SYNC_ID}{}", self.next_sync);
        let ping = format!(
            "<iq type='get' to='{}' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>",
            xml::escape(self.jid.domain().as_str())
        );
        self.write(&ping).await?;
        let deadline = Instant::now() + timeout;
        loop {
            match self.wait_one(deadline).await {
                Some(Some(got)) if got == id => return Ok(()),
                Some(_) => {}
                None => {
                    return Err(match &self.ended {
                        Some(why) => err!("{}: {why}", self.jid),
                        None => err!("{}: the server did not answer a ping in time", self.jid),
                    })
                }
            }
        }
    }

    /// The oldest kept stanza, waiting for one up to `deadline`. `Ok(None)` on timeout; an
    /// error once the stream has ended and nothing is left.
    pub async fn next_stanza(&mut self, deadline: Instant) -> Result<Option<Element>> {
        self.pump();
        loop {
            if let Some(el) = self.kept.pop_front() {
                return Ok(Some(el));
            }
            if let Some(why) = &self.ended {
                return Err(err!("{}: {why}", self.jid));
            }
            if self.wait_one(deadline).await.is_none() && self.ended.is_none() {
                return Ok(None);
            }
        }
    }

    /// Stanzas received and not yet taken.
    pub fn kept(&mut self) -> &VecDeque<Element> {
        self.pump();
        &self.kept
    }

    /// Closes the stream and waits (up to `timeout`) for the server to close its side.
    pub async fn close(&mut self, timeout: Duration) -> Result<()> {
        self.send_raw("</stream:stream>").await?;
        let deadline = Instant::now() + timeout;
        while self.ended.is_none() {
            if self.wait_one(deadline).await.is_none() && self.ended.is_none() {
                return Err(err!("{}: the server did not close the stream", self.jid));
            }
        }
        let _ = self.writer.shutdown().await;
        Ok(())
    }
}

/// Sends the stream header and returns the server's `<stream:features>`.
async fn open_stream(reader: &mut XmlReader, writer: &mut OwnedWriteHalf, domain: &str) -> Result<Element> {
    let header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='{NS_STREAM}' to='{}' version='1.0'>",
        xml::escape(domain)
    );
    writer.write_all(header.as_bytes()).await?;
    match reader.next().await? {
        StreamEvent::Header(_) => {}
        other => return Err(err!("expected a stream header, got {other:?}")),
    }
    let features = reader.next_stanza().await?;
    if !features.is("features", NS_STREAM) {
        return Err(err!("expected stream features, got {}", xml::to_string(&features)));
    }
    Ok(features)
}

async fn read_loop(mut reader: XmlReader, tx: mpsc::UnboundedSender<Incoming>) {
    loop {
        let item = match reader.next().await {
            Ok(StreamEvent::Stanza(el)) => Incoming::Stanza(Instant::now(), el),
            Ok(StreamEvent::End) => Incoming::End("server closed the stream".into()),
            Ok(StreamEvent::Header(_)) => Incoming::End("unexpected stream header".into()),
            Err(Error(why)) => Incoming::End(why),
        };
        let end = matches!(item, Incoming::End(_));
        if tx.send(item).is_err() || end {
            return;
        }
    }
}
