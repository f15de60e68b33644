//! The Toeplitz hash NICs use for RSS, computed in software with the key rvs programs into
//! its ports, so that steering and the NIC agree on which worker a client belongs to.
//!
//! A port is set to hash the source address only (`RTE_ETH_RSS_L3_SRC_ONLY`) with the
//! appliance's [`Key`], and its redirection table (RETA) to send entry `j` to queue
//! `(j % span) % queues` ([`span`]). [`owner`] computes the same for a client address, so a
//! request arrives on the queue of the worker that owns its conn (no hand-off). Replies (NAT)
//! come from the dest, not the client, and still take one hand-off; so do requests of a
//! persistence group with a netmask, whose owner is the hash of the masked address.
//!
//! `rvsd run` draws a random key at start (as Linux does for its NICs): with a known key, a
//! flood could pick source addresses that all land on one worker and fill that worker's conn
//! table alone. Replay and tests use [`KEY`], so their outputs stay reproducible.
//!
//! The hash is linear over GF(2) (hash(a ^ b) = hash(a) ^ hash(b)), computed from one table
//! per input byte: 4 table reads for IPv4, 16 for IPv6.

use crate::addr::Family;

/// Bytes of an RSS key here: the size most NICs take (devices that take more get it
/// repeated).
pub const KEY_LEN: usize = 40;

/// The fixed key (`[engine] rss_key = "fixed"`, replay, tests). Like every key [`Key::new`]
/// accepts, each byte of an address, varied alone, reaches each of the first 64 RETA entries
/// with it: clients that differ only in their last byte, or only in their network part, still
/// spread over all workers.
pub const KEY: [u8; KEY_LEN] = [
    0x79, 0x42, 0xbd, 0xf2, 0x21, 0x06, 0xf0, 0x84, 0x77, 0x62, 0xf0, 0xf3, 0xcb, 0x4d, 0x76, 0x4d,
    0xc7, 0x07, 0x20, 0x51, 0x15, 0x9a, 0x0f, 0x89, 0xf2, 0xc6, 0xda, 0xca, 0xe3, 0x44, 0xbb, 0x31,
    0x12, 0x45, 0xfd, 0x6f, 0x84, 0xdf, 0x9a, 0xd7,
];

/// RETA entries the owner function spans for `workers` workers: the low bits of the hash
/// pick one of them, and entry `j` belongs to worker `j % workers`. At least 8 entries per
/// worker, so no worker gets more than 1/8 above its share; at least 64. A device's RETA (a
/// power of two, at least this big) repeats the pattern, so it agrees with [`owner`].
#[inline]
pub fn span(workers: u32) -> u32 {
    (workers.max(1) * 8).next_power_of_two().clamp(64, 1 << 16)
}

/// Longest input hashed here: an IPv6 source address.
const MAX_INPUT: usize = 16;

/// Draws [`Key::random`] makes before it settles for [`KEY`]: about one random key in ten
/// passes the spread check, so 256 draws all fail once in 10^11 starts.
const DRAWS: usize = 256;

/// An RSS key with its hash tables: `table[p][b]` is the hash contribution of byte value `b`
/// at input position `p` (the XOR of the key windows of its set bits), so hashing is one read
/// per input byte. 16 KiB, built once; workers share it.
#[derive(Clone)]
pub struct Key {
    bytes: [u8; KEY_LEN],
    table: Box<[[u32; 256]; MAX_INPUT]>,
}

impl core::fmt::Debug for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Key").field("bytes", &self.bytes).finish()
    }
}

impl Default for Key {
    fn default() -> Self {
        Key::fixed()
    }
}

impl Key {
    /// The key `bytes`, if each byte of an address, varied alone, reaches all of the first 64
    /// RETA entries with it (else some workers would get no clients of a subnet).
    pub fn new(bytes: [u8; KEY_LEN]) -> Option<Key> {
        let window = |bit: usize| -> u32 {
            let v = (0..5).fold(0u64, |v, i| {
                v << 8 | u64::from(bytes.get(bit / 8 + i).copied().unwrap_or(0))
            });
            (v >> (8 - bit % 8)) as u32
        };
        let mut table = Box::new([[0u32; 256]; MAX_INPUT]);
        for (p, row) in table.iter_mut().enumerate() {
            for (b, h) in row.iter_mut().enumerate() {
                *h = (0..8)
                    .filter(|j| b & (0x80 >> j) != 0)
                    .fold(0, |h, j| h ^ window(p * 8 + j));
            }
        }
        let spreads = table.iter().all(|row| {
            let mut seen = 0u64;
            row.iter().for_each(|h| seen |= 1 << (h % 64));
            seen == u64::MAX
        });
        spreads.then_some(Key { bytes, table })
    }

