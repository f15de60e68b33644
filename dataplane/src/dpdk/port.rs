//! Ethernet ports: lookup, configuration (queues, RSS, checksum offloads), bursts, counters.

use std::collections::HashSet;
use std::ffi::{c_char, c_int, c_uint, CStr, CString};
use std::ptr;
use std::sync::{Arc, Mutex};

use dpdk_sys as sys;

use super::eal::{ensure_running, live_dec, live_inc};
use super::{DpdkError, Mbuf, Mempool};
use crate::pipeline::rss;

/// ENOTSUP on Linux: an optional feature (promiscuous mode on a vdev) the PMD lacks.
const ENOTSUP: c_int = 95;

/// Port ids held by a [`Port`]: one owner per port, so one poller per queue.
static CLAIMED: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// How [`Port::configure`] sets a port up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortOpts {
    /// Spread rx over the queues by RSS, with rvs's key and RETA ([`crate::pipeline::rss`])
    /// where the device takes them. Where it can hash the source address alone
    /// (`RTE_ETH_RSS_L3_SRC_ONLY`) it does, so that requests arrive at the worker that owns
    /// them; else it hashes the IP/TCP/UDP fields it supports. A PMD refusing that gets its
    /// own key and the plain fields. Ignored by a device without RSS.
    pub rss: bool,
    /// The RSS key (the appliance's [`crate::pipeline::rss::Key`], which steering shares).
    pub rss_key: [u8; rss::KEY_LEN],
    /// Promiscuous mode (PMDs without it, as `net_null`, are accepted as they are).
    pub promiscuous: bool,
    /// Descriptors per rx and per tx queue.
    pub nb_desc: u16,
}

impl Default for PortOpts {
    fn default() -> Self {
        PortOpts {
            rss: true,
            rss_key: rss::KEY,
            promiscuous: true,
            nb_desc: 1024,
        }
    }
}

/// The checksum offloads enabled on a port (those the PMD offers). The path hands the NIC
/// the tx IPv4 header and UDP checksums of the tunnel headers it builds (`TxOffloads`,
/// `Buf::offload_tx_csum`) and computes everything else in software: incremental updates
/// (TTL, NAT) are cheaper than the offload's pseudo-header. The rx offloads are enabled but
/// not consulted: like IPVS, the path forwards without verifying TCP/UDP checksums.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offloads {
    pub rx_ipv4_cksum: bool,
    pub rx_tcp_cksum: bool,
    pub rx_udp_cksum: bool,
    pub tx_ipv4_cksum: bool,
    pub tx_tcp_cksum: bool,
    pub tx_udp_cksum: bool,
    /// RSS hash fields in use (`RTE_ETH_RSS_*`), 0 without RSS.
    pub rss_hf: u64,
    /// Source-only RSS with rvs's key and RETA in force (set by [`Port::start`]): the port
    /// delivers a request on the queue of [`crate::pipeline::rss::owner`].
    pub rss_steering: bool,
}

/// `rte_eth_stats`, the port totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    pub rx_nombuf: u64,
}

/// A configured ethdev port; dropping it stops and closes it.
///
/// `Send` but not `Sync`: an rx or tx queue must be polled by one thread at a time, and a
/// port id is held by at most one `Port`.
#[derive(Debug)]
pub struct Port {
    id: u16,
    rxq: u16,
    txq: u16,
    opts: PortOpts,
    offloads: Offloads,
    /// The device's RETA size, programmed at start when the port hashes source-only.
    reta_size: u16,
    started: bool,
    /// The rx queues' pool: it must outlive the port's queues.
    _pool: Mempool,
    /// `!Sync` (and `Send` by the impl below).
    _not_sync: std::marker::PhantomData<std::cell::Cell<()>>,
}

// SAFETY: the queues may be polled from any one thread at a time (not Sync), and ethdev's
// control calls are valid from any thread.
unsafe impl Send for Port {}

