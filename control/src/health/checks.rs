//! The checks themselves, as keepalived runs them: a TCP connect (TCP_CHECK), an HTTP GET
//! whose status and body digest are compared (HTTP_GET, and SSL_GET over TLS), and a
//! program whose exit status decides (MISC_CHECK). Each is bounded by its `connect_timeout` (MISC_CHECK by
//! `misc_timeout`, else `delay_loop`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::Outcome;
use crate::keepalived::{CheckKind, Checker, RealServer, Url};

/// How much of an HTTP answer is read (keepalived digests the whole body; a health page is
/// small, and a check must not read a large file forever).
const MAX_BODY: usize = 1 << 20;

/// Run one check of `c` on `rs` (whose port is `port`: a group member's when the real server
/// has none).
pub async fn run(c: &Checker, rs: &RealServer, port: u16) -> Outcome {
    let addr = SocketAddr::new(
        c.connect_ip.unwrap_or(rs.addr),
        c.connect_port.unwrap_or(port),
    );
    match &c.kind {
        CheckKind::Tcp => match connect(addr, c.bindto, c.timing.connect_timeout).await {
            Ok(_) => Outcome::Success,
            Err(e) => Outcome::Failure(format!("TCP_CHECK {addr}: {e}")),
        },
        CheckKind::Http { urls, tls, sni } => {
            for u in urls {
                let tls = tls.then(|| sni.then_some(u.virtualhost.as_deref()).flatten());
                if let Err(e) = http(addr, c.bindto, c.timing.connect_timeout, u, tls).await {
                    let (check, scheme) = if tls.is_some() {
                        ("SSL_GET", "https")
                    } else {
                        ("HTTP_GET", "http")
                    };
                    return Outcome::Failure(format!("{check} {scheme}://{addr}{}: {e}", u.path));
                }
            }
            Outcome::Success
        }
        CheckKind::Misc {
            path,
            timeout,
            dynamic,
        } => misc(path, timeout.unwrap_or(c.timing.delay_loop), *dynamic).await,
    }
}

async fn connect(
    addr: SocketAddr,
    bindto: Option<IpAddr>,
    timeout: Duration,
) -> Result<TcpStream, String> {
    let sock = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| e.to_string())?;
    if let Some(b) = bindto {
        sock.bind(SocketAddr::new(b, 0))
            .map_err(|e| format!("bindto {b}: {e}"))?;
    }
    match tokio::time::timeout(timeout, sock.connect(addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no connection within {timeout:?}")),
    }
}

/// One URL: GET it (HTTP/1.0, as keepalived's default `http_protocol`; over TLS when `tls`
/// is given, with the server name to send, if any), then its status against the accepted
/// ranges and its body's MD5 against `digest`.
async fn http(
    addr: SocketAddr,
    bindto: Option<IpAddr>,
    timeout: Duration,
    u: &Url,
    tls: Option<Option<&str>>,
) -> Result<(), String> {
    let answer = tokio::time::timeout(timeout, async {
        let s = connect(addr, bindto, timeout).await?;
        match tls {
            None => get(s, addr, u).await,
            Some(sni) => get(super::tls::handshake(s, addr, sni).await?, addr, u).await,
        }
    })
    .await
    .map_err(|_| format!("no answer within {timeout:?}"))??;
    let (status, body) = parse_answer(&answer)?;
    if !u.status.is_empty() && !u.status.iter().any(|&(lo, hi)| (lo..=hi).contains(&status)) {
        return Err(format!("status {status}"));
    }
    if let Some(want) = &u.digest {
        let got = hex(&Md5::digest(body));
        if &got != want {
            return Err(format!("body digest {got}, want {want}"));
        }
    }
    Ok(())
}

/// Send the GET on `s` and read the answer to its end (at most [`MAX_BODY`]).
async fn get<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    addr: SocketAddr,
    u: &Url,
) -> Result<Vec<u8>, String> {
    let host = u.virtualhost.clone().unwrap_or_else(|| match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    });
    let req = format!(
        "GET {} HTTP/1.0\r\nUser-Agent: rvs-healthcheck\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        u.path
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    s.flush().await.map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match s.read(&mut chunk).await {
            Ok(n) => n,
            // A TLS server that closes without close_notify: the answer is what came (as
            // keepalived takes it); a truncated one fails its status or digest.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => 0,
            Err(e) => return Err(e.to_string()),
        };
        if n == 0 || buf.len() + n > MAX_BODY {
            buf.extend_from_slice(&chunk[..n.min(MAX_BODY - buf.len())]);
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf)
}

/// The status code and body of an HTTP answer.
fn parse_answer(a: &[u8]) -> Result<(u16, &[u8]), String> {
    let head_end = a
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers in the answer")?;
    let first = a[..head_end].split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(first);
    let mut words = line.split_whitespace();
    let (Some(v), Some(code)) = (words.next(), words.next()) else {
        return Err(format!("not an HTTP status line: {line:?}"));
    };
    if !v.starts_with("HTTP/") {
        return Err(format!("not an HTTP status line: {line:?}"));
    }
    let code = code
        .parse::<u16>()
        .map_err(|_| format!("not an HTTP status line: {line:?}"))?;
    Ok((code, &a[head_end + 4..]))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Run the program (its words: the program, then its arguments, as keepalived splits
/// `misc_path`): exit 0 is a success; with `misc_dynamic`, 2..255 is a success that sets the
/// weight to status - 2; anything else, or no exit within `timeout`, is a failure.
async fn misc(path: &str, timeout: Duration, dynamic: bool) -> Outcome {
    let mut words = path.split_whitespace();
    let Some(prog) = words.next() else {
        return Outcome::Failure("MISC_CHECK: empty misc_path".into());
    };
    let child = tokio::process::Command::new(prog)
        .args(words)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Outcome::Failure(format!("MISC_CHECK {prog}: {e}")),
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Err(_) => Outcome::Failure(format!("MISC_CHECK {prog}: no exit within {timeout:?}")),
        Ok(Err(e)) => Outcome::Failure(format!("MISC_CHECK {prog}: {e}")),
        Ok(Ok(st)) => match st.code() {
            Some(0) => Outcome::Success,
            Some(c @ 2..=255) if dynamic => Outcome::Weight(c - 2),
            Some(c) => Outcome::Failure(format!("MISC_CHECK {prog}: exit status {c}")),
            None => Outcome::Failure(format!("MISC_CHECK {prog}: killed by a signal")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_give_their_status_and_body() {
        let (s, b) = parse_answer(b"HTTP/1.1 204 No Content\r\nX: y\r\n\r\nbody").unwrap();
        assert_eq!((s, b), (204, &b"body"[..]));
        assert!(parse_answer(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_answer(b"HTTP/1.0 200 OK\r\n").is_err());
        assert_eq!(hex(&Md5::digest(b"")), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
