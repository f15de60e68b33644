//! rr and wrr: the round-robin schedulers, with a per-shard cursor.
//!
//! The cursor is the kernel's `sched_data` / `mark->cl`: the last dest picked, or the list
//! head (`None`) when nothing was picked yet. A scan starts after the cursor, runs to the
//! end of the list, then (rr) wraps round to the cursor itself.

use super::{DestIdent, DestLoad, SchedState, SchedTables};

/// wrr's per-service constants, computed when the tables are built (the kernel's
/// `ip_vs_wrr_init_svc` / `ip_vs_wrr_dest_changed`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct WrrParams {
    /// `di`: the gcd of the positive weights (1 when there is none).
    pub di: i32,
    /// `mw`: the highest weight less `di - 1`, so that the last pass runs with `cw == 1`
    /// (0 when no weight is positive: nothing is available).
    pub mw: i32,
}

fn gcd(mut a: i32, mut b: i32) -> i32 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

impl WrrParams {
    pub(crate) fn from_dests(dests: &[DestIdent]) -> Self {
        let mut g = 0;
        let mut max = 0;
        for d in dests {
            if d.weight > 0 {
                g = if g > 0 { gcd(d.weight, g) } else { d.weight };
            }
            max = max.max(d.weight);
        }
        let di = if g > 0 { g } else { 1 };
        WrrParams {
            di,
            mw: max - (di - 1),
        }
    }
}

/// rr: the next available dest after the cursor, wrapping round once.
pub(crate) fn rr(state: &mut SchedState, dests: &[DestLoad]) -> Option<usize> {
    let n = dests.len();
    let last = state.cursor.filter(|&c| c < n);
    let start = last.map_or(0, |c| c + 1);
    let wrapped = last.map_or(0..0, |c| 0..c + 1);
    for i in (start..n).chain(wrapped) {
        if dests.get(i).is_some_and(DestLoad::available) {
            state.cursor = Some(i);
            return Some(i);
        }
    }
    None
}

