//! rvs's software Toeplitz hash (`pipeline::rss`, what steering computes) against DPDK's own
//! (`rte_softrss`), for every input shape steering hashes: IPv4 and IPv6 source addresses,
//! under the fixed key and under drawn keys (as `rvsd run` uses), as the 40-byte and the
//! 52-byte devices get them. No EAL needed.
#![cfg(feature = "dpdk")]

use proptest::prelude::*;
use rvs_dataplane::addr::{V4, V6};
use rvs_dataplane::dpdk::softrss;
use rvs_dataplane::pipeline::rss::{Key, KEY, KEY_LEN};

/// The fixed key, or the drawn one when it spreads (most do).
fn key_of(bytes: [u8; KEY_LEN]) -> Key {
    Key::new(bytes).unwrap_or_else(Key::fixed)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn ipv4_source_hash_is_dpdks(a in any::<u32>(), bytes in any::<[u8; KEY_LEN]>()) {
        let fixed = Key::fixed();
        prop_assert_eq!(Some(fixed.hash_addr(V4(a))), softrss(&[a], &KEY));
        let k = key_of(bytes);
        prop_assert_eq!(Some(k.hash_addr(V4(a))), softrss(&[a], k.bytes()));
        let long = k.for_device(52).unwrap();
        prop_assert_eq!(Some(k.hash_addr(V4(a))), softrss(&[a], &long));
    }

    #[test]
    fn ipv6_source_hash_is_dpdks(w in any::<[u32; 4]>(), bytes in any::<[u8; KEY_LEN]>()) {
        prop_assert_eq!(Some(Key::fixed().hash_addr(V6(w))), softrss(&w, &KEY));
        let k = key_of(bytes);
        prop_assert_eq!(Some(k.hash_addr(V6(w))), softrss(&w, k.bytes()));
    }

    #[test]
    fn any_input_hash_is_dpdks(words in proptest::collection::vec(any::<u32>(), 0..=4), bytes in any::<[u8; KEY_LEN]>()) {
        let input: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        let k = key_of(bytes);
        prop_assert_eq!(Some(k.hash(&input)), softrss(&words, k.bytes()));
    }
}

#[test]
fn short_keys_are_refused() {
    assert_eq!(softrss(&[1, 2, 3, 4], &KEY[..19]), None);
}
