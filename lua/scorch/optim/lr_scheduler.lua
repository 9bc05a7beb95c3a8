--- Learning-rate schedules.  Each sets the optimiser's group lrs to the
-- value for step 0 when made, and to the value for step k after its k-th
-- :step() — call it once per optimiser step, after opt:step().
--
--   warmup(opt, W):            lr_k = base·min(1, (k+1)/W)
--   cosine(opt, {T_max, eta_min=0, warmup=0}):
--                              lr_k = base·(k+1)/W for k < W, then
--                              eta_min + (base − eta_min)(1 + cos(π·t))/2,
--                              t = (k − W)/(T_max − W) clamped to [0, 1]
--                              (base at both k = W−1 and k = W; with W = 0,
--                              PyTorch's CosineAnnealingLR up to T_max;
--                              held at eta_min afterwards)
--   step(opt, {step_size, gamma=0.1}): lr_k = base·gamma^⌊k/step_size⌋
--   lambda(opt, fn):           lr_k = base·fn(k)
-- base is each group's lr when the schedule was made.
-- @module scorch.optim.lr_scheduler
local util = require "scorch.util"

local M = {}

local Scheduler = {}
Scheduler.__index = Scheduler

local function new(opt, lr_at, fields)
  if type(opt) ~= "table" or type(opt.param_groups) ~= "table" then
    error("scorch.optim.lr_scheduler: expected an optimiser", 3)
  end
  local self = setmetatable(fields or {}, Scheduler)
  self.optimizer, self.lr_at, self.last_step = opt, lr_at, 0
  self.base_lrs = {}
  for i, g in ipairs(opt.param_groups) do self.base_lrs[i] = g.lr end
  self:apply()
  return self
end

function Scheduler:apply()
  for i, g in ipairs(self.optimizer.param_groups) do
    g.lr = self.lr_at(self, self.last_step, self.base_lrs[i])
  end
end

function Scheduler:step()
  self.last_step = self.last_step + 1
  self:apply()
  return self.optimizer.param_groups[1].lr
end

-- The current learning rates, one per group.
function Scheduler:get_last_lr()
  local out = {}
  for i, g in ipairs(self.optimizer.param_groups) do out[i] = g.lr end
  return out
end

function Scheduler:state_dict()
  return { last_step = self.last_step, base_lrs = { table.unpack(self.base_lrs) } }
end

function Scheduler:load_state_dict(sd)
  self.last_step = sd.last_step
  self.base_lrs = { table.unpack(sd.base_lrs) }
  self:apply()
end

local function positive_int(v, what)
  if math.type(v) ~= "integer" or v < 1 then
    error(("scorch.optim.lr_scheduler: %s must be a positive integer (got %s)"):format(what, tostring(v)), 3)
  end
end

local function warmup_lr(self, k, base)
  return base * math.min(1, (k + 1) / self.warmup_steps)
end

function M.warmup(opt, steps)
  positive_int(steps, "warmup steps")
  return new(opt, warmup_lr, { warmup_steps = steps })
end

local function cosine_lr(self, k, base)
  local W = self.warmup_steps
  if k < W then return base * (k + 1) / W end
  local t = math.max(0, math.min(1, (k - W) / (self.T_max - W)))
  return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * t)) / 2
end

function M.cosine(opt, opts)
  opts = util.check_options(opts, { "T_max", "eta_min", "warmup" }, "scorch.optim.lr_scheduler.cosine")
  positive_int(opts.T_max, "T_max")
  local W = opts.warmup or 0
  if math.type(W) ~= "integer" or W < 0 or W >= opts.T_max then
    error("scorch.optim.lr_scheduler.cosine: warmup must be an integer in [0, T_max)", 2)
  end
  return new(opt, cosine_lr, { T_max = opts.T_max, eta_min = opts.eta_min or 0, warmup_steps = W })
end

local function step_lr(self, k, base)
  return base * self.gamma ^ (k // self.step_size)
end

function M.step(opt, opts)
  opts = util.check_options(opts, { "step_size", "gamma" }, "scorch.optim.lr_scheduler.step")
  positive_int(opts.step_size, "step_size")
  return new(opt, step_lr, { step_size = opts.step_size, gamma = opts.gamma or 0.1 })
end

local function lambda_lr(self, k, base)
  return base * self.fn(k)
end

function M.lambda(opt, fn)
  if type(fn) ~= "function" then
    error("scorch.optim.lr_scheduler.lambda: expected a function of the step", 2)
  end
  return new(opt, lambda_lr, { fn = fn })
end

M.Scheduler = Scheduler
return M
