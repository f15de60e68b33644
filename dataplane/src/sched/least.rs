//! The load-comparing schedulers without per-service tables: lc, wlc, sed, nq, fo, ovf, twos.
//!
//! Each walks the dest list once or twice in list order, as `ip_vs_lc.c`, `ip_vs_wlc.c`,
//! `ip_vs_sed.c`, `ip_vs_nq.c`, `ip_vs_fo.c`, `ip_vs_ovf.c` and `ip_vs_twos.c` do. Ties go to
//! the dest met first (every comparison is strict). Load ratios are compared as cross
//! products (`a_load * b_weight > b_load * a_weight`), widened to `i128` so that no count or
//! weight can overflow them.

use super::DestLoad;
use crate::rng::Rng;

/// `a_load / a_weight > b_load / b_weight`, as the kernel writes it: `a_load * b_weight >
/// b_load * a_weight`.
#[inline]
pub(crate) fn heavier(a_load: u64, a_weight: i32, b_load: u64, b_weight: i32) -> bool {
    i128::from(a_load) * i128::from(b_weight) > i128::from(b_load) * i128::from(a_weight)
}

/// lc: the available dest with the least overhead (`active * 256 + inactive`), weights aside.
pub(crate) fn lc(dests: &[DestLoad]) -> Option<usize> {
    let mut least: Option<(usize, u64)> = None;
    for (i, d) in dests.iter().enumerate() {
        if !d.available() {
            continue;
        }
        let doh = d.overhead();
        match least {
            Some((_, loh)) if doh >= loh => {}
            _ => least = Some((i, doh)),
        }
    }
    least.map(|(i, _)| i)
}

/// The first-stage / second-stage walk shared by wlc, sed and lblc/lblcr's fallback: start
/// from the first available dest, then replace `least` by any later non-overloaded dest whose
/// load per weight is strictly lower. Later dests of weight <= 0 can never win the strict
/// comparison, so the second stage (like the kernel's) only skips overloaded ones.
#[inline]
fn least_by(dests: &[DestLoad], load: impl Fn(&DestLoad) -> u64) -> Option<usize> {
    let first = dests.iter().position(DestLoad::available)?;
    let mut least = first;
    let mut lw = dests.get(first)?.weight;
    let mut loh = load(dests.get(first)?);
    for (i, d) in dests.iter().enumerate().skip(first + 1) {
        if d.overloaded {
            continue;
        }
        let doh = load(d);
        if heavier(loh, lw, doh, d.weight) {
            least = i;
            loh = doh;
            lw = d.weight;
        }
    }
    Some(least)
}

/// wlc: the available dest with the least `overhead / weight`.
pub(crate) fn wlc(dests: &[DestLoad]) -> Option<usize> {
    least_by(dests, DestLoad::overhead)
}

/// sed: the available dest with the least `(active + 1) / weight`.
pub(crate) fn sed(dests: &[DestLoad]) -> Option<usize> {
    least_by(dests, |d| u64::from(d.active) + 1)
}

/// nq: the first available dest with no active conns; otherwise as sed.
pub(crate) fn nq(dests: &[DestLoad]) -> Option<usize> {
    let mut least: Option<(usize, u64, i32)> = None;
    for (i, d) in dests.iter().enumerate() {
        if !d.available() {
            continue;
        }
        if d.active == 0 {
            return Some(i);
        }
        let doh = u64::from(d.active) + 1;
        match least {
            Some((_, loh, lw)) if !heavier(loh, lw, doh, d.weight) => {}
            _ => least = Some((i, doh, d.weight)),
        }
    }
    least.map(|(i, _, _)| i)
}

/// fo: the available dest with the highest weight (the first of equals).
pub(crate) fn fo(dests: &[DestLoad]) -> Option<usize> {
    let mut best: Option<usize> = None;
    let mut hw = 0i32;
    for (i, d) in dests.iter().enumerate() {
        if !d.overloaded && d.weight > hw {
            best = Some(i);
            hw = d.weight;
        }
    }
    best
}

/// ovf: the available dest with the highest weight among those whose active conns do not
/// exceed their weight (`active <= weight`, as `ip_vs_ovf.c` skips only `active > weight`).
pub(crate) fn ovf(dests: &[DestLoad]) -> Option<usize> {
    let mut best: Option<usize> = None;
    let mut hw = 0i32;
    for (i, d) in dests.iter().enumerate() {
        if !d.available() || i64::from(d.active) > i64::from(d.weight) {
            continue;
        }
        if best.is_none() || d.weight > hw {
            best = Some(i);
            hw = d.weight;
        }
    }
    best
}

