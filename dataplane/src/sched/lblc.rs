//! lblc and lblcr: locality-based least connection (`ip_vs_lblc.c`, `ip_vs_lblcr.c`).
//!
//! Both remember, per destination address of the packet (the `daddr` a cache cluster is
//! asked for), which dest served it: lblc one dest, lblcr a set of dests. A remembered dest
//! is reused until it is "overloaded" in lblc's own sense (`active > weight` while some dest
//! has `active * 2 < weight`); then wlc picks a new one (lblc replaces, lblcr adds to the set).
//!
//! The kernel keeps an unbounded hash of lists (`kmalloc` per entry) and a timer that drops
//! entries idle for `lblc_expiration` / `lblcr_expiration` (default 24 h, checked every 30
//! min) and, above 16384 entries, entries idle for 6 min. Here each shard has a fixed table
//! allocated when its `SchedState` is made, so `schedule` never allocates:
//!
//! - `LOC_TAB_SIZE` (4096) slots, open addressing: a key may live in any of the
//!   `LOC_PROBE` (8) slots after its home slot `hash_32(addr_fold, 12)`. Lookups scan the
//!   whole window (no early stop at an empty slot, so no tombstones are needed).
//! - Expiry is checked lazily: an entry idle for the expiration (24 h) counts as absent and
//!   its slot is free for reuse, like an entry the kernel's full check would have dropped.
//! - A new key takes a free or expired slot of its window, or else the window's least
//!   recently used entry (our stand-in for the kernel's "over the limit, drop idle entries"
//!   collection).
//! - An lblcr set holds at most `LBLCR_SET_CAP` (8) dests; adding a ninth drops the one added
//!   longest ago. The kernel's set is unbounded (at most every dest).
//!
//! Dest indices are stored, so the table belongs to one dest list: when dests or weights
//! change the control thread builds new tables and each shard a new `SchedState`, which
//! starts with an empty table (the kernel keeps its entries across such changes).

use super::hash::{fold_addr, hash_32};
use super::least::{heavier, wlc};
use super::{DestLoad, SchedInput, NO_DEST};

/// Slots in a shard's lblc/lblcr table.
pub const LOC_TAB_SIZE: usize = 1 << LOC_TAB_BITS;
const LOC_TAB_BITS: u32 = 12;
/// Slots a key may occupy, counted from its home slot.
pub const LOC_PROBE: usize = 8;
/// Dests in one lblcr set at most.
pub const LBLCR_SET_CAP: usize = 8;
/// `lblc_expiration` default: an lblc entry idle this long is dropped (24 h).
pub const LBLC_EXPIRATION_MS: u64 = 24 * 60 * 60 * 1000;
/// `lblcr_expiration` default: an lblcr entry idle this long is dropped, and a set not
/// modified for this long loses its most loaded dest at the next lookup (24 h).
pub const LBLCR_EXPIRATION_MS: u64 = 24 * 60 * 60 * 1000;

/// One remembered destination address.
#[derive(Copy, Clone, Debug)]
struct Entry {
    used: bool,
    v6: bool,
    addr: [u8; 16],
    /// Last lookup (`lastuse`).
    lastuse: u64,
    /// Last change of the set (lblcr's `set.lastmod`).
    lastmod: u64,
    len: u8,
    /// lblc: `set[0]` is the dest. lblcr: newest first, as the kernel's `list_add`.
    set: [u16; LBLCR_SET_CAP],
}

const EMPTY: Entry = Entry {
    used: false,
    v6: false,
    addr: [0; 16],
    lastuse: 0,
    lastmod: 0,
    len: 0,
    set: [NO_DEST; LBLCR_SET_CAP],
};

impl Entry {
    fn members(&self) -> &[u16] {
        self.set.get(..usize::from(self.len)).unwrap_or(&[])
    }

    fn live(&self, now: u64, expiration: u64) -> bool {
        self.used && now.saturating_sub(self.lastuse) < expiration
    }

    /// Add `dest` at the front unless present; true if the set changed.
    fn insert(&mut self, dest: u16) -> bool {
        if self.members().contains(&dest) {
            return false;
        }
        let len = usize::from(self.len).min(LBLCR_SET_CAP - 1);
        self.set.copy_within(0..len, 1);
        self.set[0] = dest;
        self.len = (len + 1) as u8;
        true
    }

