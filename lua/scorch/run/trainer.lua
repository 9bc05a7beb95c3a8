--- The training runtime behind `scorch train`: builds a run from a resolved
-- config, trains it with Adam, a learning-rate schedule and an EMA, logs
-- one JSON line per `log.every` steps, writes checkpoints holding the whole
-- state, and resumes from the newest one so that an interrupted run ends
-- bitwise equal to an uninterrupted one.
--
-- Randomness: the global generator is seeded with `seed`; the network's
-- initialisation, the data draws and the loss's noise each have a
-- generator of their own (streams 0, 1, 2 of `seed`, see `stream_seed`),
-- and all three are saved in every checkpoint.
-- @module scorch.run.trainer
local sc = require "scorch"
local core = require "scorch.core"
local util = require "scorch.util"
local config = require "scorch.run.config"
local checkpoint = require "scorch.run.checkpoint"
local families = require "scorch.run.families"
local sampling = require "scorch.run.sampling"
local run_data = require "scorch.run.data"

local durable = core.durable

local M = {}

--- A seed for stream k of a run's seed (SplitMix64 of the pair), so streams
-- of neighbouring seeds do not overlap.
-- @param seed integer
-- @param k integer: the stream
-- @return integer
-- @usage local g = sc.Generator(trainer.stream_seed(0, 1))
function M.stream_seed(seed, k)
  return require("scorch.samplers.common").seed_mix(seed, k)
end

