-- sc.metrics report printing and saving: the metrics and class tables,
-- format_report, json, report_doc and the atomic write_json.
local sc = require "scorch"

-- a report shaped like image_report's, with a floor
local function fake_report()
  local names = { "square", "circle" }
  local function mix(frac, conf)
    return { frac = frac, count = { 3, 1 }, conf = conf, confident = 0.75, mean_conf = 0.9 }
  end
  local rep = { n_fake = 4, n_real = 10, k = 3, extractor = "shapes-classifier@abc", dataset = "shapes",
    fid = 1.25, fid_inf = 1.0, fid_inf_slope = 2.5, fid_inf_info = { counts = { 2, 4 } }, kid = 0.01, kid_std = 0.002,
    precision = 0.75, recall = 0.5, class_names = names, class_mix = mix({ 0.75, 0.25 }, { 0.95, nil }),
    ref_mix = { frac = { 0.5, 0.5 } }, per_class = { { precision = 0.9, recall = 0.8 }, { n_fake = 1 } } }
  rep.floor = { n_fake = 4, n_real = 10, k = 3, extractor = rep.extractor, fid = 0.5, precision = 0.95, recall = 0.9,
    class_names = names, per_class = { { precision = 0.97, recall = 0.96 }, { precision = 0.93, recall = 0.92 } } }
  return rep
end

describe("sc.metrics.metrics_table", function()
  it("prints one aligned row per report, extra columns first, '-' where a figure is missing", function()
    local t = sc.metrics.metrics_table({
      { label = "ddim 10", report = { fid = 12.5, precision = 0.5 }, extra = { 10 } },
      { label = "real/real", extra = {} } }, { label = "sampler", extra = { "NFE" } })
    local lines = {}
    for l in t:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(3, #lines)
    assert.is_truthy(lines[1]:find("^sampler%s+NFE%s+FID%s+FID∞%s+KID%s+KID std%s+precision%s+recall$"))
    assert.is_truthy(lines[2]:find("^ddim 10%s+10%s+12%.5000%s+%-%s+%-%s+%-%s+0%.500%s+%-$"))
    assert.is_truthy(lines[3]:find("^real/real%s+%-"))
    assert.are.equal(utf8.len(lines[1]), utf8.len(lines[2]))
  end)

  it("rejects unknown options and bad rows, naming the function", function()
    assert.has_error(function() sc.metrics.metrics_table({}, { colums = {} }) end,
      "scorch.metrics.metrics_table: unknown option 'colums' (valid: extra, label)")
    assert.has_error(function() sc.metrics.metrics_table({ { report = {} } }) end,
      "scorch.metrics.metrics_table: rows[1] must be {label = string, report =, extra =}")
    assert.has_error(function() sc.metrics.metrics_table(nil) end)
  end)
end)

describe("sc.metrics.class_table and format_report", function()
  it("puts the mix beside the reference mix, and the floor's per-class figures beside the samples'", function()
    local t = sc.metrics.class_table(fake_report(), { reference = "train" })
    assert.is_truthy(t:find("^class%s+mix%s+train%s+n%s+conf%s+precision%s+recall%s+floor P%s+floor R"))
    assert.is_truthy(t:find("\nsquare%s+75%.0%%%s+50%.0%%%s+3%s+0%.950%s+0%.900%s+0%.800%s+0%.970%s+0%.960"))
    assert.is_truthy(t:find("\ncircle%s+25%.0%%%s+50%.0%%%s+1%s+%-%s+%-%s+%-%s+0%.930%s+0%.920"))
  end)

  it("formats the whole report: counts, extractor, the floor row, the classes", function()
    local s = sc.metrics.format_report(fake_report(), { reference = "train" })
    assert.is_truthy(s:find("4 samples against 10 train images of shapes %(shapes%-classifier@abc%), k = 3", 1))
    assert.is_truthy(s:find("\nsamples%s+1%.2500%s+1%.0000%s+0%.01000%s+0%.00200%s+0%.750%s+0%.500"))
    assert.is_truthy(s:find("\nreal/real%s+0%.5000%s+%-%s+%-%s+%-%s+0%.950%s+0%.900"))
    assert.is_truthy(s:find("confident %(top probability >= 0.9%): 75.0%% of samples", 1))
    assert.has_error(function() sc.metrics.format_report({}) end,
      "scorch.metrics.format_report: rep must be a report of image_report or feature_report")
    assert.has_error(function() sc.metrics.format_report(fake_report(), { refrence = "x" }) end)
  end)
end)

describe("sc.metrics.json, report_doc and write_json", function()
  it("encodes objects with sorted keys, lists, nulls, non-finite numbers as null, and escapes", function()
    local s = sc.metrics.json({ b = { 1, sc.metrics.json_null, 0 / 0 }, a = 'x"\n', c = math.huge, t = sc.zeros(2) })
    assert.are.equal('{\n  "a": "x\\u0022\\u000a",\n  "b": [1, null, null],\n  "c": null\n}', s)
    assert.are.equal("0.10000000000000001", sc.metrics.json(0.1))
    assert.are.equal("[]", sc.metrics.json({}))
  end)

  it("gathers the report's figures, the floor and extra fields", function()
    local doc = sc.metrics.report_doc(fake_report(), { example = "x" })
    assert.are.equal(1.25, doc.fid)
    assert.are.same({ 2, 4 }, doc.fid_inf_counts)
    assert.are.equal(4, doc.n_samples)
    assert.are.equal("x", doc.example)
    assert.are.equal(0.5, doc.floor.fid)
    assert.are.equal(sc.metrics.json_null, doc.class_conf[2])
    assert.are.equal(0.93, doc.floor.per_class[2].precision)
    assert.has_error(function() sc.metrics.report_doc(fake_report(), "x") end,
      "scorch.metrics.report_doc: extra must be a table, got string")
  end)

  it("writes atomically (no temporary file left) and keeps an existing file when asked", function()
    local path = os.tmpname()
    assert.are.equal(path, sc.metrics.write_json(path, { a = 1 }))
    local f = assert(io.open(path))
    assert.are.equal('{\n  "a": 1\n}\n', f:read("a"))
    f:close()
    assert.is_nil(io.open(path .. ".tmp"))
    local ok, msg = sc.metrics.write_json(path, { a = 2 }, { overwrite = false })
    assert.is_nil(ok)
    assert.is_truthy(msg:find("not overwritten", 1, true))
    local bad, err = sc.metrics.write_json("/nonexistent-dir/x.json", {})
    assert.is_nil(bad)
    assert.is_truthy(err:find("cannot write", 1, true))
    assert.has_error(function() sc.metrics.write_json(path, {}, { atomic = true }) end)
    os.remove(path)
  end)
end)
