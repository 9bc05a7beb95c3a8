-- Data-parallel denoising score matching on 2-D data (sc.dist): the same
-- script on one process or on many under mpirun.  Every rank holds the
-- network and takes its shard of each global batch (a seeded permutation
-- of a fixed data set); gradients are summed over ranks after backward;
-- rank 0 alone prints, logs and writes checkpoints; a resumed run restores
-- every rank from the same checkpoint.  Then the ranks draw the samples
-- between them (an Euler ODE sampler), and the Fréchet distance to the
-- data is computed from statistics merged across ranks.
--
--   bin/scorch examples/dist_dsm_2d.lua                     # one process
--   mpirun -np 2 bin/scorch examples/dist_dsm_2d.lua        # two ranks, one thread each
--   (Open MPI as root: mpirun --allow-run-as-root; more ranks than cores: --oversubscribe)
--   ... --steps 2000 --resume                               # continue from OUT/ckpt.safetensors
--
-- Each training row's noise comes from its own seed (sc.dist.sample_noise
-- at the row's position in the run), so the same global batches give the
-- same parameters, to float rounding, on any number of ranks; on a fixed
-- number of ranks a run is bitwise reproducible, resumed or not.
--
-- Options: --out DIR (default out/dist_dsm_2d), --data, --steps, --batch
-- (global), --lr, --hidden, --seed, --samples, --ckpt-every, --log-every,
-- --resume, --threads (per rank; default 1).
local sc = require "scorch"
local util = sc.util
local dist = sc.dist

local defaults = {
  out = "out/dist_dsm_2d", data = "eight_gaussians", steps = 1000, batch = 256, lr = 2e-3, hidden = 128,
  seed = 0, samples = 2000, ckpt_every = 250, log_every = 100, resume = false, threads = 1, rows = 16384,
}
local opts = util.parse_args(arg, defaults, "usage: scorch examples/dist_dsm_2d.lua [options]\n")
local function int(v) return math.tointeger(v) or error("expected an integer, got " .. tostring(v)) end
sc.set_num_threads(int(opts.threads))
local rank, size = dist.init()
local main = rank == 0
local function say(fmt, ...) if main then print(fmt:format(...)) end end
if main then assert(util.mkdir(opts.out)) end
local ckpt = opts.out .. "/ckpt.safetensors"

-- ---- data, model, optimiser: the same on every rank --------------------------------------------

local seed = int(opts.seed)
local data = sc.data.toy(opts.data):sample(int(opts.rows), { generator = sc.Generator(dist.seed_for(seed, 1)) })
local net = sc.nn.MLP { ["in"] = 3, out = 2, hidden = { int(opts.hidden), int(opts.hidden), int(opts.hidden) },
  generator = sc.Generator(dist.seed_for(seed, 2)) }
-- the config is compared across ranks (an error names the first difference)
local dp = dist.DataParallel(net, { config = opts })
local opt = sc.optim.Adam(dp:parameters(), { lr = opts.lr })
local batches = dist.ShardedSampler(data:size(1), int(opts.batch), { seed = seed })

