//! Parser for scansion scripts (`.scs`), as described in shared/scansion-format.md.

use std::path::{Path, PathBuf};

use minidom::{Element, Node};

use crate::prosody::Version;
use crate::{err, xml, Result};

/// Header tag that adds a line to the generated Prosody config (global section).
pub const TAG_CONFIG: &str = "config:";
/// Header tag that adds a line inside the `Component "conference.localhost"` section.
pub const TAG_COMPONENT_CONFIG: &str = "component-config:";
/// Header tag that restricts a script to some Prosody versions (`## prosody: 13`, or several
/// separated by spaces or commas); a script without it runs on every version.
pub const TAG_PROSODY: &str = "prosody:";
/// `## not-on-ejabberd: why`: the script checks what the server does, not the MUC (say,
/// ejabberd refuses a malformed JID before the MUC sees it); the ejabberd run skips it.
pub const TAG_NOT_ON_EJABBERD: &str = "not-on-ejabberd:";
/// `## needs-server: why`: the script checks what the server around the MUC does (say,
/// mod_disco's answer for the service); the in-process tier, which has no server, skips it.
pub const TAG_NEEDS_SERVER: &str = "needs-server:";
/// `## ejabberd-only: why`: the script checks what ejabberd's own modules do around the
/// MUC (say, mod_mam's archive); the Prosody and in-process runs skip it.
pub const TAG_EJABBERD_ONLY: &str = "ejabberd-only:";
/// `## ejabberd-module: mod_mam: {}`: a module (a line of `modules:` in ejabberd.yml) the
/// ejabberd runs load besides the MUC.
pub const TAG_EJABBERD_MODULE: &str = "ejabberd-module:";
/// `## ejabberd-room-option: mam: true`: a key of the MUC module's `default_room_options`
/// on ejabberd, besides those that give new rooms Prosody's defaults.
pub const TAG_EJABBERD_ROOM_OPTION: &str = "ejabberd-room-option:";
/// `## beyond-stock: why`: the script tests a feature stock Prosody's MUC does not have
/// (say, ejabberd's MucSub): on Prosody it runs on muc_rs only, the stock run skipped with
/// the reason shown; ejabberd runs it on stock mod_muc and on mod_muc_rs as any script, the
/// stock run proving it describes real behaviour.
pub const TAG_BEYOND_STOCK: &str = "beyond-stock:";
/// `## expects-log-error: text`: the script makes a module fail on purpose; the log's
/// error entries (with their tracebacks) that contain `text` are expected, and there must
/// be at least one.
pub const TAG_EXPECTS_LOG_ERROR: &str = "expects-log-error:";

