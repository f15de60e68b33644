//! mh: Maglev hashing (`ip_vs_mh.c`, after Eisenbud et al., NSDI '16, section 3.4).
//!
//! Each dest has a permutation of the lookup table's slots: a start `offset` and a `skip`,
//! both from a hash of its address and port. Dests take turns claiming their next free
//! preferred slot until the table is full; a dest claims `turns` slots per turn, its weight
//! divided by the gcd of all weights and shifted right so that the largest turn fits in
//! `MH_TAB_BITS` bits. A connection looks up the slot of a hash of the client address (plus
//! the client port with mh-port). Because each dest's preferences do not depend on the other
//! dests, adding or removing one dest moves only about its share of slots.
//!
//! The hash is the kernel's: `hsiphash` (SipHash-1-3 on 64-bit kernels) with the module's two
//! fixed keys, of `offset + port + addr_fold` as one `u32`. The table size is 65521, the
//! kernel's with `CONFIG_IP_VS_MH_TAB_INDEX=16` (its default, index 12, is 4093 slots); with
//! the dests in the same order our table should equal such a 64-bit kernel's slot for slot.
//!
//! The kernel builds the table from each dest's `last_weight` (its last non-zero weight), so
//! quiescing a dest (weight 0) leaves the table alone and only makes its slots unavailable.
//! `DestIdent::weight` must carry that value for mh.

use super::hash::{fold_addr, fold_addr_any, hsiphash_u32, SipKey};
use super::{DestIdent, DestLoad, SchedFlags, SchedInput, SchedTables, NO_DEST};

/// Slots in the lookup table: a prime, 65521.
pub const MH_TAB_SIZE: usize = 65_521;
/// The kernel's `IP_VS_MH_TAB_BITS` for that size (`CONFIG_IP_VS_MH_TAB_INDEX / 2`): turns
/// per dest are shifted to fit this many bits.
pub const MH_TAB_BITS: u32 = 8;

const SIZE: u32 = MH_TAB_SIZE as u32;

/// `generate_hash_secret`: fixed keys, both lanes the same constant.
const HASH1: SipKey = SipKey(2_654_435_761, 2_654_435_761);
const HASH2: SipKey = SipKey(2_654_446_892, 2_654_446_892);

/// Dest indices beyond this do not fit a `u16` entry (`NO_DEST` is reserved).
const MAX_TABLE_DESTS: usize = NO_DEST as usize;

/// `ip_vs_mh_hashkey`.
#[inline]
fn hashkey(fold: u32, port: u16, offset: u32, key: SipKey) -> u32 {
    hsiphash_u32(offset.wrapping_add(u32::from(port)).wrapping_add(fold), key)
}

fn gcd(mut a: i32, mut b: i32) -> i32 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// `fls`: 1-based index of the highest set bit, 0 for 0.
fn fls(x: i32) -> i32 {
    if x <= 0 {
        0
    } else {
        32 - x.leading_zeros() as i32
    }
}

