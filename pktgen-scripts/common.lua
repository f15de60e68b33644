-- pktgen-scripts/common.lua: what the traffic scripts share. Not a script of its own: each
-- of established.lua, synflood.lua, nat-replies.lua and ipv6.lua loads it from its own
-- directory (dofile), so run them by path, from anywhere.
--
-- Settings come from the environment (Pktgen's Lua has the standard libraries), each with
-- the default of pktgen-scripts/replay.sh and ci/bench.sh, so the figures compare:
--   RVS_FLOWS     distinct flows (source addresses) per pass     1000000
--   RVS_SECONDS   seconds to send, counted from the start          10
--   RVS_RATE      percent of the port's line rate (0.01 .. 100)   100
--   RVS_DST_MAC   the appliance port's MAC (its [[port]] mac)      02:00:00:00:00:01
--   RVS_SRC_MAC   the sender's MAC (a router in front of it)       02:00:00:00:00:c1
--   RVS_TX_PORT   the Pktgen port that sends                        0
-- and per script the addresses (see each header).
--
-- The Pktgen API used is the documented Lua one (app/lpktgenlib.c, docs/source/lua.rst of
-- Pktgen-DPDK; the functions below exist from 23.06 to 26.02), plus one command file for
-- the range's TCP flags, which the Lua API does not reach (see tcp_flags).

local M = {}

-- printf: Pktgen's own printf lives in its Pktgen.lua, which a script need not load.
function M.say(fmt, ...)
    io.write(string.format(fmt, ...))
    io.flush()
end

-- The setting NAME from the environment, or DEFAULT.
function M.env(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then
        return default
    end
    return v
end

-- The setting NAME as an integer in [lo, hi], or DEFAULT; anything else stops the script.
function M.int(name, default, lo, hi)
    local s = M.env(name, tostring(default))
    local v = math.tointeger(tonumber(s))
    if v == nil or v < lo or v > hi then
        error(string.format("%s=%s: want a whole number from %d to %d", name, s, lo, hi))
    end
    return v
end

-- The setting NAME as a number in [lo, hi] (the rate is a percentage with decimals).
function M.num(name, default, lo, hi)
    local s = M.env(name, tostring(default))
    local v = tonumber(s)
    if v == nil or v < lo or v > hi then
        error(string.format("%s=%s: want a number from %s to %s", name, s, lo, hi))
    end
    return v
end

-- Dotted IPv4 address -> integer, and back.
local function v4_int(dotted)
    local a, b, c, d = dotted:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
    if a == nil or a > 255 or b > 255 or c > 255 or d > 255 then
        error(dotted .. ": not an IPv4 address")
    end
    return ((a * 256 + b) * 256 + c) * 256 + d
end

local function v4_str(n)
    return string.format("%d.%d.%d.%d", (n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255)
end

-- The IPv4 address COUNT - 1 after FIRST, staying inside FIRST's /8: the last of COUNT
-- consecutive addresses.
function M.v4_last(first, count)
    local f = v4_int(first)
    local l = f + count - 1
    if (l >> 24) ~= (f >> 24) then
        error(string.format("%d addresses from %s leave its /8", count, first))
    end
    return v4_str(l)
end

-- PREFIX (an IPv6 address ending in "::", the upper 96 bits) plus N in the low 32 bits.
function M.v6_at(prefix, n)
    if n < 0 or n > 0xffffffff then
        error(string.format("%s + %d: the low 32 bits do not hold it", prefix, n))
    end
    return string.format("%s%x:%x", prefix, n >> 16, n & 0xffff)
end

-- The "ADDR:PORT" setting NAME (IPv4) as address and port.
function M.vip4(name, default)
    local s = M.env(name, default)
    local a, p = s:match("^([%d%.]+):(%d+)$")
    local port = math.tointeger(tonumber(p))
    if a == nil or port == nil or port < 1 or port > 65535 then
        error(string.format("%s=%s: want IPv4ADDR:PORT like 10.0.0.100:80", name, s))
    end
    v4_int(a)
    return a, port
end

-- One range field of PORT: the same value in every frame.
local function fixed(f, port, v)
    f(port, "start", v)
    f(port, "min", v)
    f(port, "max", v)
end

-- One range address field of PORT: A fixed, or A = {first, last, inc} stepping.
local function addr(f, port, a, zero)
    if type(a) == "table" then
        f(port, "start", a[1])
        f(port, "min", a[1])
        f(port, "max", a[2])
        f(port, "inc", a[3])
    else
        fixed(f, port, a)
        f(port, "inc", zero)
    end
end

-- The range of PORT: one flow shape, one address stepping through its FLOWS values (one
-- per frame, then from the first again), everything else fixed. t = {type = "ipv4" |
-- "ipv6", src, dst (an address, or {first, last, inc} for the one that steps), sport,
-- dport, dst_mac, src_mac, size}. Pktgen steps every field with a non-zero increment on
-- every frame, so with one stepping field the frames cycle through exactly FLOWS flows (a
-- stepping port too would multiply them). Its defaults step the destination address and
-- both ports: each field is set here, increments included.
function M.range(port, t)
    local r = pktgen.range
    local zero = t.type == "ipv6" and "::" or "0.0.0.0"
    r.set_type(port, t.type) -- first: the addresses below are stored by type
    r.ip_proto(port, "tcp")
    r.dst_mac(port, "start", t.dst_mac)
    r.src_mac(port, "start", t.src_mac)
    addr(r.src_ip, port, t.src, zero)
    addr(r.dst_ip, port, t.dst, zero)
    fixed(r.src_port, port, t.sport)
    r.src_port(port, "inc", 0)
    fixed(r.dst_port, port, t.dport)
    r.dst_port(port, "inc", 0)
    if t.type == "ipv6" then
        -- The range's hop limit starts at 0 in Pktgen (nothing sets it), and rvs, as a
        -- router, answers hop limit 0 or 1 with time exceeded instead of forwarding.
        fixed(r.hop_limits, port, 64)
        r.hop_limits(port, "inc", 0)
    else
        fixed(r.ttl, port, 64)
        r.ttl(port, "inc", 0)
    end
    fixed(r.pkt_size, port, t.size)
    r.pkt_size(port, "inc", 0)
end

-- The range's TCP flags of PORT: only FLAG ("ack" or "syn"). The Lua API has no range TCP
-- flags, so this writes a command file and has Pktgen run it (pktgen.load feeds a file not
-- ending in .lua to its command line). Two syntaxes, each refused by the other version: the
-- command line of Pktgen 24.10 and later takes the whole set ("range 0 tcp flags syn"),
-- earlier ones a flag at a time ("range 0 tcp flag clr all", "range 0 tcp flag set syn").
function M.tcp_flags(port, flag)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(string.format("range %s tcp flag clr all\n", port))
    f:write(string.format("range %s tcp flag set %s\n", port, flag))
    f:write(string.format("range %s tcp flags %s\n", port, flag))
    f:close()
    pktgen.load(path)
    os.remove(path)
end

-- PORT's counters since the last pktgen.clr(): the frames it sent and received. Pktgen 24.x
-- and later take one argument and nest the counters under "curr"; 23.x wants a second
-- argument ("port") and has them at the top.
function M.counts(port)
    local ok, t = pcall(pktgen.portStats, port)
    if not ok then
        ok, t = pcall(pktgen.portStats, port, "port")
    end
    if not ok or type(t) ~= "table" then
        return 0, 0
    end
    local s = t[math.tointeger(tonumber(port))]
    if s == nil then
        return 0, 0
    end
    local c = s.curr or s
    return c.opackets or 0, c.ipackets or 0
end

-- Send on PORTS (a list; the first is the one measured) for SECONDS, printing each second's
-- rate of the first, then stop them and print the totals of every port in ALL (a list) and
-- the best second, as replay.sh prints it.
function M.run(name, ports, seconds, all)
    local tx = ports[1]
    local best, last = 0, M.counts(tx)
    for s = 1, seconds do
        pktgen.delay(1000)
        local now = M.counts(tx)
        local pps = now - last
        last = now
        if pps > best then
            best = pps
        end
        M.say("%s: %2d s: port %s sent %.3f Mpps\n", name, s, tx, pps / 1e6)
    end
    for _, p in ipairs(ports) do
        pktgen.stop(p)
    end
    pktgen.delay(500) -- what was in flight is counted
    for _, p in ipairs(all) do
        local o, i = M.counts(p)
        M.say("%s: port %s: %d frames sent, %d received\n", name, p, o, i)
    end
    M.say("%s: best second %.3f Mpps sent\n", name, best / 1e6)
end

return M
