#!/usr/bin/env bash
# ci/lua-check.sh: checks the Pktgen-DPDK Lua scripts (pktgen-scripts/*.lua), which nothing
# here can run (Pktgen-DPDK is not packaged in Debian; pktgen-scripts/README.md).
#   1. `luac -p` on every script: syntax, with Lua 5.4 (Pktgen builds with 5.3 or 5.4).
#   2. Each traffic script run by `lua` against a stand-in `pktgen` table that holds every
#      call to the argument counts of Pktgen's Lua binding (app/lpktgenlib.c: a wrong count
#      is an error there too) and to what the values must look like (port lists, MACs,
#      addresses of the range's type, start|min|max|inc), runs the command files the scripts
#      load through the range's TCP-flag commands, and prints the traffic each port was set
#      up to send: one stepping field, how many flows. A misspelt function, a missing
#      argument or a range left on one of Pktgen's defaults (which step the destination
#      address and both ports) fails it.
# Fails on the first error. Installs Debian's lua5.4 (luac5.4, lua5.4) when missing (root).
# Usage: ci/lua-check.sh [FILE.lua...]   (default: pktgen-scripts/*.lua)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v luac5.4 >/dev/null || ! command -v lua5.4 >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    echo "lua-check: installing lua5.4"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends lua5.4 >/dev/null
  else
    echo "lua-check: please install lua5.4 (luac5.4)" >&2
    exit 1
  fi
fi

