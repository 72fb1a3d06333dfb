/**
 * The two sliding-window algorithms as Redis scripts, each one atomic check-and-count (one EVALSHA,
 * no read-then-write race between instances). Both return {allowed, count, resetAt, now} with times
 * in milliseconds from Redis's own clock (TIME), so instances with skewed clocks still share one
 * window; ARGV[3] >= 0 replaces the clock (tests with a controlled clock, and the measurement).
 *
 * Which one Flowgate uses, and why, is decided in ./algorithm.ts from the figures that
 * `npx tsx bench/ratelimit-measure.ts` prints.
 */

const CLOCK = `
local now = tonumber(ARGV[3])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
`;

/**
 * Sliding log: a sorted set of the admitted requests' times. Exact: a request is admitted iff fewer
 * than `limit` requests were admitted in (now - window, now]. Refused requests are not logged, so
 * the set never holds more than `limit` members. KEYS[1] the log; ARGV limit, window ms, now ms
 * (or -1), a member suffix unique to the caller (two admissions in the same millisecond stay two),
 * and optionally "peek" (answer without logging). An admitted request's member is `now:suffix`, so
 * the caller can take it back (ZREM) when the attempt should not count after all.
 */
export const SLIDING_LOG = `${CLOCK}
local key = KEYS[1]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit and ARGV[5] ~= 'peek' then
  redis.call('ZADD', key, now, now .. ':' .. ARGV[4])
  count = count + 1
  allowed = 1
end
local resetAt = now + window
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
if oldest[2] then resetAt = tonumber(oldest[2]) + window end
if count > 0 then redis.call('PEXPIRE', key, window) end
return {allowed, count, resetAt, now}
`;

/**
 * Sliding-window counter (Cloudflare's approximation): one hash with a counter per fixed bucket of
 * `window`; the previous bucket is weighted by how much of it still overlaps the sliding window.
 * Constant memory, but it assumes the previous bucket's requests were spread evenly: a burst at
 * the end of one bucket lets up to ~2x the limit through within one true window.
 */
export const SLIDING_COUNTER = `${CLOCK}
local key = KEYS[1]
local b = math.floor(now / window)
local v = redis.call('HMGET', key, b, b - 1)
local cur = tonumber(v[1] or '0')
local prev = tonumber(v[2] or '0')
local into = now - b * window
local est = prev * (window - into) / window + cur
local allowed = 0
if est + 1 <= limit then
  cur = redis.call('HINCRBY', key, b, 1)
  est = est + 1
  allowed = 1
  redis.call('HDEL', key, b - 2)
  redis.call('PEXPIRE', key, window * 2)
end
-- When the estimate next drops below the limit: the previous bucket's weight must shrink enough.
local resetAt = (b + 1) * window
if cur < limit and prev > 0 then
  local f = 1 - (limit - 1 - cur) / prev
  if f < 0 then f = 0 end
  resetAt = b * window + math.ceil(f * window)
  if resetAt <= now then resetAt = now + 1 end
end
return {allowed, math.ceil(est), resetAt, now}
`;
