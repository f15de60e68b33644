//! The hash functions the hashing schedulers use, as the kernel computes them.
//!
//! - `hash_32` is `include/linux/hash.h`'s multiplicative hash (the generic version; no
//!   architecture overrides it on x86-64 or arm64): multiply by the 32-bit golden ratio and
//!   keep the top `bits` bits. sh, dh and our lblc/lblcr table use it.
//! - `hsiphash_u32` is the kernel's `hsiphash()` of one `u32` as built on 64-bit kernels,
//!   where "HalfSipHash" is really SipHash-1-3 over 64-bit lanes with a 128-bit key,
//!   truncated to 32 bits. mh uses it with two fixed keys (the kernel's
//!   `generate_hash_secret` uses constants, not a boot-time random key), so our mh table
//!   follows a 64-bit little-endian kernel's. 32-bit kernels use real HalfSipHash and give
//!   other tables; we do not model that.
//!
//! Addresses are folded as the kernel folds them: an IPv4 address is its one 32-bit word, an
//! IPv6 address the XOR of its four 32-bit words, each read in network order (`ntohl`).

/// The kernel's `GOLDEN_RATIO_32`.
const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// `hash_32(val, bits)`: the top `bits` bits of `val * GOLDEN_RATIO_32` (`1 <= bits <= 32`).
#[inline]
pub(crate) fn hash_32(val: u32, bits: u32) -> u32 {
    let h = val.wrapping_mul(GOLDEN_RATIO_32);
    match bits {
        0 => 0,
        b if b >= 32 => h,
        b => h >> (32 - b),
    }
}

/// One address folded to a host-order `u32` as the kernel's `ip_vs_*_hashkey` helpers do.
/// For IPv4 only the first four bytes count; for IPv6 the four words are XORed.
#[inline]
pub(crate) fn fold_addr(v6: bool, addr: &[u8; 16]) -> u32 {
    let w0 = u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]);
    if !v6 {
        return w0;
    }
    let w1 = u32::from_be_bytes([addr[4], addr[5], addr[6], addr[7]]);
    let w2 = u32::from_be_bytes([addr[8], addr[9], addr[10], addr[11]]);
    let w3 = u32::from_be_bytes([addr[12], addr[13], addr[14], addr[15]]);
    w0 ^ w1 ^ w2 ^ w3
}

/// A fold that needs no family flag: XOR of all four words. For an IPv4 address stored in
/// the first four bytes with the other twelve zero (as `DestIdent` requires) it equals the
/// IPv4 fold, for IPv6 the IPv6 fold.
#[inline]
pub(crate) fn fold_addr_any(addr: &[u8; 16]) -> u32 {
    fold_addr(true, addr)
}

/// A 128-bit SipHash key as two 64-bit lanes (the kernel's `hsiphash_key_t` on 64-bit).
#[derive(Copy, Clone, Debug)]
pub(crate) struct SipKey(pub u64, pub u64);

const SIP_C0: u64 = 0x736f_6d65_7073_6575;
const SIP_C1: u64 = 0x646f_7261_6e64_6f6d;
const SIP_C2: u64 = 0x6c79_6765_6e65_7261;
const SIP_C3: u64 = 0x7465_6462_7974_6573;

#[inline(always)]
fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-1-3 of `data`, truncated to 32 bits: the 64-bit kernel's `hsiphash()`.
pub(crate) fn hsiphash(data: &[u8], key: SipKey) -> u32 {
    let mut v = [
        SIP_C0 ^ key.0,
        SIP_C1 ^ key.1,
        SIP_C2 ^ key.0,
        SIP_C3 ^ key.1,
    ];
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let m = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        v[3] ^= m;
        sip_round(&mut v);
        v[0] ^= m;
    }
    // The final block: the message length in the top byte, the 0..7 leftover bytes below.
    let mut b = (data.len() as u64) << 56;
    for (i, &byte) in chunks.remainder().iter().enumerate() {
        b |= u64::from(byte) << (8 * i);
    }
    v[3] ^= b;
    sip_round(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    sip_round(&mut v);
    sip_round(&mut v);
    sip_round(&mut v);
    (v[0] ^ v[1] ^ v[2] ^ v[3]) as u32
}

/// `hsiphash(&v, sizeof(v), key)` for one `u32` held in a little-endian machine's memory.
#[inline]
pub(crate) fn hsiphash_u32(v: u32, key: SipKey) -> u32 {
    hsiphash(&v.to_le_bytes(), key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 64-bit `hsiphash` vectors of the kernel's SipHash self-test (key bytes 0..15,
    /// message bytes 0..len), first sixteen lengths.
    const HSIPHASH_VECTORS: [u32; 16] = [
        0x050f_c4dc,
        0x7d57_ca93,
        0x4dc7_d44d,
        0xe7dd_f7fb,
        0x88d3_8328,
        0x4953_3b67,
        0xc59f_22a7,
        0x9bb1_1140,
        0x8d29_9a8e,
        0x6c06_3de4,
        0x92ff_097f,
        0xf94d_c352,
        0x57b4_d9a2,
        0x1229_ffa7,
        0xc0f9_5d34,
        0x2a51_9956,
    ];

    #[test]
    fn hsiphash_matches_kernel_self_test_vectors() {
        let key = SipKey(0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
        let msg: Vec<u8> = (0u8..16).collect();
        for (len, &want) in HSIPHASH_VECTORS.iter().enumerate() {
            assert_eq!(hsiphash(&msg[..len], key), want, "length {len}");
        }
        // The one-u32 form used by mh is the 4-byte message.
        assert_eq!(hsiphash_u32(0x0302_0100, key), HSIPHASH_VECTORS[4]);
    }

    #[test]
    fn hash_32_keeps_the_top_bits_of_the_golden_ratio_product() {
        assert_eq!(hash_32(0, 8), 0);
        assert_eq!(hash_32(1, 8), 0x61);
        assert_eq!(hash_32(1, 32), GOLDEN_RATIO_32);
        assert_eq!(hash_32(2, 12), (2u32.wrapping_mul(GOLDEN_RATIO_32)) >> 20);
        assert!(hash_32(0xdead_beef, 8) < 256);
    }

    #[test]
    fn fold_uses_one_word_for_v4_and_xor_of_four_for_v6() {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[10, 0, 0, 1]);
        a[15] = 0xff; // ignored for v4
        assert_eq!(fold_addr(false, &a), 0x0a00_0001);
        assert_eq!(fold_addr(true, &a), 0x0a00_0001 ^ 0xff);
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(fold_addr_any(&b), fold_addr(false, &b));
    }
}
