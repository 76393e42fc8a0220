package io.keywarden.daemon.fleet;

/**
 * The fleet's Lua scripts, each one atomic on the Redis server (or Cluster master) that holds a
 * workload's keys: all of one workload's keys carry its SPIFFE ID as hash tag, so each script
 * touches one slot. Every value a script reads is checked: one of the wrong type or not a number
 * counts as nothing and is removed. {@link FleetRedis} runs them by SHA.
 */
final class FleetScripts {
    private FleetScripts() {
    }

    /**
     * Check-and-reserve. KEYS: hour window, day window, reservations hash, minute's request count.
     * ARGV: now (ms), tokens needed, hour limit (-1: none), day limit (-1: none), reservation id,
     * reservation lifetime (ms), requests per minute (-1: none). Expired or malformed reservations
     * are dropped first. Answers {1|0, which window refused ("" / "h" / "d" / "m"), what is used in
     * it, tokens reserved}.
     */
    static final String RESERVE = """
            local now = tonumber(ARGV[1])
            local need = tonumber(ARGV[2])
            local lh = tonumber(ARGV[3])
            local ld = tonumber(ARGV[4])
            local reserved = 0
            if redis.call('TYPE', KEYS[3]).ok == 'hash' then
              local all = redis.call('HGETALL', KEYS[3])
              for i = 1, #all, 2 do
                local v = all[i + 1]
                local sep = string.find(v, ':', 1, true)
                local tok = sep and tonumber(string.sub(v, 1, sep - 1))
                local exp = sep and tonumber(string.sub(v, sep + 1))
                if tok == nil or exp == nil or exp <= now or tok < 0 then
                  redis.call('HDEL', KEYS[3], all[i])
                else
                  reserved = reserved + tok
                end
              end
            elseif redis.call('EXISTS', KEYS[3]) == 1 then
              redis.call('DEL', KEYS[3])
            end
            local function used(k)
              local t = redis.call('TYPE', k).ok
              if t == 'none' then return 0 end
              if t ~= 'string' then redis.call('DEL', k) return 0 end
              return tonumber(redis.call('GET', k)) or 0
            end
            local uh = used(KEYS[1])
            local ud = used(KEYS[2])
            local rm = tonumber(ARGV[7])
            local um = used(KEYS[4])
            if rm >= 0 and um + 1 > rm then return {0, 'm', um, reserved} end
            if lh >= 0 and uh + reserved + need > lh then return {0, 'h', uh, reserved} end
            if ld >= 0 and ud + reserved + need > ld then return {0, 'd', ud, reserved} end
            if rm >= 0 then
              redis.call('INCR', KEYS[4])
              redis.call('PEXPIRE', KEYS[4], 120000)
            end
            redis.call('HSET', KEYS[3], ARGV[5], need .. ':' .. (now + tonumber(ARGV[6])))
            redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[6]) * 2)
            return {1, '', uh, reserved}
            """;

    /**
     * Counts {@code t} tokens (ARGV[1] of the caller's choosing) in a workload's hour and day windows
     * and in its history (one hash: hour number → tokens, and {@code first}, the hour it began).
     * Values of the wrong type are dropped first. Answers the hour's and the day's totals.
     */
    static final String COUNT = """
            local function count(hk, dk, histk, t, hour, keep)
              local totals = {}
              for i, k in ipairs({hk, dk}) do
                local ty = redis.call('TYPE', k).ok
                if ty ~= 'none' and (ty ~= 'string' or tonumber(redis.call('GET', k)) == nil) then redis.call('DEL', k) end
                if t > 0 then
                  totals[i] = redis.call('INCRBY', k, t)
                  redis.call('EXPIRE', k, i == 1 and 7200 or 172800)
                else
                  totals[i] = tonumber(redis.call('GET', k) or '0') or 0
                end
              end
              local ty = redis.call('TYPE', histk).ok
              if ty ~= 'none' and ty ~= 'hash' then redis.call('DEL', histk) end
              if tonumber(redis.call('HGET', histk, 'first') or '0') == nil then redis.call('HDEL', histk, 'first') end
              redis.call('HSETNX', histk, 'first', hour)
              if t > 0 then
                if tonumber(redis.call('HGET', histk, hour) or '0') == nil then redis.call('HDEL', histk, hour) end
                redis.call('HINCRBY', histk, hour, t)
              end
              redis.call('EXPIRE', histk, (keep + 1) * 3600)
              if redis.call('HLEN', histk) > keep + 2 then
                for _, f in ipairs(redis.call('HKEYS', histk)) do
                  local h = tonumber(f)
                  if f ~= 'first' and (h == nil or h < tonumber(hour) - keep) then redis.call('HDEL', histk, f) end
                end
              end
              return totals
            end
            """;

    /**
     * Settle. KEYS: hour window, day window, reservations hash, history. ARGV: reservation id (may
     * be ""), tokens used, hour number, hours of history kept. Answers the hour's and day's totals.
     */
    static final String SETTLE = COUNT + """
            if ARGV[1] ~= '' and redis.call('TYPE', KEYS[3]).ok == 'hash' then redis.call('HDEL', KEYS[3], ARGV[1]) end
            return count(KEYS[1], KEYS[2], KEYS[4], math.max(0, tonumber(ARGV[2]) or 0), ARGV[3], tonumber(ARGV[4]))
            """;

    /**
     * A late sensor's usage, counted once for the fleet. KEYS: hour window, day window, history,
     * the slots seen (a hash: slot → "in:out:requests" counted so far). ARGV: slot, in, out,
     * requests (the slot's totals now), hour number, hours of history kept. Counts only what grew
     * since any node last reported the slot; answers {in, out, requests counted now, hour total,
     * day total}.
     */
    static final String USAGE = COUNT + """
            local ty = redis.call('TYPE', KEYS[4]).ok
            if ty ~= 'none' and ty ~= 'hash' then redis.call('DEL', KEYS[4]) end
            local before = {0, 0, 0}
            local prev = redis.call('HGET', KEYS[4], ARGV[1])
            if prev then
              local i = 1
              for v in string.gmatch(prev, '[^:]+') do
                if i <= 3 then before[i] = tonumber(v) or 0 end
                i = i + 1
              end
            end
            local now = {}
            local add = {}
            for i = 1, 3 do
              now[i] = math.max(before[i], math.max(0, tonumber(ARGV[1 + i]) or 0))
              add[i] = now[i] - before[i]
            end
            redis.call('HSET', KEYS[4], ARGV[1], now[1] .. ':' .. now[2] .. ':' .. now[3])
            redis.call('EXPIRE', KEYS[4], 10800)
            local totals = count(KEYS[1], KEYS[2], KEYS[3], add[1] + add[2], ARGV[5], tonumber(ARGV[6]))
            return {add[1], add[2], add[3], totals[1], totals[2]}
            """;
}
