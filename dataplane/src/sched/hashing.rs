//! sh and dh: 256-bucket tables keyed by a hash of the client (sh) or destination (dh)
//! address, as `ip_vs_sh.c` and `ip_vs_dh.c`.
//!
//! The tables are not hashed by dest: they are tiled. sh walks the dest list filling buckets
//! in order, `weight` buckets per dest (at least one, even for weight 0), wrapping round the
//! list until all 256 are filled; dh gives each dest one bucket in turn. A table therefore
//! holds at most 256 dests; with large weights the dests late in the list may get none
//! (`CONFIG_IP_VS_SH_TAB_BITS` help: the table must fit the weights). Lookups use the
//! kernel's `hash_32`, so the bucket chosen for a client is the kernel's for the same
//! dest order.

use super::hash::{fold_addr, hash_32};
use super::{DestIdent, DestLoad, SchedFlags, SchedInput, SchedTables, NO_DEST};

/// log2 of the sh/dh table size (`CONFIG_IP_VS_SH_TAB_BITS` / `_DH_TAB_BITS`, default 8).
pub const SH_TAB_BITS: u32 = 8;
/// Buckets in an sh or dh table.
pub const SH_TAB_SIZE: usize = 1 << SH_TAB_BITS;
const SH_TAB_MASK: u32 = (1 << SH_TAB_BITS) - 1;

/// Dest indices beyond this do not fit a `u16` table entry (`NO_DEST` is reserved).
const MAX_TABLE_DESTS: usize = NO_DEST as usize;

/// `ip_vs_sh_reassign`: tile the buckets with the dests, `weight` consecutive buckets each
/// (a dest with weight <= 0 still gets one).
pub(crate) fn sh_buckets(dests: &[DestIdent]) -> [u16; SH_TAB_SIZE] {
    let mut b = [NO_DEST; SH_TAB_SIZE];
    let n = dests.len().min(MAX_TABLE_DESTS);
    if n == 0 {
        return b;
    }
    let mut p = 0usize;
    let mut count = 0i64;
    for slot in b.iter_mut() {
        *slot = p as u16;
        count += 1;
        let w = dests.get(p).map_or(0, |d| i64::from(d.weight));
        if count >= w {
            p = (p + 1) % n;
            count = 0;
        }
    }
    b
}

/// `ip_vs_dh_reassign`: one bucket per dest in turn.
pub(crate) fn dh_buckets(dests: &[DestIdent]) -> [u16; SH_TAB_SIZE] {
    let mut b = [NO_DEST; SH_TAB_SIZE];
    let n = dests.len().min(MAX_TABLE_DESTS);
    if n == 0 {
        return b;
    }
    for (i, slot) in b.iter_mut().enumerate() {
        *slot = (i % n) as u16;
    }
    b
}

#[inline]
fn available(dests: &[DestLoad], idx: u16) -> bool {
    idx != NO_DEST && dests.get(usize::from(idx)).is_some_and(DestLoad::available)
}

/// `ip_vs_sh_hashkey`: `(offset + hash_32(port + addr_fold, 8)) & 255`.
#[inline]
fn sh_hashkey(key: u32, offset: u32) -> usize {
    (offset.wrapping_add(hash_32(key, SH_TAB_BITS)) & SH_TAB_MASK) as usize
}

/// sh: the bucket of the client address (plus the client port with sh-port). The dest there
/// if available; else, with sh-fallback, the first available dest found by rehashing with
/// offsets `ihash, ihash+1, ...` (all 256 buckets are visited); else none.
pub(crate) fn sh(
    flags: SchedFlags,
    tables: &SchedTables,
    dests: &[DestLoad],
    input: &SchedInput,
) -> Option<usize> {
    let port = if flags.sh_port { input.cport } else { 0 };
    let key = u32::from(port).wrapping_add(fold_addr(input.v6, &input.caddr));
    let ihash = sh_hashkey(key, 0);
    let first = *tables.buckets.get(ihash)?;
    if first == NO_DEST {
        return None;
    }
    if available(dests, first) {
        return Some(usize::from(first));
    }
    if !flags.sh_fallback {
        return None;
    }
    for offset in 0..SH_TAB_SIZE as u32 {
        let roffset = (offset + ihash as u32) % SH_TAB_SIZE as u32;
        let idx = *tables.buckets.get(sh_hashkey(key, roffset))?;
        if idx == NO_DEST {
            break;
        }
        if available(dests, idx) {
            return Some(usize::from(idx));
        }
    }
    None
}

