-- mipc.lua: Wireshark dissector for MIPC messages (mipc-rs), as written by `mipc capture`.
--
-- A capture uses link type 252 (LINKTYPE_WIRESHARK_UPPER_PDU) and each packet names this
-- dissector ("mipc") in an exported-PDU tag, so no link-type table has to be edited:
--   wireshark -X lua_script:mipc.lua capture.pcapng
--   tshark -X lua_script:mipc.lua -r capture.pcapng -T fields -e mipc.src -e mipc.dst ...
-- or copy this file to ~/.local/lib/wireshark/plugins/.
--
-- A packet is a message's mtext (docs/PROTOCOL.md): src_name[32], dst_name[32], msg_type,
-- msg_size, sync_flag, payload, then an optional call tag (4 bytes) and, for a direct
-- request, the caller's queue id (4 more). Integers are in the byte order of the machine
-- that captured; this dissector reads little-endian (x86, ARM and AArch64 Linux are).

local mipc = Proto("mipc", "MIPC (System V message-queue IPC)")

local HEADER_LEN = 76
local NAME_LEN = 32

local control_types = {
    [0x7FFFFF00] = "NOTICE",
    [0x7FFFFF01] = "PING",
    [0x7FFFFF02] = "HELLO",
    [0x7FFFFF03] = "ERROR",
    [0x7FFFFF04] = "WAKE",
    [0x7FFFFF05] = "LOOKUP",
    [0x7FFFFF06] = "LIST",
    [0x7FFFFF07] = "STATS",
    [0x7FFFFF08] = "MONITOR_ATTACH",
    [0x7FFFFF09] = "MONITOR_DETACH",
    [0x7FFFFF0A] = "MONITOR_EVENT",
    [0x7FFFFF0B] = "WAIT_FOR",
}

local relay_errors = {
    [1] = "no such destination", [2] = "peer died", [3] = "destination busy",
    [4] = "deadlock", [5] = "name in use", [6] = "bad message",
    [7] = "mipc_main serves no such api", [8] = "name table full",
}

local event_kinds = {
    [1] = "message", [2] = "register", [3] = "unregister", [4] = "death",
    [5] = "reject", [6] = "error answer", [7] = "greet", [8] = "relay stopping",
}

local reject_reasons = {
    [1] = "malformed", [2] = "bad notice", [3] = "no queue", [4] = "name in use",
    [5] = "not owner", [6] = "queue in use", [7] = "table full", [8] = "control type",
    [9] = "no such destination", [10] = "destination busy", [11] = "destination gone",
    [12] = "deadlock", [13] = "queue error",
}

local tool_status = {
    [0] = "ok", [1] = "bad request", [2] = "no snapshot", [3] = "too many", [4] = "timed out",
}

