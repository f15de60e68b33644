//! The control socket: a Unix stream socket `rvsadm` connects to (`[control] socket`).
//!
//! - Mode 0600, owned by the user running rvsd; with `[control] group`, 0660 and that group.
//! - Every connection's peer is checked (`SO_PEERCRED`): root, rvsd's own uid, or a member of
//!   the configured group. Anyone else gets a `Denied` reply and the connection is closed.
//! - A socket file that answers belongs to a running rvsd: binding refuses. One that does not
//!   answer is stale and replaced.
//!
//! Reading a connection's requests is the control thread's loop (`control_thread`); this
//! module only binds, accepts and checks.
// libc calls (group lookup, euid, SO_PEERCRED): the allowed `unsafe` of this file.
#![allow(unsafe_code)]

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Who may use the socket besides root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// rvsd's own uid.
    pub uid: u32,
    /// `[control] group`'s gid.
    pub gid: Option<u32>,
}

/// The credentials of a connection's peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    access: Access,
}

/// A group name or numeric gid to a gid.
pub fn resolve_group(name: &str) -> Result<u32, String> {
    if let Ok(g) = name.parse::<u32>() {
        return Ok(g);
    }
    let c = std::ffi::CString::new(name)
        .map_err(|_| format!("[control] group {name:?}: not a group name"))?;
    // SAFETY: getgrnam takes a NUL-terminated string and returns a pointer into static storage
    // or NULL; we read one field before any other call that could reuse it.
    let gr = unsafe { libc::getgrnam(c.as_ptr()) };
    if gr.is_null() {
        return Err(format!("[control] group {name:?}: no such group"));
    }
    // SAFETY: non-NULL, points to a valid struct group (see above).
    Ok(unsafe { (*gr).gr_gid })
}

impl ControlSocket {
    /// Bind `path` (replacing a stale socket file; refusing one a live rvsd answers on).
    pub fn bind(path: &Path, group: Option<u32>) -> Result<ControlSocket, String> {
        let shown = path.display();
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(format!(
                    "control socket {shown}: another rvsd is serving it (stop it, or set [control] socket to another path)"
                ));
            }
            std::fs::remove_file(path).map_err(|e| {
                format!("control socket {shown}: cannot replace the stale file: {e}")
            })?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                format!(
                    "control socket {shown}: cannot create {}: {e}",
                    dir.display()
                )
            })?;
        }
        let listener =
            UnixListener::bind(path).map_err(|e| format!("control socket {shown}: {e}"))?;
        let mode = if group.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("control socket {shown}: chmod: {e}"))?;
        if let Some(gid) = group {
            std::os::unix::fs::chown(path, None, Some(gid))
                .map_err(|e| format!("control socket {shown}: chown to group {gid}: {e}"))?;
        }
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("control socket {shown}: {e}"))?;
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        Ok(ControlSocket {
            listener,
            path: path.to_path_buf(),
            access: Access { uid, gid: group },
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> i32 {
        self.listener.as_raw_fd()
    }

    pub fn access(&self) -> Access {
        self.access
    }

    /// The next waiting connection, if any (non-blocking).
    pub fn accept(&self) -> io::Result<Option<UnixStream>> {
        match self.listener.accept() {
            Ok((s, _)) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The peer's credentials (`SO_PEERCRED`).
pub fn peer(s: &UnixStream) -> io::Result<Peer> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given; the fd is open.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Peer {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// The supplementary groups of process `pid` (`/proc/PID/status`), empty if unreadable.
fn groups_of(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Groups:").map(|g| {
                    g.split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect()
                })
            })
        })
        .unwrap_or_default()
}

/// May this peer use the socket? Root, rvsd's uid, or the group (primary or supplementary).
pub fn allowed(p: &Peer, a: &Access) -> bool {
    if p.uid == 0 || p.uid == a.uid {
        return true;
    }
    match a.gid {
        Some(g) => p.gid == g || groups_of(p.pid).contains(&g),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rvs-sock-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&d);
        d
    }

    #[test]
    fn a_live_socket_refuses_a_second_bind_and_a_stale_one_is_replaced() {
        let p = tmp("live");
        let first = ControlSocket::bind(&p, None).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let err = ControlSocket::bind(&p, None).err().unwrap();
        assert!(err.contains("another rvsd"), "{err}");
        // A stale file: a socket nobody listens on any more.
        drop(first);
        let stale = UnixListener::bind(&p).unwrap();
        drop(stale); // the file stays, nobody answers
        assert!(p.exists());
        let again = ControlSocket::bind(&p, None).unwrap();
        assert_eq!(again.path(), p.as_path());
    }

    #[test]
    fn peers_are_checked_by_uid_and_group() {
        let a = Access {
            uid: 1000,
            gid: Some(2000),
        };
        let me = std::process::id() as i32;
        assert!(
            allowed(
                &Peer {
                    pid: me,
                    uid: 0,
                    gid: 0
                },
                &a
            ),
            "root"
        );
        assert!(
            allowed(
                &Peer {
                    pid: me,
                    uid: 1000,
                    gid: 5
                },
                &a
            ),
            "rvsd's uid"
        );
        assert!(
            allowed(
                &Peer {
                    pid: me,
                    uid: 7,
                    gid: 2000
                },
                &a
            ),
            "the group"
        );
        let none = Access {
            uid: 1000,
            gid: None,
        };
        assert!(
            !allowed(
                &Peer {
                    pid: me,
                    uid: 7,
                    gid: 2000
                },
                &none
            ),
            "no group"
        );
        assert!(
            !allowed(
                &Peer {
                    pid: me,
                    uid: 7,
                    gid: 8
                },
                &a
            ),
            "stranger"
        );
        // Our own connection: our uid.
        let p = tmp("peer");
        let s = ControlSocket::bind(&p, None).unwrap();
        let _c = UnixStream::connect(&p).unwrap();
        let conn = loop {
            if let Some(c) = s.accept().unwrap() {
                break c;
            }
        };
        let who = peer(&conn).unwrap();
        assert_eq!(who.uid, s.access().uid);
        assert!(allowed(&who, &s.access()));
    }

    #[test]
    fn groups_resolve_by_name_or_number() {
        assert_eq!(resolve_group("0"), Ok(0));
        assert_eq!(resolve_group("root"), Ok(0));
        assert!(resolve_group("no-such-group-rvs").is_err());
    }
}
