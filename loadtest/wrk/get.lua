-- GET /api/v1/users/{random user}/$BENCH_PATH (xp, profile, streaks, ...)
package.path = package.path .. ";" .. os.getenv("BENCH_LUA_DIR") .. "/?.lua"
require "common"
local path = os.getenv("BENCH_PATH") or "xp"

request = function()
  return wrk.format("GET", "/api/v1/users/" .. user() .. "/" .. path, headers())
end