    /// [`KEY`].
    pub fn fixed() -> Key {
        Key::new(KEY).unwrap_or_else(|| unreachable!("KEY spreads (tested)"))
    }

    /// A key from `draw` (random bytes), drawn again until it spreads; [`KEY`] if none of
    /// [`DRAWS`] draws does (a broken source of randomness).
    pub fn random(mut draw: impl FnMut() -> [u8; KEY_LEN]) -> Key {
        (0..DRAWS)
            .find_map(|_| Key::new(draw()))
            .unwrap_or_else(Key::fixed)
    }

    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    /// The Toeplitz hash of `input` (network byte order, at most 16 bytes) under this key.
    #[inline]
    pub fn hash(&self, input: &[u8]) -> u32 {
        input
            .iter()
            .zip(self.table.iter())
            .fold(0, |h, (&b, t)| h ^ t[usize::from(b)])
    }

    /// What a NIC set up with this key computes for a packet from `saddr` (source-only RSS).
    #[inline]
    pub fn hash_addr<A: Family>(&self, saddr: A) -> u32 {
        let o = saddr.octets();
        self.hash(&o[..(A::BITS / 8) as usize])
    }

    /// The key for a device that takes `len` bytes ([`device_key`]).
    pub fn for_device(&self, len: usize) -> Option<Vec<u8>> {
        device_key(&self.bytes, len)
    }
}

/// The key `bytes` for a device that takes `len` bytes: repeated (`len` >= 20 covers an IPv6
/// source address; fewer cannot reproduce [`Key::hash`]).
pub fn device_key(bytes: &[u8; KEY_LEN], len: usize) -> Option<Vec<u8>> {
    (len >= MAX_INPUT + 4).then(|| bytes.iter().copied().cycle().take(len).collect())
}

/// The worker of `workers` whose RSS queue a hash lands in (the RETA pattern rvs programs);
/// `span` is [`span`]`(workers)`, passed in so the hot path need not recompute it.
#[inline]
pub fn owner(hash: u32, span: u32, workers: u32) -> u32 {
    (hash & (span - 1)) % workers.max(1)
}

