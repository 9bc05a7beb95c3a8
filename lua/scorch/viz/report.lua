--- A run report: one static index.html for an output folder (an example's
-- out/NAME/, a run directory) showing its loss curves, sample grids (in
-- training order when their names carry a step), every other figure, the
-- metrics of its *.json files, and the configuration.  Plain HTML and CSS
-- with relative links, so the folder can be copied, archived or opened
-- from disk; no server, no network, no framework.  One inline script of a
-- few lines records each image's natural size in the page once it has
-- loaded (data-natural-width), which a headless browser can check.
-- @module scorch.viz.report
local util = require "scorch.util"

local M = {}

-- ---- files ------------------------------------------------------------------------

-- The names in a folder, sorted (readdir in the core: no shell, no lfs);
-- nil when it cannot be read.
local function list_dir(dir) return (require("scorch.core").list_dir(dir)) end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

-- Width and height from a PNG's IHDR (nil for anything else).
local function png_size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local head = f:read(24)
  f:close()
  if not head or #head < 24 or head:sub(1, 8) ~= "\137PNG\r\n\26\n" then return nil end
  return (">I4"):unpack(head, 17), (">I4"):unpack(head, 21)
end

-- ---- JSON -------------------------------------------------------------------------

-- A strict JSON reader for the metrics files (RFC 8259 values; null reads
-- as M.null).  Returns the value, or nil and a message with the offset.
M.null = setmetatable({}, { __tostring = function() return "null" end })

