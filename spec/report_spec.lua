-- sc.viz.report: the page's HTML against the folder it describes (sections,
-- escaped text, relative links, the metrics read from JSON), and the page
-- in a real browser: headless Chromium loads it, every image reports its
-- natural width in the DOM, and a screenshot shows the test picture's
-- colour where the page puts it.  Skipped with a reason where Chromium is
-- absent (scripts/bootstrap.sh installs it).
local sc = require "scorch"
local report = require "scorch.viz.report"
local H = require "helpers"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- A run folder: a loss curve, samples at three steps, a magenta test
-- square, metrics and a config as JSON, a checkpoint.
local function make_run()
  local dir = os.tmpname()
  os.remove(dir)
  assert(sc.util.mkdir(dir .. "/run <1>"))
  dir = dir .. "/run <1>"
  local losses = {}
  for i = 1, 60 do losses[i] = 2 * math.exp(-i / 15) + 0.05 end
  assert(sc.viz.loss_curve(dir .. "/loss.png", losses, { size = 120, title = "DSM loss" }))
  local g = sc.Generator(7)
  for _, step in ipairs { 1000, 200, 50 } do
    assert(sc.viz.image_grid(dir .. ("/samples_%d.png"):format(step), sc.rand({ 4, 1, 8, 8 }, { generator = g }),
      { nrow = 4, title = "step " .. step }))
  end
  -- 48×40 pure magenta: easy to find in a screenshot
  local magenta = sc.stack({ sc.ones(40, 48), sc.zeros(40, 48), sc.ones(40, 48) })
  assert(sc.image.save_png(dir .. "/magenta.png", magenta))
  write(dir .. "/metrics.json", '{"fid": 12.345678, "mmd": 1.5e-3, "per_class": {"circle": {"fraction": 0.25}},'
    .. ' "note": "<b>&", "steps": [1, 2, 3], "missing": null}')
  write(dir .. "/config.json", '{"lr": 0.001, "data": "eight_gaussians", "sigmas": [0.01, 1]}')
  write(dir .. "/broken.json", '{"fid": ')
  write(dir .. "/model.safetensors", string.rep("x", 100))
  return dir
end

local function rmtree(dir)
  os.execute("rm -rf " .. H.quote(dir))
end

describe("sc.viz.report", function()
  local dir
  before_each(function() dir = make_run() end)
  after_each(function() rmtree(dir:match("^(.*)/") or dir) end)

  it("writes index.html with every section, linking the folder's files", function()
    local path = assert(sc.viz.report(dir, { title = "NCSN σ = 0.01 <test>", config = { steps = 2000, model = "ncsn" },
      metrics = { mmd = 2e-4, learned = { tv = 0.25, mmd = 0.5 }, exact = { tv = 0.125 } } }))
    assert.are.equal(dir .. "/index.html", path)
    local html = read(path)
    assert.matches("^<!DOCTYPE html>", html)
    -- the title escaped, UTF-8 declared
    assert.truthy(html:find("<title>NCSN σ = 0.01 &lt;test&gt;</title>", 1, true))
    assert.truthy(html:find('<meta charset="utf-8">', 1, true))
    for _, id in ipairs { "losses", "training", "figures", "metrics", "config", "files" } do
      assert.truthy(html:find('<section id="' .. id .. '">', 1, true), id)
    end
    -- samples in step order, not name order; the loss in its own section
    local p50, p200, p1000 = html:find("samples_50.png", 1, true), html:find("samples_200.png", 1, true),
      html:find("samples_1000.png", 1, true)
    assert.is_true(p50 < p200 and p200 < p1000)
    assert.truthy(html:find('<section id="losses">.-src="loss.png"'))
    -- links are relative and image sizes are the PNGs'
    assert.truthy(html:find('src="magenta.png" alt="magenta.png" width="48" height="40"', 1, true))
    assert.is_nil(html:find("src=\"/", 1, true))
    assert.is_nil(html:find("http", 1, true))
    -- metrics from JSON, flattened and formatted; text escaped
    assert.truthy(html:find("<td>fid</td><td class=\"v\">12.346</td>", 1, true))
    assert.truthy(html:find("<td>per_class.circle.fraction</td><td class=\"v\">0.25</td>", 1, true))
    assert.truthy(html:find("<td>note</td><td class=\"v\">&lt;b&gt;&amp;</td>", 1, true))
    assert.truthy(html:find("<td>steps</td><td class=\"v\">[1, 2, 3]</td>", 1, true))
    assert.truthy(html:find("<td>mmd</td><td class=\"v\">0.0002</td>", 1, true))
    -- records (one per sampler) as rows of one table, columns in name order
    assert.truthy(html:find('<tr><td>exact</td><td class="v"></td><td class="v">0.125</td></tr>', 1, true))
    assert.truthy(html:find('<tr><td>learned</td><td class="v">0.5</td><td class="v">0.25</td></tr>', 1, true))
    assert.truthy(html:find("broken.json</h3>\n<p>not read: ", 1, true))
    -- the configuration from the caller and from config.json
    assert.truthy(html:find("<td>model</td><td class=\"v\">ncsn</td>", 1, true))
    assert.truthy(html:find("<td>sigmas</td><td class=\"v\">[0.01, 1]</td>", 1, true))
    -- other files with their sizes
    assert.truthy(html:find('<a href="model.safetensors">model.safetensors</a></td><td class="v">100 bytes', 1, true))
    -- no stray temporary
    assert.is_nil(io.open(dir .. "/index.html.tmp", "rb"))
  end)

  it("draws the losses it is given, and checks its arguments", function()
    local losses = {}
    for i = 1, 30 do losses[i] = 1 / i end
    assert(sc.viz.report(dir, { losses = { train = losses, val = losses } }))
    assert.is_truthy(sc.image.load_png(dir .. "/loss_curve.png"))
    assert.truthy(read(dir .. "/index.html"):find('src="loss_curve.png"', 1, true))
    assert.has_error(function() sc.viz.report(nil) end)
    assert.has_error(function() sc.viz.report(dir, { titel = "x" }) end)
    assert.has_error(function() sc.viz.report(dir, { config = "x" }) end)
    local ok, msg = sc.viz.report(dir .. "/does-not-exist")
    assert.is_nil(ok)
    assert.matches("cannot", msg)
  end)

  it("lists the folder without lfs (the core reads the directory)", function()
    local out, ok = H.run_lua(([[
      package.preload.lfs = function() error("no lfs here") end
      local sc = require "scorch"
      print(sc.viz.report(%q))
      print(sc.viz.report(%q))
    ]]):format(dir, dir .. "/nothing-here"))
    assert.is_true(ok, out)
    assert.truthy(out:find(dir .. "/index.html\n", 1, true), out)
    assert.truthy(out:find("cannot list folder", 1, true), out)
    assert.truthy(read(dir .. "/index.html"):find('src="magenta.png"', 1, true))
  end)

  it("reads JSON strictly", function()
    local v = assert(report.json_decode(' {"a": [1, -2.5e3, true, false, null], "b": "\\u03c3\\ud83d\\ude00\\n"} '))
    assert.are.same({ 1, -2500, true, false }, { v.a[1], v.a[2], v.a[3], v.a[4] })
    assert.are.equal(report.null, v.a[5])
    assert.are.equal("σ😀\n", v.b)
    for _, bad in ipairs { "", "{", "[1,]", "01", "1.", '{"a" 1}', "[1] x", '"\\x"', "nul", '"a\nb"' } do
      local r, msg = report.json_decode(bad)
      assert.is_nil(r, bad)
      assert.matches("at byte %d+", msg)
    end
  end)

  it("is written by scripts/report.lua", function()
    local bin = os.getenv("SCORCH_BIN")
    if not bin or bin == "" then bin = "bin/scorch" end
    local p = io.popen(("%s scripts/report.lua %s --title 'from the script' 2>&1"):format(H.quote(bin), H.quote(dir)))
    local out = p:read("a")
    assert.is_true(p:close(), out)
    assert.are.equal(dir .. "/index.html\n", out)
    assert.truthy(read(dir .. "/index.html"):find("<h1>from the script</h1>", 1, true))
    p = io.popen(("%s scripts/report.lua 2>&1"):format(H.quote(bin)))
    out = p:read("a")
    assert.is_falsy(p:close())
    assert.matches("usage", out)
  end)
end)