/// twos: two dests drawn at random in proportion to weight; the second replaces the first
/// only if its overhead per weight is strictly lower.
///
/// As in `ip_vs_twos.c` each draw is uniform in `0..=total_weight` (inclusive, so the first
/// available dest gets one extra chance in `total_weight + 1`), and a dest is taken when the
/// running remainder reaches zero or below.
pub(crate) fn twos(rng: &mut Rng, dests: &[DestLoad]) -> Option<usize> {
    let total: u64 = dests
        .iter()
        .filter(|d| d.available())
        .map(|d| d.weight.unsigned_abs() as u64)
        .sum();
    if total == 0 {
        return None;
    }
    let mut r1 = rng.below(total + 1) as i64;
    let mut r2 = rng.below(total + 1) as i64;
    let mut c1: Option<(usize, i32, u64)> = None;
    let mut c2: Option<(usize, i32, u64)> = None;
    for (i, d) in dests.iter().enumerate() {
        if !d.available() {
            continue;
        }
        r1 -= i64::from(d.weight);
        r2 -= i64::from(d.weight);
        if r1 <= 0 && c1.is_none() {
            c1 = Some((i, d.weight, d.overhead()));
        }
        if r2 <= 0 && c2.is_none() {
            c2 = Some((i, d.weight, d.overhead()));
        }
        if c1.is_some() && c2.is_some() {
            break;
        }
    }
    match (c1, c2) {
        (Some((i1, w1, oh1)), Some((i2, w2, oh2))) => {
            // weight2 * overhead1 > weight1 * overhead2: the second is less loaded.
            if heavier(oh1, w1, oh2, w2) {
                Some(i2)
            } else {
                Some(i1)
            }
        }
        (Some((i1, _, _)), None) => Some(i1),
        (None, Some((i2, _, _))) => Some(i2),
        // Unreachable (the draws never exceed the total), but never panic.
        (None, None) => dests.iter().rposition(DestLoad::available),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(weight: i32, active: u32, inactive: u32) -> DestLoad {
        DestLoad {
            weight,
            active,
            inactive,
            overloaded: false,
        }
    }

    fn over(mut x: DestLoad) -> DestLoad {
        x.overloaded = true;
        x
    }

    #[test]
    fn lc_prefers_least_overhead_active_counting_256_inactive() {
        // 1 active = 256 > 255 inactive.
        assert_eq!(lc(&[d(1, 1, 0), d(1, 0, 255)]), Some(1));
        // Equal overhead: the first wins.
        assert_eq!(lc(&[d(1, 1, 0), d(1, 0, 256)]), Some(0));
        // Weight does not matter to lc, only to availability.
        assert_eq!(lc(&[d(100, 2, 0), d(1, 1, 0)]), Some(1));
    }

    #[test]
    fn lc_skips_quiescent_and_overloaded() {
        assert_eq!(lc(&[d(0, 0, 0), over(d(1, 0, 0)), d(1, 9, 9)]), Some(2));
        assert_eq!(lc(&[d(0, 0, 0), over(d(1, 0, 0))]), None);
        assert_eq!(lc(&[]), None);
    }

    #[test]
    fn wlc_prefers_lower_overhead_per_weight() {
        // A: 256/1 = 256, B: 512/3 = 170.7 -> B.
        assert_eq!(wlc(&[d(1, 1, 0), d(3, 2, 0)]), Some(1));
        // A: 256/1, B: 1024/3 = 341 -> A.
        assert_eq!(wlc(&[d(1, 1, 0), d(3, 4, 0)]), Some(0));
        // Equal ratio (256/1 vs 768/3): the first stays.
        assert_eq!(wlc(&[d(1, 1, 0), d(3, 3, 0)]), Some(0));
        // Inactive conns count 1/256 of an active one.
        assert_eq!(wlc(&[d(1, 0, 10), d(1, 0, 9)]), Some(1));
    }

    #[test]
    fn wlc_starts_from_first_dest_with_weight_and_never_picks_quiescent() {
        // Idle quiescent dest in front: skipped even though its overhead is 0.
        assert_eq!(wlc(&[d(0, 0, 0), d(2, 5, 0), d(1, 1, 0)]), Some(2));
        assert_eq!(wlc(&[d(2, 5, 0), d(0, 0, 0)]), Some(0));
        assert_eq!(wlc(&[over(d(5, 0, 0)), d(1, 3, 0)]), Some(1));
        assert_eq!(wlc(&[d(0, 0, 0), over(d(3, 0, 0))]), None);
    }

    #[test]
    fn wlc_does_not_overflow_on_huge_counts() {
        let a = d(i32::MAX, u32::MAX, u32::MAX);
        let b = d(1, u32::MAX, u32::MAX);
        assert_eq!(wlc(&[b, a]), Some(1));
    }

    #[test]
    fn sed_counts_the_incoming_conn_and_ignores_inactive() {
        // wlc would pick A (idle); sed compares (0+1)/1 = 1 with (1+1)/3 = 0.67 -> B.
        let loads = [d(1, 0, 0), d(3, 1, 0)];
        assert_eq!(wlc(&loads), Some(0));
        assert_eq!(sed(&loads), Some(1));
        // Inactive conns do not count for sed.
        assert_eq!(sed(&[d(1, 0, 1000), d(1, 1, 0)]), Some(0));
        assert_eq!(sed(&[d(0, 0, 0), over(d(1, 0, 0))]), None);
    }

    #[test]
    fn nq_sends_to_an_idle_dest_first_then_falls_back_to_sed() {
        // B is idle, though A's expected delay is lower: nq takes B.
        assert_eq!(nq(&[d(10, 1, 0), d(1, 0, 0)]), Some(1));
        // No idle dest: sed's rule, (1+1)/10 < (1+1)/1 -> A.
        assert_eq!(nq(&[d(10, 1, 0), d(1, 1, 0)]), Some(0));
        // Idle but quiescent or overloaded dests do not count.
        assert_eq!(nq(&[d(0, 0, 0), over(d(1, 0, 0)), d(1, 4, 0)]), Some(2));
        assert_eq!(nq(&[d(0, 0, 0)]), None);
    }

    #[test]
    fn fo_picks_highest_weight_available() {
        assert_eq!(fo(&[d(1, 0, 0), d(5, 100, 0), d(3, 0, 0)]), Some(1));
        assert_eq!(fo(&[d(5, 0, 0), d(5, 0, 0)]), Some(0));
        assert_eq!(fo(&[d(1, 0, 0), over(d(5, 0, 0)), d(3, 0, 0)]), Some(2));
        assert_eq!(fo(&[d(0, 0, 0), over(d(5, 0, 0))]), None);
    }

    #[test]
    fn ovf_fills_highest_weight_until_active_exceeds_weight() {
        // A (w3) keeps taking conns while active <= 3.
        assert_eq!(ovf(&[d(3, 0, 0), d(2, 0, 0)]), Some(0));
        assert_eq!(ovf(&[d(3, 3, 0), d(2, 0, 0)]), Some(0));
        // active 4 > 3: overflow to B.
        assert_eq!(ovf(&[d(3, 4, 0), d(2, 0, 0)]), Some(1));
        assert_eq!(ovf(&[d(3, 4, 0), d(2, 3, 0)]), None);
        assert_eq!(ovf(&[over(d(3, 0, 0)), d(0, 0, 0)]), None);
    }

    #[test]
    fn twos_draws_in_proportion_to_weight_with_the_kernels_first_dest_bias() {
        // Zero load: the first choice always stands, so picks follow the draw:
        // weights 1,2,3 over 0..=6 give 2/7, 2/7, 3/7.
        let loads = [d(1, 0, 0), d(2, 0, 0), d(3, 0, 0)];
        let mut rng = Rng::new(1);
        let mut seen = [0u32; 3];
        let n = 70_000;
        for _ in 0..n {
            seen[twos(&mut rng, &loads).unwrap()] += 1;
        }
        let want = [20_000.0, 20_000.0, 30_000.0];
        for (s, w) in seen.iter().zip(want) {
            assert!((f64::from(*s) - w).abs() < w * 0.03, "{seen:?}");
        }
    }

    #[test]
    fn twos_prefers_the_less_loaded_of_its_two_choices() {
        // Four equal dests, the last one heavily loaded: it wins only when drawn twice
        // (p = 1/5 per draw with the first-dest bias), about 4% of the time.
        let loads = [d(1, 0, 0), d(1, 0, 0), d(1, 0, 0), d(1, 50, 0)];
        let mut rng = Rng::new(9);
        let mut seen = [0u32; 4];
        for _ in 0..40_000 {
            seen[twos(&mut rng, &loads).unwrap()] += 1;
        }
        assert!(seen[3] < 40_000 * 6 / 100, "{seen:?}");
        assert!(seen[3] > 40_000 * 2 / 100, "{seen:?}");
    }

    #[test]
    fn twos_never_picks_unavailable() {
        let loads = [d(0, 0, 0), over(d(5, 0, 0)), d(2, 7, 0), d(0, 0, 0)];
        let mut rng = Rng::new(3);
        for _ in 0..1000 {
            assert_eq!(twos(&mut rng, &loads), Some(2));
        }
        assert_eq!(twos(&mut rng, &[d(0, 0, 0), over(d(1, 0, 0))]), None);
    }
}
