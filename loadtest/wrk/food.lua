-- POST /api/v1/users/{random user}/food with a food the table knows.
package.path = package.path .. ";" .. os.getenv("BENCH_LUA_DIR") .. "/?.lua"
require "common"
local foods = { "1 medium banana", "2 eggs", "1 cup rice", "170g chicken breast", "1 apple" }

request = function()
  local body = '{"description":"' .. foods[math.random(1, #foods)] .. '"}'
  return wrk.format("POST", "/api/v1/users/" .. user() .. "/food",
    headers({ ["Content-Type"] = "application/json" }), body)
end
