-- examples/families_2d.lua at tiny settings: every family it is asked for
-- trains through the runtime and lands in one table, NLL and entropy on the
-- same test points, and a bad family name stops it with the known ones.
local H = require "helpers"

local function run(args)
  local status, out = H.sh(H.quote(H.host()) .. " examples/families_2d.lua " .. args)
  return out, status
end

describe("examples/families_2d.lua", function()
  local dir = os.tmpname()
  os.remove(dir)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("puts each family in one table, NLL beside the entropy on the same points", function()
    local out, rc = run("--families flow,ebm,gan --fraction 0.003 --n_samples 400 --n_test 200 --threads 1 --out "
      .. dir)
    assert.are.equal(0, rc, out)
    local f = assert(io.open(dir .. "/table.md"))
    local text = f:read("a")
    f:close()
    local rows = {}
    for line in text:gmatch("[^\n]+") do
      if line:match("^| [A-Z]") and not line:match("^| family") then rows[#rows + 1] = line end
    end
    assert.are.equal(3, #rows, text)
    local ents = {}
    for i, line in ipairs(rows) do
      local cells = {}
      for c in line:gmatch("([^|]+)") do cells[#cells + 1] = c:match("^%s*(.-)%s*$") end
      ents[i] = cells[4]                       -- family, steps, NLL, entropy, ...
    end
    -- one test set: the entropy column is the same number in every row
    assert.are.equal(ents[1], ents[2])
    assert.are.equal(ents[1], ents[3])
    local h = tonumber(ents[1]:match("^(%-?[%d.]+)"))
    -- eight Gaussians' entropy is about −1.07 nats; 200 points, a few tenths
    assert.is_true(h > -1.6 and h < -0.6, ents[1])
    -- the flow's exact NLL and the EBM's are numbers; an untrained model cannot beat the floor
    local flow_nll = tonumber(rows[1]:match("^| RealNVP | %d+ | (%-?[%d.]+)"))
    local ebm_nll = tonumber(rows[2]:match("^| EBM[^|]* | %d+ | (%-?[%d.]+)"))
    assert.is_truthy(flow_nll, rows[1])
    assert.is_truthy(ebm_nll, rows[2])
    assert.is_true(flow_nll > h and ebm_nll > h)
    assert.matches("^| WGAN%-GP | %d+ | – |", rows[3])
    for _, name in ipairs({ "flow", "ebm", "gan" }) do
      assert.is_true(H.is_png(dir .. "/" .. name .. "_samples.png"), name)
    end
  end)

  it("stops on an unknown family, naming the known ones", function()
    local out, rc = run("--families flows --out " .. dir .. "/x")
    assert.are.equal(2, rc, out)
    assert.matches("unknown family 'flows' %(known: ncsn,ddpm,sde,edm,flow,vae,ebm,gan%)", out)
  end)
end)
