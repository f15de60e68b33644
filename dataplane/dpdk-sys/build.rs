//! Bindings to the system's DPDK (>= 22.11, Debian's `libdpdk-dev`) and the C shim over its
//! static inline functions.
//!
//! The raw `pkg-config --cflags libdpdk` go to both bindgen and cc, so the Rust layouts and
//! the shim's are those of the same headers under the same flags: they carry
//! `-include rte_config.h` (without it the headers do not parse) and `-march=corei7`, which
//! the `pkg-config` crate would drop.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const MIN_VERSION: &str = "22.11";
const INSTALL_HINT: &str = "install DPDK >= 22.11 and libclang: \
     `apt-get install dpdk dpdk-dev libdpdk-dev libclang-dev clang pkg-config` \
     (or run ci/setup.sh as root)";

/// Functions bound from DPDK's exported symbols, and the rvs_ shim.
const FUNCTIONS: &[&str] = &[
    "rvs_.*",
    // EAL and lcores
    "rte_eal_init",
    "rte_eal_cleanup",
    "rte_eal_get_runtime_dir",
    "rte_lcore_count",
    "rte_get_main_lcore",
    "rte_get_next_lcore",
    "rte_lcore_to_socket_id",
    "rte_socket_id",
    "rte_eal_remote_launch",
    "rte_eal_wait_lcore",
    "rte_eal_mp_wait_lcore",
    "rte_strerror",
    "rte_get_tsc_hz",
    // mempools and mbufs
    "rte_pktmbuf_pool_create",
    "rte_mempool_free",
    "rte_mempool_avail_count",
    "rte_mempool_in_use_count",
    "rte_pktmbuf_free_bulk",
    // ethdev
    "rte_eth_dev_count_avail",
    "rte_eth_dev_configure",
    "rte_eth_rx_queue_setup",
    "rte_eth_tx_queue_setup",
    "rte_eth_dev_start",
    "rte_eth_dev_stop",
    "rte_eth_dev_close",
    "rte_eth_dev_info_get",
    "rte_eth_macaddr_get",
    "rte_eth_link_get_nowait",
    "rte_eth_stats_get",
    "rte_eth_stats_reset",
    "rte_eth_xstats_get",
    "rte_eth_xstats_get_names",
    "rte_eth_promiscuous_enable",
    "rte_eth_dev_get_name_by_port",
    "rte_eth_dev_get_port_by_name",
    "rte_eth_dev_socket_id",
    "rte_eth_find_next_owned_by",
    "rte_eth_dev_rss_reta_update",
    "rte_eth_dev_rss_reta_query",
    "rte_eth_dev_rss_hash_conf_get",
    // rings
    "rte_ring_create",
    "rte_ring_free",
];

/// Types bound even where no bound function names them.
const TYPES: &[&str] = &[
    "rte_mbuf",
    "rte_mempool",
    "rte_ring",
    "rte_eth_conf",
    "rte_eth_rxconf",
    "rte_eth_txconf",
    "rte_eth_dev_info",
    "rte_eth_link",
    "rte_eth_stats",
    "rte_eth_xstat",
    "rte_eth_xstat_name",
    "rte_eth_rss_conf",
    "rte_eth_rss_reta_entry64",
    "rte_ether_addr",
    "rte_ether_hdr",
    "rte_lcore_state_t",
    "rte_rmt_call_main_t",
    "lcore_function_t",
];

/// Constants (many are macros that expand to expressions: `clang_macro_fallback` evaluates them).
const VARS: &[&str] = &[
    "RTE_ETH_.*",
    "RTE_MBUF_.*",
    "RTE_PKTMBUF_HEADROOM",
    "RTE_MAX_LCORE",
    "RTE_MAX_ETHPORTS",
    "RTE_ETHER_.*",
    "RING_F_.*",
    "SOCKET_ID_ANY",
    "LCORE_ID_ANY",
    "RTE_MEMPOOL_CACHE_MAX_SIZE",
];

/// DPDK's RSS and offload flags are `RTE_BIT64(n)`: keep them `u64`, the type of the
/// `rte_eth_conf` fields they go into, even when the value fits in 32 bits.
#[derive(Debug)]
struct Flags64;

impl bindgen::callbacks::ParseCallbacks for Flags64 {
    fn int_macro(&self, name: &str, _value: i64) -> Option<bindgen::callbacks::IntKind> {
        const U64_PREFIXES: &[&str] = &[
            "RTE_ETH_RSS_",
            "RTE_ETH_RX_OFFLOAD_",
            "RTE_ETH_TX_OFFLOAD_",
            "RTE_ETH_DEV_CAPA_",
            "RTE_MBUF_F_",
        ];
        U64_PREFIXES
            .iter()
            .any(|p| name.starts_with(p))
            .then_some(bindgen::callbacks::IntKind::U64)
    }
}

