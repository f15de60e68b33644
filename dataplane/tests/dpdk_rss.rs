//! rvs's software Toeplitz hash (`pipeline::rss`, what steering computes) against DPDK's own
//! (`rte_softrss`), for every input shape steering hashes: IPv4 and IPv6 source addresses,
//! under rvs's key as the 40-byte and the 52-byte devices get it. No EAL needed.
#![cfg(feature = "dpdk")]

use proptest::prelude::*;
use rvs_dataplane::addr::{V4, V6};
use rvs_dataplane::dpdk::softrss;
use rvs_dataplane::pipeline::rss;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn ipv4_source_hash_is_dpdks(a in any::<u32>()) {
        prop_assert_eq!(Some(rss::hash_addr(V4(a))), softrss(&[a], &rss::KEY));
        let long = rss::key_for(52).unwrap();
        prop_assert_eq!(Some(rss::hash_addr(V4(a))), softrss(&[a], &long));
    }

    #[test]
    fn ipv6_source_hash_is_dpdks(w in any::<[u32; 4]>()) {
        prop_assert_eq!(Some(rss::hash_addr(V6(w))), softrss(&w, &rss::KEY));
    }

    #[test]
    fn any_input_hash_is_dpdks(words in proptest::collection::vec(any::<u32>(), 0..=4)) {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        prop_assert_eq!(Some(rss::hash(&bytes)), softrss(&words, &rss::KEY));
    }
}

#[test]
fn short_keys_are_refused() {
    assert_eq!(softrss(&[1, 2, 3, 4], &rss::KEY[..19]), None);
}
