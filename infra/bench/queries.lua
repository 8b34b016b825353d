-- wrk script: a random mix of realistic Public API queries. Each parameter is
-- present or not; offsets and limits vary. Requests are generated and
-- formatted once per thread (seeded): wrk then only hands out a prebuilt
-- string per request, so the load generator spends its time on I/O and the
-- latency it reports is the server's, not its own Lua work.
--
-- With OFFSET_MAX set in the environment, every request pages deep instead:
-- its offset drawn uniformly from 0 to OFFSET_MAX (load.sh passes it on).
local requests = {}
local countries = {"TW", "JP", "US", "FR", "BR", "IN", "DE", "GB", "tw", "jp", "KR", "CA"}
local genders = {"M", "F", "m", "f"}
local platforms = {"android", "ios", "web", "iOS"}
local limits = {5, 5, 10, 20}

function init(args)
  math.randomseed(42)
  local offset_max = tonumber(os.getenv("OFFSET_MAX") or "")
  for i = 1, 2000 do
    local q = {}
    if math.random() < 0.6 then q[#q + 1] = "age=" .. math.random(13, 72) end
    if math.random() < 0.6 then q[#q + 1] = "gender=" .. genders[math.random(#genders)] end
    if math.random() < 0.7 then q[#q + 1] = "country=" .. countries[math.random(#countries)] end
    if math.random() < 0.7 then q[#q + 1] = "platform=" .. platforms[math.random(#platforms)] end
    local limit = limits[math.random(#limits)]
    q[#q + 1] = "limit=" .. limit
    if offset_max then
      q[#q + 1] = "offset=" .. math.random(0, offset_max)
    elseif math.random() < 0.2 then
      q[#q + 1] = "offset=" .. (limit * math.random(1, 5))
    end
    requests[i] = wrk.format("GET", "/api/v1/ad?" .. table.concat(q, "&"))
  end
end

local n = 0
function request()
  n = n + 1
  return requests[(n % #requests) + 1]
end
