-- pktgen-scripts/synflood.lua: a SYN flood, for Pktgen-DPDK on bare metal.
--
-- Sends: TCP SYNs (64-byte frames) from RVS_FLOWS sources, 203.0.0.1, 203.0.0.2, ...
--   (source port 1024), to the service RVS_VIP (10.0.0.100:80), one frame per source in
--   turn, over and over. This is `rvsd lab-pcap --kind synflood` (replay.sh --kind
--   synflood, ci/bench.sh's second mix) with the same sources' /8, VIP and MACs; there the
--   sources and ports are drawn at random in 203.0.0.0/8 and 1024..61023. As there, a source
--   comes back each pass: at a pass shorter than the SYN_RECV timeout its conn still
--   exists; give RVS_FLOWS above rate x 60 s for new conns all along (up to 16777215). The
--   defense is the appliance's: [defense] drop_entry (docs/config.md).
-- On: Pktgen port RVS_TX_PORT (0), cabled to the appliance's client-side port, to
--   RVS_DST_MAC (02:00:00:00:00:01) from RVS_SRC_MAC (02:00:00:00:00:c1).
-- Rate: RVS_RATE percent of line rate (100), for RVS_SECONDS (10); prints each second's
--   rate, every port's totals and the best second.
-- Run: rvsd with pktgen-scripts/appliance.toml and pktgen-scripts/rules.ipvsadm, then
--   RVS_FLOWS=1000000 pktgen -l 0-4 -n 4 -a <NIC port 0> -a <NIC port 1> -- -P \
--     -m "[1:2].0,[3:4].1" -f pktgen-scripts/synflood.lua
--   and watch rvs_conns_by_state, rvs_free_entries, rvs_drops_total and rvs_defense_* on
--   /metrics (docs/metrics.md; rvs_templates too with a persistent service). Other
--   settings: common.lua.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local rvs = dofile(here .. "common.lua")

local flows = rvs.int("RVS_FLOWS", 1000000, 1, 16777215)
local seconds = rvs.int("RVS_SECONDS", 10, 1, 86400)
local rate = rvs.num("RVS_RATE", 100, 0.01, 100)
local vip, vport = rvs.vip4("RVS_VIP", "10.0.0.100:80")
local port = rvs.env("RVS_TX_PORT", "0")

pktgen.stop(port)
pktgen.set(port, "count", 0)
pktgen.set(port, "rate", rate)
rvs.range(port, {
    type = "ipv4",
    src = {"203.0.0.1", rvs.v4_last("203.0.0.1", flows), "0.0.0.1"},
    dst = vip,
    sport = 1024,
    dport = vport,
    dst_mac = rvs.env("RVS_DST_MAC", "02:00:00:00:00:01"),
    src_mac = rvs.env("RVS_SRC_MAC", "02:00:00:00:00:c1"),
    size = 64,
})
rvs.tcp_flags(port, "syn")
pktgen.set_range(port, "on")
pktgen.clr()
rvs.say("synflood: SYNs from %d sources in 203.0.0.0/8 to %s:%d at %s%% of line rate for %d s\n",
    flows, vip, vport, tostring(rate), seconds)
pktgen.start(port)
rvs.run("synflood", {port}, seconds, {"0", "1"})
