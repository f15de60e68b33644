-- pktgen-scripts/nat-replies.lua: NAT (masquerading) both ways, measured on the replies, for
-- Pktgen-DPDK on bare metal.
--
-- Sends: on the client side, the established mix (established.lua: TCP ACKs of RVS_FLOWS
--   flows from 11.0.0.1, 11.0.0.2, ... port 1024) to the NAT service RVS_NAT_VIP
--   (10.0.0.101:80), whose one real server RVS_NAT_RIP (10.0.1.21:80, -m) is no DR
--   service's; once a whole pass has gone (every flow has its conn), on the server side
--   the real server's replies: TCP ACKs from 10.0.1.21:80 to 11.0.0.1:1024,
--   11.0.0.2:1024, ... in turn. rvs rewrites the requests' destination to the real server
--   and the replies' source to the VIP, and routes the replies to the clients (11.0.0.0/8
--   via the client-side port). The repo's own measure of this path is the pipeline
--   bench's nat_out (dataplane/benches/pipeline.rs: replies to 1M established NAT flows,
--   clients in 11.0.0.0/8); replay.sh has no capture of it.
-- On: Pktgen port RVS_CLIENT_PORT (0), cabled to the appliance's "in" port, to
--   02:00:00:00:00:01 from 02:00:00:00:00:c1; Pktgen port RVS_SERVER_PORT (1), cabled to
--   its "out" port, to 02:00:00:00:00:02 from the real server's 02:00:00:00:01:21 (as
--   pktgen-scripts/appliance.toml has them; -P makes Pktgen take every frame back).
-- Rate: RVS_RATE percent of line rate (100) on both ports; the replies for RVS_SECONDS (10),
--   each second's reply rate printed, then both ports' totals: the server port's received
--   count is the NATed requests, the client port's the NATed replies.
-- Run: rvsd with pktgen-scripts/appliance.toml and pktgen-scripts/rules.ipvsadm, then
--   pktgen -l 0-4 -n 4 -a <NIC port 0> -a <NIC port 1> -- -P -m "[1:2].0,[3:4].1" \
--     -f pktgen-scripts/nat-replies.lua
--   Other settings: common.lua (and RVS_SERVER_DST_MAC, RVS_SERVER_SRC_MAC here).

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local rvs = dofile(here .. "common.lua")

local flows = rvs.int("RVS_FLOWS", 1000000, 1, 16777215)
local seconds = rvs.int("RVS_SECONDS", 10, 1, 86400)
local rate = rvs.num("RVS_RATE", 100, 0.01, 100)
local vip, vport = rvs.vip4("RVS_NAT_VIP", "10.0.0.101:80")
local rip, rport = rvs.vip4("RVS_NAT_RIP", "10.0.1.21:80")
local client = rvs.env("RVS_CLIENT_PORT", "0")
local server = rvs.env("RVS_SERVER_PORT", "1")
local clients = {"11.0.0.1", rvs.v4_last("11.0.0.1", flows), "0.0.0.1"}

for _, p in ipairs({client, server}) do
    pktgen.stop(p)
    pktgen.set(p, "count", 0)
    pktgen.set(p, "rate", rate)
end
-- Client -> VIP: these create the conns (sloppy_tcp) and keep them established.
rvs.range(client, {
    type = "ipv4",
    src = clients,
    dst = vip,
    sport = 1024,
    dport = vport,
    dst_mac = rvs.env("RVS_DST_MAC", "02:00:00:00:00:01"),
    src_mac = rvs.env("RVS_SRC_MAC", "02:00:00:00:00:c1"),
    size = 64,
})
rvs.tcp_flags(client, "ack")
-- Real server -> client: the replies, in the same order of clients.
rvs.range(server, {
    type = "ipv4",
    src = rip,
    dst = clients,
    sport = rport,
    dport = 1024,
    dst_mac = rvs.env("RVS_SERVER_DST_MAC", "02:00:00:00:00:02"),
    src_mac = rvs.env("RVS_SERVER_SRC_MAC", "02:00:00:00:01:21"),
    size = 64,
})
rvs.tcp_flags(server, "ack")
pktgen.set_range(client, "on")
pktgen.set_range(server, "on")
pktgen.clr()

rvs.say("nat-replies: %d flows from 11.0.0.1 to %s:%d (real server %s:%d) at %s%% of line rate\n",
    flows, vip, vport, rip, rport, tostring(rate))
pktgen.start(client)
-- One whole pass first: a reply to a client without a conn is not NAT traffic.
local waited = 0
while rvs.counts(client) < flows do
    if waited >= 600 then
        pktgen.stop(client)
        error("nat-replies: port " .. client .. " did not send one pass of " .. flows ..
            " frames in 60 s (link down? see Pktgen's port page)")
    end
    pktgen.delay(100)
    waited = waited + 1
end
rvs.say("nat-replies: one pass sent (%.1f s); replies from %s for %d s\n", waited / 10, rip,
    seconds)
pktgen.start(server)
rvs.run("nat-replies", {server, client}, seconds, {client, server})
