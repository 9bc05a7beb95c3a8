-- luacheck configuration (`make lint`).
std = "lua54"
max_line_length = 120
codes = true
-- `not (x >= y)` is how NaN-rejecting range checks are written here
ignore = { "581" }

-- specs run under busted, which provides describe/it/assert/...
files["spec"] = { std = "+busted" }

exclude_files = {
  "build", "build-asan", "build-fuzz", "lib", "lib-asan", "bin", "out",
  "spec/fuzz/corpus",
  "spec/fixtures/golden/*.lua", -- generated reference values
  ".luarocks", "lua_modules",
}
