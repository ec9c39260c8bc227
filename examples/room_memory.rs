//! Bytes of heap per room, as the core holds it: 1000 rooms of two occupants, joined with
//! presences like a client's. `cargo run --release --example room_memory`
use muc_rs::{HostConfig, MucHost};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Counts what glibc's malloc takes for each allocation: a chunk of the size plus 8 bytes,
/// rounded up to 16, at least 32 (so many small allocations cost what they really cost).
fn chunk(l: Layout) -> isize {
    ((l.size() + 8).div_ceil(16) * 16).max(32) as isize
}

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(chunk(l), Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(chunk(l), Ordering::Relaxed);
        System.dealloc(p, l)
    }
}
#[global_allocator]
static A: Counting = Counting;

fn main() {
    let mut config = HostConfig::for_version((13, 0));
    config.room_cache_size = 100_000;
    config.room_locking = false;
    let mut host = MucHost::new("conference.localhost", config).unwrap();
    let mut storage = muc_rs::memory_host::MemoryHost::at(1);
    let before = LIVE.load(Ordering::Relaxed);
    let rooms = 1000;
    for r in 0..rooms {
        for u in 0..2 {
            let xml = format!(
                "<presence xmlns='jabber:client' from='user{r}x{u}@localhost/res{u}abcdef' to='room{r}@conference.localhost/nick{u}'>\
                 <x xmlns='http://jabber.org/protocol/muc'/></presence>"
            );
            storage.handle(&mut host, xml.parse().unwrap());
        }
    }
    let after = LIVE.load(Ordering::Relaxed);
    println!("{} bytes per room ({} rooms)", (after - before) / rooms, host.room_count());
    sizes();
}

#[allow(dead_code)]
fn sizes() {
    println!(
        "Room {} Settings {} Occupant {} Element {} FullJid {}",
        std::mem::size_of::<muc_rs::room::Room>(),
        std::mem::size_of::<muc_rs::room::settings::RoomSettings>(),
        std::mem::size_of::<muc_rs::occupant::Occupant>(),
        std::mem::size_of::<minidom::Element>(),
        std::mem::size_of::<jid::FullJid>(),
    );
    let before = LIVE.load(Ordering::Relaxed);
    let e: minidom::Element = "<presence xmlns='jabber:client' from='a@b/c' to='d@e/f'><occupant-id xmlns='urn:xmpp:occupant-id:0' id='abcdefabcdefabcdefabcdefabcdefabcdefabcdefab'/></presence>".parse().unwrap();
    println!("presence element: {} bytes", LIVE.load(Ordering::Relaxed) - before);
    let before = LIVE.load(Ordering::Relaxed);
    let s = muc_rs::room::settings::RoomSettings::default();
    println!("settings: {} bytes heap", LIVE.load(Ordering::Relaxed) - before);
    drop((e, s));
}
