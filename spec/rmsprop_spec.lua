-- sc.optim.RMSprop against torch.optim.RMSprop's update written out by hand
-- (torch/optim/rmsprop.py, single-tensor path), element by element in
-- float64 Lua numbers, over a few steps of a loss with a known gradient.
local sc = require "scorch"

-- loss(p) = Σ c_i p_i² / 2 + Σ d_i p_i  →  ∂/∂p_i = c_i p_i + d_i
local C = { 1.0, 3.0, 0.5, -2.0 }
local Dc = { 0.3, -1.0, 2.0, 0.1 }
local P0 = { 0.5, -0.25, 1.5, 2.0 }

local function loss(p)
  local c, d = sc.tensor(C, { dtype = "float64" }), sc.tensor(Dc, { dtype = "float64" })
  return (p * p * c * 0.5 + p * d):sum()
end

-- PyTorch's loop, by hand:
--   g += wd·p;  v = αv + (1−α)g²;  centred: ḡ = αḡ + (1−α)g, avg = √(v − ḡ²) + eps
--   else avg = √v + eps;  momentum: b = μb + g/avg, p −= lr·b;  else p −= lr·g/avg
local function reference(o, steps)
  local p, v, gbar, b = {}, {}, {}, {}
  for i = 1, #P0 do p[i], v[i], gbar[i], b[i] = P0[i], 0, 0, 0 end
  for _ = 1, steps do
    for i = 1, #p do
      local g = C[i] * p[i] + Dc[i]
      g = g + o.weight_decay * p[i]
      v[i] = o.alpha * v[i] + (1 - o.alpha) * g * g
      local avg
      if o.centered then
        gbar[i] = o.alpha * gbar[i] + (1 - o.alpha) * g
        avg = math.sqrt(v[i] - gbar[i] * gbar[i]) + o.eps
      else
        avg = math.sqrt(v[i]) + o.eps
      end
      if o.momentum > 0 then
        b[i] = o.momentum * b[i] + g / avg
        p[i] = p[i] - o.lr * b[i]
      else
        p[i] = p[i] - o.lr * g / avg
      end
    end
  end
  return p
end

-- torch 1.13's own results after 5 steps for cases 1 and 4 (printed once by
-- /usr/bin/python3 with torch.optim.RMSprop on the same problem)
local TORCH = {
  [1] = { 0.202355927411534, 0.0360130481999385, 1.17903703608227, 2.33363244268396 },
  [4] = { 0.330968867495321, -0.0831749082366635, 1.32639845596214, 2.17620182124493 },
}

local CASES = {
  { lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, centered = false },
  { lr = 0.05, alpha = 0.9, eps = 1e-6, weight_decay = 0.1, momentum = 0, centered = false },
  { lr = 0.02, alpha = 0.95, eps = 1e-8, weight_decay = 0, momentum = 0.9, centered = false },
  { lr = 0.01, alpha = 0.8, eps = 1e-5, weight_decay = 0.01, momentum = 0.5, centered = true },
}

describe("sc.optim.RMSprop", function()
  for ci, o in ipairs(CASES) do
    it(("follows PyTorch's update over 5 steps (case %d)"):format(ci), function()
      local p = sc.tensor(P0, { dtype = "float64" }):requires_grad(true)
      local opt = sc.optim.RMSprop({ p }, o)
      for _ = 1, 5 do
        opt:zero_grad()
        loss(p):backward()
        opt:step()
      end
      local want, got = reference(o, 5), p:detach():values()
      for i = 1, #want do
        assert.is_true(math.abs(got[i] - want[i]) < 1e-12,
          ("element %d: %.15g, by hand %.15g"):format(i, got[i], want[i]))
      end
      for i, w in ipairs(TORCH[ci] or {}) do
        assert.is_true(math.abs(got[i] - w) < 1e-12, ("element %d: %.15g, torch %.15g"):format(i, got[i], w))
      end
      -- a different formula (no bias of the first step) would land elsewhere
      assert.is_true(math.abs(got[1] - P0[1]) > 1e-3)
    end)
  end

  it("defaults match PyTorch's and bad options are refused", function()
    local p = sc.zeros(2):requires_grad(true)
    local opt = sc.optim.RMSprop({ p })
    local g = opt.param_groups[1]
    assert.same({ 1e-2, 0.99, 1e-8, 0, 0, false },
      { g.lr, g.alpha, g.eps, g.weight_decay, g.momentum, g.centered })
    assert.has_error(function() sc.optim.RMSprop({ p }, { alpha = 1.5 }) end)
    assert.has_error(function() sc.optim.RMSprop({ p }, { lr = -1 }) end)
    assert.has_error(function() sc.optim.RMSprop({ p }, { centered = 1 }) end)
    -- a state dict round trip keeps the running average
    p.grad = sc.ones(2); opt:step()
    local sd = opt:state_dict()
    local opt2 = sc.optim.RMSprop({ p })
    opt2:load_state_dict(sd)
    assert.is_true(math.abs(opt2.state[p].square_avg:values()[1] - 0.01) < 1e-7)
  end)
end)
