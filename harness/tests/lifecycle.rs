//! Prosody lifecycle through the library API, as restart/persistence tests will use it:
//! start, connect, restart (same data dir, new port), connect again, stop.
//! Needs the Prosody installs from tools/install-deps.sh.

use std::time::{Duration, Instant};

use muc_harness::prosody::{Install, Prosody, ServerConfig, Version};
use muc_harness::xml;
use muc_harness::xmpp::{ConnectOptions, Connection};

const T: Duration = Duration::from_secs(10);

async fn disco_muc(p: &Prosody) {
    let opts = ConnectOptions {
        addr: p.c2s_addr(),
        jid: "romeo@localhost".into(),
        password: "pw".into(),
        resource: Some("orchard".into()),
        timeout: T,
        record_traffic: false,
    };
    let mut c = Connection::connect(&opts).await.expect("connect");
    assert_eq!(c.jid().to_string(), "romeo@localhost/orchard");
    let iq = &xml::parse_fragment(
        "<iq type='get' id='d1' to='conference.localhost'>\
         <query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    )
    .unwrap()[0];
    c.send(iq).await.unwrap();
    c.sync(T).await.unwrap();
    let reply = c.next_stanza(Instant::now() + T).await.unwrap().expect("disco reply");
    assert_eq!(reply.attr("type"), Some("result"), "{}", xml::to_string(&reply));
    c.close(T).await.unwrap();
}

#[tokio::test]
async fn start_connect_restart_stop() {
    for version in Version::ALL {
        let install = Install::discover(version).expect("run tools/install-deps.sh first");
        let mut p = Prosody::start(&install, ServerConfig::default()).await.expect("start");
        disco_muc(&p).await;
        let first_port = p.port();
        p.restart().await.expect("restart");
        assert_ne!(p.pid(), None);
        disco_muc(&p).await;
        let log = p.read_log();
        assert_eq!(log.matches("Hello and welcome to Prosody").count(), 2);
        assert!(log.contains(&format!(":{first_port}")));
        p.stop(Duration::from_secs(5)).await;
        assert_eq!(p.pid(), None);
    }
}
