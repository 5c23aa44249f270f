-- Publishes a batch of events, in order, atomically: each event gets the next entry of
-- the history stream (whose id is its order and, unless the publisher chose one, its SSE
-- id), and is sent to the channel of its namespace and of every ancestor, deepest first.
--
-- KEYS[1] history stream, KEYS[2] publisher id -> stream id hash, KEYS[3] event counter
-- ARGV[1] history capacity (events), ARGV[2] channel prefix, ARGV[3] event count, then
-- five arguments per event: namespace, publisher id ('' for none), event type, retry
-- ('' for none), data.
--
-- Returns, per event, its stream id and the number of channel subscriptions (nodes,
-- counted once per channel they listen on) that received it. Or, before writing
-- anything, the error reply 'DUPLICATE_ID <index>' (0-based) for the first event whose
-- publisher id is retained (a publisher's id, or the stream id of a retained event) or
-- repeated within the batch: ids are unique while retained, so a resume is never
-- ambiguous.
--
-- A message is one string:
--   <stream id> \n <counter> \n <namespace> \n <publisher id> \n <type> \n <retry> \n <data>
-- and the stream entry keeps all of it after the id (field 'm') under that id, plus the
-- publisher id alone (field 'sid') for trimming. Only data may contain line breaks, so
-- it comes last.
local capacity = tonumber(ARGV[1])
local prefix = ARGV[2]
local count = tonumber(ARGV[3])
local result = {}
local in_batch = {}
for i = 0, count - 1 do
  local sid = ARGV[4 + i * 5 + 1]
  if sid ~= '' then
    local taken = in_batch[sid] or redis.call('HEXISTS', KEYS[2], sid) == 1
    if not taken and string.match(sid, '^%d+%-%d+$') then
      taken = #redis.call('XRANGE', KEYS[1], sid, sid) > 0
    end
    if taken then
      return redis.error_reply('DUPLICATE_ID ' .. i)
    end
    in_batch[sid] = true
  end
end
-- One counter update per batch: the batch's events take the numbers up to the new value.
local first_n = redis.call('INCRBY', KEYS[3], count) - count + 1
local any_sid = false
for i = 0, count - 1 do
  local at = 4 + i * 5
  local namespace, sid, kind, retry, data = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4]
  local n = first_n + i
  local body = n .. '\n' .. namespace .. '\n' .. sid .. '\n' .. kind .. '\n' .. retry .. '\n' .. data
  local id = redis.call('XADD', KEYS[1], '*', 'm', body, 'sid', sid)
  local message = id .. '\n' .. body
  if sid ~= '' then
    redis.call('HSET', KEYS[2], sid, id)
    any_sid = true
  end
  local receivers = 0
  local channel = namespace
  while true do
    receivers = receivers + redis.call('PUBLISH', prefix .. channel, message)
    if channel == '/' then
      break
    end
    channel = string.match(channel, '^(.*)/[^/]*$')
    if channel == '' then
      channel = '/'
    end
  end
  result[#result + 1] = id
  result[#result + 1] = receivers
end
-- Keep the last `capacity` events, forgetting the publisher ids of those dropped unless a
-- later event took the id over.
-- Reading the dropped entries is needed only while some retained event has one.
local excess = redis.call('XLEN', KEYS[1]) - capacity
if excess > 0 and (any_sid or redis.call('HLEN', KEYS[2]) > 0) then
  for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)) do
    local sid = entry[2][4]
    if sid ~= '' and redis.call('HGET', KEYS[2], sid) == entry[1] then
      redis.call('HDEL', KEYS[2], sid)
    end
  end
end
if excess > 0 then
  redis.call('XTRIM', KEYS[1], 'MAXLEN', capacity)
end
return result