    fn erase(&mut self, dest: u16) -> bool {
        let len = usize::from(self.len);
        match self.members().iter().position(|&m| m == dest) {
            Some(i) => {
                self.set.copy_within(i + 1..len, i);
                self.len -= 1;
                if let Some(s) = self.set.get_mut(usize::from(self.len)) {
                    *s = NO_DEST;
                }
                true
            }
            None => false,
        }
    }
}

/// A shard's locality table (empty for the other schedulers).
#[derive(Clone)]
pub(crate) struct LocTable {
    slots: Box<[Entry]>,
}

impl core::fmt::Debug for LocTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocTable")
            .field("slots", &self.slots.len())
            .field("used", &self.slots.iter().filter(|e| e.used).count())
            .finish()
    }
}

/// The table key: the address as the kernel compares it (`ip_vs_addr_equal`).
#[derive(Copy, Clone, PartialEq, Eq)]
struct Key {
    v6: bool,
    addr: [u8; 16],
}

impl Key {
    fn of(input: &SchedInput) -> Key {
        let mut addr = input.daddr;
        if !input.v6 {
            addr[4..].fill(0);
        }
        Key { v6: input.v6, addr }
    }

    fn home(&self) -> usize {
        hash_32(fold_addr(self.v6, &self.addr), LOC_TAB_BITS) as usize
    }
}

impl LocTable {
    pub(crate) fn new(enabled: bool) -> Self {
        let n = if enabled { LOC_TAB_SIZE } else { 0 };
        LocTable {
            slots: vec![EMPTY; n].into_boxed_slice(),
        }
    }

    fn window(&self, key: &Key) -> impl Iterator<Item = usize> {
        let n = self.slots.len();
        let home = key.home();
        (0..LOC_PROBE.min(n)).map(move |i| (home + i) % n.max(1))
    }

    /// The slot of the live entry for `key`.
    fn find(&self, key: &Key, now: u64, expiration: u64) -> Option<usize> {
        self.window(key).find(|&i| {
            self.slots
                .get(i)
                .is_some_and(|e| e.live(now, expiration) && e.v6 == key.v6 && e.addr == key.addr)
        })
    }

    /// A slot for a new entry: free or expired, else the least recently used of the window.
    fn victim(&self, key: &Key, now: u64, expiration: u64) -> Option<usize> {
        let mut lru: Option<(usize, u64)> = None;
        for i in self.window(key) {
            let e = self.slots.get(i)?;
            if !e.live(now, expiration) {
                return Some(i);
            }
            if lru.is_none_or(|(_, t)| e.lastuse < t) {
                lru = Some((i, e.lastuse));
            }
        }
        lru.map(|(i, _)| i)
    }

    fn put(&mut self, key: &Key, dest: usize, now: u64, expiration: u64) {
        let Ok(dest) = u16::try_from(dest) else {
            return;
        };
        if dest == NO_DEST {
            return;
        }
        let Some(i) = self.victim(key, now, expiration) else {
            return;
        };
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Entry {
                used: true,
                v6: key.v6,
                addr: key.addr,
                lastuse: now,
                lastmod: now,
                len: 1,
                set: {
                    let mut s = [NO_DEST; LBLCR_SET_CAP];
                    s[0] = dest;
                    s
                },
            };
        }
    }
}

/// lblc's and lblcr's `is_overloaded`: more active conns than weight while some dest is
/// under half its weight. (Not the threshold flag, which lblc ignores for its cached dest.)
fn lb_overloaded(d: &DestLoad, dests: &[DestLoad]) -> bool {
    i64::from(d.active) > i64::from(d.weight)
        && dests
            .iter()
            .any(|m| i64::from(m.active) * 2 < i64::from(m.weight))
}

fn get(dests: &[DestLoad], idx: u16) -> Option<&DestLoad> {
    if idx == NO_DEST {
        None
    } else {
        dests.get(usize::from(idx))
    }
}

/// lblc: the remembered dest for `daddr` if it has weight > 0 and is not lblc-overloaded
/// (the threshold flag is not checked for it, as in the kernel); otherwise wlc's pick, which
/// is then remembered.
pub(crate) fn lblc(
    table: &mut LocTable,
    dests: &[DestLoad],
    input: &SchedInput,
    now: u64,
) -> Option<usize> {
    let key = Key::of(input);
    let exp = LBLC_EXPIRATION_MS;
    if let Some(i) = table.find(&key, now, exp) {
        let e = table.slots.get_mut(i)?;
        e.lastuse = now;
        let cached = e.set[0];
        if let Some(d) = get(dests, cached) {
            if d.weight > 0 && !lb_overloaded(d, dests) {
                return Some(usize::from(cached));
            }
        }
        let dest = wlc(dests)?;
        match u16::try_from(dest) {
            Ok(idx) if idx != NO_DEST => {
                e.set[0] = idx;
                e.len = 1;
                e.lastmod = now;
            }
            _ => e.used = false,
        }
        return Some(dest);
    }
    let dest = wlc(dests)?;
    table.put(&key, dest, now, exp);
    Some(dest)
}

