-- Writes DIR/index.html, a static page of an output folder: its loss
-- curves, sample grids (in step order), other figures, the metrics of its
-- *.json files and its configuration (sc.viz.report).  Open it from disk.
--
--   bin/scorch scripts/report.lua out/ncsn_2d
--   bin/scorch scripts/report.lua out/ddpm_fashion_mnist --title "DDPM, 20 epochs"
local sc = require "scorch"
local util = sc.util

local usage = "usage: scorch scripts/report.lua DIR [--title TEXT]\n"
local dir = arg[1]
if dir and dir:sub(1, 2) == "--" then dir = nil end
local opts = util.parse_args(table.move(arg, dir and 2 or 1, #arg, 1, {}), { title = "" }, usage)
if not dir then
  io.stderr:write("report: no folder given\n" .. usage)
  os.exit(2)
end
local path, err = sc.viz.report(dir, { title = opts.title ~= "" and opts.title or nil })
if not path then
  io.stderr:write("report: " .. tostring(err) .. "\n")
  os.exit(1)
end
print(path)
