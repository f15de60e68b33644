-- pktgen-scripts/established.lua: the established-flow mix, for Pktgen-DPDK on bare metal.
--
-- Sends: TCP ACKs (64-byte frames: 54 bytes of headers, padding, FCS) of RVS_FLOWS distinct
--   flows to the service RVS_VIP (10.0.0.100:80), clients 11.0.0.1, 11.0.0.2, ... (one
--   address per flow, source port 1024), one frame per flow in turn, over and over: the
--   first pass creates the conns (the appliance needs [ipvs] sloppy_tcp = true, as
--   ci/bench/appliance.toml and pktgen-scripts/appliance.toml have), every later pass is
--   established traffic. This is `rvsd lab-pcap --kind established`, the mix of
--   pktgen-scripts/replay.sh and ci/bench.sh, with as many flows, the same VIP and MACs; there
--   the client addresses are spread over 11.0.0.0/8 and the source port varies too.
-- On: Pktgen port RVS_TX_PORT (0), cabled to the appliance's client-side port ("in" in
--   pktgen-scripts/appliance.toml), to RVS_DST_MAC from RVS_SRC_MAC.
-- Rate: RVS_RATE percent of line rate (100), for RVS_SECONDS (10); prints each second's
--   rate, then every port's totals and the best second (DR forwards out of the appliance's
--   other port: cabled back to Pktgen port 1, its received count is what rvs forwarded).
-- Run: rvsd with pktgen-scripts/appliance.toml and pktgen-scripts/rules.ipvsadm, then
--   RVS_FLOWS=1000000 pktgen -l 0-4 -n 4 -a <NIC port 0> -a <NIC port 1> -- -P \
--     -m "[1:2].0,[3:4].1" -f pktgen-scripts/established.lua
--   (pktgen-scripts/README.md has the whole bench). Other settings: common.lua.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local rvs = dofile(here .. "common.lua")

local flows = rvs.int("RVS_FLOWS", 1000000, 1, 16777215)
local seconds = rvs.int("RVS_SECONDS", 10, 1, 86400)
local rate = rvs.num("RVS_RATE", 100, 0.01, 100)
local vip, vport = rvs.vip4("RVS_VIP", "10.0.0.100:80")
local port = rvs.env("RVS_TX_PORT", "0")

pktgen.stop(port)
pktgen.set(port, "count", 0) -- until stopped
pktgen.set(port, "rate", rate)
rvs.range(port, {
    type = "ipv4",
    src = {"11.0.0.1", rvs.v4_last("11.0.0.1", flows), "0.0.0.1"},
    dst = vip,
    sport = 1024,
    dport = vport,
    dst_mac = rvs.env("RVS_DST_MAC", "02:00:00:00:00:01"),
    src_mac = rvs.env("RVS_SRC_MAC", "02:00:00:00:00:c1"),
    size = 64,
})
rvs.tcp_flags(port, "ack")
pktgen.set_range(port, "on")
pktgen.clr()
rvs.say("established: %d flows from 11.0.0.1 to %s:%d at %s%% of line rate for %d s\n", flows,
    vip, vport, tostring(rate), seconds)
pktgen.start(port)
rvs.run("established", {port}, seconds, {"0", "1"})
