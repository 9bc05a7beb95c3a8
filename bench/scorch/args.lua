-- The command line of the profiles beside this file: `--name N` pairs, each
-- name one of the keys of the defaults table A and N a positive integer;
-- anything else prints the usage line and exits with status 2.
--   local A = dofile(dir .. "args.lua")({ steps = 300, threads = 1 }, "w2_parts.lua")
return function(A, script)
  local names = {}
  for k in pairs(A) do names[#names + 1] = k end
  table.sort(names)
  local i = 1
  while i <= #arg do
    local k = arg[i]:match("^%-%-(%w+)$")
    local v = k and A[k] ~= nil and math.tointeger(tonumber(arg[i + 1]))
    if not v or v < 1 then
      local opts = {}
      for j, k2 in ipairs(names) do opts[j] = ("[--%s N]"):format(k2) end
      io.stderr:write(("usage: %s %s (bad: %s)\n"):format(script, table.concat(opts, " "), arg[i]))
      os.exit(2)
    end
    A[k] = v
    i = i + 2
  end
  return A
end
