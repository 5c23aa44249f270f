-- What a client resuming after an id missed: the retained events after it, in order,
-- whose namespace lies at or below one of the given ones.
--
-- KEYS[1] history stream, KEYS[2] publisher id -> stream id hash
-- ARGV[1] the id to resume after (a publisher's id, or a stream id), ARGV[2...] namespaces
--
-- Returns {found, first retained stream id, newest stream id, message...}: `found` is 1
-- when the id is retained (the messages are exactly those after it), else 0 (events may
-- be lost: the messages are everything retained that matches). The newest stream id is
-- the point the answer is complete through ('0-0' when the stream is empty). Messages
-- have the form publish.lua sends.
local start = redis.call('HGET', KEYS[2], ARGV[1])
if not start and string.match(ARGV[1], '^%d+%-%d+$') then
  start = ARGV[1]
end
local found = 0
if start and #redis.call('XRANGE', KEYS[1], start, start) > 0 then
  found = 1
end
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local entries
if found == 1 then
  entries = redis.call('XRANGE', KEYS[1], '(' .. start, '+')
else
  entries = redis.call('XRANGE', KEYS[1], '-', '+')
end
local result = {tostring(found), first[1] and first[1][1] or '', newest[1] and newest[1][1] or '0-0'}
for _, entry in ipairs(entries) do
  local body = entry[2][2]
  local namespace = string.match(body, '^[^\n]*\n([^\n]*)')
  for i = 2, #ARGV do
    local under = ARGV[i]
    if under == '/' or namespace == under or string.sub(namespace, 1, #under + 1) == under .. '/' then
      result[#result + 1] = entry[1] .. '\n' .. body
      break
    end
  end
end
return result