/// Build the lookup table (`ip_vs_mh_reassign`: gcd, shift, permutate, populate). Empty when
/// no dest has a positive weight (the kernel's table is then all NULL).
pub(crate) fn build(dests: &[DestIdent]) -> Box<[u16]> {
    let dests = dests.get(..dests.len().min(MAX_TABLE_DESTS)).unwrap_or(&[]);
    let g = dests.iter().filter(|d| d.weight > 0).fold(0, |g, d| {
        if g > 0 {
            gcd(d.weight, g)
        } else {
            d.weight
        }
    });
    if g < 1 {
        return Box::new([]);
    }
    let max_w = dests.iter().map(|d| d.weight).fold(0, i32::max);
    let rshift = (fls(max_w / g) - MH_TAB_BITS as i32).max(0);

    struct Setup {
        perm: u32,
        skip: u32,
        turns: i32,
    }
    let mut setup: Vec<Setup> = dests
        .iter()
        .map(|d| {
            let fold = fold_addr_any(&d.addr);
            let offset = hashkey(fold, d.port, 0, HASH1) % SIZE;
            let skip = hashkey(fold, d.port, 0, HASH2) % (SIZE - 1) + 1;
            let lw = d.weight;
            let turns = if lw <= 0 {
                0
            } else {
                match (lw / g) >> rshift {
                    0 => 1,
                    t => t,
                }
            };
            Setup {
                perm: offset,
                skip,
                turns,
            }
        })
        .collect();
    // Some dest has a positive weight (g >= 1), hence turns >= 1; never loop without one.
    if setup.iter().all(|ds| ds.turns < 1) {
        return Box::new([]);
    }

    let mut table = vec![NO_DEST; MH_TAB_SIZE].into_boxed_slice();
    let mut taken = vec![0u64; MH_TAB_SIZE.div_ceil(64)];
    let is_taken = |t: &[u64], c: u32| {
        t.get(c as usize / 64)
            .is_some_and(|w| w & (1 << (c % 64)) != 0)
    };
    let mut filled = 0usize;
    'fill: loop {
        for (idx, ds) in setup.iter_mut().enumerate() {
            for _ in 0..ds.turns.max(0) {
                // The dest's next preferred slot that is still free (the walk covers every
                // slot, SIZE being prime, and one is free since the table is not full).
                while is_taken(&taken, ds.perm) {
                    ds.perm += ds.skip;
                    if ds.perm >= SIZE {
                        ds.perm -= SIZE;
                    }
                }
                let c = ds.perm as usize;
                if let Some(w) = taken.get_mut(c / 64) {
                    *w |= 1 << (c % 64);
                }
                if let Some(slot) = table.get_mut(c) {
                    *slot = idx as u16;
                }
                filled += 1;
                if filled == MH_TAB_SIZE {
                    break 'fill;
                }
            }
        }
    }
    table
}

#[inline]
fn available(dests: &[DestLoad], idx: u16) -> bool {
    idx != NO_DEST && dests.get(usize::from(idx)).is_some_and(DestLoad::available)
}

