-- pktgen-scripts/ipv6.lua: the established-flow mix over IPv6, for Pktgen-DPDK on bare metal.
--
-- Sends: TCP ACKs (78-byte frames: 74 bytes of headers, FCS; hop limit 64) of RVS_FLOWS
--   distinct flows to the IPv6 service RVS_VIP6 ([fd00::100]:80, the VIP of the repo's
--   IPv6 tests, control/tests/common), clients fd00:11::0:1, fd00:11::0:2, ... (one address
--   per flow, the low 32 bits counting; source port 1024), one frame per flow in turn, over
--   and over. As established.lua: the first pass creates the conns (sloppy_tcp), then it is
--   established traffic, DR to the two IPv6 real servers of pktgen-scripts/rules.ipvsadm.
--   An IPv6 conn entry is 128 bytes (IPv4: 64) and [engine] conns_v6_per_worker defaults to
--   an eighth of the IPv4 size: pktgen-scripts/appliance.toml sizes it for 1M flows.
-- On: Pktgen port RVS_TX_PORT (0), cabled to the appliance's client-side port ("in",
--   fd00::1/64), to RVS_DST_MAC (02:00:00:00:00:01) from RVS_SRC_MAC (02:00:00:00:00:c1).
-- Rate: RVS_RATE percent of line rate (100), for RVS_SECONDS (10); prints each second's
--   rate, every port's totals and the best second.
-- Run: rvsd with pktgen-scripts/appliance.toml and pktgen-scripts/rules.ipvsadm, then
--   pktgen -l 0-4 -n 4 -a <NIC port 0> -a <NIC port 1> -- -P -m "[1:2].0,[3:4].1" \
--     -f pktgen-scripts/ipv6.lua
--   Other settings: common.lua.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local rvs = dofile(here .. "common.lua")

local flows = rvs.int("RVS_FLOWS", 1000000, 1, 16777215)
local seconds = rvs.int("RVS_SECONDS", 10, 1, 86400)
local rate = rvs.num("RVS_RATE", 100, 0.01, 100)
local vip6 = rvs.env("RVS_VIP6", "[fd00::100]:80")
local vip, vport = vip6:match("^%[([%x:]+)%]:(%d+)$")
vport = math.tointeger(tonumber(vport))
if vip == nil or vport == nil or vport < 1 or vport > 65535 then
    error("RVS_VIP6=" .. vip6 .. ": want [IPv6ADDR]:PORT like [fd00::100]:80")
end
local port = rvs.env("RVS_TX_PORT", "0")
local prefix = "fd00:11::"

pktgen.stop(port)
pktgen.set(port, "count", 0)
pktgen.set(port, "rate", rate)
rvs.range(port, {
    type = "ipv6",
    src = {rvs.v6_at(prefix, 1), rvs.v6_at(prefix, flows), "::1"},
    dst = vip,
    sport = 1024,
    dport = vport,
    dst_mac = rvs.env("RVS_DST_MAC", "02:00:00:00:00:01"),
    src_mac = rvs.env("RVS_SRC_MAC", "02:00:00:00:00:c1"),
    size = 78,
})
rvs.tcp_flags(port, "ack")
pktgen.set_range(port, "on")
pktgen.clr()
rvs.say("ipv6: %d flows from %s to [%s]:%d at %s%% of line rate for %d s\n", flows,
    rvs.v6_at(prefix, 1), vip, vport, tostring(rate), seconds)
pktgen.start(port)
rvs.run("ipv6", {port}, seconds, {"0", "1"})
