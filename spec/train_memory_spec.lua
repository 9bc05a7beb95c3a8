-- A training loop keeps its resident memory flat without the user calling
-- collectgarbage: the W1 workload (denoising score matching, MLP 3->128x3->2,
-- batch 1024, Adam) for 5,000 steps.
local sc = require "scorch"

local rss_kb = require("helpers").rss_kb

-- 8 Gaussians on a circle of radius 2, std 0.05 (shared/WORKLOADS.md)
local function gauss8(n, g)
  local k = sc.randint(0, 8, { n, 1 }, { generator = g })
  local ang = k * (2 * math.pi / 8)
  local centres = sc.cat({ ang:cos(), ang:sin() }, 2) * 2
  return centres + sc.randn(n, 2, { generator = g }) * 0.05
end

describe("memory of a training loop", function()
  it("stays flat over 5,000 W1 steps without collectgarbage", function()
    local g = sc.Generator(0)
    sc.manual_seed(0)
    local model = sc.nn.Sequential {
      sc.nn.Linear(3, 128), sc.nn.SiLU(), sc.nn.Linear(128, 128), sc.nn.SiLU(),
      sc.nn.Linear(128, 128), sc.nn.SiLU(), sc.nn.Linear(128, 2),
    }
    local opt = sc.optim.Adam(model:parameters(), { lr = 1e-3 })
    local first_loss, loss_value
    local function step()
      local x0 = gauss8(1024, g)
      local ls = sc.rand(1024, 1, { generator = g }) * math.log(100) + math.log(0.01)
      local sig = ls:exp()
      local z = sc.randn(1024, 2, { generator = g })
      local s = model(sc.cat({ x0 + sig * z, ls }, 2))
      local r = s + z / sig
      local loss = ((r * r):sum(2, true) * (sig * sig * 0.5)):mean()
      opt:zero_grad()
      loss:backward()
      opt:step()
      return loss:item()
    end
    -- Under AddressSanitizer the resident size mostly measures its
    -- quarantine of freed blocks (up to 256 MB, filled at a pace set by how
    -- much the process frees), so there the core's own byte count plus the
    -- Lua heap is what must stay flat.
    local asan = os.getenv("ASAN_OPTIONS") ~= nil
    local function used_kb()
      if not asan then return rss_kb() end
      return sc.bytes_in_use() / 1024 + collectgarbage("count")
    end
    -- A single reading of the core's bytes lands anywhere in the collector's
    -- cycle (one more uncollected batch is megabytes), so there the peak over
    -- a window of 500 steps is compared: it grows only if something is kept.
    local function peak_kb(nsteps)
      local m = 0
      for _ = 1, nsteps do
        loss_value = step()
        m = math.max(m, used_kb())
      end
      return m
    end
    for _ = 1, 500 do first_loss = first_loss or step(); step() end
    local before = asan and peak_kb(500) or used_kb()
    for _ = 1, asan and 4000 or 5000 do loss_value = step() end
    local after = asan and peak_kb(500) or used_kb()
    local growth = (after - before) / before
    assert.is_true(growth < 0.05,
      ("%s grew %.1f%% (%.0f kB -> %.0f kB)"):format(asan and "core bytes + Lua heap" or "resident memory",
        100 * growth, before, after))
    -- and it trained: the DSM loss of this model starts near 1 and falls
    assert.is_true(loss_value < first_loss, ("loss %g did not fall below %g"):format(loss_value, first_loss))
  end)
end)