#[derive(Debug, Clone)]
pub struct Script {
    pub path: PathBuf,
    pub title: String,
    pub description: Vec<String>,
    /// `## tag` lines of the header, without the `##`.
    pub tags: Vec<String>,
    pub clients: Vec<ClientDef>,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientDef {
    pub name: String,
    pub jid: String,
    pub password: String,
    pub resource: Option<String>,
    pub connect_host: Option<String>,
    pub connect_port: Option<u16>,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct Action {
    /// 1-based line of the action in the script.
    pub line: usize,
    pub client: String,
    pub kind: ActionKind,
}

#[derive(Debug, Clone)]
pub enum ActionKind {
    Connect,
    Disconnect,
    Send(Vec<Element>),
    Receive(Vec<Element>),
    ReceiveNothing,
}

impl Script {
    pub fn from_file(path: &Path) -> Result<Script> {
        let text = std::fs::read_to_string(path).map_err(|e| err!("cannot read {}: {e}", path.display()))?;
        Script::parse(path, &text)
    }

    /// File name for reports.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }

    pub fn client(&self, name: &str) -> Option<&ClientDef> {
        self.clients.iter().find(|c| c.name == name)
    }

    /// Config lines asked for by `## config: ...` header tags.
    pub fn config_lines(&self) -> Vec<String> {
        self.tagged(TAG_CONFIG)
    }

    /// Why the script does not run on ejabberd (see [`TAG_NOT_ON_EJABBERD`]), if it says so.
    pub fn not_on_ejabberd(&self) -> Option<String> {
        self.tagged(TAG_NOT_ON_EJABBERD).into_iter().next()
    }

    /// Why the script needs a real server (see [`TAG_NEEDS_SERVER`]), if it says so.
    pub fn needs_server(&self) -> Option<String> {
        self.tagged(TAG_NEEDS_SERVER).into_iter().next()
    }

    /// Why the script runs on ejabberd only (see [`TAG_EJABBERD_ONLY`]), if it says so.
    pub fn ejabberd_only(&self) -> Option<String> {
        self.tagged(TAG_EJABBERD_ONLY).into_iter().next()
    }

    /// Why the script tests beyond stock Prosody (see [`TAG_BEYOND_STOCK`]), if it says so.
    pub fn beyond_stock(&self) -> Option<String> {
        self.tagged(TAG_BEYOND_STOCK).into_iter().next()
    }

    /// ejabberd modules to load besides the MUC (see [`TAG_EJABBERD_MODULE`]).
    pub fn ejabberd_modules(&self) -> Vec<String> {
        self.tagged(TAG_EJABBERD_MODULE)
    }

    /// Keys of `default_room_options` on ejabberd (see [`TAG_EJABBERD_ROOM_OPTION`]).
    pub fn ejabberd_room_options(&self) -> Vec<String> {
        self.tagged(TAG_EJABBERD_ROOM_OPTION)
    }

    /// The log errors the script causes on purpose (see [`TAG_EXPECTS_LOG_ERROR`]).
    pub fn expected_log_errors(&self) -> Vec<String> {
        self.tagged(TAG_EXPECTS_LOG_ERROR)
    }

    /// Component config lines asked for by `## component-config: ...` header tags.
    pub fn component_config_lines(&self) -> Vec<String> {
        self.tagged(TAG_COMPONENT_CONFIG)
    }

    /// Prosody versions the script is for: those of its `## prosody:` tags, or all of them.
    pub fn versions(&self) -> Vec<Version> {
        let named: Vec<Version> = self
            .tagged(TAG_PROSODY)
            .iter()
            .flat_map(|v| prosody_tag_versions(v).unwrap_or_default())
            .collect();
        Version::ALL.into_iter().filter(|v| named.is_empty() || named.contains(v)).collect()
    }

    /// Whether the script is for this Prosody version (see [`TAG_PROSODY`]).
    pub fn runs_on(&self, version: Version) -> bool {
        self.versions().contains(&version)
    }

    fn tagged(&self, prefix: &str) -> Vec<String> {
        self.tags.iter().filter_map(|t| t.strip_prefix(prefix)).map(|v| v.trim().to_owned()).collect()
    }

    pub fn parse(path: &Path, text: &str) -> Result<Script> {
        Parser::new(path).run(text)
    }
}

struct Parser {
    script: Script,
    /// Still in the leading comment block (title, description, tags).
    in_header: bool,
}

/// What the indented lines that follow belong to.
enum Open {
    None,
    Client(usize),
    Block { line: usize, client: String, send: bool, text: String },
}

impl Parser {
    fn new(path: &Path) -> Self {
        Parser {
            script: Script {
                path: path.to_owned(),
                title: String::new(),
                description: Vec::new(),
                tags: Vec::new(),
                clients: Vec::new(),
                actions: Vec::new(),
            },
            in_header: true,
        }
    }

    fn run(mut self, text: &str) -> Result<Script> {
        let mut open = Open::None;
        for (idx, raw_line) in text.lines().enumerate() {
            let lineno = idx + 1;
            let line = raw_line.trim_end();
            if line.trim().is_empty() {
                if let Open::Block { text, .. } = &mut open {
                    text.push('\n');
                }
                continue;
            }
            let indented = line.starts_with([' ', '\t']);
            if indented {
                match &mut open {
                    Open::Block { text, .. } => {
                        text.push_str(line);
                        text.push('\n');
                    }
                    Open::Client(i) => self.client_property(*i, line.trim(), lineno)?,
                    Open::None => {
                        return Err(self.error(lineno, "indented line outside a block"));
                    }
                }
                continue;
            }
            // A line at column 0 ends whatever block was open.
            self.close(std::mem::replace(&mut open, Open::None))?;
            if let Some(comment) = line.strip_prefix('#') {
                self.header_comment(comment, lineno)?;
                continue;
            }
            if line.starts_with("//") || line.starts_with("--") {
                continue;
            }
            self.in_header = false;
            if let Some(name) = line.strip_prefix("[Client]") {
                let name = name.trim();
                if name.is_empty() {
                    return Err(self.error(lineno, "[Client] without a name"));
                }
                if self.script.client(name).is_some() {
                    return Err(self.error(lineno, &format!("client {name:?} defined twice")));
                }
                self.script.clients.push(ClientDef {
                    name: name.to_owned(),
                    jid: String::new(),
                    password: String::new(),
                    resource: None,
                    connect_host: None,
                    connect_port: None,
                    line: lineno,
                });
                open = Open::Client(self.script.clients.len() - 1);
                continue;
            }
            open = self.action(line, lineno)?;
        }
        self.close(open)?;
        for c in &self.script.clients {
            if c.jid.is_empty() {
                return Err(self.error(c.line, &format!("client {:?} has no jid", c.name)));
            }
        }
        Ok(self.script)
    }

    fn header_comment(&mut self, comment: &str, lineno: usize) -> Result<()> {
        if !self.in_header {
            return Ok(());
        }
        if let Some(tag) = comment.strip_prefix('#') {
            let tag = tag.trim();
            if let Some(value) = tag.strip_prefix(TAG_PROSODY) {
                prosody_tag_versions(value).map_err(|e| self.error(lineno, &e))?;
            }
            self.script.tags.push(tag.to_owned());
        } else if self.script.title.is_empty() {
            self.script.title = comment.trim().to_owned();
        } else {
            self.script.description.push(comment.trim().to_owned());
        }
        Ok(())
    }

    fn client_property(&mut self, i: usize, line: &str, lineno: usize) -> Result<()> {
        let Some((key, value)) = line.split_once(':') else {
            return Err(self.error(lineno, "expected `key: value` in a [Client] section"));
        };
        let value = value.trim().to_owned();
        let bad_port = self.error(lineno, "connect_port is not a port number");
        let client = &mut self.script.clients[i];
        match key.trim() {
            "jid" => client.jid = value,
            "password" => client.password = value,
            "resource" => client.resource = Some(value),
            "connect_host" => client.connect_host = Some(value),
            "connect_port" => client.connect_port = Some(value.parse().map_err(|_| bad_port)?),
            other => {
                let msg = format!("unknown client property {other:?}");
                return Err(self.error(lineno, &msg));
            }
        }
        Ok(())
    }

    /// Parses `Name connects|disconnects|sends:|receives:|receives: nothing`.
    fn action(&mut self, line: &str, lineno: usize) -> Result<Open> {
        let (head, rest) = match line.split_once(':') {
            Some((h, r)) => (h.trim_end(), r.trim()),
            None => (line.trim_end(), ""),
        };
        let (name, verb) = head
            .rsplit_once(' ')
            .ok_or_else(|| self.error(lineno, &format!("cannot parse action {line:?}")))?;
        let name = name.trim();
        if self.script.client(name).is_none() {
            return Err(self.error(lineno, &format!("unknown client {name:?} in {line:?}")));
        }
        let simple = |kind| Action { line: lineno, client: name.to_owned(), kind };
        match (verb, rest) {
            ("connects", "") => self.script.actions.push(simple(ActionKind::Connect)),
            ("disconnects", "") => self.script.actions.push(simple(ActionKind::Disconnect)),
            ("receives", "nothing") => self.script.actions.push(simple(ActionKind::ReceiveNothing)),
            ("sends" | "receives", "") => {
                return Ok(Open::Block {
                    line: lineno,
                    client: name.to_owned(),
                    send: verb == "sends",
                    text: String::new(),
                })
            }
            _ => return Err(self.error(lineno, &format!("cannot parse action {line:?}"))),
        }
        Ok(Open::None)
    }

    fn close(&mut self, open: Open) -> Result<()> {
        let Open::Block { line, client, send, text } = open else {
            return Ok(());
        };
        let elements = xml::parse_fragment(&text)
            .map_err(|e| self.error(line, &format!("bad XML in the block: {e}")))?;
        if elements.is_empty() {
            return Err(self.error(line, "empty block"));
        }
        let kind = if send { ActionKind::Send(elements) } else { ActionKind::Receive(elements) };
        self.script.actions.push(Action { line, client, kind });
        Ok(())
    }

    fn error(&self, line: usize, msg: &str) -> crate::Error {
        err!("{}:{line}: {msg}", self.script.path.display())
    }
}

/// The versions named by a `## prosody:` tag's value, such as `13` or `0.12, 13`.
fn prosody_tag_versions(value: &str) -> std::result::Result<Vec<Version>, String> {
    let words: Vec<&str> = value.split([' ', '\t', ',']).filter(|w| !w.is_empty()).collect();
    if words.is_empty() {
        return Err("`## prosody:` names no version".into());
    }
    words
        .iter()
        .map(|w| Version::parse(w).ok_or_else(|| format!("`## prosody:` names an unknown version {w:?}")))
        .collect()
}

/// Replaces `${...}` variables in attribute values and text. `lookup` resolves a variable
/// name such as `Romeo's full JID`; an unknown name is an error.
pub fn expand(el: &Element, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Element> {
    let mut out = el.clone();
    expand_in_place(&mut out, lookup)?;
    Ok(out)
}

fn expand_in_place(el: &mut Element, lookup: &dyn Fn(&str) -> Option<String>) -> Result<()> {
    for (_, value) in el.attrs_mut().iter_mut() {
        if value.contains("${") {
            *value = expand_str(value, lookup)?;
        }
    }
    for node in el.nodes_mut() {
        match node {
            Node::Element(child) => expand_in_place(child, lookup)?,
            Node::Text(t) if t.contains("${") => *t = expand_str(t, lookup)?,
            Node::Text(_) => {}
        }
    }
    Ok(())
}

/// Expands `${...}` variables in one string.
pub fn expand_str(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| err!("unterminated variable in {s:?}"))?;
        let name = &after[..end];
        let value = lookup(name).ok_or_else(|| err!("unknown variable ${{{name}}}"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# MUC: a title
# more description
## config: muc_room_locking = false
## component-config: restrict_room_creation = true

[Client] Romeo
\tjid: user@localhost
\tpassword: password

[Client] Juliet's nurse
\tjid: nurse@localhost/balcony
\tpassword: pw
\tresource: balcony

-----

Romeo connects

# a comment between actions
Romeo sends:
\t<presence to='room@conference.localhost/Romeo'>
\t\t<x xmlns='http://jabber.org/protocol/muc'/>
\t</presence>

\t<message to='a@b'/>
// another comment
Romeo receives
\t<presence from='room@conference.localhost/Romeo'/>

Juliet's nurse receives: nothing

Romeo disconnects
";

    fn sample() -> Script {
        Script::parse(Path::new("sample.scs"), SAMPLE).unwrap()
    }

    #[test]
    fn header_and_tags() {
        let s = sample();
        assert_eq!(s.title, "MUC: a title");
        assert_eq!(s.description, vec!["more description"]);
        assert_eq!(s.config_lines(), vec!["muc_room_locking = false"]);
        assert_eq!(s.component_config_lines(), vec!["restrict_room_creation = true"]);
    }

    #[test]
    fn beyond_stock_tag_gives_its_reason() {
        assert_eq!(sample().beyond_stock(), None);
        let s = Script::parse(Path::new("x.scs"), "# t\n## beyond-stock: ejabberd's MucSub\n").unwrap();
        assert_eq!(s.beyond_stock().as_deref(), Some("ejabberd's MucSub"));
        assert_eq!(s.versions(), Version::ALL.to_vec(), "still on every version, for muc_rs");
    }

    #[test]
    fn prosody_tag_restricts_versions() {
        let all = sample();
        assert_eq!(all.versions(), Version::ALL.to_vec());
        assert!(all.runs_on(Version::V0_12) && all.runs_on(Version::V13));

        let only13 = Script::parse(Path::new("x.scs"), "# t\n## prosody: 13\n").unwrap();
        assert_eq!(only13.versions(), vec![Version::V13]);
        assert!(!only13.runs_on(Version::V0_12));
        let only012 = Script::parse(Path::new("x.scs"), "# t\n##prosody:0.12\n").unwrap();
        assert_eq!(only012.versions(), vec![Version::V0_12]);
        let both = Script::parse(Path::new("x.scs"), "# t\n## prosody: 13, 0.12\n").unwrap();
        assert_eq!(both.versions(), Version::ALL.to_vec());
        // Not a tag once the header is over.
        let late = "# t\n[Client] R\n\tjid: a@b\n## prosody: 13\nR connects\n";
        assert_eq!(Script::parse(Path::new("x.scs"), late).unwrap().versions(), Version::ALL.to_vec());

        let e = Script::parse(Path::new("x.scs"), "# t\n## prosody: 14\n").unwrap_err();
        assert!(e.0.starts_with("x.scs:2: ") && e.0.contains("unknown version \"14\""), "{e}");
        let e = Script::parse(Path::new("x.scs"), "# t\n## prosody:\n").unwrap_err();
        assert!(e.0.contains("names no version"), "{e}");
    }

    #[test]
    fn clients_with_spaces_and_apostrophes() {
        let s = sample();
        assert_eq!(s.clients.len(), 2);
        let nurse = s.client("Juliet's nurse").unwrap();
        assert_eq!(nurse.jid, "nurse@localhost/balcony");
        assert_eq!(nurse.resource.as_deref(), Some("balcony"));
        assert_eq!(nurse.line, 10);
    }

    #[test]
    fn actions_in_order_with_blocks() {
        let s = sample();
        let kinds: Vec<String> = s
            .actions
            .iter()
            .map(|a| match &a.kind {
                ActionKind::Connect => format!("{}:{} connect", a.line, a.client),
                ActionKind::Disconnect => format!("{}:{} disconnect", a.line, a.client),
                ActionKind::Send(e) => format!("{}:{} send {}", a.line, a.client, e.len()),
                ActionKind::Receive(e) => format!("{}:{} receive {}", a.line, a.client, e.len()),
                ActionKind::ReceiveNothing => format!("{}:{} nothing", a.line, a.client),
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                "17:Romeo connect",
                "20:Romeo send 2",
                "27:Romeo receive 1",
                "30:Juliet's nurse nothing",
                "32:Romeo disconnect",
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let bad = "[Client] Romeo\n\tjid: a@b\n\nRomeo sends:\n\t<presence>\n\nRomeo connects\n";
        let e = Script::parse(Path::new("x.scs"), bad).unwrap_err();
        assert!(e.0.starts_with("x.scs:4: bad XML"), "{e}");
        let e = Script::parse(Path::new("x.scs"), "Tybalt connects\n").unwrap_err();
        assert!(e.0.contains("unknown client"), "{e}");
        let e = Script::parse(Path::new("x.scs"), "[Client] R\n\tjid: a@b\nR dances\n").unwrap_err();
        assert!(e.0.contains("x.scs:3: cannot parse"), "{e}");
    }

    #[test]
    fn variables_expand_in_attributes_and_text() {
        let lookup = |name: &str| match name {
            "Romeo's full JID" => Some("user@localhost/abc".to_owned()),
            "Romeo's JID" => Some("user@localhost".to_owned()),
            _ => None,
        };
        let el = &xml::parse_fragment(
            r#"<message to="${Romeo's JID}"><body>hi ${Romeo's full JID}!</body></message>"#,
        )
        .unwrap()[0];
        let out = expand(el, &lookup).unwrap();
        assert_eq!(
            xml::to_string(&out),
            "<message to='user@localhost'><body>hi user@localhost/abc!</body></message>"
        );
        let err = expand_str("${Tybalt's JID}", &lookup).unwrap_err();
        assert!(err.0.contains("unknown variable ${Tybalt's JID}"), "{err}");
        assert!(expand_str("${Romeo's JID", &lookup).is_err());
    }

    #[test]
    fn seed_script_parses() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/scansion/muc_members_only_deregister.scs");
        let s = Script::from_file(&path).unwrap();
        assert_eq!(s.clients.len(), 2);
        assert_eq!(s.actions.len(), 21);
    }
}