local function json_decode(s)
  local pos = 1
  local function fail(msg) error({ json = ("%s at byte %d"):format(msg, pos) }) end
  local function ws() pos = s:find("[^ \t\r\n]", pos) or #s + 1 end
  local value
  local escapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }
  local function str()
    pos = pos + 1
    local out = {}
    while true do
      local c = s:sub(pos, pos)
      if c == "" then fail("unterminated string") end
      if c == '"' then
        pos = pos + 1
        return table.concat(out)
      elseif c == "\\" then
        local e = s:sub(pos + 1, pos + 1)
        if e == "u" then
          local hex = s:match("^%x%x%x%x", pos + 2)
          if not hex then fail("bad \\u escape") end
          local cp = tonumber(hex, 16)
          pos = pos + 6
          if cp >= 0xD800 and cp < 0xDC00 then -- a surrogate pair
            local lo = s:match("^\\u(%x%x%x%x)", pos)
            lo = lo and tonumber(lo, 16)
            if not lo or lo < 0xDC00 or lo > 0xDFFF then fail("lone surrogate") end
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
            pos = pos + 6
          end
          out[#out + 1] = utf8.char(cp)
        elseif escapes[e] then
          out[#out + 1] = escapes[e]
          pos = pos + 2
        else
          fail("bad escape")
        end
      elseif c:byte() < 32 then
        fail("control character in string")
      else
        local run = s:match('^[^"\\%c]+', pos)
        out[#out + 1] = run
        pos = pos + #run
      end
    end
  end
  function value()
    ws()
    local c = s:sub(pos, pos)
    if c == "{" then
      local obj = {}
      pos = pos + 1
      ws()
      if s:sub(pos, pos) == "}" then
        pos = pos + 1
        return obj
      end
      while true do
        ws()
        if s:sub(pos, pos) ~= '"' then fail("expected a key") end
        local k = str()
        ws()
        if s:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        obj[k] = value()
        ws()
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return obj end
        if d ~= "," then fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      local arr = {}
      pos = pos + 1
      ws()
      if s:sub(pos, pos) == "]" then
        pos = pos + 1
        return arr
      end
      while true do
        arr[#arr + 1] = value()
        ws()
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return arr end
        if d ~= "," then fail("expected ',' or ']'") end
      end
    elseif c == '"' then
      return str()
    end
    for word, v in pairs { ["true"] = true, ["false"] = false, null = M.null } do
      if s:sub(pos, pos + #word - 1) == word then
        pos = pos + #word
        return v
      end
    end
    -- -?(0|[1-9]d*)(.d+)?([eE][-+]?d+)?
    local int = s:match("^-?0", pos) or s:match("^-?[1-9]%d*", pos)
    if int then
      local e = pos + #int
      local frac = s:match("^%.%d+", e) or ""
      e = e + #frac
      local exp = s:match("^[eE][-+]?%d+", e) or ""
      pos = e + #exp
      return tonumber(int .. frac .. exp)
    end
    fail("unexpected character")
  end
  local ok, v = pcall(function()
    local r = value()
    ws()
    if pos <= #s then fail("trailing characters") end
    return r
  end)
  if ok then return v end
  if type(v) == "table" and v.json then return nil, v.json end
  error(v, 0)
end
M.json_decode = json_decode

-- ---- HTML -------------------------------------------------------------------------

local function esc(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
    ["'"] = "&#39;" }))
end

-- A file name as a relative URL (RFC 3986 unreserved characters kept).
local function url(name)
  return (name:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- A value as table text: numbers to 5 significant digits, short lists
-- inline, tables as key = value pairs.
local function show(v, depth)
  depth = depth or 0
  if type(v) == "number" then
    if math.type(v) == "integer" or (v == math.floor(v) and math.abs(v) < 1e15) then
      return ("%d"):format(v)
    end
    return ("%.5g"):format(v)
  elseif type(v) == "table" and v ~= M.null then
    if depth > 2 then return "…" end
    local parts = {}
    if #v > 0 then
      for i = 1, math.min(#v, 12) do parts[i] = show(v[i], depth + 1) end
      if #v > 12 then parts[#parts + 1] = ("… (%d values)"):format(#v) end
      return "[" .. table.concat(parts, ", ") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    for _, k in ipairs(keys) do
      local val = v[k]
      if val == nil then val = v[tonumber(k)] end
      parts[#parts + 1] = k .. " = " .. show(val, depth + 1)
    end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return tostring(v)
end

-- Rows {key, value} of a table, nested objects flattened to "a.b" keys.
local function flatten(t, prefix, rows)
  rows = rows or {}
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local v, name = t[k], prefix and (prefix .. "." .. tostring(k)) or tostring(k)
    if type(v) == "table" and v ~= M.null and #v == 0 and next(v) ~= nil then
      flatten(v, name, rows)
    else
      rows[#rows + 1] = { name, show(v) }
    end
  end
  return rows
end

local function kv_table(rows, head)
  local out = { "<table>" }
  if head then out[#out + 1] = ("<thead><tr><th>%s</th><th>%s</th></tr></thead>"):format(esc(head[1]), esc(head[2])) end
  out[#out + 1] = "<tbody>"
  for _, r in ipairs(rows) do
    out[#out + 1] = ("<tr><td>%s</td><td class=\"v\">%s</td></tr>"):format(esc(r[1]), esc(r[2]))
  end
  out[#out + 1] = "</tbody></table>"
  return table.concat(out, "\n")
end

-- Whether v is a record: a non-empty table of scalars under string keys.
local function is_record(v)
  if type(v) ~= "table" or v == M.null or next(v) == nil or #v > 0 then return false end
  for k, x in pairs(v) do
    if type(k) ~= "string" or (type(x) == "table" and x ~= M.null) then return false end
  end
  return true
end

-- Metrics as tables: the entries that are records of scalars (one per
-- sampler, say) as one row each under the union of their keys, when there
-- are two or more; everything else as key/value rows.
local function metrics_tables(t)
  local records, rest, cols, seen = {}, {}, {}, {}
  for k, v in pairs(t) do
    if is_record(v) then
      records[#records + 1] = tostring(k)
      for c in pairs(v) do
        if not seen[c] then cols[#cols + 1], seen[c] = c, true end
      end
    else
      rest[k] = v
    end
  end
  if #records < 2 then return kv_table(flatten(t), { "metric", "value" }) end
  table.sort(records)
  table.sort(cols)
  local out = { "<table>", "<thead><tr><th></th>" }
  for _, c in ipairs(cols) do out[#out + 1] = "<th>" .. esc(c) .. "</th>" end
  out[#out + 1] = "</tr></thead><tbody>"
  for _, r in ipairs(records) do
    local row = { "<tr><td>" .. esc(r) .. "</td>" }
    for _, c in ipairs(cols) do
      local v = t[r][c]
      row[#row + 1] = '<td class="v">' .. (v == nil and "" or esc(show(v))) .. "</td>"
    end
    out[#out + 1] = table.concat(row) .. "</tr>"
  end
  out[#out + 1] = "</tbody></table>"
  if next(rest) then out[#out + 1] = kv_table(flatten(rest), { "metric", "value" }) end
  return table.concat(out, "\n")
end

local function figure(dir, name, caption)
  local w, h = png_size(dir .. "/" .. name)
  local size = w and (' width="%d" height="%d"'):format(w, h) or ""
  return ('<figure><a href="%s"><img src="%s" alt="%s"%s></a><figcaption>%s</figcaption></figure>')
    :format(url(name), url(name), esc(name), size, esc(caption or name))
end

local STYLE = [[
body { font: 15px/1.45 "DejaVu Sans", system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
  padding: 0 1.5em; color: #1a1a1a; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
h3 { font-size: 1em; margin: 1.2em 0 0.4em; }
.meta { color: #666; margin-top: 0; }
nav a { margin-right: 1em; }
.figs { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.steps { display: flex; gap: 0.6em; overflow-x: auto; align-items: flex-start; }
figure { margin: 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eee; }
.steps figure img { max-width: 320px; }
figcaption { font-size: 0.85em; color: #555; margin-top: 0.2em; }
table { border-collapse: collapse; margin: 0.4em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.v { font-family: "DejaVu Sans Mono", monospace; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
]]

-- Records each image's natural size once the page has loaded.
local SCRIPT = [[
window.addEventListener("load", function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    imgs[i].setAttribute("data-natural-width", imgs[i].naturalWidth);
    if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++;
  }
  document.body.setAttribute("data-images-loaded", ok + "/" + imgs.length);
});
]]

-- ---- the report -------------------------------------------------------------------

-- Sorts the folder's files into the report's sections.
local function classify(names, explicit)
  local losses, others, series, json, configs, rest = {}, {}, {}, {}, {}, {}
  for _, n in ipairs(names) do
    local lower = n:lower()
    if lower:match("%.png$") then
      local prefix, step = n:match("^(.-)[_%-]?(%d+)%.[pP][nN][gG]$")
      if lower:find("loss", 1, true) then
        losses[#losses + 1] = n
      elseif prefix and prefix ~= "" then
        series[prefix] = series[prefix] or {}
        table.insert(series[prefix], { name = n, step = tonumber(step) })
      else
        others[#others + 1] = n
      end
    elseif lower:match("%.json$") then
      if lower:match("^config") or lower:match("^options") or lower:match("config%.json$") then
        configs[#configs + 1] = n
      else
        json[#json + 1] = n
      end
    elseif n ~= "index.html" and not n:match("^%.") and not explicit then
      rest[#rest + 1] = n
    end
  end
  -- a "series" of one picture is just a figure
  local groups = {}
  for prefix, list in pairs(series) do
    if #list >= 2 then
      table.sort(list, function(a, b) return a.step < b.step end)
      groups[#groups + 1] = { prefix = prefix, list = list }
    else
      others[#others + 1] = list[1].name
    end
  end
  table.sort(groups, function(a, b) return a.prefix < b.prefix end)
  table.sort(others)
  return { losses = losses, others = others, groups = groups, json = json, configs = configs, rest = rest }
end

--- Writes DIR/index.html, a static page of the run in folder dir.
-- Sections: loss curves (PNGs named *loss*), pictures over training
-- (NAME_STEP.png, two or more, in step order), the other figures, metrics
-- (each *.json and opts.metrics: records of scalars, one per sampler say,
-- as rows of one table, the rest flattened to key/value rows), the
-- configuration (opts.config, config*.json / options*.json), and the
-- other files with their sizes.  Images are linked by relative paths.
-- @param dir string: the output folder (must exist)
-- @param opts table: title (the folder's name), config (a table of the
--   run's options), metrics (a table of numbers, or of tables), losses (a
--   list of losses, or {name = list}: drawn to DIR/loss_curve.png first),
--   notes (a paragraph of text), images (a list of file names, instead of
--   every PNG in the folder)
-- @return the path of index.html, or nil and a message
-- @usage sc.viz.report("out/ncsn_2d", {config = opts, metrics = {mmd = 1e-3}})
function M.report(dir, opts)
  if type(dir) ~= "string" or dir == "" then
    error("scorch.viz.report: dir must be a non-empty string, got " .. type(dir), 2)
  end
  opts = util.check_options(opts, { "title", "config", "metrics", "losses", "notes", "images" }, "scorch.viz.report")
  for _, k in ipairs { "config", "metrics", "losses", "images" } do
    if opts[k] ~= nil and type(opts[k]) ~= "table" then
      error(("scorch.viz.report: option %s must be a table, got a %s"):format(k, type(opts[k])), 2)
    end
  end
  dir = dir:gsub("/+$", "")
  if dir == "" then dir = "/" end
  local names = list_dir(dir)
  if not names then return nil, ("scorch.viz.report: cannot list folder %s"):format(dir) end
  if opts.losses then
    local ok, err = require("scorch.viz.plots").loss_curve(dir .. "/loss_curve.png", opts.losses,
      { title = "training loss" })
    if not ok then return nil, err end
    names = list_dir(dir) or names
  end
  if opts.images then
    local keep = {}
    for _, n in ipairs(opts.images) do keep[#keep + 1] = tostring(n) end
    for _, n in ipairs(names) do
      if n:lower():match("%.json$") then keep[#keep + 1] = n end
    end
    names = keep
  end
  local files = classify(names, opts.images ~= nil)
  local title = opts.title or ("scorch run: " .. (dir:match("([^/]+)$") or dir))

  local html = {}
  local function add(s) html[#html + 1] = s end
  add("<!DOCTYPE html>")
  add('<html lang="en"><head><meta charset="utf-8">')
  add('<meta name="viewport" content="width=device-width, initial-scale=1">')
  add("<title>" .. esc(title) .. "</title>")
  add("<style>\n" .. STYLE .. "</style></head><body>")
  add("<h1>" .. esc(title) .. "</h1>")
  add(('<p class="meta">%s · written %s by scorch</p>'):format(esc(dir), esc(os.date("%Y-%m-%d %H:%M"))))
  if opts.notes then add("<p>" .. esc(opts.notes) .. "</p>") end
  local toc = {}
  local body = {}
  local function section(id, heading, content)
    toc[#toc + 1] = ('<a href="#%s">%s</a>'):format(id, esc(heading))
    body[#body + 1] = ('<section id="%s"><h2>%s</h2>\n%s\n</section>'):format(id, esc(heading), content)
  end

  if #files.losses > 0 then
    local figs = {}
    for _, n in ipairs(files.losses) do figs[#figs + 1] = figure(dir, n) end
    section("losses", "Loss curves", '<div class="figs">' .. table.concat(figs, "\n") .. "</div>")
  end
  if #files.groups > 0 then
    local parts = {}
    for _, g in ipairs(files.groups) do
      local figs = {}
      for _, e in ipairs(g.list) do figs[#figs + 1] = figure(dir, e.name, ("step %d"):format(e.step)) end
      parts[#parts + 1] = ("<h3>%s</h3>\n<div class=\"steps\">%s</div>"):format(esc(g.prefix), table.concat(figs, "\n"))
    end
    section("training", "Over training", table.concat(parts, "\n"))
  end
  if #files.others > 0 then
    local figs = {}
    for _, n in ipairs(files.others) do figs[#figs + 1] = figure(dir, n) end
    section("figures", "Samples and figures", '<div class="figs">' .. table.concat(figs, "\n") .. "</div>")
  end

  local metrics = {}
  if opts.metrics then metrics[#metrics + 1] = "<h3>reported by the run</h3>\n" .. metrics_tables(opts.metrics) end
  for _, n in ipairs(files.json) do
    local doc, err = json_decode(read_file(dir .. "/" .. n) or "")
    if type(doc) == "table" and doc ~= M.null then
      metrics[#metrics + 1] = ("<h3>%s</h3>\n%s"):format(esc(n), metrics_tables(doc))
    else
      metrics[#metrics + 1] = ("<h3>%s</h3>\n<p>not read: %s</p>"):format(esc(n), esc(err or "not an object"))
    end
  end
  if #metrics > 0 then section("metrics", "Metrics", table.concat(metrics, "\n")) end

  local config = {}
  if opts.config then config[#config + 1] = kv_table(flatten(opts.config), { "option", "value" }) end
  for _, n in ipairs(files.configs) do
    local doc, err = json_decode(read_file(dir .. "/" .. n) or "")
    if type(doc) == "table" and doc ~= M.null then
      config[#config + 1] = ("<h3>%s</h3>\n%s"):format(esc(n), kv_table(flatten(doc), { "option", "value" }))
    else
      config[#config + 1] = ("<h3>%s</h3>\n<p>not read: %s</p>"):format(esc(n), esc(err or "not an object"))
    end
  end
  if #config > 0 then section("config", "Configuration", table.concat(config, "\n")) end

  if #files.rest > 0 then
    local rows = {}
    for _, n in ipairs(files.rest) do
      local size = file_size(dir .. "/" .. n)
      rows[#rows + 1] = ('<tr><td><a href="%s">%s</a></td><td class="v">%s</td></tr>'):format(url(n), esc(n),
        size and ("%d bytes"):format(size) or "folder")
    end
    section("files", "Other files", "<table><tbody>" .. table.concat(rows, "\n") .. "</tbody></table>")
  end

  if #body == 0 then body[1] = "<p>The folder holds no figures, metrics or configuration yet.</p>" end
  add("<nav>" .. table.concat(toc, " ") .. "</nav>")
  add(table.concat(body, "\n"))
  add("<script>\n" .. SCRIPT .. "</script>")
  add("</body></html>")

  -- written beside, then renamed: a reader never sees half a page
  local path = dir .. "/index.html"
  local written, err = require("scorch.util").write_atomic(path, table.concat(html, "\n") .. "\n")
  if not written then return nil, "scorch.viz.report: " .. err end
  return path
end

return M