local code_version_cache
--- The code version a checkpoint records: the library's version and the
-- git commit of the tree it runs from, when there is one (read from .git,
-- no shell).
-- @return string
-- @usage print(trainer.code_version())
function M.code_version()
  if code_version_cache then return code_version_cache end
  local v = sc._VERSION or "scorch"
  local init = package.searchpath("scorch", package.path)
  local root = init and init:match("^(.*)/lua/scorch/init%.lua$")
  local function read(p)
    local f = io.open(p, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
  end
  local head = root and read(root .. "/.git/HEAD")
  if head then
    local ref = head:match("^ref: (%S+)")
    local commit = ref and read(root .. "/.git/" .. ref)
    if not commit and ref then
      local packed = read(root .. "/.git/packed-refs") or ""
      commit = packed:match("(%x+) " .. ref:gsub("%p", "%%%0"))
    end
    commit = commit or head
    v = v .. " (" .. (commit:match("%x+") or "?"):sub(1, 12) .. ")"
  end
  code_version_cache = v
  return v
end

-- ---- building a run ---------------------------------------------------------------

--- The factor of the linear_tail schedule after k optimiser steps of T:
-- the warm-up's (k + 1)/W while k < W, then 1 until the last `tail`
-- fraction of the steps, then linear from 1 down to eta_min at k = T (the
-- 2-D examples' schedule: constant, then to zero over the last 30%).
-- @param k integer: optimiser steps done
-- @param T integer: the run's steps
-- @param o table: the config's optim (warmup, tail, eta_min)
-- @return number
-- @usage trainer.linear_tail(900, 1000, {warmup = 0, tail = 0.3, eta_min = 0}) --> 1/3
function M.linear_tail(k, T, o)
  local w = o.warmup > 0 and math.min(1, (k + 1) / o.warmup) or 1
  local left = (T - k) / T -- the fraction of the steps still to come
  if left >= o.tail then return w end
  return w * (o.eta_min + (1 - o.eta_min) * math.max(0, left) / o.tail)
end

--- Builds everything a run holds, in its initial state (step 0).
-- @param cfg a resolved config
-- @return table {cfg, data, fam, net, names, params, slots (optimisers with their schedules), opt (the
--   first), ema, gens, step = 0, ...}
-- @usage local r = trainer.build(config.resolve(raw))
function M.build(cfg)
  if cfg.threads > 0 then sc.set_num_threads(cfg.threads) end
  sc.manual_seed(cfg.seed)
  local data = run_data.open(cfg)
  local fam = families.get(cfg.family).build(cfg, sc.Generator(M.stream_seed(cfg.seed, 0)), data)
  local net = fam.net
  local named = net:named_parameters()
  local names, params = {}, {}
  for i, nt in ipairs(named) do names[i], params[i] = nt[1], nt[2] end
  local o = cfg.optim
  -- one optimiser over every parameter, or the family's: each {name =, prefix = (of the parameter
  -- names it takes), kind = "adam" | "rmsprop"}, all with the config's lr and schedule
  local slots = {}
  for _, spec in ipairs(fam.optimizers or { { name = "" } }) do
    local idx, ps = {}, {}
    for i, n in ipairs(names) do
      if not spec.prefix or n:sub(1, #spec.prefix) == spec.prefix then idx[#idx + 1], ps[#ps + 1] = i, params[i] end
    end
    local opt
    if spec.kind == "rmsprop" then
      opt = sc.optim.RMSprop(ps, { lr = o.lr, weight_decay = o.weight_decay })
    else
      opt = sc.optim.Adam(ps, { lr = o.lr, betas = { o.beta1, o.beta2 }, weight_decay = o.weight_decay })
    end
    local sched
    if o.schedule == "cosine" then
      sched = sc.optim.lr_scheduler.cosine(opt, { T_max = cfg.steps, eta_min = o.eta_min * o.lr,
        warmup = math.min(o.warmup, cfg.steps - 1) })
    elseif o.schedule == "linear_tail" then
      sched = sc.optim.lr_scheduler.lambda(opt, function(k) return M.linear_tail(k, cfg.steps, o) end)
    else
      sched = sc.optim.lr_scheduler.lambda(opt, function(k) return math.min(1, (k + 1) / math.max(1, o.warmup)) end)
    end
    slots[#slots + 1] = { name = spec.name, opt = opt, sched = sched, idx = idx }
  end
  local ema = sc.optim.EMA(params, { decay = cfg.ema.decay })
  local run = {
    cfg = cfg, data = data, fam = fam, net = net, names = names, params = params, slots = slots,
    opt = slots[1].opt, ema = ema, step = 0, batches = 0, skipped = 0, log_bytes = 0,
    window = { sum = 0.0, n = 0, skipped = 0 },
    gens = { data = sc.Generator(M.stream_seed(cfg.seed, 1)), noise = sc.Generator(M.stream_seed(cfg.seed, 2)) },
  }
  if cfg.dist then M.setup_dist(run) end
  return run
end

-- The seeds of a rank's data and noise streams: rank 0's are those of a
-- run without dist, so a world of one trains exactly as one.
local function rank_seeds(seed, rank)
  if rank == 0 then return M.stream_seed(seed, 1), M.stream_seed(seed, 2) end
  return M.stream_seed(seed, 1 + 1000 * rank), M.stream_seed(seed, 2 + 1000 * rank)
end

--- Makes a built run data-parallel over the ranks of mpirun (cfg.dist):
-- sc.dist.DataParallel over the network (the same config and parameter
-- shapes on every rank, else an error naming the first difference; rank
-- 0's weights copied to all), batch / ranks rows per rank and step (image
-- sets: this rank's slice of every global batch of the shared epoch
-- permutation; toy sets: fresh points from the rank's own stream), data
-- and noise streams of its own per rank, and rank 0 alone writing.
-- @param run a run from build whose config has dist = true
-- @return run
-- @usage trainer.setup_dist(run) -- done by build when cfg.dist
function M.setup_dist(run)
  local cfg = run.cfg
  if run.fam.train_step then
    error(("dist = true: the %s family trains itself (several optimisers in turn) and is not"
      .. " data-parallel yet"):format(cfg.family), 0)
  end
  local dist = require "scorch.dist"
  dist.init()
  local size, rank = dist.size(), dist.rank()
  if cfg.batch % size ~= 0 then
    error(("dist = true: a batch of %d does not split evenly over %d ranks"):format(cfg.batch, size), 0)
  end
  local dp = dist.DataParallel(run.net, { config = config.serialize(cfg) })
  local sd, sn = rank_seeds(cfg.seed, rank)
  run.gens = { data = sc.Generator(sd), noise = sc.Generator(sn) }
  run.dist = { mod = dist, dp = dp, rank = rank, size = size, per = cfg.batch // size,
    weight = 1 / size, writer = rank == 0 }
  return run
end

-- Whether this process writes the run folder (rank 0, or no dist).
local function writer(run) return not run.dist or run.dist.writer end

-- ---- the state in a checkpoint ----------------------------------------------------------

local slot_key

local function gen_state(g) return g and g:get_state() or sc.get_rng_state() end

-- The checkpoint name of an optimiser's state tensor k of parameter pname.
slot_key = function(slot, pname, k)
  if slot.name == "" then return ("optim.%s.%s"):format(pname, k) end
  return ("optim.%s:%s.%s"):format(slot.name, pname, k)
end

-- A slot's part of the optim or lr_schedule metadata.
local function slot_part(path, value, slot, what)
  local part = value
  if slot.name ~= "" then part = type(value.slots) == "table" and value.slots[slot.name] end
  if type(part) ~= "table" then
    error(("checkpoint %s does not match the run: no %s state for optimiser '%s'"):format(path, what, slot.name), 0)
  end
  return part
end

-- The tensors and metadata of a run's whole state.
local function snapshot(run)
  local tensors, meta = {}, {}
  for name, t in pairs(run.net:state_dict()) do tensors["model." .. name] = t end
  for i, s in ipairs(run.ema.shadow) do tensors["ema." .. run.names[i]] = s end
  local optim, scheds = {}, {}
  for _, slot in ipairs(run.slots) do
    local sd = slot.opt:state_dict()
    local scalars = {}
    for i, st in pairs(sd.state) do
      local pname = run.names[slot.idx[i]]
      local rec = {}
      for k, v in pairs(st) do
        if sc.is_tensor(v) then
          tensors[slot_key(slot, pname, k)] = v
          rec[k] = "tensor"
        else
          rec[k] = v
        end
      end
      scalars[pname] = rec
    end
    local groups = {}
    for gi, g in ipairs(sd.param_groups) do
      local c = {}
      for k, v in pairs(g) do if k ~= "params" then c[k] = v end end
      groups[gi] = c
    end
    optim[slot.name], scheds[slot.name] = { groups = groups, state = scalars }, slot.sched:state_dict()
  end
  local single = #run.slots == 1 and run.slots[1].name == ""
  local extra = run.fam.extra
  if extra then
    local ts, values = extra.get()
    for name, t in pairs(ts) do tensors["extra." .. name] = t end
    meta.extra = config.serialize(values)
  end
  local e = run.ema
  meta.format = checkpoint.FORMAT
  meta.step = tostring(run.step)
  meta.config = config.serialize(run.cfg)
  meta.code_version = M.code_version()
  -- one optimiser: {groups, state} and the schedule's state; several: {slots = {name -> those}}
  meta.optim = config.serialize(single and optim[""] or { slots = optim })
  meta.lr_schedule = config.serialize(single and scheds[""] or { slots = scheds })
  meta.ema = config.serialize({ decay = e.decay, warmup = e.warmup, num_updates = e.num_updates })
  meta.rng = config.serialize({ global = sc.get_rng_state(), data = gen_state(run.gens.data),
    noise = gen_state(run.gens.noise) })
  meta.data_position = config.serialize({ batches = run.batches, order = run.data:position() })
  meta.log = config.serialize({ bytes = run.log_bytes, window = run.window, skipped = run.skipped })
  return tensors, meta
end

-- The expected tensors of a checkpoint of this run, in the order they are
-- checked: the model, its average, then the optimiser's moments.
local function expected(run, path, optim)
  local list = {}
  local sd = run.net:state_dict()
  local mnames = {}
  for name in pairs(sd) do mnames[#mnames + 1] = name end
  table.sort(mnames)
  for _, name in ipairs(mnames) do list[#list + 1] = { "model." .. name, sd[name]:shape() } end
  for i, p in ipairs(run.params) do list[#list + 1] = { "ema." .. run.names[i], p:shape() } end
  local extra = run.fam.extra
  if extra then
    local names = {}
    for name in pairs(extra.shapes) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do list[#list + 1] = { "extra." .. name, extra.shapes[name] } end
  end
  for _, slot in ipairs(run.slots) do
    local state = slot_part(path, optim, slot, "optimiser").state or {}
    for _, i in ipairs(slot.idx) do
      local rec = state[run.names[i]]
      if rec then
        local keys = {}
        for k, v in pairs(rec) do if v == "tensor" then keys[#keys + 1] = k end end
        table.sort(keys)
        for _, k in ipairs(keys) do list[#list + 1] = { slot_key(slot, run.names[i], k), run.params[i]:shape() } end
      end
    end
  end
  return list
end

local function meta_value(path, meta, key)
  local v, err = config.deserialize(meta[key], key)
  if v == nil then
    error(("checkpoint %s: metadata '%s' is missing or unreadable (%s)"):format(path, key, tostring(err)), 0)
  end
  return v
end

--- Restores a run's whole state from a checkpoint, after checking that it
-- belongs to this run: the config (outside steps, intervals and threads),
-- then every tensor's name and shape.  Nothing is changed when a check
-- fails; the error names the file and the first mismatch.
-- @param run a run from build
-- @param path string: the checkpoint
-- @usage trainer.restore(run, "runs/x/ckpt-00000500.safetensors")
function M.restore(run, path)
  local raw_tensors, raw_meta = sc.load(path)
  if not raw_tensors then
    error(("checkpoint %s cannot be loaded: %s"):format(path, tostring(raw_meta):gsub("^scorch%.", "")), 0)
  end
  raw_meta = raw_meta or {}
  if raw_meta.format ~= checkpoint.FORMAT then
    error(("checkpoint %s is not a scorch run checkpoint (format %s, expected %s)"):format(path,
      tostring(raw_meta.format), checkpoint.FORMAT), 0)
  end
  local saved_cfg = meta_value(path, raw_meta, "config")
  -- fields added to the schema since the checkpoint was written take their defaults
  local resolved_ok, resolved = pcall(config.resolve, saved_cfg)
  if resolved_ok then saved_cfg = resolved end
  local diff = config.first_difference(saved_cfg, run.cfg)
  if diff then error(("checkpoint %s does not match the run's config at %s"):format(path, diff), 0) end
  local optim = meta_value(path, raw_meta, "optim")
  local tensors, meta = checkpoint.read(path, expected(run, path, optim), raw_tensors, raw_meta)
  local step = math.tointeger(tonumber(meta.step))
  if not step or step < 0 then error(("checkpoint %s: bad step '%s'"):format(path, tostring(meta.step)), 0) end
  local sched, ema_meta = meta_value(path, meta, "lr_schedule"), meta_value(path, meta, "ema")
  local rng, pos, log = meta_value(path, meta, "rng"), meta_value(path, meta, "data_position"),
    meta_value(path, meta, "log")
  local extra_values = run.fam.extra and meta_value(path, meta, "extra")
  for _, slot in ipairs(run.slots) do slot_part(path, sched, slot, "learning-rate schedule") end
  -- every check passed: change the run
  run.data:set_position(pos.order or {})
  if extra_values then
    local ts = {}
    for name in pairs(run.fam.extra.shapes) do ts[name] = tensors["extra." .. name] end
    run.fam.extra.set(ts, extra_values)
  end
  local sd = {}
  for name in pairs(run.net:state_dict()) do sd[name] = tensors["model." .. name] end
  run.net:load_state_dict(sd)
  local shadow = {}
  for i, name in ipairs(run.names) do shadow[i] = tensors["ema." .. name] end
  run.ema:load_state_dict({ decay = ema_meta.decay, warmup = ema_meta.warmup, num_updates = ema_meta.num_updates,
    shadow = shadow })
  for _, slot in ipairs(run.slots) do
    local part = slot_part(path, optim, slot, "optimiser")
    local osd = { state = {}, param_groups = {} }
    for gi, g in ipairs(part.groups) do
      local c = {}
      for k, v in pairs(g) do c[k] = v end
      osd.param_groups[gi] = c
    end
    for j, i in ipairs(slot.idx) do
      local name = run.names[i]
      local rec = (part.state or {})[name]
      if rec then
        local st = {}
        for k, v in pairs(rec) do st[k] = v == "tensor" and tensors[slot_key(slot, name, k)] or v end
        osd.state[j] = st
      end
    end
    slot.opt:load_state_dict(osd)
    slot.sched:load_state_dict(slot_part(path, sched, slot, "learning-rate schedule"))
  end
  sc.set_rng_state(rng.global)
  run.gens.data:set_state(rng.data)
  run.gens.noise:set_state(rng.noise)
  if run.dist and run.dist.rank > 0 then
    -- a checkpoint holds rank 0's streams; every rank draws as many values
    -- a step, so another rank's offsets are the same, its seeds its own
    local seed_data, seed_noise = rank_seeds(run.cfg.seed, run.dist.rank)
    run.gens.data:set_state({ seed_data, rng.data[2] })
    run.gens.noise:set_state({ seed_noise, rng.noise[2] })
  end
  run.step, run.batches = step, pos.batches
  run.log_bytes, run.window, run.skipped = log.bytes, log.window, log.skipped
  run.resumed_from = { path = path, code_version = meta.code_version }
  return run
end

-- ---- one step ------------------------------------------------------------------------------

-- Squared gradient norm, and the name of the first parameter whose
-- gradient is not finite (nil when all are).
local function grad_norm2(run)
  local total, bad = 0.0, nil
  for i, p in ipairs(run.params) do
    local g = p.grad
    if g then
      local s = (g * g):sum():item()
      if s ~= s or s == math.huge then bad = bad or run.names[i] end
      total = total + s
    end
  end
  return total, bad
end

local function finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

-- The module a parameter belongs to ("blocks.2.fc" for "blocks.2.fc.weight").
local function module_of(name) return name:match("^(.*)%.[^%.]+$") or name end

local function fmt_num(v)
  if not finite(v) then return "null" end
  return ("%.17g"):format(v)
end

--- Runs one training step; returns loss, grad norm, the learning rate
-- the step used, and nil or a description of what went non-finite.
-- @param run a run from build
-- @return loss (number), grad norm (number), lr (number), problem (string or nil)
-- @usage local loss, gn, lr, bad = trainer.step(run)
function M.step(run)
  local cfg = run.cfg
  if run.fam.train_step then return M.custom_step(run) end
  local d = run.dist
  local x
  if not d then
    x = run.data:sample(cfg.batch, { generator = run.gens.data })
  elseif run.data.is_images then
    x = run.data:sample(cfg.batch, { generator = run.gens.data, shard = { d.rank, d.size } })
  else
    x = run.data:sample(d.per, { generator = run.gens.data })
  end
  run.batches = run.batches + 1
  local loss = run.fam.loss(x, run.gens.noise)
  local nan_at = checkpoint.test_fault("nan_loss")
  if nan_at then
    for s in tostring(nan_at):gmatch("%d+") do
      if math.tointeger(tonumber(s)) == run.step + 1 then loss = loss * (0 / 0) end
    end
  end
  for _, slot in ipairs(run.slots) do slot.opt:zero_grad() end
  loss:backward()
  local lv = loss:item()
  if d then
    -- the gradient of the global batch's mean on every rank, bit for bit
    -- the same, so every rank takes the same decisions below
    d.dp:sync_gradients(d.weight)
    lv = d.mod.all_reduce(sc.tensor({ lv * d.weight }, { dtype = "float64" })):item()
  end
  local n2, bad = grad_norm2(run)
  local gn, lr = math.sqrt(n2), run.opt.lr
  local problem
  if not finite(lv) or bad or not finite(gn) then
    problem = ("the loss is %s"):format(lv ~= lv and "NaN" or fmt_num(lv) == "null" and tostring(lv) or fmt_num(lv))
    if bad then
      problem = problem .. (", and the first module (in parameter order) whose gradient is not finite is '%s'"
        .. " (parameter %s)"):format(module_of(bad), bad)
    elseif not finite(gn) then
      problem = problem .. ", and the gradient norm overflows"
    end
    for _, slot in ipairs(run.slots) do slot.opt:zero_grad() end
    return lv, gn, lr, problem
  end
  if cfg.optim.grad_clip > 0 then sc.optim.clip_grad_norm(run.params, cfg.optim.grad_clip) end
  for _, slot in ipairs(run.slots) do
    slot.opt:step()
    slot.sched:step()
  end
  run.ema:update()
  return lv, gn, lr, nil
end

--- One step of a family that trains itself (GANs: several optimisers in
-- turn): fam.train_step{batch = function() -> a fresh batch, gen = the
-- noise generator, opt = {name -> optimiser}} returns the loss to log and
-- a table {grad_norm =, log = {name -> number}}; an error it raises (a
-- non-finite loss) stops the run.  Then the schedules and the EMA step.
-- @param run a run whose family has train_step
-- @return loss, grad norm, lr, problem (string or nil), extra log fields
-- @usage local loss, gn, lr, bad, fields = trainer.custom_step(run)
function M.custom_step(run)
  local cfg = run.cfg
  local opts = {}
  for _, slot in ipairs(run.slots) do opts[slot.name] = slot.opt end
  local lr = run.opt.lr
  local ok, lv, info = pcall(run.fam.train_step, {
    batch = function()
      run.batches = run.batches + 1
      return run.data:sample(cfg.batch, { generator = run.gens.data })
    end,
    gen = run.gens.noise, opt = opts,
  })
  if not ok then return 0 / 0, 0 / 0, lr, tostring(lv):gsub("^[^\n]-%.lua:%d+: ", "") end
  info = info or {}
  for _, slot in ipairs(run.slots) do slot.sched:step() end
  run.ema:update()
  return lv, info.grad_norm or 0 / 0, lr, nil, info.log
end

-- ---- the run folder ---------------------------------------------------------------------

local function write_log_line(run, lv, gn, lr, rate, elapsed, fields)
  local w = run.window
  local mean = w.n > 0 and w.sum / w.n or 0 / 0
  local more = {}
  if fields then -- a family's own numbers (a GAN's two losses), by name
    local keys = {}
    for k in pairs(fields) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do more[#more + 1] = ('"%s":%s,'):format(k, fmt_num(fields[k])) end
  end
  local line = ('{"step":%d,"loss":%s,"loss_mean":%s,"lr":%s,"grad_norm":%s,"skipped":%d,%s'
    .. '"samples_per_s":%.1f,"elapsed":%.3f}\n'):format(run.step, fmt_num(lv), fmt_num(mean), fmt_num(lr),
    fmt_num(gn), run.skipped, table.concat(more), rate, elapsed)
  local ok, err = run.log:write(line)
  if ok then ok, err = run.log:flush() end
  if not ok then error(("cannot write %s/metrics.jsonl: %s"):format(run.dir, tostring(err)), 0) end
  run.window = { sum = 0.0, n = 0, skipped = 0 }
end

--- The deterministic fields of a metrics line (everything but the timing),
-- as one string: what the exact-resume spec compares.
-- @param line string: one line of metrics.jsonl
-- @return string
-- @usage assert(trainer.log_key(a) == trainer.log_key(b))
function M.log_key(line) return (line:gsub(',"samples_per_s":[^,}]*', ""):gsub(',"elapsed":[^,}]*', "")) end

--- The loss_mean column of a metrics log, as {steps, values}.
-- @param path string: metrics.jsonl
-- @return table of steps, table of values
-- @usage local steps, losses = trainer.read_losses("runs/x/metrics.jsonl")
function M.read_losses(path)
  local steps, values = {}, {}
  local f = io.open(path, "rb")
  if not f then return steps, values end
  for line in f:lines() do
    local s, v = line:match('"step":(%d+).-"loss_mean":([^,}]+)')
    local n = tonumber(v)
    if s and n then steps[#steps + 1], values[#values + 1] = tonumber(s), n end
  end
  f:close()
  return steps, values
end

--- Draws samples as a figure: points over the data's density, or a grid
-- of images (at most 64).
-- @param path string: the PNG
-- @param run a run (its data says which)
-- @param x tensor [N, 2] or [N, C, H, W] in [−1, 1]
-- @param title string
-- @return the path, or nil and a message
-- @usage trainer.figure("runs/x/samples.png", run, x, "step 100")
function M.figure(path, run, x, title)
  if run.data.is_images then
    local k = math.min(x:size(1), 64)
    return sc.viz.image_grid(path, x:narrow(1, 1, k), { range = { -1, 1 }, title = title, nrow = 8 })
  end
  return sc.viz.scatter(path, x:narrow(1, 1, math.min(x:size(1), 5000)),
    { density = run.data.density, title = title, radius = 1 })
end

local function figures(run, with_samples)
  local _, losses = M.read_losses(run.dir .. "/metrics.jsonl")
  if #losses >= 2 then
    -- the points are already means over log.every steps: a light average on top
    pcall(sc.viz.loss_curve, run.dir .. "/loss.png", losses,
      { title = ("%s: mean loss per %d steps"):format(run.cfg.name, run.cfg.log.every), smooth = 0.3,
        xlabel = ("log line (one per %d steps)"):format(run.cfg.log.every) })
  end
  if with_samples then
    local rng = sc.get_rng_state() -- drawing figures must not move the run's numbers
    local s = run.cfg.sample
    local x = sampling.draw(run, { n = s.n, sampler = s.sampler, steps = s.steps,
      seed = M.stream_seed(run.cfg.seed, 3), chunk = 1000 })
    M.figure(("%s/samples-%08d.png"):format(run.dir, run.step), run, x,
      ("%s, step %d, EMA"):format(run.cfg.name, run.step))
    sc.set_rng_state(rng)
  end
end

local function save_checkpoint(run)
  run.log:flush()
  run.log_bytes = run.log:seek("end")
  local ok, err = durable.fsync_file(run.dir .. "/metrics.jsonl")
  if not ok then return nil, err end
  local tensors, meta = snapshot(run)
  return checkpoint.save(run.dir, run.step, tensors, meta, run.cfg.checkpoint.keep)
end

-- The family's log fields plus those of run.on_log(run), a caller's hook
-- (an example's measurements during training): numbers by name, written
-- into the metrics line and so kept, cut back and resumed with it.  The
-- hook runs with the global generator saved and restored, so it cannot
-- move the run's numbers.
local function with_on_log(run, fields)
  if not run.on_log then return fields end
  local rng = sc.get_rng_state()
  local more = run.on_log(run)
  sc.set_rng_state(rng)
  if not more then return fields end
  local out = {}
  for k, v in pairs(fields or {}) do out[k] = v end
  for k, v in pairs(more) do
    if type(k) ~= "string" or not k:match("^[%w_]+$") or type(v) ~= "number" then
      error(("scorch.run.trainer: on_log must return numbers by word-like names (got %s = %s)"):format(tostring(k),
        tostring(v)), 0)
    end
    out[k] = v
  end
  return out
end

--- Where a config's run lives: `out`, else runs/<name>.
-- @param cfg a resolved config
-- @return string
-- @usage print(trainer.run_dir(cfg))
function M.run_dir(cfg) return cfg.out ~= "" and cfg.out or "runs/" .. cfg.name end

-- A line on stdout; `print`, which a progress bar on screen wraps to keep
-- its line apart.
local function say(run, fmt, ...)
  if not run.quiet then
    print(fmt:format(...))
    io.stdout:flush()
  end
end

--- Opens (or resumes) the run in its folder: writes the resolved config,
-- restores the newest checkpoint when there is one, and puts the metrics
-- log back to that checkpoint's end.
-- @param cfg a resolved config
-- @param opts table {resume = bool (the folder must hold this run), quiet = bool}
-- @return the run
-- @usage local run = trainer.open(cfg, {resume = true})
function M.open(cfg, opts)
  opts = util.check_options(opts, { "resume", "quiet" }, "scorch.run.trainer.open")
  local dir = M.run_dir(cfg)
  local ckpts = sc.core.is_dir(dir) and checkpoint.list(dir) or {}
  if not opts.resume and #ckpts > 0 then
    error(("run folder %s already holds checkpoints (the newest at step %d): resume it with `scorch train %s`,"
      .. " or start a new run with out=<folder>"):format(dir, ckpts[#ckpts].step, dir), 0)
  end
  local run = M.build(cfg)
  run.dir, run.quiet = dir, opts.quiet or not writer(run)
  if not writer(run) then -- another rank: the same state, nothing written
    if #ckpts > 0 then M.restore(run, ckpts[#ckpts].path) end
    run.log = { write = function() return true end, flush = function() return true end,
      seek = function() return 0 end }
    return run
  end
  local ok, err = util.mkdir(dir)
  if not ok then error(("cannot make the run folder %s: %s"):format(dir, tostring(err)), 0) end
  if #ckpts > 0 then
    M.restore(run, ckpts[#ckpts].path)
  end
  checkpoint.clean(dir)
  ok, err = config.write(dir .. "/config.lua", cfg)
  if not ok then error(("cannot write to the run folder %s: %s"):format(dir, tostring(err)), 0) end
  local log = dir .. "/metrics.jsonl"
  local f = io.open(log, "ab")
  if not f then error(("cannot write %s"):format(log), 0) end
  f:close()
  ok, err = durable.truncate(log, run.log_bytes)
  if not ok then
    error(("%s does not reach the end recorded by the checkpoint (%d bytes): %s"):format(log, run.log_bytes,
      tostring(err)), 0)
  end
  run.log = assert(io.open(log, "ab"))
  return run
end

--- Trains an opened run to cfg.steps, checkpointing every checkpoint.every
-- steps, at the end, and when SIGINT or SIGTERM arrives (the current step
-- is finished first; a second signal exits at once).  When run.on_log is
-- set, it is called at each metrics line and the numbers it returns (a
-- table name -> number, or nil) go into that line.
-- @param run a run from open
-- @return status: 0 done, 128 + signal when stopped by one; raises on a
--   non-finite loss or gradient (on_nonfinite = "stop") or a failed write,
--   naming the step and keeping the last good checkpoint
-- @usage local status = trainer.train(trainer.open(cfg))
function M.train(run)
  local cfg = run.cfg
  local resume_cmd = "scorch train " .. run.dir
  say(run, "run %s (%s): step %d of %d; resume with `%s`", run.dir, cfg.family, run.step, cfg.steps, resume_cmd)
  local from = run.resumed_from
  if from and from.code_version ~= M.code_version() then
    say(run, "note: %s was written by %s; this is %s", from.path, tostring(from.code_version), M.code_version())
  end
  durable.install_stop_signals()
  local status = 0
  local ok, err = pcall(function()
    local bar = util.progress.new(math.max(1, cfg.steps - run.step),
      { desc = run.step > 0 and ("train from %d"):format(run.step) or "train" })
    local t0, tw, last_ckpt = sc.time(), sc.time(), nil
    while run.step < cfg.steps do
      local lv, gn, lr, problem, fields = M.step(run)
      run.step = run.step + 1
      if problem then
        if cfg.on_nonfinite == "stop" then
          local last = checkpoint.list(run.dir)
          error(("step %d: %s; training stopped (on_nonfinite=skip skips such steps). The last good checkpoint is %s")
            :format(run.step, problem, last[1] and last[#last].path or "none (no checkpoint was written)"), 0)
        end
        run.skipped = run.skipped + 1
        run.window.skipped = run.window.skipped + 1
      else
        run.window.sum, run.window.n = run.window.sum + lv, run.window.n + 1
      end
      bar:update(1, { loss = lv, lr = lr, step = tostring(run.step) })
      if writer(run) and (run.step % cfg.log.every == 0 or run.step == cfg.steps) then
        local now = sc.time()
        write_log_line(run, lv, gn, lr, cfg.batch * cfg.log.every / math.max(now - tw, 1e-9), now - t0,
          with_on_log(run, fields))
        tw = now
      end
      if tonumber(checkpoint.test_fault("kill_at")) == run.step then checkpoint.kill_self() end
      local stop = durable.stop_signal()
      if run.dist then -- every rank stops at the same step
        stop = math.tointeger(run.dist.mod.all_reduce(sc.tensor({ stop }, { dtype = "float64" }),
          { op = "max" }):item())
      end
      if writer(run) and (run.step % cfg.checkpoint.every == 0 or run.step == cfg.steps or stop ~= 0) then
        local c0 = sc.time()
        local path, werr = save_checkpoint(run)
        if not path then error(werr .. "; the previous checkpoint is intact", 0) end
        last_ckpt = path
        local draw = cfg.sample.every > 0 and run.step % cfg.sample.every == 0
        figures(run, draw or run.step == cfg.steps)
        say(run, "step %d/%d  loss %.5g  lr %.3g  (%.1f s)  %s", run.step, cfg.steps, lv, lr, sc.time() - t0, path)
        tw = tw + (sc.time() - c0) -- samples_per_s counts training, not checkpoints and figures
      end
      if stop ~= 0 then
        status = 128 + stop
        bar:close()
        say(run, "stopped by %s at step %d; checkpoint %s; resume with `%s`", stop == 2 and "SIGINT" or "SIGTERM",
          run.step, last_ckpt, resume_cmd)
        return
      end
    end
    bar:close()
  end)
  run.log:flush()
  durable.restore_signals()
  if not ok then
    error(tostring(err) .. ("\nrun folder %s; resume with `%s`"):format(run.dir, resume_cmd), 0)
  end
  if status == 0 then
    say(run, "done: %d steps in %s; resume or extend with `%s steps=N`", run.step, run.dir, resume_cmd)
  end
  return status
end

return M
