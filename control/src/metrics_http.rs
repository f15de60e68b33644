//! The `/metrics` endpoint (`[metrics] listen`): a small HTTP server (tiny_http) on a thread
//! of its own, pinned to the housekeeping cores. A scrape is handed to the control thread,
//! which renders the text from what it owns (the counter blocks are read without locks) and
//! hands it back; the workers are never asked anything.

use std::net::SocketAddr;
use std::sync::mpsc::{sync_channel, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::control_thread::Scrape;

/// How long a scrape waits for the control thread.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// The running endpoint; dropping it stops the server.
pub struct MetricsServer {
    server: std::sync::Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    pub addr: SocketAddr,
}

impl MetricsServer {
    /// Listen on `addr`; scrapes go to `to_control`. `pin` runs the thread on these cores.
    pub fn start(
        addr: SocketAddr,
        to_control: Sender<Scrape>,
        pin: Vec<core_affinity::CoreId>,
    ) -> Result<MetricsServer, String> {
        let server = tiny_http::Server::http(addr)
            .map_err(|e| format!("[metrics] listen = \"{addr}\": {e}"))?;
        let bound = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| format!("[metrics] listen = \"{addr}\": not an IP listener"))?;
        let server = std::sync::Arc::new(server);
        let srv = std::sync::Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name("rvs-metrics".into())
            .spawn(move || {
                if let Some(&c) = pin.first() {
                    core_affinity::set_for_current(c);
                }
                for req in srv.incoming_requests() {
                    serve(req, &to_control);
                }
            })
            .map_err(|e| format!("metrics thread: {e}"))?;
        Ok(MetricsServer {
            server,
            thread: Some(thread),
            addr: bound,
        })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(req: tiny_http::Request, to_control: &Sender<Scrape>) {
    let path = req.url().split('?').next().unwrap_or("");
    if *req.method() != tiny_http::Method::Get || (path != "/metrics" && path != "/") {
        let _ = req.respond(
            tiny_http::Response::from_string("rvsd: see /metrics\n").with_status_code(404),
        );
        return;
    }
    if path == "/" {
        let _ = req.respond(tiny_http::Response::from_string(
            "<html><body><a href=\"/metrics\">/metrics</a></body></html>\n",
        ));
        return;
    }
    let (tx, rx) = sync_channel(1);
    let text = if to_control.send(Scrape { reply: tx }).is_ok() {
        rx.recv_timeout(SCRAPE_TIMEOUT).ok()
    } else {
        None
    };
    let resp = match text {
        Some(t) => {
            let mut r = tiny_http::Response::from_string(t);
            if let Ok(h) = tiny_http::Header::from_bytes(
                &b"Content-Type"[..],
                &b"text/plain; version=0.0.4; charset=utf-8"[..],
            ) {
                r.add_header(h);
            }
            r
        }
        None => tiny_http::Response::from_string("rvsd: the control thread did not answer\n")
            .with_status_code(503),
    };
    let _ = req.respond(resp);
}
