-- Mail-o-Rama login throttle for Dovecot (IMAP, ManageSieve): a Lua passdb that checks
-- passwords against the passwd-file and counts failures per client address (IPv6: per
-- /64). The same policy as the SMTP filter (mailorama-filter): `failures` failures
-- within `window` seconds block the address for `block` seconds, doubling on each
-- repeated block up to `max_block`; while blocked, even a right password is refused.
-- Addresses in `allow` (space-separated addresses or networks) are never counted.
-- Every block is logged with the address and the count. State is in memory, bounded.

local MAX_ENTRIES = 50000
local SWEEP_EVERY = 60

local conf = {}
local allow = {}
local entries, count = {}, 0
local last_sweep = 0

-- "192.0.2.1" -> {192, 0, 2, 1}; "2001:db8::1" -> 16 bytes; nil when not an address
local function parse_v4(text)
  local a, b, c, d = text:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  local out = {tonumber(a), tonumber(b), tonumber(c), tonumber(d)}
  for _, v in ipairs(out) do if v > 255 then return nil end end
  return out
end

local function parse_v6(text)
  if not text:find(":") or text:find(":::") then return nil end
  local tail4
  local head = text
  local v4 = text:match(":(%d+%.%d+%.%d+%.%d+)$")
  if v4 then
    tail4 = parse_v4(v4)
    if not tail4 then return nil end
    head = text:sub(1, #text - #v4 - 1)
    if head:sub(-1) == ":" then head = head .. ":" end
  end
  local function groups(s)
    local out = {}
    if s == "" then return out end
    for g in (s .. ":"):gmatch("([^:]*):") do
      if not g:match("^%x%x?%x?%x?$") then return nil end
      out[#out + 1] = tonumber(g, 16)
    end
    return out
  end
  local want = tail4 and 6 or 8
  local left, right = head:match("^(.-)::(.*)$")
  local g
  if left then
    local l, r = groups(left), groups(right)
    if not l or not r or #l + #r >= want then return nil end
    g = l
    for _ = 1, want - #l - #r do g[#g + 1] = 0 end
    for _, v in ipairs(r) do g[#g + 1] = v end
  else
    g = groups(head)
    if not g or #g ~= want then return nil end
  end
  local bytes = {}
  for _, v in ipairs(g) do
    bytes[#bytes + 1] = v // 256
    bytes[#bytes + 1] = v % 256
  end
  if tail4 then for _, v in ipairs(tail4) do bytes[#bytes + 1] = v end end
  -- IPv4-mapped: the IPv4 address
  local mapped = true
  for i = 1, 10 do if bytes[i] ~= 0 then mapped = false end end
  if mapped and bytes[11] == 255 and bytes[12] == 255 then
    return {bytes[13], bytes[14], bytes[15], bytes[16]}
  end
  return bytes
end

local function parse_address(text)
  if type(text) ~= "string" then return nil end
  text = text:gsub("^%[", ""):gsub("%]$", "")
  return parse_v4(text) or parse_v6(text)
end

local function parse_net(text)
  local addr, len = text:match("^([^/]+)/(%d+)$")
  addr = parse_address(addr or text)
  if not addr then return nil end
  len = tonumber(len) or #addr * 8
  if len > #addr * 8 then return nil end
  return {addr = addr, len = len}
end

local function in_net(addr, net)
  if #addr ~= #net.addr then return false end
  local bits = net.len
  for i = 1, #addr do
    if bits <= 0 then return true end
    local take = bits >= 8 and 8 or bits
    local div = 2 ^ (8 - take)
    if addr[i] // div ~= net.addr[i] // div then return false end
    bits = bits - 8
  end
  return true
end

-- the address itself (IPv4) or its /64 (IPv6), printable
local function key_of(addr)
  if #addr == 4 then return table.concat(addr, ".") end
  local g = {}
  for i = 1, 8, 2 do g[#g + 1] = string.format("%x", addr[i] * 256 + addr[i + 1]) end
  return table.concat(g, ":") .. "::/64"
end

local function sweep(now)
  for key, e in pairs(entries) do
    local active = e["until"] > now
      or (e["until"] > 0 and now - e["until"] <= conf.max_block)
      or (#e.fails > 0 and e.fails[#e.fails] > now - conf.window)
    if not active then
      entries[key] = nil
      count = count - 1
    end
  end
  if count > MAX_ENTRIES then
    local keys = {}
    for key in pairs(entries) do keys[#keys + 1] = key end
    table.sort(keys, function(a, b) return entries[a].last < entries[b].last end)
    for i = 1, count - MAX_ENTRIES do entries[keys[i]] = nil end
    count = MAX_ENTRIES
  end
end

local function record_failure(req, key, now)
  local e = entries[key]
  if not e then
    e = {fails = {}, ["until"] = 0, level = 0, last = now}
    entries[key] = e
    count = count + 1
  end
  e.last = now
  if e["until"] > now then return end
  local fails = {}
  for _, t in ipairs(e.fails) do
    if t > now - conf.window then fails[#fails + 1] = t end
  end
  fails[#fails + 1] = now
  while #fails > conf.failures do table.remove(fails, 1) end
  e.fails = fails
  if #fails < conf.failures then return end
  if e["until"] > 0 and now - e["until"] > conf.max_block then e.level = 0 end
  e.level = e.level + 1
  local duration = conf.block
  for _ = 2, e.level do
    duration = duration * 2
    if duration >= conf.max_block then break end
  end
  if duration > conf.max_block then duration = conf.max_block end
  e["until"] = now + duration
  e.fails = {}
  req:log_warning(string.format(
    "login throttle: blocked %s for %d s after %d failed logins within %d s (block %d)",
    key, duration, conf.failures, conf.window, e.level))
end

-- The throttle key of the request's client, or nil (allowed, local, unknown).
local function client_key(req)
  local addr = parse_address(req.remote_ip)
  if not addr then return nil end
  for _, net in ipairs(allow) do
    if in_net(addr, net) then return nil end
  end
  return key_of(addr)
end

local function is_blocked(key, now)
  local e = key and entries[key]
  return e ~= nil and e["until"] > now
end

-- The user's password hash from the passwd-file, or nil.
local function hash_of(user)
  local f = io.open(conf.passwd, "r")
  if not f then return nil end
  local found
  for line in f:lines() do
    local name, hash = line:match("^([^:#]+):([^:]*)")
    if name == user then
      found = hash
      break
    end
  end
  f:close()
  if found and not found:match("^{") then found = "{CRYPT}" .. found end
  return found
end

function script_init(args)
  conf.passwd = args.passwd or "/etc/dovecot/mail-o-rama/passwd"
  conf.failures = tonumber(args.failures) or 5
  conf.window = tonumber(args.window) or 600
  conf.block = tonumber(args.block) or 900
  conf.max_block = tonumber(args.max_block) or 86400
  for item in (args.allow or ""):gmatch("%S+") do
    local net = parse_net(item)
    if not net then
      error("login throttle: not an address or network in allow: " .. item)
    end
    allow[#allow + 1] = net
  end
  return 0
end

function auth_password_verify(req, password)
  local now = os.time()
  if now - last_sweep >= SWEEP_EVERY or count > MAX_ENTRIES then
    sweep(now)
    last_sweep = now
  end
  local key = conf.failures > 0 and client_key(req) or nil
  if is_blocked(key, now) then
    req:log_info("login throttle: refused " .. key .. " (blocked)")
    return dovecot.auth.PASSDB_RESULT_USER_DISABLED, nil
  end
  local hash = hash_of(req.user)
  if hash then
    local ok, err = req:password_verify(hash, password)
    if ok == 1 then return dovecot.auth.PASSDB_RESULT_OK, {} end
    if ok < 0 then
      req:log_error("login throttle: password check failed: " .. tostring(err))
      return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, nil
    end
  end
  if key then record_failure(req, key, now) end
  if hash then return dovecot.auth.PASSDB_RESULT_PASSWORD_MISMATCH, nil end
  return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, nil
end

-- Lookups without a password (no such mechanism is enabled): the hash, unless blocked.
function auth_passdb_lookup(req)
  if is_blocked(conf.failures > 0 and client_key(req) or nil, os.time()) then
    return dovecot.auth.PASSDB_RESULT_USER_DISABLED, "blocked"
  end
  local hash = hash_of(req.user)
  if not hash then return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, "" end
  return dovecot.auth.PASSDB_RESULT_OK, {password = hash}
end