-- ---- in a browser ---------------------------------------------------------------

local function find_chromium()
  local env = os.getenv("SCORCH_CHROMIUM")
  if env and env ~= "" then return env end
  for _, name in ipairs { "chromium", "chromium-browser", "google-chrome" } do
    local p = io.popen("command -v " .. name .. " 2>/dev/null")
    local path = p:read("l")
    p:close()
    if path and path ~= "" then return path end
  end
  return nil
end

-- Runs Chromium headless on a page with a hard time limit; returns stdout.
local function chromium(exe, profile, args, page)
  local cmd = ("timeout -k 5 20 %s --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions "
    .. "--disable-dev-shm-usage --hide-scrollbars --user-data-dir=%s %s %s 2>/dev/null"):format(
      H.quote(exe), H.quote(profile), args, H.quote("file://" .. page))
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

describe("the report in headless Chromium", function()
  local exe = find_chromium()
  if not exe then
    print("report_spec: Chromium not found (scripts/bootstrap.sh installs it); browser check skipped")
  end
  local run = exe and it or pending

  run("loads every image and shows the test picture", function()
    local dir = make_run()
    local profile = os.tmpname()
    os.remove(profile)
    local ok, err = pcall(function()
      local page = assert(sc.viz.report(dir))
      -- the page's own script writes each image's natural width once loaded
      local dom = chromium(exe, profile, "--dump-dom", page)
      local loaded, total = dom:match('data%-images%-loaded="(%d+)/(%d+)"')
      assert.is_truthy(loaded, "no load record in the DOM:\n" .. dom:sub(1, 400))
      assert.are.equal(5, tonumber(total)) -- the loss, three sample grids and the magenta square
      assert.are.equal(total, loaded)
      assert.truthy(dom:find('src="magenta.png"[^>]-data%-natural%-width="48"'))
      -- the screenshot: magenta where the 48×40 picture is drawn at its size
      local shot = profile .. "-shot.png"
      chromium(exe, profile, "--window-size=1000,1600 --screenshot=" .. H.quote(shot), page)
      local img = assert(sc.image.load_png(shot))
      os.remove(shot)
      assert.is_true(img:size(1) >= 3 and img:size(2) == 1600 and img:size(3) == 1000)
      local r, g, b = img[1], img[2], img[3]
      local magenta = ((r:gt(0.9)):float() * (g:lt(0.1)):float() * (b:gt(0.9)):float()):sum():item()
      assert.is_true(math.abs(magenta - 48 * 40) <= 48 + 40, "magenta pixels: " .. magenta)
    end)
    os.execute("rm -rf " .. H.quote(profile) .. " " .. H.quote(dir:match("^(.*)/")))
    assert(ok, err)
  end)
end)