local f = {
    src = ProtoField.string("mipc.src", "Source"),
    dst = ProtoField.string("mipc.dst", "Destination"),
    msg_type = ProtoField.uint32("mipc.msg_type", "Api id / type", base.HEX),
    control = ProtoField.string("mipc.control", "Control message"),
    size = ProtoField.uint32("mipc.size", "Payload size", base.DEC),
    sync_flag = ProtoField.int32("mipc.sync_flag", "Sync flag (0 async, ms, -1 forever)"),
    payload = ProtoField.bytes("mipc.payload", "Payload"),
    tag = ProtoField.uint32("mipc.tag", "Call tag", base.HEX),
    call_id = ProtoField.uint32("mipc.call_id", "Call id", base.DEC),
    is_answer = ProtoField.bool("mipc.is_answer", "Answer"),
    reply_queue = ProtoField.int32("mipc.reply_queue", "Direct reply queue"),
    kind = ProtoField.string("mipc.kind", "Kind"),
    request_in = ProtoField.framenum("mipc.request_in", "Request in", base.NONE, frametype.REQUEST),
    response_in = ProtoField.framenum("mipc.response_in", "Answer in", base.NONE, frametype.RESPONSE),
    latency = ProtoField.relative_time("mipc.latency", "Answer time"),
    trailing = ProtoField.bytes("mipc.trailing", "Unexpected trailing bytes"),
    -- control payloads
    c_version = ProtoField.uint32("mipc.ctl.version", "Version"),
    c_pid = ProtoField.int32("mipc.ctl.pid", "Pid"),
    c_queue = ProtoField.int32("mipc.ctl.queue", "Queue id"),
    c_flags = ProtoField.uint32("mipc.ctl.flags", "Flags", base.HEX),
    c_status = ProtoField.int32("mipc.ctl.status", "Status"),
    c_code = ProtoField.int32("mipc.ctl.code", "Error code", base.DEC, relay_errors),
    c_api = ProtoField.uint32("mipc.ctl.api", "Api id", base.HEX),
    c_name = ProtoField.string("mipc.ctl.name", "Name"),
    c_thread = ProtoField.uint64("mipc.ctl.thread", "Thread", base.HEX),
    c_hold = ProtoField.int32("mipc.ctl.flag_is_hold", "flag_is_hold"),
    c_wake_id = ProtoField.uint64("mipc.ctl.wake_id", "Wait id"),
    c_reason = ProtoField.uint32("mipc.ctl.reason", "Reason"),
    c_request_id = ProtoField.uint32("mipc.ctl.request_id", "Request id"),
    c_cursor = ProtoField.uint32("mipc.ctl.cursor", "Cursor"),
    c_total = ProtoField.uint32("mipc.ctl.total", "Entries in snapshot"),
    c_first = ProtoField.uint32("mipc.ctl.first", "First entry"),
    c_count = ProtoField.uint32("mipc.ctl.count", "Count"),
    c_counter = ProtoField.uint32("mipc.ctl.counter", "Counter id"),
    c_value = ProtoField.uint64("mipc.ctl.value", "Value"),
    c_timeout = ProtoField.int32("mipc.ctl.timeout", "Timeout (ms)"),
    e_kind = ProtoField.uint16("mipc.event.kind", "Event", base.DEC, event_kinds),
    e_time = ProtoField.uint64("mipc.event.time_ns", "Time (ns since epoch)"),
    e_seq = ProtoField.uint32("mipc.event.seq", "Sequence"),
    e_lost = ProtoField.uint32("mipc.event.lost", "Events lost before this one"),
    e_code = ProtoField.int32("mipc.event.code", "Code"),
    e_len = ProtoField.uint32("mipc.event.msg_len", "Message length"),
}
local list = {}
for _, v in pairs(f) do list[#list + 1] = v end
mipc.fields = list

local function cstring(tvb, off)
    return tvb(off, NAME_LEN):stringz()
end

local function name_field(tree, field, tvb, off)
    tree:add(field, tvb(off, NAME_LEN), cstring(tvb, off))
end

local function u32(tvb, off) return tvb(off, 4):le_uint() end
local function i32(tvb, off) return tvb(off, 4):le_int() end

-- Request/answer matching, filled on the first pass: answers[answer frame] = request frame.
local open_calls = {}
local answer_of = {}
local request_of = {}
local time_of = {}

function mipc.init()
    open_calls, answer_of, request_of, time_of = {}, {}, {}, {}
end

local function tool_request_head(t, p)
    if p:len() < 16 then return 0 end
    t:add_le(f.c_version, p(0, 4))
    t:add_le(f.c_pid, p(4, 4))
    t:add_le(f.c_queue, p(8, 4))
    t:add_le(f.c_request_id, p(12, 4))
    return 16
end

local function tool_answer_head(t, p)
    if p:len() < 12 then return 0 end
    t:add_le(f.c_version, p(0, 4))
    t:add_le(f.c_request_id, p(4, 4))
    t:add_le(f.c_status, p(8, 4)):append_text(" (" .. (tool_status[p(8, 4):le_int()] or "?") .. ")")
    return 12
end

-- Decodes the payload of a control message (types 0x7FFFFF00 and up); returns a summary.
local function control_payload(t, p, ty, from_relay)
    local n = p:len()
    if ty == 0x7FFFFF00 and (n == 56 or n == 44) then
        local tl = (n == 56) and 8 or 4
        local toff = (n == 56) and 8 or 4
        t:add_le(f.c_hold, p(0, 4))
        t:add_le(f.c_thread, p(toff, tl))
        name_field(t, f.c_name, p, toff + tl)
        t:add_le(f.c_queue, p(toff + tl + NAME_LEN, 4))
        local hold = p(0, 4):le_int()
        return (hold ~= 0 and "register " or "unregister ") .. cstring(p, toff + tl)
    elseif ty == 0x7FFFFF02 and n == 16 then
        t:add_le(f.c_version, p(0, 4)); t:add_le(f.c_pid, p(4, 4))
        t:add_le(f.c_queue, p(8, 4)); t:add_le(f.c_flags, p(12, 4))
        return "pid " .. i32(p, 4)
    elseif ty == 0x7FFFFF02 and n == 8 then
        t:add_le(f.c_version, p(0, 4)); t:add_le(f.c_status, p(4, 4))
        return "status " .. i32(p, 4)
    elseif ty == 0x7FFFFF03 and n >= 8 then
        t:add_le(f.c_code, p(0, 4)); t:add_le(f.c_api, p(4, 4))
        return (relay_errors[i32(p, 0)] or ("code " .. i32(p, 0)))
    elseif ty == 0x7FFFFF04 and n == 12 then
        t:add_le(f.c_wake_id, p(0, 8)); t:add_le(f.c_reason, p(8, 4))
        return (u32(p, 8) == 0) and "timeout" or "peer died"
    elseif ty == 0x7FFFFF05 and n == NAME_LEN then
        name_field(t, f.c_name, p, 0)
        return cstring(p, 0)
    elseif ty == 0x7FFFFF05 and n == 12 then
        t:add_le(f.c_status, p(0, 4)); t:add_le(f.c_queue, p(4, 4)); t:add_le(f.c_pid, p(8, 4))
        return "status " .. i32(p, 0)
    elseif ty >= 0x7FFFFF06 and ty <= 0x7FFFFF0B and ty ~= 0x7FFFFF0A then
        if not from_relay then
            local o = tool_request_head(t, p)
            if ty == 0x7FFFFF06 and n >= o + 4 then
                t:add_le(f.c_cursor, p(o, 4))
                return "cursor " .. u32(p, o)
            elseif ty == 0x7FFFFF0B and n >= o + NAME_LEN + 4 then
                name_field(t, f.c_name, p, o)
                t:add_le(f.c_timeout, p(o + NAME_LEN, 4))
                return cstring(p, o)
            end
            return "request"
        end
        local o = tool_answer_head(t, p)
        if ty == 0x7FFFFF06 and n >= o + 12 then
            t:add_le(f.c_total, p(o, 4)); t:add_le(f.c_first, p(o + 4, 4))
            t:add_le(f.c_count, p(o + 8, 4))
            local cnt = u32(p, o + 8)
            for i = 0, cnt - 1 do
                local e = o + 12 + i * 112
                if e + 112 > n then break end
                local et = t:add(p(e, 112), "Entry " .. cstring(p, e))
                name_field(et, f.c_name, p, e)
                et:add_le(f.c_pid, p(e + 32, 4)); et:add_le(f.c_queue, p(e + 36, 4))
                et:add_le(f.c_thread, p(e + 40, 8)); et:add_le(f.c_flags, p(e + 48, 4))
            end
            return string.format("%d of %d from %d", cnt, u32(p, o), u32(p, o + 4))
        elseif ty == 0x7FFFFF07 and n >= o + 8 then
            local nc = u32(p, o)
            for i = 0, nc - 1 do
                local c = o + 8 + i * 12
                if c + 12 > n then break end
                local ct = t:add(p(c, 12), "Counter " .. u32(p, c))
                ct:add_le(f.c_counter, p(c, 4)); ct:add_le(f.c_value, p(c + 4, 8))
            end
            return nc .. " counters"
        end
        return tool_status[i32(p, 8)] or "answer"
    elseif ty == 0x7FFFFF0A and n >= 68 then
        t:add_le(f.e_kind, p(6, 2)); t:add_le(f.e_time, p(8, 8))
        t:add_le(f.e_seq, p(16, 4)); t:add_le(f.e_lost, p(20, 4))
        t:add_le(f.c_pid, p(24, 4)); t:add_le(f.e_code, p(28, 4))
        name_field(t, f.c_name, p, 32)
        t:add_le(f.e_len, p(64, 4))
        local k = p(6, 2):le_uint()
        return (event_kinds[k] or ("event " .. k)) .. " " .. cstring(p, 32)
    end
    return nil
end

function mipc.dissector(tvb, pinfo, tree)
    local len = tvb:len()
    if len < HEADER_LEN then return 0 end
    pinfo.cols.protocol = "MIPC"
    local src = cstring(tvb, 0)
    local dst = cstring(tvb, 32)
    local ty = u32(tvb, 64)
    local size = u32(tvb, 68)
    local sync = i32(tvb, 72)
    local t = tree:add(mipc, tvb(), "MIPC, " .. src .. " -> " .. dst)
    name_field(t, f.src, tvb, 0)
    name_field(t, f.dst, tvb, 32)
    t:add_le(f.msg_type, tvb(64, 4))
    t:add_le(f.size, tvb(68, 4))
    t:add_le(f.sync_flag, tvb(72, 4))
    pinfo.cols.src = src
    pinfo.cols.dst = dst

    local body = HEADER_LEN + size
    local plen = math.min(size, len - HEADER_LEN)
    local info = src .. " \226\134\146 " .. dst .. " "
    local cname = control_types[ty]
    if cname then
        t:add(f.control, cname)
        info = info .. cname
    else
        info = info .. string.format("api 0x%x", ty)
    end
    if plen > 0 then
        local pt = t:add(f.payload, tvb(HEADER_LEN, plen))
        if cname then
            local summary = control_payload(pt, tvb(HEADER_LEN, plen):tvb(), ty, src == "mipc_main")
            if summary then info = info .. " " .. summary end
        end
    end

    local tag
    if len >= body + 4 then
        tag = u32(tvb, body)
        t:add_le(f.tag, tvb(body, 4))
        t:add(f.call_id, tvb(body, 4), bit.band(tag, 0x7FFFFFFF))
        t:add(f.is_answer, tvb(body, 4), bit.band(tag, 0x80000000) ~= 0)
        if len >= body + 8 then
            t:add_le(f.reply_queue, tvb(body + 4, 4))
        end
        if len > body + 8 then
            t:add(f.trailing, tvb(body + 8))
        end
    end

    -- sync / async / answer, and the request matched to its answer
    local kind, key
    local answer = tag and bit.band(tag, 0x80000000) ~= 0
    if answer then
        kind = "answer"
        key = dst .. "\0" .. bit.band(tag, 0x7FFFFFFF)
    elseif sync ~= 0 then
        kind = "sync"
        key = tag and (src .. "\0" .. tag) or (src .. "\0" .. dst .. "\0" .. ty)
    else
        kind = "async"
        if not tag then
            -- a legacy answer: async from the server to a caller waiting on that api id
            local lkey = dst .. "\0" .. src .. "\0" .. ty
            if not pinfo.visited and open_calls[lkey] then
                kind, key = "answer", lkey
            elseif request_of[pinfo.number] then
                kind = "answer"
            end
        end
    end
    t:add(f.kind, kind)
    info = info .. " " .. kind
    if tag then info = info .. " #" .. bit.band(tag, 0x7FFFFFFF) end

    if not pinfo.visited then
        time_of[pinfo.number] = pinfo.abs_ts
        if kind == "sync" and key then
            open_calls[key] = pinfo.number
        elseif kind == "answer" and key and open_calls[key] then
            local req = open_calls[key]
            open_calls[key] = nil
            request_of[pinfo.number] = req
            answer_of[req] = pinfo.number
        end
    end
    local req = request_of[pinfo.number]
    if req then
        t:add(f.request_in, req)
        local dt = pinfo.abs_ts - time_of[req]
        t:add(f.latency, NSTime.new(math.floor(dt), math.floor((dt % 1) * 1e9 + 0.5)))
        info = info .. string.format(" (%.3f ms)", dt * 1000)
    end
    if answer_of[pinfo.number] then
        t:add(f.response_in, answer_of[pinfo.number])
    end
    pinfo.cols.info = info
    return len
end
