-- Printing and saving the reports of features.lua: the metrics table
-- (FID, FID∞, KID, precision, recall; one row per labelled report, the
-- real-versus-real floor among them), the per-class table (class mix beside
-- the reference mix, confidence, per-class precision and recall), and the
-- report as JSON written atomically (a temporary file, then a rename).
-- The image examples and scripts/eval.lua print through these.
local sc = require "scorch"
local common = require "scorch.metrics.common"
local util = require "scorch.util"

local M = {}

local function num(v, fmt) return v == nil and "-" or (fmt or "%.4f"):format(v) end

-- Display width of a UTF-8 string (one column per code point).
local function width(s) return utf8.len(s) or #s end
local function pad(s, w, left)
  local fill = string.rep(" ", math.max(0, w - width(s)))
  return left and s .. fill or fill .. s
end

local METRIC_COLS = { "FID", "FID∞", "KID", "KID std", "precision", "recall" }

--- A table of feature metrics, one row per report: FID, FID∞, KID (mean and
-- standard deviation over subsets), precision and recall, after optional
-- extra columns (e.g. network evaluations and seconds of a sampler).
-- @tparam table rows `{{label = string, report = feature report or nil, extra = {values...}}, ...}`;
--   a row without a report prints "-" in the metric columns
-- @tparam[opt] table opts `{extra = {column names...}, label = "" (header of the first column)}`
-- @return string, the table's lines joined by newlines (no trailing newline)
-- @usage print(sc.metrics.metrics_table({{label = "samples", report = rep},
--   {label = "real/real", report = rep.floor}}))
function M.metrics_table(rows, opts)
  opts = common.check_opts("metrics_table", opts, { "extra", "label" })
  if type(rows) ~= "table" then
    error("scorch.metrics.metrics_table: rows must be a list of {label =, report =}, got " .. type(rows), 2)
  end
  local extra = opts.extra or {}
  local header = { opts.label or "" }
  for _, c in ipairs(extra) do header[#header + 1] = c end
  for _, c in ipairs(METRIC_COLS) do header[#header + 1] = c end
  local cells = { header }
  for i, row in ipairs(rows) do
    if type(row) ~= "table" or type(row.label) ~= "string" then
      error(("scorch.metrics.metrics_table: rows[%d] must be {label = string, report =, extra =}"):format(i), 2)
    end
    local r = row.report or {}
    local line = { row.label }
    for j = 1, #extra do
      local v = row.extra and row.extra[j]
      line[#line + 1] = v == nil and "-" or tostring(v)
    end
    for _, v in ipairs { num(r.fid), num(r.fid_inf), num(r.kid, "%.5f"), num(r.kid_std, "%.5f"),
      num(r.precision, "%.3f"), num(r.recall, "%.3f") } do
      line[#line + 1] = v
    end
    cells[#cells + 1] = line
  end
  local w = {}
  for _, line in ipairs(cells) do
    for j, s in ipairs(line) do w[j] = math.max(w[j] or 0, width(s), j == 1 and 10 or 9) end
  end
  local out = {}
  for i, line in ipairs(cells) do
    local parts = {}
    for j, s in ipairs(line) do parts[j] = pad(s, w[j], j == 1) end
    out[i] = table.concat(parts, " ")
  end
  return table.concat(out, "\n")
end

--- The per-class table of an image report: the samples' class mix (by the
-- classifier) beside the reference mix, mean confidence, and per-class
-- precision and recall (with the floor's beside them when the report has
-- one with per-class figures).
-- @tparam table rep a report from `image_report`
-- @tparam[opt] table opts `{reference = "real" (header of the reference-mix column)}`
-- @return string (no trailing newline)
-- @usage print(sc.metrics.class_table(rep, {reference = "train"}))
function M.class_table(rep, opts)
  opts = common.check_opts("class_table", opts, { "reference" })
  if type(rep) ~= "table" or not rep.class_names or not rep.class_mix or not rep.ref_mix then
    error("scorch.metrics.class_table: rep must be a report of image_report (class_names, class_mix, ref_mix)", 2)
  end
  local floor_pc = rep.floor and rep.floor.per_class
  local nw = 10
  for _, name in ipairs(rep.class_names) do nw = math.max(nw, width(name)) end
  local head = { pad("class", nw, true), pad("mix", 7), pad(opts.reference or "real", 7), pad("n", 5), pad("conf", 6),
    pad("precision", 9), pad("recall", 7) }
  if floor_pc then
    head[#head + 1] = pad("floor P", 8)
    head[#head + 1] = pad("floor R", 8)
  end
  local out = { table.concat(head, " ") }
  for c, name in ipairs(rep.class_names) do
    local pc = rep.per_class and rep.per_class[c] or {}
    local line = { pad(name, nw, true), pad(("%.1f%%"):format(100 * rep.class_mix.frac[c]), 7),
      pad(("%.1f%%"):format(100 * rep.ref_mix.frac[c]), 7), pad(tostring(rep.class_mix.count[c]), 5),
      pad(num(rep.class_mix.conf[c], "%.3f"), 6), pad(num(pc.precision, "%.3f"), 9), pad(num(pc.recall, "%.3f"), 7) }
    if floor_pc then
      local fc = floor_pc[c] or {}
      line[#line + 1] = pad(num(fc.precision, "%.3f"), 8)
      line[#line + 1] = pad(num(fc.recall, "%.3f"), 8)
    end
    out[#out + 1] = table.concat(line, " ")
  end
  return table.concat(out, "\n")
end

--- The whole report of `image_report` as text: a header naming the sample
-- count, the reference count, the data set and the extractor; the metrics
-- table with the real-versus-real floor; the per-class table; the share of
-- confident samples.
-- @tparam table rep a report from `image_report` (its `floor` may come from another call)
-- @tparam[opt] table opts `{label = "samples", reference = "real", title = (first line; default names the counts)}`
-- @return string (no trailing newline)
-- @usage print(sc.metrics.format_report(sc.metrics.image_report(x, "shapes")))
function M.format_report(rep, opts)
  opts = common.check_opts("format_report", opts, { "label", "reference", "title" })
  if type(rep) ~= "table" or not rep.n_fake then
    error("scorch.metrics.format_report: rep must be a report of image_report or feature_report", 2)
  end
  local lines = { opts.title or ("%d samples against %d %s images of %s (%s), k = %d"):format(rep.n_fake, rep.n_real,
    opts.reference or "real", tostring(rep.dataset), tostring(rep.extractor), rep.k) }
  local rows = { { label = opts.label or "samples", report = rep } }
  if rep.floor then
    rows[2] = { label = "real/real", report = rep.floor }
    lines[#lines + 1] = ("real/real: %d other real images against the same %d"):format(rep.floor.n_fake,
      rep.floor.n_real)
  end
  lines[#lines + 1] = M.metrics_table(rows)
  if rep.class_names and rep.class_mix and rep.ref_mix then
    lines[#lines + 1] = ""
    lines[#lines + 1] = M.class_table(rep, { reference = opts.reference })
    if rep.class_mix.confident then
      lines[#lines + 1] = ("confident (top probability >= 0.9): %.1f%% of samples, mean confidence %.3f")
        :format(100 * rep.class_mix.confident, rep.class_mix.mean_conf)
    end
  end
  return table.concat(lines, "\n")
end

-- ---- JSON ----------------------------------------------------------------------------

--- Marks a JSON null inside lists (a Lua nil would end the list).
M.json_null = setmetatable({}, { __tostring = function() return "null" end })

local function encode(v, indent)
  local t = type(v)
  if t == "nil" or v == M.json_null then return "null" end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return math.type(v) == "integer" and ("%d"):format(v) or ("%.17g"):format(v)
  end
  if t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(ch) return ("\\u%04x"):format(ch:byte()) end) .. '"'
  end
  if t ~= "table" or sc.is_tensor(v) then return nil end
  local inner, parts = indent .. "  ", {}
  if #v > 0 or next(v) == nil then
    for i = 1, #v do parts[i] = encode(v[i], inner) or "null" end
    return "[" .. table.concat(parts, ", ") .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local s = encode(v[k], inner)
    if s then parts[#parts + 1] = inner .. encode(k, "") .. ": " .. s end
  end
  return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
end

--- JSON text of a Lua value: tables with keys 1..n are arrays, other tables
-- objects with sorted keys; NaN and infinities become null; tensors and
-- functions are left out.
-- @param v a value
-- @return string
-- @usage print(sc.metrics.json({fid = 1.5, per_class = {0.9, sc.metrics.json_null}}))
function M.json(v)
  return encode(v, "") or "null"
end

local function list(t, n)
  local out = {}
  for i = 1, n do out[i] = t[i] == nil and M.json_null or t[i] end
  return out
end

local function metrics_doc(r)
  if not r then return nil end
  local doc = { fid = r.fid, fid_inf = r.fid_inf, fid_inf_slope = r.fid_inf_slope,
    fid_inf_counts = r.fid_inf_info and r.fid_inf_info.counts, kid = r.kid, kid_std = r.kid_std,
    precision = r.precision, recall = r.recall, n_samples = r.n_fake, n_real = r.n_real, extractor = r.extractor,
    k = r.k, split = r.split }
  if r.per_class and r.class_names then doc.per_class = list(r.per_class, #r.class_names) end
  return doc
end

--- A report of `image_report` or `feature_report` as a plain table for
-- `json`: the metrics, counts and extractor, the class mixes and per-class
-- figures, the floor, and any extra fields.
-- @tparam table rep the report
-- @tparam[opt] table extra fields to add (e.g. `{samples = path, seconds = 12.5}`)
-- @return table
-- @usage local doc = sc.metrics.report_doc(rep, {model = "ncsn"})
function M.report_doc(rep, extra)
  if type(rep) ~= "table" or not rep.n_fake then
    error("scorch.metrics.report_doc: rep must be a report of image_report or feature_report", 2)
  end
  if extra ~= nil and type(extra) ~= "table" then
    error("scorch.metrics.report_doc: extra must be a table, got " .. type(extra), 2)
  end
  local doc = metrics_doc(rep)
  doc.data = rep.dataset
  if rep.class_names then
    local K = #rep.class_names
    doc.class_names = rep.class_names
    doc.class_frac = rep.class_mix.frac
    doc.class_count = rep.class_mix.count
    doc.class_conf = list(rep.class_mix.conf, K)
    doc.real_class_frac = rep.ref_mix.frac
    doc.confident, doc.mean_conf = rep.class_mix.confident, rep.class_mix.mean_conf
  end
  if rep.floor then
    doc.floor = metrics_doc(rep.floor)
    if rep.floor.class_mix then doc.floor.class_frac = rep.floor.class_mix.frac end
  end
  for k, v in pairs(extra or {}) do doc[k] = v end
  return doc
end

--- Writes a value as JSON to a file atomically: to `path .. ".tmp"`, then
-- renamed over `path`, so a reader never sees half a file.
-- @tparam string path the JSON file
-- @param doc the value (see `json`)
-- @tparam[opt] table opts `{overwrite = true}`: false keeps an existing file and returns nil, message
-- @return path, or nil and a message
-- @usage assert(sc.metrics.write_json("out/report.json", sc.metrics.report_doc(rep)))
function M.write_json(path, doc, opts)
  opts = common.check_opts("write_json", opts, { "overwrite" })
  if type(path) ~= "string" or path == "" then
    error("scorch.metrics.write_json: path must be a file name, got " .. tostring(path), 2)
  end
  if opts.overwrite == false then
    local f = io.open(path, "rb")
    if f then
      f:close()
      return nil, path .. " exists; not overwritten"
    end
  end
  return require("scorch.util").write_atomic(path, M.json(doc) .. "\n")
end

--- The poster's question for the rarest class of a training mix, read from
-- an image report: is it lost (low recall, or a share of the samples under
-- half its training share) or smeared (low precision)?  A precision or
-- recall is low when it lies more than `margin` and more than two standard
-- errors below the floor's (binomial errors over the class's samples for
-- precision, its training images for recall); below by the margin but
-- within two standard errors is too few to tell, and said so.
-- @param rep an image_report with per_class, class_mix and floor
-- @param train_frac Lua array of K training shares
-- @param names Lua array of K class names
-- @param opts table: margin = 0.1; model = "the model" (named in the question)
-- @return the verdict table (as report.json keeps it), and two lines to print:
--   the class's figures, and the question with its answer
-- @usage local v, figures, answer = sc.metrics.rare_class_verdict(rep, frac, names, {model = "NCSN"})
function M.rare_class_verdict(rep, train_frac, names, opts)
  opts = util.check_options(opts, { "margin", "model" }, "scorch.metrics.rare_class_verdict")
  local margin, model = opts.margin or 0.1, opts.model or "the model"
  local rare = 1
  for k = 2, #train_frac do if train_frac[k] < train_frac[rare] then rare = k end end
  local pc, fc = rep.per_class[rare], rep.floor.per_class[rare]
  local function se(p, n) return p and n > 0 and math.sqrt(p * (1 - p) / n) or nil end
  local verdict = { class = names[rare], train_frac = train_frac[rare], sample_frac = rep.class_mix.frac[rare],
    n_samples = pc.n_fake, n_floor = fc.n_fake, n_train = pc.n_real, precision = pc.precision, recall = pc.recall,
    floor_precision = fc.precision, floor_recall = fc.recall, margin = margin,
    precision_se = se(pc.precision, pc.n_fake), floor_precision_se = se(fc.precision, fc.n_fake),
    recall_se = se(pc.recall, pc.n_real), floor_recall_se = se(fc.recall, fc.n_real) }
  -- "low", "noisy" (below by more than the margin, within two standard errors) or nil
  local function low(v, f, v_se, f_se)
    if v == nil or f == nil or f - v <= margin then return nil end
    return f - v > 2 * math.sqrt(v_se ^ 2 + f_se ^ 2) and "low" or "noisy"
  end
  local rec = pc.recall == nil and "low" or low(pc.recall, fc.recall, verdict.recall_se, verdict.floor_recall_se)
  local prec = low(pc.precision, fc.precision, verdict.precision_se, verdict.floor_precision_se)
  local lost = rec == "low" or verdict.sample_frac < 0.5 * verdict.train_frac
  local smeared = prec == "low"
  verdict.answer = lost and smeared and "both lost and smeared" or lost and "lost" or smeared and "smeared"
    or "neither lost nor smeared"
  local notes = {}
  if rec == "noisy" then notes[#notes + 1] = "recall" end
  if prec == "noisy" then notes[#notes + 1] = "precision" end
  if #notes > 0 then
    verdict.answer = verdict.answer .. ("; its %s is more than %.2f below the floor but within two standard errors "
      .. "(%d samples of the class): too few to tell"):format(table.concat(notes, " and "), margin, pc.n_fake)
  end
  local function pm(v, e) return v and ("%.3f ± %.3f"):format(v, e) or "-" end
  local figures = ("rare class %s (%.1f%% of the training mix, %.1f%% of the samples: %d images; floor %d): "
    .. "precision %s (floor %s), recall %s (floor %s)"):format(names[rare], 100 * verdict.train_frac,
    100 * verdict.sample_frac, pc.n_fake, fc.n_fake, pm(pc.precision, verdict.precision_se),
    pm(fc.precision, verdict.floor_precision_se), pm(pc.recall, verdict.recall_se),
    pm(fc.recall, verdict.floor_recall_se))
  local answer = ("does %s lose the rare class (low recall, or under half its share) or smear it (low "
    .. "precision)? %s (low: more than %.2f and two standard errors below the floor)"):format(model,
    verdict.answer, margin)
  return verdict, figures, answer
end

return M
