//! The real EAL on virtual devices, no hugepages, no PCI: init, mempool, port setup,
//! rx from `net_null`, tx back out, teardown. EAL initialises once per process, so this
//! file holds a single test.
// The raw bindings, called directly.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::ptr;

use dpdk_sys::*;

const BURST: usize = 32;
const NB_MBUFS: c_uint = 4095;
const RING_SIZE: u16 = 512;

/// Runs on a worker lcore: reports the lcore id the shim sees there.
extern "C" fn report_lcore(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `*mut u32` handed to rte_eal_remote_launch below, which outlives
    // the launch (the main lcore waits for it) and is written by this lcore only.
    unsafe {
        *arg.cast::<u32>() = rvs_lcore_id();
    }
    0
}

fn errno_str() -> String {
    // SAFETY: rvs_errno reads this thread's rte_errno; rte_strerror returns a pointer to a
    // static or per-lcore NUL-terminated string.
    unsafe { CStr::from_ptr(rte_strerror(rvs_errno())) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn eal_net_null_rx_then_tx_and_teardown() {
    let prefix = format!("rvs-test-{}", std::process::id());
    let args: Vec<CString> = [
        "rvs-test",
        "--no-huge",
        "-m",
        "512",
        "--no-pci",
        "--no-telemetry",
        "--vdev",
        "net_null0",
        "--vdev",
        "net_ring0",
        "--file-prefix",
        &prefix,
        "--log-level",
        "lib.eal:error",
    ]
    .iter()
    .map(|a| CString::new(*a).expect("no NUL in EAL args"))
    .collect();
    // EAL may permute argv: hand it a vector of pointers it can reorder, kept alive (with
    // the CStrings) until the end of the test.
    let mut argv: Vec<*mut c_char> = args.iter().map(|a| a.as_ptr().cast_mut()).collect();
    let argc = c_int::try_from(argv.len()).expect("argc fits");

    // SAFETY: argv holds argc valid NUL-terminated strings that outlive the EAL; this is the
    // only rte_eal_init of the process (one test in this file).
    let consumed = unsafe { rte_eal_init(argc, argv.as_mut_ptr()) };
    assert!(consumed >= 0, "rte_eal_init failed: {}", errno_str());
    assert_eq!(consumed, argc - 1, "EAL consumed every argument");

    // SAFETY: the EAL is initialised; these only read its state.
    let (nb_ports, nb_lcores, main_lcore, lcore_here, tsc_hz) = unsafe {
        (
            rte_eth_dev_count_avail(),
            rte_lcore_count(),
            rte_get_main_lcore(),
            rvs_lcore_id(),
            rte_get_tsc_hz(),
        )
    };
    assert_eq!(nb_ports, 2, "net_null0 and net_ring0 probed");
    assert!(nb_lcores >= 1);
    assert_eq!(lcore_here, main_lcore, "the test thread is the main lcore");
    assert!(tsc_hz > 0);

    let mut name = [0 as c_char; RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: name is RTE_ETH_NAME_MAX_LEN bytes, as the function requires.
    let rc = unsafe { rte_eth_dev_get_name_by_port(0, name.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: on success name holds a NUL-terminated string.
    let port0 = unsafe { CStr::from_ptr(name.as_ptr()) }.to_owned();
    assert_eq!(port0.to_str(), Ok("net_null0"));
    let mut by_name = u16::MAX;
    // SAFETY: port0 is NUL-terminated; by_name is a valid u16 to write.
    let rc = unsafe { rte_eth_dev_get_port_by_name(c"net_ring0".as_ptr(), &mut by_name) };
    assert_eq!((rc, by_name), (0, 1));

    // A worker lcore, when the machine has one: remote launch and wait.
    // SAFETY: the EAL is initialised; rte_get_next_lcore only reads the lcore config.
    let worker = unsafe { rte_get_next_lcore(u32::MAX, 1, 0) };
    if worker < RTE_MAX_LCORE {
        let mut seen: u32 = u32::MAX;
        // SAFETY: report_lcore matches lcore_function_t; `seen` outlives the launch since
        // rte_eal_wait_lcore below returns only after the function has.
        let rc = unsafe {
            rte_eal_remote_launch(Some(report_lcore), ptr::addr_of_mut!(seen).cast(), worker)
        };
        assert_eq!(rc, 0);
        // SAFETY: waits for the launch above.
        assert_eq!(unsafe { rte_eal_wait_lcore(worker) }, 0);
        assert_eq!(seen, worker);
        // SAFETY: no other launch is pending.
        unsafe { rte_eal_mp_wait_lcore() };
    }

    // SAFETY: the EAL is initialised; the name is NUL-terminated and unique.
    let pool = unsafe {
        rte_pktmbuf_pool_create(
            c"rvs-test-pool".as_ptr(),
            NB_MBUFS,
            256,
            0,
            RTE_MBUF_DEFAULT_BUF_SIZE as u16,
            rte_socket_id() as c_int,
        )
    };
    assert!(!pool.is_null(), "mempool: {}", errno_str());
    // SAFETY: pool is a valid mempool.
    assert_eq!(unsafe { rte_mempool_avail_count(pool) }, NB_MBUFS);

    // mbuf shim round trip: headroom, append, prepend, adj, trim.
    // SAFETY: pool is valid; m is checked non-null and freed before the block ends.
    unsafe {
        let m = rvs_pktmbuf_alloc(pool);
        assert!(!m.is_null());
        assert_eq!(rvs_pktmbuf_headroom(m), RTE_PKTMBUF_HEADROOM as u16);
        assert_eq!(rvs_pktmbuf_data_len(m), 0);
        let data = rvs_pktmbuf_append(m, 60).cast::<u8>();
        assert!(!data.is_null());
        assert_eq!(data, rvs_pktmbuf_mtod(m).cast::<u8>());
        ptr::write_bytes(data, 0xab, 60);
        assert_eq!((rvs_pktmbuf_data_len(m), rvs_pktmbuf_pkt_len(m)), (60, 60));
        assert!(!rvs_pktmbuf_prepend(m, 4).is_null());
        assert_eq!(rvs_pktmbuf_pkt_len(m), 64);
        assert!(!rvs_pktmbuf_adj(m, 14).is_null());
        assert_eq!(rvs_pktmbuf_trim(m, 10), 0);
        assert_eq!(rvs_pktmbuf_data_len(m), 40);
        assert_eq!(*rvs_pktmbuf_mtod(m).cast::<u8>(), 0xab);
        assert!(rvs_pktmbuf_tailroom(m) > 0);
        rvs_pktmbuf_free(m);

        let mut bulk = [ptr::null_mut::<rte_mbuf>(); BURST];
        assert_eq!(
            rvs_pktmbuf_alloc_bulk(pool, bulk.as_mut_ptr(), BURST as c_uint),
            0
        );
        assert_eq!(rte_mempool_in_use_count(pool), BURST as c_uint);
        rvs_pktmbuf_free_bulk(bulk.as_mut_ptr(), BURST as c_uint);
        assert_eq!(rte_mempool_in_use_count(pool), 0);
    }

    // A ring through the shim's burst ops.
    // SAFETY: the EAL is initialised; the ring is freed before the block ends and the
    // pointers enqueued are never dereferenced.
    unsafe {
        let ring = rte_ring_create(
            c"rvs-test-ring".as_ptr(),
            64,
            SOCKET_ID_ANY,
            RING_F_SP_ENQ | RING_F_SC_DEQ,
        );
        assert!(!ring.is_null(), "ring: {}", errno_str());
        let objs: [*mut c_void; 8] = std::array::from_fn(|i| (i + 1) as *mut c_void);
        let n = rvs_ring_enqueue_burst(ring, objs.as_ptr(), 8, ptr::null_mut());
        assert_eq!(n, 8);
        let mut out = [ptr::null_mut::<c_void>(); 8];
        let mut left: c_uint = 99;
        assert_eq!(
            rvs_ring_dequeue_burst(ring, out.as_mut_ptr(), 8, &mut left),
            8
        );
        assert_eq!((out, left), (objs, 0));
        rte_ring_free(ring);
    }

    let port: u16 = 0;
    // SAFETY: port 0 exists; info is a valid rte_eth_dev_info to fill.
    let (info, socket) = unsafe {
        let mut info = rte_eth_dev_info::default();
        assert_eq!(rte_eth_dev_info_get(port, &mut info), 0);
        (info, rte_eth_dev_socket_id(port))
    };
    assert!(info.max_rx_queues >= 1 && info.max_tx_queues >= 1);

    let conf = rte_eth_conf::default();
    // SAFETY: port 0 is stopped and configured once, with queues set up on the pool above,
    // which outlives the port (freed after close).
    unsafe {
        assert_eq!(rte_eth_dev_configure(port, 1, 1, &conf), 0);
        let socket = socket.max(0) as c_uint;
        assert_eq!(
            rte_eth_rx_queue_setup(port, 0, RING_SIZE, socket, ptr::null(), pool),
            0
        );
        assert_eq!(
            rte_eth_tx_queue_setup(port, 0, RING_SIZE, socket, ptr::null()),
            0
        );
        assert_eq!(rte_eth_dev_start(port), 0, "start: {}", errno_str());
        // net_null has no MAC filter to open; ENOTSUP is an accepted answer.
        let rc = rte_eth_promiscuous_enable(port);
        assert!(rc == 0 || rc == -(libc_enotsup()), "promiscuous: {rc}");
    }

    // SAFETY: port 0 is started; the out-parameters are valid to write.
    let (mac, link) = unsafe {
        let mut mac = rte_ether_addr::default();
        assert_eq!(rte_eth_macaddr_get(port, &mut mac), 0);
        let mut link = rte_eth_link::default();
        assert_eq!(rte_eth_link_get_nowait(port, &mut link), 0);
        (mac, link)
    };
    let _ = mac.addr_bytes;
    // bitfield accessors from bindgen: net_null reports link up once started.
    assert_eq!(link.link_status(), RTE_ETH_LINK_UP as u16);

    // rx from net_null (it makes frames from the pool), then tx them back out.
    let mut pkts = [ptr::null_mut::<rte_mbuf>(); BURST];
    // SAFETY: port 0 / queue 0 are started; pkts has room for BURST mbuf pointers.
    let nb_rx = unsafe { rvs_rx_burst(port, 0, pkts.as_mut_ptr(), BURST as u16) };
    assert!(nb_rx > 0, "net_null gave no frames");
    for &m in &pkts[..usize::from(nb_rx)] {
        // SAFETY: the first nb_rx entries are valid mbufs just received.
        assert!(unsafe { rvs_pktmbuf_pkt_len(m) } > 0);
    }
    // SAFETY: the first nb_rx entries are mbufs we own; tx takes the first nb_tx, we free
    // the rest.
    let nb_tx = unsafe { rvs_tx_burst(port, 0, pkts.as_mut_ptr(), nb_rx) };
    assert!(nb_tx <= nb_rx);
    if nb_tx < nb_rx {
        // SAFETY: entries nb_tx..nb_rx were not taken by the PMD and are still ours.
        unsafe {
            rte_pktmbuf_free_bulk(
                pkts.as_mut_ptr().add(usize::from(nb_tx)),
                c_uint::from(nb_rx - nb_tx),
            );
        }
    }

    // SAFETY: port 0 is started; stats and xstats buffers are valid to write.
    unsafe {
        let mut stats = rte_eth_stats::default();
        assert_eq!(rte_eth_stats_get(port, &mut stats), 0);
        assert_eq!(stats.ipackets, u64::from(nb_rx));
        assert_eq!(stats.opackets, u64::from(nb_tx));
        let n = rte_eth_xstats_get(port, ptr::null_mut(), 0);
        assert!(n > 0, "xstats count");
        let mut xstats = vec![rte_eth_xstat::default(); n as usize];
        let mut names = vec![rte_eth_xstat_name::default(); n as usize];
        assert_eq!(
            rte_eth_xstats_get(port, xstats.as_mut_ptr(), n as c_uint),
            n
        );
        assert_eq!(
            rte_eth_xstats_get_names(port, names.as_mut_ptr(), n as c_uint),
            n
        );
        let rx_good = xstats
            .iter()
            .zip(&names)
            .find(|(_, nm)| CStr::from_ptr(nm.name.as_ptr()).to_bytes() == b"rx_good_packets")
            .map(|(x, _)| x.value);
        assert_eq!(rx_good, Some(u64::from(nb_rx)));
    }

    // SAFETY: the EAL is initialised; the runtime dir is a NUL-terminated static string,
    // copied out before cleanup.
    let runtime_dir = unsafe { CStr::from_ptr(rte_eal_get_runtime_dir()) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: the port is stopped and closed before its pool is freed; nothing uses any
    // DPDK object after rte_eal_cleanup.
    unsafe {
        assert_eq!(rte_eth_dev_stop(port), 0);
        assert_eq!(rte_eth_dev_close(port), 0);
        assert_eq!(
            rte_mempool_in_use_count(pool),
            0,
            "every mbuf back in the pool"
        );
        rte_mempool_free(pool);
        assert_eq!(rte_eal_cleanup(), 0);
    }
    // rte_eal_cleanup leaves the per-prefix runtime dir (config, fbarrays) behind.
    assert!(runtime_dir.ends_with(&prefix), "{runtime_dir}");
    std::fs::remove_dir_all(&runtime_dir).expect("remove the EAL runtime dir");
}

/// ENOTSUP on Linux (no libc dependency for one constant).
const fn libc_enotsup() -> c_int {
    95
}
