-- wrk script: a random mix of realistic Public API queries. Each parameter is
-- present or not; offsets and limits vary. Paths are generated once per
-- thread (seeded) so request generation costs the load generator little.
local paths = {}
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
    local limit = limits[math.random(#limits)]
    q[#q + 1] = "limit=" .. limit
    if math.random() < 0.2 then q[#q + 1] = "offset=" .. (limit * math.random(1, 5)) end
    paths[i] = "/api/v1/ad?" .. table.concat(q, "&")
  end
end

local n = 0
function request()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1])
end