/// `ip_vs_dest_set_min`: the set member with the least overhead per weight, among members
/// that are not overloaded (threshold flag) and have weight > 0.
fn set_min(members: &[u16], dests: &[DestLoad]) -> Option<u16> {
    let mut it = members.iter();
    let (mut least, mut ld) = loop {
        let &m = it.next()?;
        if let Some(d) = get(dests, m) {
            if d.available() {
                break (m, d);
            }
        }
    };
    for &m in it {
        let Some(d) = get(dests, m) else { continue };
        if d.overloaded {
            continue;
        }
        if heavier(ld.overhead(), ld.weight, d.overhead(), d.weight) {
            least = m;
            ld = d;
        }
    }
    Some(least)
}

/// `ip_vs_dest_set_max`: the member with the most overhead per weight among those with
/// weight > 0 (overloaded ones included).
fn set_max(members: &[u16], dests: &[DestLoad]) -> Option<u16> {
    let mut it = members.iter();
    let (mut most, mut md) = loop {
        let &m = it.next()?;
        if let Some(d) = get(dests, m) {
            if d.weight > 0 {
                break (m, d);
            }
        }
    };
    for &m in it {
        let Some(d) = get(dests, m) else { continue };
        if d.weight > 0 && heavier(d.overhead(), d.weight, md.overhead(), md.weight) {
            most = m;
            md = d;
        }
    }
    Some(most)
}