/// mh: the dest in the client's slot if available; else, with mh-fallback, the first
/// available dest found by rehashing with offsets `ihash, ihash+1, ...` (at most one table's
/// worth of probes, so a dest holding very few slots may be missed, as in the kernel); else
/// none.
pub(crate) fn mh(
    flags: SchedFlags,
    tables: &SchedTables,
    dests: &[DestLoad],
    input: &SchedInput,
) -> Option<usize> {
    let table = &tables.mh;
    if table.is_empty() {
        return None;
    }
    let port = if flags.mh_port { input.cport } else { 0 };
    let fold = fold_addr(input.v6, &input.caddr);
    let ihash = hashkey(fold, port, 0, HASH1) % SIZE;
    let first = *table.get(ihash as usize)?;
    if first == NO_DEST {
        return None;
    }
    if available(dests, first) {
        return Some(usize::from(first));
    }
    if !flags.mh_fallback {
        return None;
    }
    // With no dest available every probe would fail: skip the table's worth of hashing.
    if !dests.iter().any(DestLoad::available) {
        return None;
    }
    for offset in 0..SIZE {
        let roffset = (offset + ihash) % SIZE;
        let h = hashkey(fold, port, roffset, HASH1) % SIZE;
        let idx = *table.get(h as usize)?;
        if idx == NO_DEST {
            break;
        }
        if available(dests, idx) {
            return Some(usize::from(idx));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::{schedule, SchedKind, SchedState};

    fn ident(i: usize, weight: i32) -> DestIdent {
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&(0xc0a8_0000u32 + i as u32 + 1).to_be_bytes());
        DestIdent {
            addr,
            port: 8080,
            weight,
        }
    }

    fn idents(weights: &[i32]) -> Vec<DestIdent> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| ident(i, w))
            .collect()
    }

    fn loads(weights: &[i32]) -> Vec<DestLoad> {
        weights
            .iter()
            .map(|&w| DestLoad {
                weight: w,
                ..DestLoad::default()
            })
            .collect()
    }

    fn client(i: u32, port: u16) -> SchedInput {
        let mut caddr = [0u8; 16];
        caddr[..4].copy_from_slice(&(0x0a00_0000 + i).to_be_bytes());
        SchedInput {
            v6: false,
            caddr,
            cport: port,
            daddr: [0; 16],
            dport: 80,
        }
    }

    fn pick(flags: SchedFlags, t: &SchedTables, l: &[DestLoad], inp: &SchedInput) -> Option<usize> {
        let mut s = SchedState::new(SchedKind::Mh, l.len(), 0);
        schedule(SchedKind::Mh, flags, t, &mut s, l, inp, 0)
    }

    fn shares(table: &[u16], n: usize) -> Vec<usize> {
        let mut s = vec![0; n];
        for &e in table {
            s[usize::from(e)] += 1;
        }
        s
    }

    #[test]
    fn mh_table_is_filled_completely() {
        for w in [&[1][..], &[1, 1, 1], &[1, 2, 3], &[0, 5, 0, 7]] {
            let t = build(&idents(w));
            assert_eq!(t.len(), MH_TAB_SIZE);
            assert!(t.iter().all(|&e| e != NO_DEST && usize::from(e) < w.len()));
        }
        // No positive weight: no table.
        assert!(build(&idents(&[0, 0])).is_empty());
        assert!(build(&[]).is_empty());
    }

    #[test]
    fn mh_dests_claim_their_hashed_offsets_first() {
        // The table starts empty, so each dest's first claim is its own offset slot,
        // hsiphash(addr + port) % size with the first key, unless an earlier dest took it.
        let ids = idents(&[1, 1, 1]);
        let t = build(&ids);
        let offset = |d: &DestIdent| {
            let v = u32::from(d.port).wrapping_add(fold_addr_any(&d.addr));
            (hsiphash_u32(v, HASH1) % SIZE) as usize
        };
        let o: Vec<usize> = ids.iter().map(offset).collect();
        assert_eq!(t[o[0]], 0);
        if o[1] != o[0] {
            assert_eq!(t[o[1]], 1);
        }
        if o[2] != o[0] && o[2] != o[1] {
            assert_eq!(t[o[2]], 2);
        }
    }

    #[test]
    fn mh_adding_one_dest_moves_about_its_share() {
        let all: Vec<DestIdent> = (0..9).map(|i| ident(i, 1)).collect();
        let before = build(&all);
        let mut more = all.clone();
        more.push(ident(9, 1));
        let after = build(&more);
        let moved = before
            .iter()
            .zip(after.iter())
            .filter(|(b, a)| all[usize::from(**b)].addr != more[usize::from(**a)].addr)
            .count();
        let frac = moved as f64 / MH_TAB_SIZE as f64;
        assert!(frac > 0.09 && frac < 0.15, "moved {frac}");
    }

    #[test]
    fn mh_share_of_table_is_proportional_to_weight() {
        let t = build(&idents(&[1, 2, 3]));
        let s = shares(&t, 3);
        let unit = MH_TAB_SIZE as f64 / 6.0;
        for (i, w) in [1.0, 2.0, 3.0].iter().enumerate() {
            let want = unit * w;
            assert!((s[i] as f64 - want).abs() < want * 0.03, "{s:?}");
        }
        // Weight-0 dests hold no slot.
        let s = shares(&build(&idents(&[0, 1, 1])), 3);
        assert_eq!(s[0], 0);
    }

    #[test]
    fn mh_weights_are_reduced_by_gcd_and_shift() {
        // Same proportions, same table.
        assert_eq!(
            build(&idents(&[1, 2, 3])),
            build(&idents(&[1000, 2000, 3000]))
        );
        // 1 and 1000: max/gcd = 1000 needs 10 bits, shifted by 2 to fit 8: turns 1 and 250.
        let s = shares(&build(&idents(&[1, 1000])), 2);
        let want0 = MH_TAB_SIZE as f64 / 251.0;
        assert!((s[0] as f64 - want0).abs() < want0 * 0.2, "{s:?}");
    }

    #[test]
    fn mh_removing_one_dest_moves_about_its_share() {
        let n = 10;
        let all: Vec<DestIdent> = (0..n).map(|i| ident(i, 1)).collect();
        let before = build(&all);
        // Remove dest 4: indices above it shift down by one in the new list.
        let mut rest = all.clone();
        rest.remove(4);
        let after = build(&rest);
        let mut moved = 0;
        for (b, a) in before.iter().zip(after.iter()) {
            let b_ident = all[usize::from(*b)].addr;
            let a_ident = rest[usize::from(*a)].addr;
            if b_ident != a_ident {
                moved += 1;
            }
        }
        let frac = moved as f64 / MH_TAB_SIZE as f64;
        // The removed dest's ~1/10 must move; Maglev moves only a little more.
        assert!(frac > 0.09 && frac < 0.15, "moved {frac}");
    }

    #[test]
    fn mh_same_client_same_dest_and_spreads_clients() {
        let w = [1, 1, 1, 1];
        let t = SchedTables::build(SchedKind::Mh, SchedFlags::default(), &idents(&w));
        let l = loads(&w);
        let mut seen = [0u32; 4];
        for c in 0..4000 {
            let a = pick(SchedFlags::default(), &t, &l, &client(c, 1));
            assert_eq!(a, pick(SchedFlags::default(), &t, &l, &client(c, 2)));
            seen[a.unwrap()] += 1;
        }
        assert!(seen.iter().all(|&s| (850..1150).contains(&s)), "{seen:?}");
    }

    #[test]
    fn mh_port_changes_the_key() {
        let w = [1, 1, 1, 1];
        let flags = SchedFlags {
            mh_port: true,
            ..SchedFlags::default()
        };
        let t = SchedTables::build(SchedKind::Mh, flags, &idents(&w));
        let l = loads(&w);
        let spread: std::collections::HashSet<_> = (0..64)
            .map(|p| pick(flags, &t, &l, &client(9, 2000 + p)))
            .collect();
        assert!(spread.len() > 1);
        assert_eq!(
            pick(flags, &t, &l, &client(9, 7)),
            pick(flags, &t, &l, &client(9, 7))
        );
        // sh-port is not mh-port.
        let sh_flag = SchedFlags {
            sh_port: true,
            ..SchedFlags::default()
        };
        let fixed: std::collections::HashSet<_> = (0..64)
            .map(|p| pick(sh_flag, &t, &l, &client(9, 2000 + p)))
            .collect();
        assert_eq!(fixed.len(), 1);
    }

    #[test]
    fn mh_fallback_picks_another_dest_and_without_it_returns_none() {
        let w = [1, 1, 1];
        let fb = SchedFlags {
            mh_fallback: true,
            ..SchedFlags::default()
        };
        let t = SchedTables::build(SchedKind::Mh, fb, &idents(&w));
        let mut l = loads(&w);
        for c in 0..100 {
            let inp = client(c, 0);
            let home = pick(fb, &t, &l, &inp).unwrap();
            l[home].weight = 0; // quiesced: the table is not rebuilt (last_weight)
            assert_eq!(pick(SchedFlags::default(), &t, &l, &inp), None);
            let other = pick(fb, &t, &l, &inp).unwrap();
            assert_ne!(other, home);
            assert_eq!(pick(fb, &t, &l, &inp), Some(other));
            l[home].weight = 1;
        }
        for x in l.iter_mut() {
            x.overloaded = true;
        }
        assert_eq!(pick(fb, &t, &l, &client(5, 0)), None);
    }

    #[test]
    fn mh_v6_clients_hash_on_the_folded_address() {
        let w = [1, 1, 1];
        let t = SchedTables::build(SchedKind::Mh, SchedFlags::default(), &idents(&w));
        let l = loads(&w);
        let mut a = SchedInput {
            v6: true,
            caddr: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            ..SchedInput::default()
        };
        let p = pick(SchedFlags::default(), &t, &l, &a);
        assert!(p.is_some());
        // Swapping two words leaves the XOR fold, hence the dest, unchanged.
        a.caddr = [0, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(pick(SchedFlags::default(), &t, &l, &a), p);
    }
}