impl Port {
    /// Ports the EAL probed (`rte_eth_dev_count_avail`).
    pub fn count() -> u16 {
        if ensure_running().is_err() {
            return 0;
        }
        // SAFETY: the EAL is running; this reads the ethdev table.
        unsafe { sys::rte_eth_dev_count_avail() }
    }

    /// The port id of a device name (`net_ring0`, `0000:3b:00.0`).
    pub fn by_name(name: &str) -> Option<u16> {
        ensure_running().ok()?;
        let cname = CString::new(name).ok()?;
        let mut id = u16::MAX;
        // SAFETY: the EAL is running; cname is NUL-terminated and id a valid u16 to write.
        let rc = unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        (rc == 0).then_some(id)
    }

    /// The device name of a port.
    pub fn name(port: u16) -> Option<String> {
        ensure_running().ok()?;
        let mut buf = [0 as c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
        // SAFETY: buf is RTE_ETH_NAME_MAX_LEN bytes, as the function requires; invalid port
        // ids are reported by the return code.
        let rc = unsafe { sys::rte_eth_dev_get_name_by_port(port, buf.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: on success buf holds a NUL-terminated string.
        Some(
            unsafe { CStr::from_ptr(buf.as_ptr()) }
                .to_string_lossy()
                .into_owned(),
        )
    }

    /// The port's MAC address.
    pub fn mac(port: u16) -> Option<[u8; 6]> {
        ensure_running().ok()?;
        let mut mac = sys::rte_ether_addr::default();
        // SAFETY: mac is a valid rte_ether_addr to write; bad ids give an error code.
        let rc = unsafe { sys::rte_eth_macaddr_get(port, &mut mac) };
        (rc == 0).then_some(mac.addr_bytes)
    }

    /// The port's NUMA socket (-1: unknown or any).
    pub fn socket(port: u16) -> i32 {
        if ensure_running().is_err() {
            return -1;
        }
        // SAFETY: the EAL is running; bad ids give -1.
        unsafe { sys::rte_eth_dev_socket_id(port) }
    }

    /// The most rx and tx queues the device offers (`rte_eth_dev_info_get`), to size a
    /// configuration before [`Port::configure`] (a `net_pcap` port has one rx queue per
    /// `rx_pcap=` and one tx queue per `tx_pcap=`; `net_null` has many).
    pub fn max_queues(port: u16) -> Result<(u16, u16), DpdkError> {
        ensure_running()?;
        let info = Self::info(port)?;
        Ok((info.max_rx_queues, info.max_tx_queues))
    }

    fn info(port: u16) -> Result<sys::rte_eth_dev_info, DpdkError> {
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: info is a valid struct to fill; bad ids give an error code.
        let rc = unsafe { sys::rte_eth_dev_info_get(port, &mut info) };
        if rc != 0 {
            return Err(DpdkError::rc("rte_eth_dev_info_get", rc));
        }
        Ok(info)
    }

    /// Configure `port` with `rxq` rx queues (fed from `pool`) and `txq` tx queues of
    /// `opts.nb_desc` descriptors each; RSS when asked and the device has it; the IPv4, TCP
    /// and UDP checksum offloads the device offers (see [`Port::offloads`]). The port is
    /// left stopped: call [`Port::start`].
    #[cold]
    pub fn configure(
        port: u16,
        rxq: u16,
        txq: u16,
        pool: &Mempool,
        opts: PortOpts,
    ) -> Result<Port, DpdkError> {
        const CALL: &str = "rte_eth_dev_configure";
        ensure_running()?;
        let info = Self::info(port)?;
        if rxq == 0 || txq == 0 || rxq > info.max_rx_queues || txq > info.max_tx_queues {
            return Err(DpdkError::invalid(
                CALL,
                format!(
                    "port {port}: {rxq} rx / {txq} tx queues (device max {} / {})",
                    info.max_rx_queues, info.max_tx_queues
                ),
            ));
        }
        {
            let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
            if !claimed.get_or_insert_with(HashSet::new).insert(port) {
                return Err(DpdkError::invalid(
                    CALL,
                    format!("port {port} already in use"),
                ));
            }
        }
        // From here on, dropping `p` releases the claim (and stops/closes what was set up).
        live_inc();
        let mut p = Port {
            id: port,
            rxq,
            txq,
            opts,
            offloads: Offloads::default(),
            reta_size: info.reta_size,
            started: false,
            _pool: pool.clone(),
            _not_sync: std::marker::PhantomData,
        };

        let mut conf = sys::rte_eth_conf::default();
        // rvs's key wherever the device takes one long enough (the RETA follows at start).
        // It lives until rte_eth_dev_configure has copied it.
        let mut key =
            rss::device_key(&opts.rss_key, usize::from(info.hash_key_size)).unwrap_or_default();
        if opts.rss && info.flow_type_rss_offloads != 0 {
            let offered = info.flow_type_rss_offloads;
            // Hashing the IP types only, source address only, where the device can (TCP/UDP
            // types would add the ports): then the NIC computes rss::hash_addr.
            let l3 = sys::RTE_ETH_RSS_IP & offered;
            let src_only =
                !key.is_empty() && l3 != 0 && offered & sys::RTE_ETH_RSS_L3_SRC_ONLY != 0;
            let hf = if src_only {
                l3 | sys::RTE_ETH_RSS_L3_SRC_ONLY
            } else {
                (sys::RTE_ETH_RSS_IP | sys::RTE_ETH_RSS_TCP | sys::RTE_ETH_RSS_UDP) & offered
            };
            if hf != 0 {
                conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode::RTE_ETH_MQ_RX_RSS;
                conf.rx_adv_conf.rss_conf.rss_key = if key.is_empty() {
                    ptr::null_mut()
                } else {
                    key.as_mut_ptr()
                };
                conf.rx_adv_conf.rss_conf.rss_key_len = key.len() as u8;
                conf.rx_adv_conf.rss_conf.rss_hf = hf;
                p.offloads.rss_hf = hf;
            }
        }
        let rx_want = sys::RTE_ETH_RX_OFFLOAD_IPV4_CKSUM
            | sys::RTE_ETH_RX_OFFLOAD_TCP_CKSUM
            | sys::RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
        let tx_want = sys::RTE_ETH_TX_OFFLOAD_IPV4_CKSUM
            | sys::RTE_ETH_TX_OFFLOAD_TCP_CKSUM
            | sys::RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
        conf.rxmode.offloads = rx_want & info.rx_offload_capa;
        conf.txmode.offloads = tx_want & info.tx_offload_capa;
        let (rx, tx) = (conf.rxmode.offloads, conf.txmode.offloads);
        p.offloads.rx_ipv4_cksum = rx & sys::RTE_ETH_RX_OFFLOAD_IPV4_CKSUM != 0;
        p.offloads.rx_tcp_cksum = rx & sys::RTE_ETH_RX_OFFLOAD_TCP_CKSUM != 0;
        p.offloads.rx_udp_cksum = rx & sys::RTE_ETH_RX_OFFLOAD_UDP_CKSUM != 0;
        p.offloads.tx_ipv4_cksum = tx & sys::RTE_ETH_TX_OFFLOAD_IPV4_CKSUM != 0;
        p.offloads.tx_tcp_cksum = tx & sys::RTE_ETH_TX_OFFLOAD_TCP_CKSUM != 0;
        p.offloads.tx_udp_cksum = tx & sys::RTE_ETH_TX_OFFLOAD_UDP_CKSUM != 0;

        // SAFETY: the port is ours (claimed) and stopped; conf is a valid config.
        let mut rc = unsafe { sys::rte_eth_dev_configure(port, rxq, txq, &conf) };
        if rc != 0 && p.offloads.rss_hf != 0 {
            // A PMD may refuse our key or hash types: RSS as the PMD likes it is better than
            // no port (requests may then take a hand-off; `rss_steering` stays false).
            let hf = (sys::RTE_ETH_RSS_IP | sys::RTE_ETH_RSS_TCP | sys::RTE_ETH_RSS_UDP)
                & info.flow_type_rss_offloads;
            conf.rx_adv_conf.rss_conf.rss_key = ptr::null_mut();
            conf.rx_adv_conf.rss_conf.rss_key_len = 0;
            conf.rx_adv_conf.rss_conf.rss_hf = hf;
            p.offloads.rss_hf = hf;
            // SAFETY: as above; a failed configure leaves the port unconfigured.
            rc = unsafe { sys::rte_eth_dev_configure(port, rxq, txq, &conf) };
        }
        if rc != 0 {
            return Err(DpdkError::rc(CALL, rc));
        }
        // SOCKET_ID_ANY (-1) becomes the unsigned "any" the queue setup expects.
        let socket = Self::socket(port) as c_uint;
        for q in 0..rxq {
            // SAFETY: the port is configured and stopped; a NULL rxconf means the PMD's
            // defaults (port-level offloads apply to every queue); the pool outlives the
            // queue (the port holds a clone).
            let rc = unsafe {
                sys::rte_eth_rx_queue_setup(
                    port,
                    q,
                    opts.nb_desc,
                    socket,
                    ptr::null(),
                    pool.as_ptr(),
                )
            };
            if rc != 0 {
                return Err(DpdkError::rc("rte_eth_rx_queue_setup", rc));
            }
        }
        for q in 0..txq {
            // SAFETY: as the rx queues, without a pool.
            let rc =
                unsafe { sys::rte_eth_tx_queue_setup(port, q, opts.nb_desc, socket, ptr::null()) };
            if rc != 0 {
                return Err(DpdkError::rc("rte_eth_tx_queue_setup", rc));
            }
        }
        Ok(p)
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    pub fn rx_queues(&self) -> u16 {
        self.rxq
    }

    pub fn tx_queues(&self) -> u16 {
        self.txq
    }

    /// The offloads and RSS fields enabled at [`Port::configure`].
    pub fn offloads(&self) -> Offloads {
        self.offloads
    }

    /// `rte_eth_dev_start`, then promiscuous mode if asked (ENOTSUP tolerated).
    #[cold]
    pub fn start(&mut self) -> Result<(), DpdkError> {
        if self.started {
            return Ok(());
        }
        // SAFETY: the port is configured with all its queues set up.
        let rc = unsafe { sys::rte_eth_dev_start(self.id) };
        if rc != 0 {
            return Err(DpdkError::rc("rte_eth_dev_start", rc));
        }
        self.started = true;
        if self.offloads.rss_hf != 0 {
            let reta = self.program_reta();
            self.offloads.rss_steering =
                reta && self.offloads.rss_hf & sys::RTE_ETH_RSS_L3_SRC_ONLY != 0;
        }
        if self.opts.promiscuous {
            // SAFETY: the port is started.
            let rc = unsafe { sys::rte_eth_promiscuous_enable(self.id) };
            if rc != 0 && rc != -ENOTSUP {
                return Err(DpdkError::rc("rte_eth_promiscuous_enable", rc));
            }
        }
        Ok(())
    }

    /// Program rvs's RETA pattern ([`rss::reta`]) over the rx queues. `false`: the device's
    /// RETA cannot hold it or refused it; RSS still spreads the load, but requests may then
    /// arrive at a worker that is not their owner and take a hand-off.
    #[cold]
    fn program_reta(&mut self) -> bool {
        const GROUP: usize = sys::RTE_ETH_RETA_GROUP_SIZE as usize;
        let Some(entries) = rss::reta(usize::from(self.reta_size), self.rxq) else {
            return false;
        };
        let mut conf: Vec<sys::rte_eth_rss_reta_entry64> = entries
            .chunks(GROUP)
            .map(|c| {
                let mut g = sys::rte_eth_rss_reta_entry64 {
                    mask: u64::MAX,
                    reta: [0; GROUP],
                };
                g.reta[..c.len()].copy_from_slice(c);
                g
            })
            .collect();
        // SAFETY: `conf` holds reta_size / 64 groups (reta_size is a power of two >= 64),
        // each with all 64 entries valid; the port is ours and started.
        let rc =
            unsafe { sys::rte_eth_dev_rss_reta_update(self.id, conf.as_mut_ptr(), self.reta_size) };
        rc == 0
    }

    /// The RSS key and hash fields in force (`rte_eth_dev_rss_hash_conf_get`).
    #[cold]
    pub fn rss_conf(&self) -> Result<(Vec<u8>, u64), DpdkError> {
        let info = Self::info(self.id)?;
        // Room for any key (its length is a u8): some PMDs write their whole key whatever
        // hash_key_size says.
        let mut key = vec![0u8; 256];
        let mut conf = sys::rte_eth_rss_conf {
            rss_key: key.as_mut_ptr(),
            rss_key_len: info.hash_key_size,
            ..Default::default()
        };
        // SAFETY: the key buffer holds 256 bytes, more than any PMD writes.
        let rc = unsafe { sys::rte_eth_dev_rss_hash_conf_get(self.id, &mut conf) };
        if rc != 0 {
            return Err(DpdkError::rc("rte_eth_dev_rss_hash_conf_get", rc));
        }
        key.truncate(usize::from(info.hash_key_size));
        Ok((key, conf.rss_hf))
    }

    /// The RETA in force, one queue per entry (`rte_eth_dev_rss_reta_query`).
    #[cold]
    pub fn reta(&self) -> Result<Vec<u16>, DpdkError> {
        const GROUP: usize = sys::RTE_ETH_RETA_GROUP_SIZE as usize;
        let size = usize::from(self.reta_size);
        if size == 0 {
            return Err(DpdkError::invalid(
                "rte_eth_dev_rss_reta_query",
                format!("port {}: the device has no RETA", self.id),
            ));
        }
        let mut conf = vec![
            sys::rte_eth_rss_reta_entry64 {
                mask: u64::MAX,
                reta: [0; GROUP],
            };
            size.div_ceil(GROUP)
        ];
        // SAFETY: `conf` has a group for every GROUP entries of the device's reta_size.
        let rc =
            unsafe { sys::rte_eth_dev_rss_reta_query(self.id, conf.as_mut_ptr(), self.reta_size) };
        if rc != 0 {
            return Err(DpdkError::rc("rte_eth_dev_rss_reta_query", rc));
        }
        Ok(conf.iter().flat_map(|g| g.reta).take(size).collect())
    }

    /// `rte_eth_dev_stop` (flushes what the PMD buffered, e.g. `net_pcap`'s tx file).
    #[cold]
    pub fn stop(&mut self) -> Result<(), DpdkError> {
        if !self.started {
            return Ok(());
        }
        // SAFETY: the port is started; &mut self means no burst is running on it.
        let rc = unsafe { sys::rte_eth_dev_stop(self.id) };
        if rc != 0 {
            return Err(DpdkError::rc("rte_eth_dev_stop", rc));
        }
        self.started = false;
        Ok(())
    }

    /// Link status now (`rte_eth_link_get_nowait`).
    pub fn link_up(&self) -> bool {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: the port is configured; link is a valid struct to fill.
        let rc = unsafe { sys::rte_eth_link_get_nowait(self.id, &mut link) };
        rc == 0 && link.link_status() == sys::RTE_ETH_LINK_UP as u16
    }

    /// Receive up to `max` frames from `queue`, appended to `out` (which grows only when it
    /// lacks the capacity). Returns how many; 0 as well for a stopped port or a bad queue.
    #[inline]
    pub fn rx_burst(&self, queue: u16, out: &mut Vec<Mbuf>, max: u16) -> usize {
        if !self.started || queue >= self.rxq {
            return 0;
        }
        out.reserve(usize::from(max));
        let len = out.len();
        // SAFETY: the port is started and queue valid; only this thread polls it (Port is
        // !Sync and the sole owner of the id). Mbuf is repr(transparent) over a non-null
        // rte_mbuf pointer, and out has room for max more: the PMD writes n <= max valid,
        // non-null mbuf pointers there, which become ours.
        unsafe {
            let slots = out.as_mut_ptr().add(len).cast::<*mut sys::rte_mbuf>();
            let n = sys::rvs_rx_burst(self.id, queue, slots, max);
            out.set_len(len + usize::from(n));
            usize::from(n)
        }
    }

    /// Receive up to `slots.len()` frames from `queue` straight into `slots`, which the
    /// caller passes empty (`None`): no copy from a receive vector. Returns how many; the
    /// first that many slots are then `Some`. An mbuf left in an overwritten slot would leak
    /// (never freed, not unsound), so the caller keeps the slots empty between bursts.
    #[inline]
    pub fn rx_burst_slots(&self, queue: u16, slots: &mut [Option<Mbuf>]) -> usize {
        if !self.started || queue >= self.rxq {
            return 0;
        }
        debug_assert!(slots.iter().all(Option::is_none), "rx into a full slot");
        let max = u16::try_from(slots.len()).unwrap_or(u16::MAX);
        // SAFETY: the port is started and queue valid; only this thread polls it. Option<Mbuf>
        // is a nullable rte_mbuf pointer (Mbuf is repr(transparent) over NonNull), so the
        // PMD's n <= max non-null pointers written into slots are Some mbufs, ours now.
        unsafe {
            let at = slots.as_mut_ptr().cast::<*mut sys::rte_mbuf>();
            usize::from(sys::rvs_rx_burst(self.id, queue, at, max))
        }
    }

    /// Send from the front of `bufs` on `queue`; the mbufs the PMD took are removed, the
    /// unsent ones stay in `bufs` (in order) for the caller to retry or drop. Returns how
    /// many were sent.
    #[inline]
    pub fn tx_burst(&self, queue: u16, bufs: &mut Vec<Mbuf>) -> usize {
        if !self.started || queue >= self.txq || bufs.is_empty() {
            return 0;
        }
        let len = bufs.len();
        let n = u16::try_from(len).unwrap_or(u16::MAX);
        // SAFETY: the port is started, queue valid and polled by this thread only. The
        // first n entries are owned mbufs; the PMD takes ownership of the first `sent`.
        // Those are forgotten (set_len first, so nothing is dropped twice even on unwind)
        // and the rest moved to the front.
        unsafe {
            let base = bufs.as_mut_ptr();
            let sent = usize::from(sys::rvs_tx_burst(
                self.id,
                queue,
                base.cast::<*mut sys::rte_mbuf>(),
                n,
            ));
            bufs.set_len(0);
            ptr::copy(base.add(sent), base, len - sent);
            bufs.set_len(len - sent);
            sent
        }
    }

    /// The port totals (`rte_eth_stats_get`).
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        stats_of(self.id)
    }

    /// The PMD's extended counters, by name (`rte_eth_xstats_get` and `_get_names`).
    pub fn xstats(&self) -> Result<Vec<(String, u64)>, DpdkError> {
        xstats_of(self.id)
    }

    /// Split the port into `n` queue handles, one per worker, and a stats reader for the
    /// control thread. Handle `q` owns rx queue `q` if `q <` [`Port::rx_queues`] and tx queue
    /// `q` if `q <` [`Port::tx_queues`] (else it has none of that direction: the caller
    /// decides who receives or sends for it). Start the port first: a split port cannot be
    /// stopped; it is stopped and closed when the last handle and reader are dropped.
    #[cold]
    pub fn into_queues(self, n: u16) -> (PortStatsReader, Vec<PortQueue>) {
        let (rxq, txq) = (self.rxq, self.txq);
        let shared = Arc::new(Shared(self));
        let queues = (0..n)
            .map(|q| PortQueue {
                port: Arc::clone(&shared),
                rx: (q < rxq).then_some(q),
                tx: (q < txq).then_some(q),
                _not_sync: std::marker::PhantomData,
            })
            .collect();
        (
            PortStatsReader {
                port: shared,
                _not_sync: std::marker::PhantomData,
            },
            queues,
        )
    }
}

/// A port shared by its [`PortQueue`]s and [`PortStatsReader`]; the last one to go stops and
/// closes it (the `Port`'s drop), so no queue is closed under a poller.
#[derive(Debug)]
struct Shared(Port);

// SAFETY: through a Shared, bursts only run from PortQueue, and Port::into_queues gives each
// queue index to exactly one (!Sync) handle, so every DPDK queue still has one poller at a
// time; the one reader (!Sync, not Clone) only calls ethdev's control functions (stats,
// xstats, link), which DPDK allows from a control thread while other lcores poll the
// queues. Nothing can stop or reconfigure the port through a shared reference (those take
// &mut Port).
unsafe impl Sync for Shared {}

/// One worker's share of a started port: at most one rx queue and one tx queue, each polled
/// by this handle only. `Send` (it moves to its lcore) but not `Sync`.
#[derive(Debug)]
pub struct PortQueue {
    port: Arc<Shared>,
    rx: Option<u16>,
    tx: Option<u16>,
    _not_sync: std::marker::PhantomData<std::cell::Cell<()>>,
}

impl PortQueue {
    pub fn port_id(&self) -> u16 {
        self.port.0.id
    }

    /// The rx queue this handle polls, if any.
    pub fn rx_queue(&self) -> Option<u16> {
        self.rx
    }

    /// The tx queue this handle sends on, if any.
    pub fn tx_queue(&self) -> Option<u16> {
        self.tx
    }

    /// [`Port::rx_burst`] on this handle's rx queue (0 without one).
    #[inline]
    pub fn rx_burst(&mut self, out: &mut Vec<Mbuf>, max: u16) -> usize {
        match self.rx {
            Some(q) => self.port.0.rx_burst(q, out, max),
            None => 0,
        }
    }

    /// [`Port::rx_burst_slots`] on this handle's rx queue (0 without one).
    #[inline]
    pub fn rx_burst_slots(&mut self, slots: &mut [Option<Mbuf>]) -> usize {
        match self.rx {
            Some(q) => self.port.0.rx_burst_slots(q, slots),
            None => 0,
        }
    }

    /// [`Port::tx_burst`] on this handle's tx queue (nothing sent without one: every frame
    /// stays in `bufs`).
    #[inline]
    pub fn tx_burst(&mut self, bufs: &mut Vec<Mbuf>) -> usize {
        match self.tx {
            Some(q) => self.port.0.tx_burst(q, bufs),
            None => 0,
        }
    }
}

/// The control thread's view of a split port: its counters, read while the workers poll the
/// queues. It keeps the port open, like a [`PortQueue`]. One per port, `Send` but not `Sync`
/// (nor `Clone`): the port's control calls come from one thread at a time.
#[derive(Debug)]
pub struct PortStatsReader {
    port: Arc<Shared>,
    _not_sync: std::marker::PhantomData<std::cell::Cell<()>>,
}

impl PortStatsReader {
    pub fn id(&self) -> u16 {
        self.port.0.id
    }

    pub fn rx_queues(&self) -> u16 {
        self.port.0.rxq
    }

    pub fn tx_queues(&self) -> u16 {
        self.port.0.txq
    }

    /// The offloads and RSS settings in force (see [`Port::offloads`]).
    pub fn offloads(&self) -> Offloads {
        self.port.0.offloads
    }

    pub fn link_up(&self) -> bool {
        self.port.0.link_up()
    }

    /// The port totals (`rte_eth_stats_get`).
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        stats_of(self.port.0.id)
    }

    /// The PMD's extended counters, by name.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>, DpdkError> {
        xstats_of(self.port.0.id)
    }
}

/// `rte_eth_stats_get` of a port held open by the caller (a `Port` or a `Shared`).
fn stats_of(id: u16) -> Result<PortStats, DpdkError> {
    let mut s = sys::rte_eth_stats::default();
    // SAFETY: the caller holds the port open (configured, not closed); s is a valid struct
    // to fill.
    let rc = unsafe { sys::rte_eth_stats_get(id, &mut s) };
    if rc != 0 {
        return Err(DpdkError::rc("rte_eth_stats_get", rc));
    }
    Ok(PortStats {
        ipackets: s.ipackets,
        opackets: s.opackets,
        ibytes: s.ibytes,
        obytes: s.obytes,
        imissed: s.imissed,
        ierrors: s.ierrors,
        oerrors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    })
}

/// The extended counters of a port held open by the caller.
fn xstats_of(id: u16) -> Result<Vec<(String, u64)>, DpdkError> {
    // SAFETY: a NULL table of size 0 asks for the count.
    let n = unsafe { sys::rte_eth_xstats_get(id, ptr::null_mut(), 0) };
    if n < 0 {
        return Err(DpdkError::rc("rte_eth_xstats_get", n));
    }
    let cap = n as usize;
    let mut vals = vec![sys::rte_eth_xstat::default(); cap];
    let mut names = vec![sys::rte_eth_xstat_name::default(); cap];
    // SAFETY: both tables hold cap entries, as passed.
    let (nv, nn) = unsafe {
        (
            sys::rte_eth_xstats_get(id, vals.as_mut_ptr(), cap as c_uint),
            sys::rte_eth_xstats_get_names(id, names.as_mut_ptr(), cap as c_uint),
        )
    };
    if nv < 0 || nn < 0 || nv as usize > cap || nn as usize > cap {
        return Err(DpdkError::rc("rte_eth_xstats_get", nv.min(nn).min(-1)));
    }
    let names: Vec<String> = names[..nn as usize]
        .iter()
        .map(|nm| {
            // SAFETY: DPDK writes NUL-terminated names into the fixed-size array (the
            // default is all zeros, so an unwritten one is empty).
            unsafe { CStr::from_ptr(nm.name.as_ptr()) }
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    Ok(vals[..nv as usize]
        .iter()
        .filter_map(|x| {
            names
                .get(usize::try_from(x.id).ok()?)
                .map(|nm| (nm.clone(), x.value))
        })
        .collect())
}

impl Drop for Port {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("rvs: port {}: {e}", self.id);
        }
        // SAFETY: the port is stopped (or never started) and ours; nothing uses it after.
        let rc = unsafe { sys::rte_eth_dev_close(self.id) };
        if rc != 0 {
            eprintln!(
                "rvs: port {}: {}",
                self.id,
                DpdkError::rc("rte_eth_dev_close", rc)
            );
        }
        if let Some(set) = CLAIMED.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            set.remove(&self.id);
        }
        live_dec();
    }
}

/// DPDK's own software Toeplitz hash (`rte_softrss`) of `words` (host-order 32-bit words of
/// the input) under `key`: the reference [`rss::hash`] is checked against. `None` when the
/// key is shorter than the 4 * (words + 1) bytes the hash reads.
pub fn softrss(words: &[u32], key: &[u8]) -> Option<u32> {
    let need = 4 * (words.len() + 1);
    if key.len() < need {
        return None;
    }
    // rte_softrss reads the key as 32-bit words: hand it a 4-byte-aligned copy, bytes in the
    // same order.
    let aligned: Vec<u32> = key[..need]
        .chunks_exact(4)
        .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    // SAFETY: rte_softrss reads words[0..len] and the key's first 4 * (len + 1) bytes, both
    // in bounds and aligned; it writes nothing.
    Some(unsafe { sys::rvs_softrss(words.as_ptr(), words.len() as u32, aligned.as_ptr().cast()) })
}
