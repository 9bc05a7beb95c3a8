-- Where a W2 step's time goes (bench/scorch/workloads.lua's W2 loop, timed
-- part by part): the network's input (a full column of t/T beside x), the
-- network, the update of x, and the noise.  Not a paired workload: a
-- profile of scorch alone, for the small ops around the chain kernel.
--
--   bin/scorch bench/scorch/w2_parts.lua [--steps 300] [--threads 1]
--
-- Prints microseconds per step for each part and the whole step.
local sc = require "scorch"

local HERE = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local A = dofile(HERE .. "args.lua")({ steps = 300, threads = 1 }, "w2_parts.lua")
sc.set_num_threads(A.threads)
sc.manual_seed(0)
local model = dofile(HERE .. "steps.lua").mlp(3, 2) -- W2's network
local T, n = 1000, 10000
local betas = sc.schedules.linear_betas(T) -- W2's: 1e-4 ... 0.02
local abar, prod = {}, 1.0
for t = 1, T do prod = prod * (1 - betas[t]); abar[t] = prod end
local t_in, t_net, t_upd, t_noise = 0, 0, 0, 0
sc.no_grad(function()
  local x = sc.randn(n, 2)
  local start = sc.time()
  for t = T, T - A.steps + 1, -1 do
    local b = betas[t]
    local a0 = sc.time()
    local inp = sc.cat({ x, sc.full({ n, 1 }, t / T) }, 2)
    local a1 = sc.time()
    local eps = model(inp)
    local a2 = sc.time()
    x = (x - eps * (b / math.sqrt(1 - abar[t]))) * (1 / math.sqrt(1 - b))
    local a3 = sc.time()
    if t > 1 then x = x + sc.randn(n, 2) * math.sqrt(b) end
    local a4 = sc.time()
    t_in, t_net, t_upd, t_noise = t_in + a1 - a0, t_net + a2 - a1, t_upd + a3 - a2, t_noise + a4 - a3
  end
  local us = function(v) return v / A.steps * 1e6 end
  print(string.format("W2 parts, %d threads, us per step: whole %.0f | input (full + cat) %.0f | "
    .. "network %.0f | update %.0f | noise %.0f", A.threads, us(sc.time() - start), us(t_in),
    us(t_net), us(t_upd), us(t_noise)))
end)
