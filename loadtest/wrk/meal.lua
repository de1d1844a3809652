-- Saved meals of the seeded users ($BENCH_MEALS: "user meal_id" lines):
-- BENCH_PATH=log POSTs …/meals/{id}/log, search GETs …/meals/search?q=…,
-- list GETs …/meals.
package.path = package.path .. ";" .. os.getenv("BENCH_LUA_DIR") .. "/?.lua"
require "common"
local mode = os.getenv("BENCH_PATH") or "log"
local meals = {}
for line in io.lines(os.getenv("BENCH_MEALS")) do
  local u, id = line:match("^(%S+) (%S+)$")
  if u then meals[#meals + 1] = { u, id } end
end
local queries = { "porridge", "morning%20oats", "banana", "usual", "coffee" }

request = function()
  local m = meals[math.random(1, #meals)]
  if mode == "log" then
    return wrk.format("POST", "/api/v1/users/" .. m[1] .. "/meals/" .. m[2] .. "/log",
      headers({ ["Content-Type"] = "application/json" }), "{}")
  elseif mode == "search" then
    return wrk.format("GET", "/api/v1/users/" .. m[1] .. "/meals/search?q="
      .. queries[math.random(1, #queries)], headers())
  end
  return wrk.format("GET", "/api/v1/users/" .. m[1] .. "/meals", headers())
end