/// wrr: the kernel's stepped weighted round robin.
///
/// Passes run over the list with a current weight `cw`: the first dest after the cursor that
/// is not overloaded and has `weight >= cw` is picked. At the end of the list `cw` drops by
/// `di`; below 1 it restarts at `mw`. The kernel's stop rules (give up after a full last pass
/// with `cw <= di`, or after a full cycle that started at the head) are kept exactly,
/// including where they leave the cursor and `cw` when nothing is found.
///
/// One addition keeps the walk bounded: passes at a `cw` above every available weight must
/// fail, so they are skipped arithmetically instead of walked (the kernel walks up to
/// `mw / di` passes of the whole list). The picks and the state left behind are the same;
/// a test checks this against a literal transcription.
pub(crate) fn wrr(
    tables: &SchedTables,
    state: &mut SchedState,
    dests: &[DestLoad],
) -> Option<usize> {
    let WrrParams { di, mw } = tables.wrr;
    let n = dests.len();
    if state.cursor.is_some_and(|c| c >= n) {
        state.cursor = None;
    }
    if mw <= 0 || di <= 0 {
        // "no destination available": the cursor stays.
        return None;
    }
    // A fresh state (cw 0) starts at mw, as `ip_vs_wrr_dest_changed` resets it.
    if state.cw <= 0 || state.cw > mw {
        state.cw = mw;
    }
    // The highest weight a pass could match; passes with cw above it find nothing.
    let top = dests
        .iter()
        .filter(|d| d.available())
        .map(|d| d.weight)
        .max()
        .unwrap_or(0);
    let last = state.cursor;
    let mut pos = state.cursor;
    let mut stop: Option<usize> = None;
    let mut last_pass = false;
    let mut restarted = false;
    loop {
        let start = pos.map_or(0, |p| p + 1);
        if state.cw <= top {
            for i in start..n {
                let Some(d) = dests.get(i) else { break };
                if !d.overloaded && d.weight >= state.cw {
                    state.cursor = Some(i);
                    return Some(i);
                }
                if stop == Some(i) {
                    state.cursor = Some(i);
                    return None;
                }
            }
        } else if let Some(s) = stop {
            // Nothing can match at this cw; the walk would end at `stop` if it reaches it.
            if s >= start && s < n {
                state.cursor = Some(s);
                return None;
            }
        }
        // End of the list: the next pass starts at the head with a lower cw.
        pos = None;
        state.cw -= di;
        if state.cw <= 0 {
            state.cw = mw;
            if last_pass || last.is_none() {
                state.cursor = None;
                return None;
            }
            restarted = true;
        }
        last_pass = state.cw <= di;
        if last_pass && restarted && last.is_some() {
            // The first traversal at the lowest weight covered only the dests after the
            // cursor; this one covers those up to it.
            stop = last;
        }
        if stop.is_none() {
            // Whole passes from the head that cannot match and cannot stop: cw stays above
            // `top.max(di)`, so none of them restarts or becomes the last pass. Skip all but
            // the final one, which the loop walks (cheaply) as usual.
            let floor = top.max(di);
            if state.cw > floor {
                let passes = (state.cw - floor + di - 1) / di;
                state.cw -= (passes - 1) * di;
                last_pass = false;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sched::{SchedFlags, SchedKind};

    fn d(weight: i32) -> DestLoad {
        DestLoad {
            weight,
            ..DestLoad::default()
        }
    }

    fn idents(weights: &[i32]) -> Vec<DestIdent> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| DestIdent {
                addr: [10, 0, 0, i as u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                port: 80,
                weight: w,
            })
            .collect()
    }

    /// A literal transcription of `ip_vs_wrr_schedule`, walking every pass: the reference
    /// the bounded version is checked against.
    pub(crate) fn wrr_reference(
        di: i32,
        mw: i32,
        cursor: &mut Option<usize>,
        cw: &mut i32,
        dests: &[DestLoad],
    ) -> Option<usize> {
        let n = dests.len();
        if cursor.is_some_and(|c| c >= n) {
            *cursor = None;
        }
        if mw == 0 {
            return None;
        }
        if *cw <= 0 || *cw > mw {
            *cw = mw;
        }
        let last = *cursor;
        let mut pos = *cursor;
        let mut stop = None;
        let (mut last_pass, mut restarted) = (false, false);
        loop {
            let start = pos.map_or(0, |p| p + 1);
            for (i, dest) in dests.iter().enumerate().skip(start) {
                if !dest.overloaded && dest.weight >= *cw {
                    *cursor = Some(i);
                    return Some(i);
                }
                if stop == Some(i) {
                    *cursor = Some(i);
                    return None;
                }
            }
            pos = None;
            *cw -= di;
            if *cw <= 0 {
                *cw = mw;
                if last_pass || last.is_none() {
                    *cursor = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = *cw <= di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }

    fn run(kind: SchedKind, weights: &[i32], loads: &[DestLoad], n: usize) -> Vec<usize> {
        let tables = SchedTables::build(kind, SchedFlags::default(), &idents(weights));
        let mut state = SchedState::new(kind, weights.len(), 0);
        let input = crate::sched::SchedInput::default();
        (0..n)
            .map(|_| {
                crate::sched::schedule(
                    kind,
                    SchedFlags::default(),
                    &tables,
                    &mut state,
                    loads,
                    &input,
                    0,
                )
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn rr_cycles_over_available_dests_in_list_order() {
        let loads = [d(1), d(0), d(5), d(1)];
        let picks = run(SchedKind::Rr, &[1, 0, 5, 1], &loads, 7);
        assert_eq!(picks, vec![0, 2, 3, 0, 2, 3, 0]);
    }

    #[test]
    fn rr_skips_overloaded_and_returns_none_when_nothing_is_available() {
        let mut state = SchedState::new(SchedKind::Rr, 3, 0);
        let mut loads = [d(1), d(1), d(1)];
        loads[1].overloaded = true;
        assert_eq!(rr(&mut state, &loads), Some(0));
        assert_eq!(rr(&mut state, &loads), Some(2));
        assert_eq!(rr(&mut state, &loads), Some(0));
        let none = [
            d(0),
            DestLoad {
                overloaded: true,
                ..d(1)
            },
        ];
        assert_eq!(rr(&mut state, &none), None);
        assert_eq!(rr(&mut state, &[]), None);
    }

    #[test]
    fn rr_spreads_evenly() {
        let loads = [d(1), d(7), d(2), d(1)];
        let picks = run(SchedKind::Rr, &[1, 7, 2, 1], &loads, 4000);
        let mut seen = [0; 4];
        for p in picks {
            seen[p] += 1;
        }
        assert_eq!(seen, [1000; 4]);
    }

    #[test]
    fn rr_wraps_round_to_the_cursor_itself() {
        let mut state = SchedState::new(SchedKind::Rr, 3, 0);
        let loads = [d(1), d(1), d(1)];
        assert_eq!(rr(&mut state, &loads), Some(0));
        assert_eq!(rr(&mut state, &loads), Some(1));
        // Only dest 1 left: found on the wrapped part of the walk.
        let only1 = [d(0), d(1), d(0)];
        assert_eq!(rr(&mut state, &only1), Some(1));
    }

    #[test]
    fn wrr_sequence_matches_kernel_for_weights_4_3_2() {
        // di = 1, mw = 4. cw=4: A | cw=3: A B | cw=2: A B C | cw=1: A B C | restart...
        let w = [4, 3, 2];
        let loads = [d(4), d(3), d(2)];
        let picks = run(SchedKind::Wrr, &w, &loads, 18);
        let one = [0, 0, 1, 0, 1, 2, 0, 1, 2];
        let want: Vec<usize> = one.iter().chain(one.iter()).copied().collect();
        assert_eq!(picks, want);
    }

    #[test]
    fn wrr_steps_by_the_gcd_of_weights() {
        // 4 and 2: di = 2, mw = 4 - (2 - 1) = 3. cw=3: A | cw=1: A B | restart.
        let tables = SchedTables::build(SchedKind::Wrr, SchedFlags::default(), &idents(&[4, 2]));
        assert_eq!(tables.wrr, WrrParams { di: 2, mw: 3 });
        let picks = run(SchedKind::Wrr, &[4, 2], &[d(4), d(2)], 9);
        assert_eq!(picks, vec![0, 0, 1, 0, 0, 1, 0, 0, 1]);
        // 6, 3, 3 -> di 3, 2:1:1 per cycle.
        let picks = run(SchedKind::Wrr, &[6, 3, 3], &[d(6), d(3), d(3)], 8);
        assert_eq!(picks, vec![0, 0, 1, 2, 0, 0, 1, 2]);
    }

    #[test]
    fn wrr_shares_follow_weights() {
        let w = [5, 1, 3, 0, 2];
        let loads: Vec<DestLoad> = w.iter().map(|&x| d(x)).collect();
        let picks = run(SchedKind::Wrr, &w, &loads, 11 * 100);
        let mut seen = [0; 5];
        for p in picks {
            seen[p] += 1;
        }
        assert_eq!(seen, [500, 100, 300, 0, 200]);
    }

    #[test]
    fn wrr_skips_overloaded_and_quiescent_and_reports_none() {
        let tables = SchedTables::build(SchedKind::Wrr, SchedFlags::default(), &idents(&[3, 2, 1]));
        let mut state = SchedState::new(SchedKind::Wrr, 3, 0);
        let mut loads = [d(3), d(2), d(1)];
        loads[0].overloaded = true;
        for _ in 0..20 {
            let p = wrr(&tables, &mut state, &loads).unwrap();
            assert_ne!(p, 0);
        }
        loads[1].weight = 0;
        for _ in 0..5 {
            assert_eq!(wrr(&tables, &mut state, &loads), Some(2));
        }
        loads[2].overloaded = true;
        assert_eq!(wrr(&tables, &mut state, &loads), None);
        // All weights zero at build time: mw = 0, nothing available.
        let zero = SchedTables::build(SchedKind::Wrr, SchedFlags::default(), &idents(&[0, 0]));
        assert_eq!(
            wrr(
                &zero,
                &mut SchedState::new(SchedKind::Wrr, 2, 0),
                &[d(0), d(0)]
            ),
            None
        );
    }

    #[test]
    fn wrr_with_a_huge_weight_overloaded_is_bounded_and_finds_the_small_one() {
        // The kernel would walk ~65535 passes per pick here; we skip them.
        let w = [65_535, 1];
        let tables = SchedTables::build(SchedKind::Wrr, SchedFlags::default(), &idents(&w));
        let mut state = SchedState::new(SchedKind::Wrr, 2, 0);
        let loads = [
            DestLoad {
                overloaded: true,
                ..d(65_535)
            },
            d(1),
        ];
        for _ in 0..1000 {
            assert_eq!(wrr(&tables, &mut state, &loads), Some(1));
        }
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn load() -> impl Strategy<Value = DestLoad> {
            (0i32..12, any::<bool>(), 0u8..4).prop_map(|(w, o, k)| DestLoad {
                weight: if k == 0 { w * 7 } else { w },
                overloaded: o && k != 1,
                ..DestLoad::default()
            })
        }

        proptest! {
            #[test]
            fn wrr_bounded_walk_equals_kernel_transcription(
                weights in proptest::collection::vec(0i32..40, 0..8),
                steps in proptest::collection::vec(proptest::collection::vec(load(), 0..8), 1..40),
            ) {
                let tables = SchedTables::build(SchedKind::Wrr, SchedFlags::default(), &idents(&weights));
                let WrrParams { di, mw } = tables.wrr;
                let mut state = SchedState::new(SchedKind::Wrr, weights.len(), 0);
                let (mut cursor, mut cw) = (None, 0);
                for loads in &steps {
                    let ours = wrr(&tables, &mut state, loads);
                    let theirs = wrr_reference(di, mw, &mut cursor, &mut cw, loads);
                    prop_assert_eq!(ours, theirs);
                    prop_assert_eq!(state.cursor, cursor);
                    if mw > 0 {
                        prop_assert_eq!(state.cw, cw);
                    }
                }
            }
        }
    }
}
