//! Reading one value: [`Ctx`] turns a spanned TOML value into an integer in range, a MAC, an
//! IP address or a prefix, with an error that points into the text; and the MAC and prefix
//! helpers the tables' checks share.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use super::errors::{line_col, ConfigFileError};
use super::raw::S;

/// An Ethernet address.
pub type Mac = [u8; 6];
/// An address and a prefix length: `10.0.0.1/24` (a port address) or `10.0.0.0/24`.
pub type Prefix = (IpAddr, u8);

/// Builds errors that point into the text.
pub(super) struct Ctx<'a> {
    pub(super) text: &'a str,
}

pub(super) type R<T> = Result<T, ConfigFileError>;

impl Ctx<'_> {
    pub(super) fn err(
        &self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigFileError {
        let (line, column) = line_col(self.text, span.start);
        ConfigFileError {
            file: None,
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// An integer in `lo..=hi`, or `default` when absent.
    pub(super) fn int(
        &self,
        v: &Option<S<i64>>,
        key: &str,
        lo: i64,
        hi: i64,
        default: i64,
    ) -> R<i64> {
        match v {
            None => Ok(default),
            Some(s) => {
                let n = *s.get_ref();
                if (lo..=hi).contains(&n) {
                    Ok(n)
                } else {
                    Err(self.err(
                        s.span(),
                        key,
                        format!("{n} is out of range (want {lo}..{hi})"),
                    ))
                }
            }
        }
    }

    pub(super) fn mac(&self, s: &S<String>, key: &str) -> R<Mac> {
        let v = s.get_ref();
        let m = parse_mac(v).ok_or_else(|| {
            self.err(
                s.span(),
                key,
                format!("{v:?} is not a MAC address (want six hex pairs, 02:00:00:00:00:01)"),
            )
        })?;
        if m[0] & 1 != 0 {
            return Err(self.err(
                s.span(),
                key,
                format!("{v:?} is a multicast MAC (want a unicast one)"),
            ));
        }
        if m == [0; 6] {
            return Err(self.err(s.span(), key, format!("{v:?} is the zero MAC")));
        }
        Ok(m)
    }

    pub(super) fn ip(&self, s: &S<String>, key: &str) -> R<IpAddr> {
        let v = s.get_ref();
        v.trim().parse().map_err(|_| {
            self.err(
                s.span(),
                key,
                format!("{v:?} is not an IP address (want 10.0.0.1 or fd00::1)"),
            )
        })
    }

    /// `addr/len`; `host_bits`: whether bits past the prefix may be set (a port's address)
    /// or not (a route or match prefix); `bare`: whether a plain address means a host prefix.
    pub(super) fn prefix(
        &self,
        s: &S<String>,
        key: &str,
        host_bits: bool,
        bare: bool,
    ) -> R<Prefix> {
        let v = s.get_ref();
        let want = if host_bits {
            "want address/length, 10.0.0.1/24 or fd00::1/64"
        } else {
            "want prefix/length, 10.0.0.0/24 or fd00::/64"
        };
        let bad = || self.err(s.span(), key, format!("{v:?} is not a prefix ({want})"));
        let (a, l) = match v.trim().split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None if bare => (v.trim(), None),
            None => {
                return Err(self.err(
                    s.span(),
                    key,
                    format!("{v:?} has no prefix length ({want})"),
                ))
            }
        };
        let a: IpAddr = a.parse().map_err(|_| bad())?;
        let max = if a.is_ipv4() { 32 } else { 128 };
        let l = match l {
            None => max,
            Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => {
                l.parse::<u8>().ok().filter(|&n| n <= max).ok_or_else(|| {
                    self.err(
                        s.span(),
                        key,
                        format!("{v:?}: prefix length {l} is longer than {max}"),
                    )
                })?
            }
            Some(_) => return Err(bad()),
        };
        if !host_bits && mask(a, l) != a {
            return Err(self.err(
                s.span(),
                key,
                format!("{v:?} has host bits set (did you mean {}/{l}?)", mask(a, l)),
            ));
        }
        Ok((a, l))
    }
}

/// A MAC address written `02:00:00:00:00:01`.
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut m {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(m)
}

pub(super) fn fmt_mac(m: &Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `a` masked to its first `len` bits.
pub(super) fn mask(a: IpAddr, len: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => IpAddr::V4(Ipv4Addr::from(
            u32::from(v)
                & u32::MAX
                    .checked_shl(32 - u32::from(len.min(32)))
                    .unwrap_or(0),
        )),
        IpAddr::V6(v) => IpAddr::V6(Ipv6Addr::from(
            u128::from(v)
                & u128::MAX
                    .checked_shl(128 - u32::from(len.min(128)))
                    .unwrap_or(0),
        )),
    }
}

pub(super) fn contains(p: Prefix, ip: IpAddr) -> bool {
    p.0.is_ipv4() == ip.is_ipv4() && mask(ip, p.1) == mask(p.0, p.1)
}

pub(super) fn overlap(a: Prefix, b: Prefix) -> bool {
    a.0.is_ipv4() == b.0.is_ipv4() && {
        let l = a.1.min(b.1);
        mask(a.0, l) == mask(b.0, l)
    }
}

pub(super) fn is_link_local_v6(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80)
}

pub(super) fn fmt_prefix(p: Prefix) -> String {
    format!("{}/{}", p.0, p.1)
}