/// lblcr: the least loaded member of the set remembered for `daddr`, unless none is usable
/// or it is lblc-overloaded; then wlc's pick, added to the set. A set of two or more not
/// modified for `LBLCR_EXPIRATION_MS` first loses its most loaded member.
pub(crate) fn lblcr(
    table: &mut LocTable,
    dests: &[DestLoad],
    input: &SchedInput,
    now: u64,
) -> Option<usize> {
    let key = Key::of(input);
    let exp = LBLCR_EXPIRATION_MS;
    if let Some(i) = table.find(&key, now, exp) {
        let e = table.slots.get_mut(i)?;
        e.lastuse = now;
        let min = set_min(e.members(), dests);
        if e.len > 1 && now > e.lastmod.saturating_add(exp) {
            if let Some(m) = set_max(e.members(), dests) {
                if e.erase(m) {
                    e.lastmod = now;
                }
            }
        }
        if let Some(m) = min {
            if let Some(d) = get(dests, m) {
                if !lb_overloaded(d, dests) {
                    return Some(usize::from(m));
                }
            }
        }
        let dest = wlc(dests)?;
        if let Ok(idx) = u16::try_from(dest) {
            if idx != NO_DEST && e.insert(idx) {
                e.lastmod = now;
            }
        }
        return Some(dest);
    }
    let dest = wlc(dests)?;
    table.put(&key, dest, now, exp);
    Some(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(weight: i32, active: u32) -> DestLoad {
        DestLoad {
            weight,
            active,
            inactive: 0,
            overloaded: false,
        }
    }

    fn to(i: u32) -> SchedInput {
        let mut daddr = [0u8; 16];
        daddr[..4].copy_from_slice(&(0xac10_0000 + i).to_be_bytes());
        SchedInput {
            daddr,
            ..SchedInput::default()
        }
    }

    const H: u64 = 60 * 60 * 1000;

    #[test]
    fn lblc_sticks_to_the_remembered_dest() {
        let mut t = LocTable::new(true);
        let mut l = [d(10, 0), d(10, 1)];
        assert_eq!(lblc(&mut t, &l, &to(1), 0), Some(0));
        // Dest 0 is now the busier, but stays for this address.
        l[0].active = 5;
        assert_eq!(lblc(&mut t, &l, &to(1), 1), Some(0));
        // Another address goes by wlc.
        assert_eq!(lblc(&mut t, &l, &to(2), 2), Some(1));
        assert_eq!(lblc(&mut t, &l, &to(1), 3), Some(0));
    }

    #[test]
    fn lblc_reassigns_when_quiesced_or_lblc_overloaded() {
        let mut t = LocTable::new(true);
        let mut l = [d(4, 0), d(4, 1)];
        assert_eq!(lblc(&mut t, &l, &to(1), 0), Some(0));
        // active 5 > weight 4, and dest 1 has 1*2 < 4: overloaded -> wlc -> dest 1.
        l[0].active = 5;
        assert_eq!(lblc(&mut t, &l, &to(1), 1), Some(1));
        // The new dest is remembered.
        l[0].active = 0;
        assert_eq!(lblc(&mut t, &l, &to(1), 2), Some(1));
        // Quiesced: reassigned.
        l[1].weight = 0;
        assert_eq!(lblc(&mut t, &l, &to(1), 3), Some(0));
    }

    #[test]
    fn lblc_active_over_weight_alone_is_not_overloaded() {
        let mut t = LocTable::new(true);
        // Nobody is under half its weight: the cached dest stays.
        let mut l = [d(2, 0), d(2, 3)];
        assert_eq!(lblc(&mut t, &l, &to(1), 0), Some(0));
        l[0].active = 9;
        assert_eq!(lblc(&mut t, &l, &to(1), 1), Some(0));
    }

    #[test]
    fn lblc_keeps_cached_dest_even_when_flagged_overloaded() {
        // The kernel checks only weight and its own overload rule for the cached dest.
        let mut t = LocTable::new(true);
        let mut l = [d(3, 0), d(3, 2)];
        assert_eq!(lblc(&mut t, &l, &to(1), 0), Some(0));
        l[0].overloaded = true;
        assert_eq!(lblc(&mut t, &l, &to(1), 1), Some(0));
        // A new address never gets a flagged dest.
        assert_eq!(lblc(&mut t, &l, &to(2), 1), Some(1));
    }

    #[test]
    fn lblc_entry_expires_after_24h_idle() {
        let mut t = LocTable::new(true);
        let mut l = [d(1, 0), d(1, 0)];
        assert_eq!(lblc(&mut t, &l, &to(1), 0), Some(0));
        l[0].active = 3;
        l[1].active = 1;
        // Used at 23 h: still remembered (and refreshed).
        assert_eq!(lblc(&mut t, &l, &to(1), 23 * H), Some(0));
        assert_eq!(lblc(&mut t, &l, &to(1), 46 * H), Some(0));
        // 24 h idle: forgotten, wlc picks afresh.
        assert_eq!(lblc(&mut t, &l, &to(1), 70 * H), Some(1));
    }

    #[test]
    fn lblc_returns_none_when_nothing_is_available() {
        let mut t = LocTable::new(true);
        let l = [
            d(0, 0),
            DestLoad {
                overloaded: true,
                ..d(1, 0)
            },
        ];
        assert_eq!(lblc(&mut t, &l, &to(1), 0), None);
        assert_eq!(lblc(&mut t, &[], &to(1), 0), None);
    }

    #[test]
    fn lblc_full_table_reuses_the_least_recently_used_slot() {
        let mut t = LocTable::new(true);
        let l = [d(1, 0), d(1, 0), d(1, 0)];
        // Far more addresses than slots: no panic, no growth.
        for i in 0..20_000u32 {
            assert!(lblc(&mut t, &l, &to(i), u64::from(i)).is_some());
        }
        assert_eq!(t.slots.len(), LOC_TAB_SIZE);
        // The most recent address is still remembered.
        let k = Key::of(&to(19_999));
        assert!(t.find(&k, 20_000, LBLC_EXPIRATION_MS).is_some());
        // Fill one window with 8 keys sharing a home slot, then add a ninth: the oldest goes.
        let mut t = LocTable::new(true);
        let home = Key::of(&to(0)).home();
        let same: Vec<u32> = (0..2_000_000u32)
            .filter(|&i| Key::of(&to(i)).home() == home)
            .take(LOC_PROBE + 1)
            .collect();
        assert_eq!(same.len(), LOC_PROBE + 1);
        for (n, &i) in same.iter().enumerate() {
            lblc(&mut t, &l, &to(i), n as u64);
        }
        assert!(t
            .find(&Key::of(&to(same[0])), 100, LBLC_EXPIRATION_MS)
            .is_none());
        for &i in &same[1..] {
            assert!(t.find(&Key::of(&to(i)), 100, LBLC_EXPIRATION_MS).is_some());
        }
    }

    #[test]
    fn lblc_without_a_table_still_schedules_by_wlc() {
        let mut t = LocTable::new(false);
        let l = [d(1, 3), d(1, 1)];
        assert_eq!(lblc(&mut t, &l, &to(1), 0), Some(1));
        assert_eq!(lblcr(&mut t, &l, &to(1), 0), Some(1));
    }

    #[test]
    fn lblcr_grows_the_set_when_its_best_member_is_overloaded() {
        let mut t = LocTable::new(true);
        let mut l = [d(4, 0), d(4, 1), d(4, 2)];
        assert_eq!(lblcr(&mut t, &l, &to(1), 0), Some(0));
        // Member 0 overloaded (5 > 4, and dest 1 is under half): wlc adds dest 1.
        l[0].active = 5;
        assert_eq!(lblcr(&mut t, &l, &to(1), 1), Some(1));
        let i = t.find(&Key::of(&to(1)), 1, LBLCR_EXPIRATION_MS).unwrap();
        assert_eq!(t.slots[i].members(), &[1, 0]);
        // Now the set's least loaded member serves: dest 0 again when it is lighter.
        l[0].active = 0;
        l[1].active = 3;
        assert_eq!(lblcr(&mut t, &l, &to(1), 2), Some(0));
        // Dest 2 (not in the set) is never chosen while a member is fine.
        l[2].active = 0;
        assert_eq!(lblcr(&mut t, &l, &to(1), 3), Some(0));
    }

    #[test]
    fn lblcr_skips_flagged_and_quiesced_members() {
        let mut t = LocTable::new(true);
        let mut l = [d(4, 0), d(4, 1)];
        assert_eq!(lblcr(&mut t, &l, &to(1), 0), Some(0));
        l[0].overloaded = true;
        // No usable member: wlc (dest 1), added to the set.
        assert_eq!(lblcr(&mut t, &l, &to(1), 1), Some(1));
        l[0].overloaded = false;
        l[0].weight = 0;
        assert_eq!(lblcr(&mut t, &l, &to(1), 2), Some(1));
        l[1].overloaded = true;
        assert_eq!(lblcr(&mut t, &l, &to(1), 3), None);
    }

    #[test]
    fn lblcr_set_loses_its_most_loaded_member_after_24h_unchanged() {
        let mut t = LocTable::new(true);
        let mut l = [d(4, 0), d(4, 1)];
        lblcr(&mut t, &l, &to(1), 0);
        l[0].active = 5;
        assert_eq!(lblcr(&mut t, &l, &to(1), 10), Some(1)); // set {1, 0}, lastmod 10
        l[0].active = 3;
        l[1].active = 0;
        // Used every hour so the entry lives; the set is unchanged for 24 h.
        for h in 1..=24 {
            lblcr(&mut t, &l, &to(1), h * H);
        }
        let key = Key::of(&to(1));
        let i = t.find(&key, 24 * H, LBLCR_EXPIRATION_MS).unwrap();
        assert_eq!(t.slots[i].len, 2);
        // Past lastmod + 24 h: the most loaded (dest 0) is dropped.
        assert_eq!(lblcr(&mut t, &l, &to(1), 24 * H + 11), Some(1));
        assert_eq!(t.slots[i].members(), &[1]);
        assert_eq!(t.slots[i].lastmod, 24 * H + 11);
    }

    #[test]
    fn lblcr_set_is_bounded_and_drops_its_oldest_member() {
        let mut e = EMPTY;
        for m in 0..(LBLCR_SET_CAP as u16 + 3) {
            assert!(e.insert(m));
        }
        assert!(!e.insert(10));
        assert_eq!(usize::from(e.len), LBLCR_SET_CAP);
        assert_eq!(e.members(), &[10, 9, 8, 7, 6, 5, 4, 3]);
        assert!(e.erase(7));
        assert_eq!(e.members(), &[10, 9, 8, 6, 5, 4, 3]);
        assert!(!e.erase(7));
    }

    #[test]
    fn lblc_keys_v4_by_the_first_four_bytes_only() {
        let mut t = LocTable::new(true);
        let mut l = [d(1, 0), d(1, 0)];
        let a = to(1);
        let mut b = to(1);
        b.daddr[9] = 0x55; // garbage beyond a v4 address
        assert_eq!(lblc(&mut t, &l, &a, 0), Some(0));
        l[0].active = 1;
        assert_eq!(lblc(&mut t, &l, &b, 1), Some(0));
    }
}