/// The RETA rvs programs into a device with `reta_size` entries and `queues` rx queues
/// (worker `w` polls queue `w`): entry `j` -> the queue [`owner`] names for any hash whose
/// low bits are `j`. `None` when the device's RETA cannot hold the pattern (not a power of
/// two, or smaller than [`span`]).
pub fn reta(reta_size: usize, queues: u16) -> Option<Vec<u16>> {
    let span = span(u32::from(queues));
    if !reta_size.is_power_of_two() || reta_size < span as usize {
        return None;
    }
    Some(
        (0..reta_size)
            .map(|j| owner(j as u32, span, u32::from(queues)) as u16)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{V4, V6};
    use proptest::prelude::*;

    /// The definition, bit by bit: for each set input bit i (most significant first), XOR
    /// the 32 key bits starting at bit i.
    fn toeplitz_bitwise(key: &[u8], input: &[u8]) -> u32 {
        let bit = |i: usize| key.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0);
        let mut h = 0u32;
        for i in 0..input.len() * 8 {
            if input[i / 8] & (0x80 >> (i % 8)) != 0 {
                h ^= (0..32).fold(0u32, |w, k| w << 1 | u32::from(bit(i + k)));
            }
        }
        h
    }

    #[test]
    fn matches_the_published_verification_vectors() {
        // Microsoft's RSS verification suite: its sample key and the IPv4 (addresses only)
        // hash of 66.9.149.187 -> 161.142.100.80 and 199.92.111.2 -> 65.69.140.83.
        let key = [
            0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
            0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
            0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
        ];
        assert_eq!(
            toeplitz_bitwise(&key, &[66, 9, 149, 187, 161, 142, 100, 80]),
            0x323e_8fc2
        );
        assert_eq!(
            toeplitz_bitwise(&key, &[199, 92, 111, 2, 65, 69, 140, 83]),
            0xd718_262a
        );
    }

    proptest! {
        #[test]
        fn table_hash_is_the_bitwise_definition(
            bytes in any::<[u8; KEY_LEN]>(),
            input in proptest::collection::vec(any::<u8>(), 0..=16),
        ) {
            prop_assert_eq!(Key::fixed().hash(&input), toeplitz_bitwise(&KEY, &input));
            if let Some(k) = Key::new(bytes) {
                prop_assert_eq!(k.hash(&input), toeplitz_bitwise(&bytes, &input));
            }
        }

        #[test]
        fn programmed_reta_agrees_with_owner(h in any::<u32>(), queues in 1u16..=256, size_log in 0u32..=12) {
            let q = u32::from(queues);
            match reta(1 << size_log, queues) {
                Some(r) => prop_assert_eq!(u32::from(r[h as usize & (r.len() - 1)]), owner(h, span(q), q)),
                None => prop_assert!((1 << size_log) < span(q)),
            }
        }
    }

    #[test]
    fn every_worker_gets_its_share_of_the_span() {
        for workers in 1..=256u32 {
            let s = span(workers);
            let mut n = vec![0u32; workers as usize];
            (0..s).for_each(|j| n[owner(j, s, workers) as usize] += 1);
            let (lo, hi) = (n.iter().min().unwrap(), n.iter().max().unwrap());
            assert!(*lo >= 8 && hi - lo <= 1, "{workers} workers: {lo}..{hi}");
        }
    }

    #[test]
    fn keys_that_do_not_spread_are_refused_and_random_draws_again() {
        assert!(Key::new([0; KEY_LEN]).is_none());
        let mut k = KEY;
        k[..8].fill(0);
        assert!(
            Key::new(k).is_none(),
            "IPv4 bytes would reach no RETA entry but one"
        );
        // A bad draw is drawn again; a source that never gives a good key gets the fixed one.
        let mut draws = [[0u8; KEY_LEN], KEY].into_iter();
        assert_eq!(Key::random(|| draws.next().unwrap()).bytes(), &KEY);
        assert_eq!(Key::random(|| [0; KEY_LEN]).bytes(), &KEY);
        // About one random key in ten spreads: a seeded stream finds one after some draws.
        let mut n = 0u64;
        let k = Key::random(|| {
            n += 1;
            let mut r = crate::rng::Rng::new(n);
            core::array::from_fn(|_| r.next_u32() as u8)
        });
        assert_ne!(k.bytes(), &KEY);
        assert!(n < DRAWS as u64, "{n} draws");
    }

    #[test]
    fn each_address_byte_alone_reaches_every_reta_entry() {
        const RETA_SPAN: usize = 64;
        let key = Key::fixed();
        let hash_addr = |a| key.hash_addr(a);
        for p in 0..4 {
            let mut seen = [false; RETA_SPAN];
            for b in 0..=255u32 {
                let a = V4(0x0a00_0001 & !(0xff << (24 - 8 * p)) | b << (24 - 8 * p));
                seen[hash_addr(a) as usize % RETA_SPAN] = true;
            }
            assert!(seen.iter().all(|&s| s), "IPv4 byte {p}");
        }
        for p in 0..16 {
            let mut seen = [false; RETA_SPAN];
            for b in 0..=255u32 {
                let mut w = [0x2001_0db8, 0, 0, 1];
                let (i, sh) = (p / 4, 24 - 8 * (p % 4));
                w[i] = w[i] & !(0xff << sh) | b << sh;
                seen[key.hash_addr(V6(w)) as usize % RETA_SPAN] = true;
            }
            assert!(seen.iter().all(|&s| s), "IPv6 byte {p}");
        }
    }

    #[test]
    fn device_keys_repeat_ours() {
        let key = Key::fixed();
        assert_eq!(key.for_device(19), None);
        assert_eq!(key.for_device(40).as_deref(), Some(&KEY[..]));
        let k = key.for_device(52).unwrap();
        assert_eq!((&k[..40], &k[40..]), (&KEY[..], &KEY[..12]));
    }
}