/// dh: the bucket of the destination address; the dest there if available, else none.
pub(crate) fn dh(tables: &SchedTables, dests: &[DestLoad], input: &SchedInput) -> Option<usize> {
    let h = hash_32(fold_addr(input.v6, &input.daddr), SH_TAB_BITS) as usize;
    let idx = *tables.buckets.get(h)?;
    available(dests, idx).then_some(usize::from(idx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::{schedule, SchedKind, SchedState};

    fn idents(weights: &[i32]) -> Vec<DestIdent> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| DestIdent {
                addr: [192, 168, 0, i as u8 + 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                port: 80,
                weight: w,
            })
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
            daddr: caddr,
            dport: 80,
        }
    }

    fn pick(
        kind: SchedKind,
        flags: SchedFlags,
        t: &SchedTables,
        l: &[DestLoad],
        inp: &SchedInput,
    ) -> Option<usize> {
        let mut s = SchedState::new(kind, l.len(), 0);
        schedule(kind, flags, t, &mut s, l, inp, 0)
    }

    #[test]
    fn sh_table_tiles_dests_by_weight() {
        let b = sh_buckets(&idents(&[1, 2, 3]));
        assert_eq!(&b[..8], &[0, 1, 1, 2, 2, 2, 0, 1]);
        // Weight 0 still takes one bucket per round.
        let b = sh_buckets(&idents(&[2, 0]));
        assert_eq!(&b[..6], &[0, 0, 1, 0, 0, 1]);
        // Big weights: the table fills before the last dest's turn.
        let b = sh_buckets(&idents(&[200, 200, 5]));
        assert!(b.iter().all(|&x| x != 2));
        assert_eq!(sh_buckets(&[]), [NO_DEST; SH_TAB_SIZE]);
    }

    #[test]
    fn sh_same_client_same_dest() {
        let w = [1, 1, 1, 1];
        let t = SchedTables::build(SchedKind::Sh, SchedFlags::default(), &idents(&w));
        let l = loads(&w);
        let mut seen = [0u32; 4];
        for c in 0..2000 {
            let a = pick(
                SchedKind::Sh,
                SchedFlags::default(),
                &t,
                &l,
                &client(c, 1000),
            );
            let b = pick(
                SchedKind::Sh,
                SchedFlags::default(),
                &t,
                &l,
                &client(c, 2000),
            );
            assert_eq!(a, b, "port must not matter without sh-port");
            seen[a.unwrap()] += 1;
        }
        assert!(seen.iter().all(|&s| s > 300), "{seen:?}");
    }

    #[test]
    fn sh_bucket_is_the_kernels_hash_of_the_client() {
        let w = [1, 1, 1];
        let t = SchedTables::build(SchedKind::Sh, SchedFlags::default(), &idents(&w));
        let inp = client(5, 0);
        let key = 0x0a00_0005u32;
        let bucket = (key.wrapping_mul(0x61C8_8647) >> 24) as usize;
        let want = usize::from(t.buckets[bucket]);
        assert_eq!(
            pick(SchedKind::Sh, SchedFlags::default(), &t, &loads(&w), &inp),
            Some(want)
        );
    }

    #[test]
    fn sh_port_changes_the_key() {
        let w = [1, 1, 1, 1];
        let flags = SchedFlags {
            sh_port: true,
            ..SchedFlags::default()
        };
        let t = SchedTables::build(SchedKind::Sh, flags, &idents(&w));
        let l = loads(&w);
        let dests: std::collections::HashSet<_> = (0..64)
            .map(|p| pick(SchedKind::Sh, flags, &t, &l, &client(7, 1024 + p)))
            .collect();
        assert!(dests.len() > 1, "one client over many ports should spread");
        // Same client and port: same dest.
        let a = pick(SchedKind::Sh, flags, &t, &l, &client(7, 5555));
        assert_eq!(a, pick(SchedKind::Sh, flags, &t, &l, &client(7, 5555)));
    }

    #[test]
    fn sh_without_fallback_returns_none_for_an_unavailable_dest() {
        let w = [1, 1, 1];
        let t = SchedTables::build(SchedKind::Sh, SchedFlags::default(), &idents(&w));
        let mut l = loads(&w);
        let inp = client(42, 0);
        let home = pick(SchedKind::Sh, SchedFlags::default(), &t, &l, &inp).unwrap();
        l[home].overloaded = true;
        assert_eq!(
            pick(SchedKind::Sh, SchedFlags::default(), &t, &l, &inp),
            None
        );
        l[home].overloaded = false;
        l[home].weight = 0;
        assert_eq!(
            pick(SchedKind::Sh, SchedFlags::default(), &t, &l, &inp),
            None
        );
    }

    #[test]
    fn sh_fallback_picks_another_dest_when_the_hashed_one_is_unavailable() {
        let w = [1, 1, 1];
        let flags = SchedFlags {
            sh_fallback: true,
            ..SchedFlags::default()
        };
        let t = SchedTables::build(SchedKind::Sh, flags, &idents(&w));
        let mut l = loads(&w);
        for c in 0..200 {
            let inp = client(c, 0);
            let home = pick(SchedKind::Sh, flags, &t, &l, &inp).unwrap();
            l[home].overloaded = true;
            let other = pick(SchedKind::Sh, flags, &t, &l, &inp).unwrap();
            assert_ne!(other, home);
            // Deterministic: the same client falls back to the same dest.
            assert_eq!(pick(SchedKind::Sh, flags, &t, &l, &inp), Some(other));
            l[home].overloaded = false;
        }
        for x in l.iter_mut() {
            x.weight = 0;
        }
        assert_eq!(pick(SchedKind::Sh, flags, &t, &l, &client(1, 0)), None);
    }

    #[test]
    fn sh_with_no_dests_returns_none() {
        let t = SchedTables::build(SchedKind::Sh, SchedFlags::default(), &[]);
        let flags = SchedFlags {
            sh_fallback: true,
            ..SchedFlags::default()
        };
        assert_eq!(pick(SchedKind::Sh, flags, &t, &[], &client(1, 0)), None);
    }

    #[test]
    fn dh_same_destination_same_dest_and_one_bucket_per_dest() {
        let w = [5, 1, 1];
        let t = SchedTables::build(SchedKind::Dh, SchedFlags::default(), &idents(&w));
        assert_eq!(&t.buckets[..6], &[0, 1, 2, 0, 1, 2]);
        let l = loads(&w);
        for c in 0..100 {
            let mut a = client(c, 1);
            let p = pick(SchedKind::Dh, SchedFlags::default(), &t, &l, &a);
            a.caddr[0] = 99; // the client does not matter to dh
            a.cport = 2;
            assert_eq!(pick(SchedKind::Dh, SchedFlags::default(), &t, &l, &a), p);
        }
    }

    #[test]
    fn dh_returns_none_for_unavailable_dest() {
        let w = [1, 1];
        let t = SchedTables::build(SchedKind::Dh, SchedFlags::default(), &idents(&w));
        let mut l = loads(&w);
        let inp = client(3, 0);
        let home = pick(SchedKind::Dh, SchedFlags::default(), &t, &l, &inp).unwrap();
        l[home].weight = 0;
        assert_eq!(
            pick(SchedKind::Dh, SchedFlags::default(), &t, &l, &inp),
            None
        );
        l[home].weight = 1;
        l[home].overloaded = true;
        assert_eq!(
            pick(SchedKind::Dh, SchedFlags::default(), &t, &l, &inp),
            None
        );
    }
}