fn pkg_config(args: &[&str]) -> Result<String, String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("libdpdk")
        .output()
        .map_err(|e| format!("cannot run pkg-config ({e}); {INSTALL_HINT}"))?;
    if !out.status.success() {
        return Err(format!(
            "`pkg-config {} libdpdk` failed: {}; {INSTALL_HINT}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("dpdk-sys: {e}");
        panic!("dpdk-sys: {e}");
    }
}

fn run() -> Result<(), String> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/shim.c");
    println!("cargo:rerun-if-changed=src/shim.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let version = pkg_config(&["--modversion"])?;
    pkg_config(&[&format!("--atleast-version={MIN_VERSION}")]).map_err(|_| {
        format!("libdpdk {version} found, {MIN_VERSION} or newer needed; {INSTALL_HINT}")
    })?;
    println!("cargo:version={version}");

    // Split on whitespace: DPDK's flags carry no quoted spaces. `-include rte_config.h`
    // stays two arguments, as clang and gcc both take it.
    let cflags: Vec<String> = pkg_config(&["--cflags"])?
        .split_whitespace()
        .map(str::to_owned)
        .collect();

    let mut shim = cc::Build::new();
    shim.file("src/shim.c").opt_level(3).warnings(true);
    for flag in &cflags {
        shim.flag(flag);
    }
    shim.try_compile("rvs_dpdk_shim")
        .map_err(|e| format!("compiling the C shim failed: {e}"))?;

    link(env::var_os("CARGO_FEATURE_STATIC").is_some())?;

    let mut builder = bindgen::Builder::default()
        .header("src/shim.h")
        .clang_args(&cflags)
        .clang_macro_fallback()
        .generate_comments(false)
        .layout_tests(true)
        .derive_default(true)
        .derive_debug(true)
        .prepend_enum_name(false)
        .default_enum_style(bindgen::EnumVariation::ModuleConsts)
        // Packed headers rustc rejects (E0588, derive on packed fields): keep them opaque.
        .opaque_type("rte_arp_hdr")
        .opaque_type("rte_arp_ipv4")
        .opaque_type("rte_l2tpv2_.*")
        .opaque_type("rte_gtp_.*")
        .parse_callbacks(Box::new(Flags64))
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for f in FUNCTIONS {
        builder = builder.allowlist_function(f);
    }
    for t in TYPES {
        builder = builder.allowlist_type(t);
    }
    for v in VARS {
        builder = builder.allowlist_var(v);
    }
    let bindings = builder
        .generate()
        .map_err(|e| format!("bindgen failed: {e}; {INSTALL_HINT}"))?;
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    bindings
        .write_to_file(out.join("bindings.rs"))
        .map_err(|e| format!("writing bindings: {e}"))?;
    Ok(())
}

/// Dynamic (default): every `-l`/`-L` of `pkg-config --libs libdpdk`; EAL loads the PMDs
/// from its plugin directory at init. Static: the DPDK archives of
/// `pkg-config --static --libs libdpdk`, drivers and all, whole-archive (drivers register
/// themselves from constructors that nothing references), and their system libraries.
fn link(static_link: bool) -> Result<(), String> {
    if !static_link {
        for flag in pkg_config(&["--libs"])?.split_whitespace() {
            if let Some(lib) = flag.strip_prefix("-l") {
                println!("cargo:rustc-link-lib={lib}");
            } else if let Some(dir) = flag.strip_prefix("-L") {
                println!("cargo:rustc-link-search=native={dir}");
            }
        }
        return Ok(());
    }
    let mut seen = std::collections::HashSet::new();
    for flag in pkg_config(&["--static", "--libs"])?.split_whitespace() {
        if let Some(archive) = flag.strip_prefix("-l:") {
            if seen.insert(archive.to_owned()) {
                println!("cargo:rustc-link-lib=static:+whole-archive,-bundle,+verbatim={archive}");
            }
        } else if let Some(lib) = flag.strip_prefix("-l") {
            // The -lrte_* of libdpdk-libs are already linked from their archives above.
            if !lib.starts_with("rte_") && seen.insert(lib.to_owned()) {
                println!("cargo:rustc-link-lib={lib}");
            }
        } else if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if flag == "-pthread" && seen.insert("pthread".to_owned()) {
            println!("cargo:rustc-link-lib=pthread");
        }
    }
    Ok(())
}