if [ $# -gt 0 ]; then files=("$@"); else files=(pktgen-scripts/*.lua); fi
if [ ! -e "${files[0]}" ]; then echo "lua-check: no Lua files" >&2; exit 1; fi

for f in "${files[@]}"; do
  luac5.4 -p "$f" || { echo "lua-check: FAIL: $f does not compile" >&2; exit 1; }
done
echo "lua-check: luac5.4 -p: ${#files[@]} file(s) compile"

stub=$(mktemp --suffix=.lua)
trap 'rm -f "$stub" "$stub.out"' EXIT
cat >"$stub" <<'EOF'
-- A stand-in for Pktgen's `pktgen` Lua table: arity as app/lpktgenlib.c checks it, values as
-- its parsers take them, and the range a port was given when it starts.
local function fail(fmt, ...) error(string.format(fmt, ...), 3) end
local function nargs(name, want, ...)
  local n = select("#", ...)
  if n ~= want then fail("pktgen.%s: %d argument(s), Pktgen wants %d", name, n, want) end
end
local function portlist(name, p)
  if type(p) == "number" then p = tostring(math.tointeger(p)) end
  if type(p) ~= "string" or not (p == "all" or p:match("^%d+$")) then
    fail("pktgen.%s: %s is not a port list", name, tostring(p))
  end
  return p
end
local function mac(name, m)
  if type(m) ~= "string" or not m:match("^%x%x:%x%x:%x%x:%x%x:%x%x:%x%x$") then
    fail("pktgen.%s: %s is not a MAC address", name, tostring(m))
  end
end
local function v4(s)
  local a, b, c, d = tostring(s):match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if a == nil then return nil end
  local t = {tonumber(a), tonumber(b), tonumber(c), tonumber(d)}
  for _, x in ipairs(t) do if x > 255 then return nil end end
  return ((t[1] * 256 + t[2]) * 256 + t[3]) * 256 + t[4]
end
local function v6(s) -- the low 32 bits of an address written as PREFIX::HI:LO, or "::"/"::1"
  s = tostring(s)
  if not s:match("^[%x:]+$") or not s:find("::") and select(2, s:gsub(":", "")) ~= 7 then return nil end
  local hi, lo = s:match(":(%x*):(%x+)$")
  if s == "::" then return 0 end
  if hi == nil then lo = s:match(":(%x+)$"); hi = "0" end
  if hi == "" then hi = "0" end
  return tonumber(hi, 16) * 65536 + tonumber(lo, 16)
end
local SMMI = {start = true, min = true, max = true, inc = true}
local ranges, on, sent, clock = {}, {}, {}, 0
local function rng(p) ranges[p] = ranges[p] or {type = "ipv4", flags = "ack"}; return ranges[p] end
local function field(name, conv)
  return function(...)
    nargs("range." .. name, 3, ...)
    local p, what, v = ...
    p = portlist("range." .. name, p)
    if not SMMI[what] then fail("pktgen.range.%s: %s is not start|min|max|inc", name, tostring(what)) end
    local r = rng(p)
    local x = conv(r, v)
    if x == nil then fail("pktgen.range.%s(%s, %s): %s is not a value of a %s range", name, p, what, tostring(v), r.type) end
    r[name] = r[name] or {}
    r[name][what] = x
  end
end
local function addr(r, v) if r.type == "ipv6" then return v6(v) end return v4(v) end
local function int(_, v) return math.tointeger(v) end
pktgen = {
  stop = function(...) nargs("stop", 1, ...); portlist("stop", ...) end,
  clr = function(...) nargs("clr", 0, ...) end,
  delay = function(...) nargs("delay", 1, ...); clock = clock + math.tointeger((...)) end,
  sleep = function(...) nargs("sleep", 1, ...); clock = clock + 1000 * math.tointeger((...)) end,
  set = function(...)
    nargs("set", 3, ...)
    local _, what, v = ...
    local known = {count = 1, size = 1, rate = 1, burst = 1, txburst = 1, rxburst = 1, sport = 1, dport = 1, ttl = 1}
    if not known[what] or tonumber(v) == nil then fail("pktgen.set: %s %s", tostring(what), tostring(v)) end
  end,
  set_range = function(...)
    nargs("set_range", 2, ...)
    local p, s = ...
    on[portlist("set_range", p)] = (s == "on")
  end,
  load = function(...)
    nargs("load", 1, ...)
    local f = assert(io.open((...), "r"))
    for line in f:lines() do
      local p, rest = line:match("^range (%d+) tcp (.*)$")
      local flag = rest and (rest:match("^flags (%a+)$") or rest:match("^flag set (%a+)$"))
      if rest and rest:match("^flag clr %a+$") then flag = "-" end
      if not flag then fail("pktgen.load: '%s' is not a range tcp flag command", line) end
      if flag ~= "-" then rng(p).flags = flag end
    end
    f:close()
  end,
  portStats = function(...)
    nargs("portStats", 1, ...)
    local p = math.tointeger(tonumber(portlist("portStats", ...)))
    local n = sent[tostring(p)] and clock * 1000 - sent[tostring(p)] or 0
    return {[p] = {curr = {opackets = n, ipackets = 0}}, n = 1}
  end,
  start = function(...)
    nargs("start", 1, ...)
    local p = portlist("start", ...)
    local r = rng(p)
    if not on[p] then fail("pktgen.start(%s): the range is not on", p) end
    local steps, flows = {}, 1
    for _, k in ipairs({"src_ip", "dst_ip", "src_port", "dst_port", "pkt_size"}) do
      local f = r[k]
      for w in pairs(SMMI) do
        if not f or f[w] == nil then fail("pktgen.start(%s): range %s %s left at Pktgen's default", p, k, w) end
      end
      if f.inc ~= 0 then
        steps[#steps + 1] = k
        flows = (f.max - f.min) // f.inc + 1
      elseif f.min ~= f.start or f.max ~= f.start then
        fail("pktgen.start(%s): range %s is fixed but min/max differ from start", p, k)
      end
    end
    local hop = r.type == "ipv6" and "hop_limits" or "ttl"
    if not r[hop] or (r[hop].start or 0) < 2 then fail("pktgen.start(%s): range %s below 2", p, hop) end
    if #steps ~= 1 then fail("pktgen.start(%s): %d range fields step (%s), want one", p, #steps, table.concat(steps, ",")) end
    sent[p] = clock * 1000
    print(string.format("lua-check:   port %s: %s tcp %s, %d-byte frames, %s steps: %d flows",
      p, r.type, r.flags, r.pkt_size.start, steps[1], flows))
  end,
  range = {
    set_type = function(...) nargs("range.set_type", 2, ...); local p, t = ...; rng(portlist("range.set_type", p)).type = t end,
    ip_proto = function(...) nargs("range.ip_proto", 2, ...); local _, t = ...; if t ~= "tcp" and t ~= "udp" then fail("range.ip_proto %s", tostring(t)) end end,
    dst_mac = function(...) nargs("range.dst_mac", 3, ...); local p, _, m = ...; portlist("range.dst_mac", p); mac("range.dst_mac", m) end,
    src_mac = function(...) nargs("range.src_mac", 3, ...); local p, _, m = ...; portlist("range.src_mac", p); mac("range.src_mac", m) end,
    src_ip = field("src_ip", addr),
    dst_ip = field("dst_ip", addr),
    src_port = field("src_port", int),
    dst_port = field("dst_port", int),
    ttl = field("ttl", int),
    hop_limits = field("hop_limits", int),
    pkt_size = field("pkt_size", int),
  },
}
dofile(arg[1])
EOF

n=0
for f in "${files[@]}"; do
  case "$(basename "$f")" in common.lua) continue ;; esac
  echo "lua-check: $f against the stand-in pktgen (RVS_SECONDS=2, RVS_FLOWS=100000)"
  RVS_SECONDS=2 RVS_FLOWS=100000 lua5.4 "$stub" "$f" >"$stub.out" 2>&1 ||
    { sed 's/^/    /' "$stub.out" >&2; echo "lua-check: FAIL: $f" >&2; exit 1; }
  grep '^lua-check:' "$stub.out" || true
  n=$((n + 1))
done
echo "lua-check: ${#files[@]} file(s) compile, $n script(s) ran against the stand-in pktgen"
