//! Host and service names, as ipvsadm looks them up: `host_to_addr` (IPv4 only),
//! `service_to_port`, `addr_to_host` and `port_to_service`, each falling back to the number.
//!
//! [`SystemNames`] asks the C library (the resolver, `/etc/hosts`, `/etc/services`); it is the
//! only code in `adm` with `unsafe`, each block with its `SAFETY` line. [`NumericNames`]
//! knows no names, for tests and `-n`.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::sync::Mutex;

/// Name look-ups for the command line and the listings.
pub trait Names {
    /// `gethostbyname`: an IPv4 address for `name` (also the inet_aton forms, `10.1`).
    fn host_v4(&self, name: &str) -> Option<Ipv4Addr>;
    /// `getservbyname(name, proto)`; `proto` is 6, 17 or 132.
    fn service_port(&self, name: &str, proto: u8) -> Option<u16>;
    /// `gethostbyaddr`: the name of `addr`.
    fn host_name(&self, addr: IpAddr) -> Option<String>;
    /// `getservbyport(port, proto)`.
    fn service_name(&self, port: u16, proto: u8) -> Option<String>;
}

/// No names at all: every look-up fails, so addresses and ports print as numbers.
#[derive(Clone, Copy, Debug, Default)]
pub struct NumericNames;

impl Names for NumericNames {
    fn host_v4(&self, name: &str) -> Option<Ipv4Addr> {
        name.parse().ok()
    }
    fn service_port(&self, _: &str, _: u8) -> Option<u16> {
        None
    }
    fn host_name(&self, _: IpAddr) -> Option<String> {
        None
    }
    fn service_name(&self, _: u16, _: u8) -> Option<String> {
        None
    }
}

/// The C library's resolver and services database.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemNames;

/// `getservbyname` and `getservbyport` return a pointer into one static buffer.
static SERVENT: Mutex<()> = Mutex::new(());

fn proto_name(proto: u8) -> Option<&'static CStr> {
    match proto {
        6 => Some(c"tcp"),
        17 => Some(c"udp"),
        132 => Some(c"sctp"),
        _ => None,
    }
}

impl Names for SystemNames {
    fn host_v4(&self, name: &str) -> Option<Ipv4Addr> {
        if let Ok(a) = name.parse() {
            return Some(a);
        }
        if name.is_empty() {
            return None;
        }
        // getaddrinfo, as gethostbyname: names, and the numeric forms inet_aton takes.
        (name, 0u16)
            .to_socket_addrs()
            .ok()?
            .find_map(|a| match a.ip() {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
    }

    fn service_port(&self, name: &str, proto: u8) -> Option<u16> {
        let proto = proto_name(proto)?;
        let name = CString::new(name).ok()?;
        let _g = SERVENT.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: both arguments are NUL-terminated strings that outlive the call; the result
        // is null or points to libc's static servent, read before the lock is released.
        let s = unsafe { libc::getservbyname(name.as_ptr(), proto.as_ptr()) };
        if s.is_null() {
            return None;
        }
        // SAFETY: `s` is non-null and points to a servent that stays valid under the lock.
        let port = unsafe { (*s).s_port };
        Some(u16::from_be(port as u16))
    }

    fn host_name(&self, addr: IpAddr) -> Option<String> {
        let mut host = [0 as libc::c_char; 1025];
        let rc = match addr {
            IpAddr::V4(a) => {
                // SAFETY: sockaddr_in is plain data; all zeroes is a valid value.
                let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
                sa.sin_family = libc::AF_INET as libc::sa_family_t;
                sa.sin_addr.s_addr = u32::from_ne_bytes(a.octets());
                // SAFETY: `sa` is a sockaddr_in of the length given; `host` is a writable
                // buffer of the length given; no service buffer is asked for.
                unsafe {
                    libc::getnameinfo(
                        (&sa as *const libc::sockaddr_in).cast(),
                        std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                        host.as_mut_ptr(),
                        host.len() as libc::socklen_t,
                        std::ptr::null_mut(),
                        0,
                        libc::NI_NAMEREQD,
                    )
                }
            }
            IpAddr::V6(a) => {
                // SAFETY: sockaddr_in6 is plain data; all zeroes is a valid value.
                let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
                sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sa.sin6_addr.s6_addr = a.octets();
                // SAFETY: as above, for a sockaddr_in6.
                unsafe {
                    libc::getnameinfo(
                        (&sa as *const libc::sockaddr_in6).cast(),
                        std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                        host.as_mut_ptr(),
                        host.len() as libc::socklen_t,
                        std::ptr::null_mut(),
                        0,
                        libc::NI_NAMEREQD,
                    )
                }
            }
        };
        if rc != 0 {
            return None;
        }
        // SAFETY: on success getnameinfo wrote a NUL-terminated string into `host`.
        let name = unsafe { CStr::from_ptr(host.as_ptr()) };
        name.to_str().ok().map(str::to_string)
    }

    fn service_name(&self, port: u16, proto: u8) -> Option<String> {
        let proto = proto_name(proto)?;
        let _g = SERVENT.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: `proto` is NUL-terminated; the result is null or points to libc's static
        // servent, read before the lock is released.
        let s = unsafe { libc::getservbyport(libc::c_int::from(port.to_be()), proto.as_ptr()) };
        if s.is_null() {
            return None;
        }
        // SAFETY: `s` is non-null; its s_name is a NUL-terminated string in the same buffer.
        let name = unsafe { CStr::from_ptr((*s).s_name) };
        name.to_str().ok().map(str::to_string)
    }
}

/// `inet_ntop` as glibc writes it: Rust's form, except that glibc writes an IPv6 address
/// whose first 96 bits are zero (other than `::` and `::1`) with a dotted IPv4 tail
/// (`::0.0.0.2`, `::10.0.0.1`).
pub fn ntop(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => ntop6(a),
    }
}

fn ntop6(a: Ipv6Addr) -> String {
    let s = a.segments();
    if s[..6].iter().all(|&w| w == 0) && !(s[6] == 0 && s[7] <= 1) {
        let [.., a, b, c, d] = a.octets();
        return format!("::{}", Ipv4Addr::new(a, b, c, d));
    }
    a.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntop_writes_what_glibc_writes() {
        let cases = [
            ("::", "::"),
            ("::1", "::1"),
            ("::2", "::0.0.0.2"),
            ("::a00:1", "::10.0.0.1"),
            ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
            ("fd00::1", "fd00::1"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ];
        for (a, want) in cases {
            assert_eq!(ntop(a.parse().unwrap()), want, "{a}");
        }
        assert_eq!(ntop("10.0.0.1".parse().unwrap()), "10.0.0.1");
    }

    #[test]
    fn system_names_fall_back_to_nothing_for_the_unknown() {
        let n = SystemNames;
        assert_eq!(n.host_v4("10.0.0.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(n.service_name(80, 0), None, "no protocol, no name");
        assert_eq!(n.service_port("no-such-service-name", 6), None);
        assert_eq!(n.host_v4(""), None);
        // Where the services database knows http, both ways agree.
        if let Some(p) = n.service_port("http", 6) {
            assert_eq!(p, 80);
            assert_eq!(n.service_name(80, 6).as_deref(), Some("http"));
        }
    }
}