-- log σ ~ N(-1.2, 1.2²) (Karras et al. 2022's training distribution, scaled to 2-D toys)
local P_MEAN, P_STD = -1.2, 1.2
-- The network predicts the noise ε from (x + σε, log σ); its score is −ε̂/σ.
local function eps_hat(x, log_sigma) return net(sc.cat({ x, log_sigma }, 2)) end

-- ---- checkpoints: written by rank 0, read by every rank ------------------------------------------

local function save_checkpoint(step)
  local tensors, meta = {}, { step = tostring(step), ranks = tostring(size) }
  for i, p in ipairs(dp:parameters()) do tensors["param." .. i] = p end
  for i, st in pairs(opt:state_dict().state) do
    for k, v in pairs(st) do
      local key = ("optim.%d.%s"):format(i, k)
      if sc.is_tensor(v) then tensors[key] = v else meta[key] = tostring(v) end
    end
  end
  assert(sc.save(ckpt, tensors, meta))
end

local function load_checkpoint()
  local tensors, meta = sc.load(ckpt)
  if not tensors then return 0 end
  local sd = opt:state_dict()
  sd.state = {}
  sc.no_grad(function()
    for i, p in ipairs(dp:parameters()) do p:copy_(tensors["param." .. i]) end
  end)
  for name, t in pairs(tensors) do
    local i, k = name:match("^optim%.(%d+)%.(.+)$")
    if i then
      i = int(tonumber(i))
      sd.state[i] = sd.state[i] or {}
      sd.state[i][k] = t
    end
  end
  for name, v in pairs(meta) do
    local i, k = name:match("^optim%.(%d+)%.(.+)$")
    if i then sd.state[int(tonumber(i))][k] = math.tointeger(tonumber(v)) or tonumber(v) end
  end
  opt:load_state_dict(sd)
  return int(tonumber(meta.step))
end

local first_step = 1
if opts.resume then
  -- every rank reads the same file (a shared file system; without one,
  -- copy it to every host first)
  dist.barrier()
  first_step = load_checkpoint() + 1
  assert(dp:in_sync(), "ranks differ after loading the checkpoint")
  say("resumed at step %d from %s", first_step - 1, ckpt)
end

-- ---- training -----------------------------------------------------------------------------------

say("dist_dsm_2d: %d rank(s), global batch %d (%d per rank), %d steps", size, int(opts.batch),
  int(opts.batch) // size, int(opts.steps))
local log = main and assert(io.open(opts.out .. "/log.txt", opts.resume and "a" or "w"))
local t0 = sc.time()
for step = first_step, int(opts.steps) do
  local idx, weight = batches:indices(step)
  local x0 = data:index_select(1, idx)
  local noise = dist.sample_noise(batches:offset(step) + 1, #idx, { 3 }, dist.seed_for(seed, 3))
  local eps, log_sigma = noise:narrow(2, 1, 2), noise:narrow(2, 3, 1) * P_STD + P_MEAN
  local loss = ((eps_hat(x0 + log_sigma:exp() * eps, log_sigma) - eps) ^ 2):sum(2):mean()
  opt:zero_grad()
  loss:backward()
  dp:sync_gradients(weight)
  opt:step()
  if step % int(opts.log_every) == 0 then
    -- the global batch's mean loss: each rank's mean weighted by its rows
    local global = dist.all_reduce(loss:detach() * weight):item()
    say("step %5d  loss %.4f  %.1f ms/step", step, global, 1e3 * (sc.time() - t0) / (step - first_step + 1))
    if log then log:write(("%d %.6f\n"):format(step, global)) end
  end
  if step % int(opts.ckpt_every) == 0 or step == int(opts.steps) then
    if main then save_checkpoint(step) end
    dist.barrier() -- the file is whole before any rank may read it
  end
end
if log then log:close() end

-- ---- sampling, spread over the ranks ---------------------------------------------------------------

-- Euler steps of the probability-flow ODE dx/dσ = ε̂(x, σ) over Karras et
-- al. 2022's σ_i (eq. 5, ρ = 7) from 4 to 0.002, then to 0 (their
-- Algorithm 1 without the Heun correction)
local N_STEPS, S_MAX, S_MIN, RHO = 40, 4.0, 0.002, 7
local function sigma_at(i)
  if i == N_STEPS then return 0 end
  return (S_MAX ^ (1 / RHO) + i / (N_STEPS - 1) * (S_MIN ^ (1 / RHO) - S_MAX ^ (1 / RHO))) ^ RHO
end
local function draw(m, gen)
  local x = sc.randn({ m, 2 }, { generator = gen }) * S_MAX
  return sc.no_grad(function()
    for i = 0, N_STEPS - 1 do
      local s = sigma_at(i)
      x = x + eps_hat(x, sc.full({ m, 1 }, math.log(s))) * (sigma_at(i + 1) - s)
    end
    return x
  end)
end
local samples = dist.sample(int(opts.samples), draw, { chunk = 250, seed = dist.seed_for(seed, 4) })

-- Fréchet distance of 2-D statistics: each rank accumulates its own rows,
-- the accumulators are merged across ranks
local acc = sc.metrics.stats_accumulator(2)
local mine = {}
for i = rank + 1, samples:size(1), size do mine[#mine + 1] = i end
acc:add(samples:index_select(1, mine))
local stats = dist.merge_stats(acc):result()
local fd = sc.metrics.fid(stats, sc.metrics.feature_stats(data))
local checksum = 0
for _, p in ipairs(dp:parameters()) do checksum = checksum + p:double():abs():sum():item() end
say("samples: %d drawn over %d rank(s); Fréchet distance to the data (2-D statistics) %.4f", samples:size(1), size, fd)
say("final: step %d, sum |parameters| %.9f", int(opts.steps), checksum)
if main then assert(sc.save(opts.out .. "/samples.safetensors", { samples = samples })) end
