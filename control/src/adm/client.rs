//! The client side of the control protocol: one request and its reply over rvsd's Unix
//! socket ([`crate::protocol`]'s framing), a new connection for each request.

use std::fmt;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::protocol::{self, ProtoError, Reply, Request, MAX_REPLY};

/// How long rvsadm waits for rvsd to answer (rvsd answers a change once its workers run it,
/// or with a `Timeout` error).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// Something that answers requests: rvsd's socket, or a test's stand-in.
pub trait Transport {
    fn call(&mut self, req: &Request) -> Result<Reply, ClientError>;
    /// Who answers, for messages (`rvsd at /run/rvsd.sock`).
    fn peer(&self) -> String;
}

/// Why no reply came.
#[derive(Debug)]
pub enum ClientError {
    /// The socket could not be connected.
    Connect { path: PathBuf, err: io::Error },
    /// The exchange failed after connecting (I/O, framing, a reply that is not one).
    Exchange { path: PathBuf, err: ProtoError },
    /// rvsd closed the connection without a reply.
    Closed { path: PathBuf },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { path, err } => {
                write!(f, "cannot reach rvsd at {}: {err}", path.display())
            }
            ClientError::Exchange { path, err } => {
                write!(f, "rvsd at {}: {err}", path.display())
            }
            ClientError::Closed { path } => {
                write!(
                    f,
                    "rvsd at {} closed the connection without a reply",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// rvsd's control socket.
#[derive(Clone, Debug)]
pub struct UnixClient {
    path: PathBuf,
}

impl UnixClient {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        UnixClient { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Transport for UnixClient {
    fn call(&mut self, req: &Request) -> Result<Reply, ClientError> {
        let path = || self.path.clone();
        let mut s = UnixStream::connect(&self.path)
            .map_err(|err| ClientError::Connect { path: path(), err })?;
        let exchange = |err: ProtoError| ClientError::Exchange { path: path(), err };
        s.set_read_timeout(Some(REPLY_TIMEOUT))
            .and_then(|()| s.set_write_timeout(Some(REPLY_TIMEOUT)))
            .map_err(|e| exchange(e.into()))?;
        protocol::write_message(&mut s, req).map_err(exchange)?;
        let body = protocol::read_message(&mut s, MAX_REPLY)
            .map_err(exchange)?
            .ok_or_else(|| ClientError::Closed { path: path() })?;
        protocol::decode_reply(&body).map_err(exchange)
    }

    fn peer(&self) -> String {
        format!("rvsd at {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_socket_is_named_in_the_error() {
        let path = std::env::temp_dir().join(format!("rvsadm-none-{}.sock", std::process::id()));
        let mut c = UnixClient::new(&path);
        let e = c.call(&Request::Save).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("cannot reach rvsd at {}: ", path.display())),
            "{msg}"
        );
    }
}
