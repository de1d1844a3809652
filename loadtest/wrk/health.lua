package.path = package.path .. ";" .. os.getenv("BENCH_LUA_DIR") .. "/?.lua"
require "common"
request = function()
  return wrk.format("GET", "/api/health")
end
