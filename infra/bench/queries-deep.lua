-- wrk script: the mix of queries.lua, but every request pages deep: offsets
-- drawn uniformly from 0 to 100,000 (the walk skips that many matching ads
-- before it renders a page). Use with a large catalog:
--   SNAPSHOT_ADS=1000000 QUERIES=infra/bench/queries-deep.lua bash infra/bench/load.sh
local requests = {}
local countries = {"TW", "JP", "US", "FR", "BR", "IN", "DE", "GB", "tw", "jp", "KR", "CA"}
local genders = {"M", "F", "m", "f"}
local platforms = {"android", "ios", "web", "iOS"}
local limits = {5, 5, 10, 20}

function init(args)
  math.randomseed(42)
  for i = 1, 2000 do
    local q = {}
    if math.random() < 0.6 then q[#q + 1] = "age=" .. math.random(13, 72) end
    if math.random() < 0.6 then q[#q + 1] = "gender=" .. genders[math.random(#genders)] end
    if math.random() < 0.7 then q[#q + 1] = "country=" .. countries[math.random(#countries)] end
    if math.random() < 0.7 then q[#q + 1] = "platform=" .. platforms[math.random(#platforms)] end
    q[#q + 1] = "limit=" .. limits[math.random(#limits)]
    q[#q + 1] = "offset=" .. math.random(0, 100000)
    requests[i] = wrk.format("GET", "/api/v1/ad?" .. table.concat(q, "&"))
  end
end

local n = 0
function request()
  n = n + 1
  return requests[(n % #requests) + 1]
end
