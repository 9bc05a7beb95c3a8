-- Sampler fingerprints: every sampler run with fixed seeds on small fixed
-- inputs (untrained networks built from fixed generators, and the exact
-- scores of sc.data's toy mixtures), so that a change of structure can be
-- checked to leave the sampled numbers bit-identical.
--
-- Each case has `old`, the call as written before issue 13 (the three old
-- signatures, now the deprecated forms), and `new`, the same sampling in the
-- form sampler(model, x_init, levels, opts).  Both return x, info.
--
--   scorch spec/support/sampler_fingerprint.lua OUT.safetensors [old|new]
-- writes every case's samples (and info.nfe as metadata) to OUT; the
-- reference in spec/fixtures/sampler_fingerprint.safetensors was written
-- with `old` by the code at commit 453afb8, before the samplers changed.
local sc = require "scorch"
local param = require "scorch.param"
local schedules = require "scorch.schedules"
local S = require "scorch.samplers"

local F = {}

local function gen(seed) return sc.Generator(seed) end
local N = 32

-- fixed inputs --------------------------------------------------------------------------
local function points(seed) return sc.randn({ N, 2 }, { generator = gen(seed) }) end
local function images(seed) return sc.randn({ 2, 1, 8, 8 }, { generator = gen(seed) }) end
local mix = sc.data.two_gaussians()
local function score_mlp(scale)
  return sc.models.ScoreMLP { hidden = { 16, 16 }, generator = gen(3), scale_by_sigma = scale }
end
local function energy() return sc.models.EnergyMLP { hidden = { 16, 16 }, generator = gen(4) } end
local function ncsn() return sc.models.NCSN { channels = 4, generator = gen(5) } end
local function dmlp(cond_scale)
  return sc.models.DiffusionMLP { width = 16, blocks = 1, embed = 8, cond_scale = cond_scale, generator = gen(6) }
end
local function unet() return sc.models.UNet { channels = 8, mults = { 1, 2 }, generator = gen(7) } end
local sched = schedules.ddpm { T = 50 }
local vp, subvp = schedules.vp_sde(), schedules.subvp_sde()
local ve = schedules.ve_sde { sigma_min = 0.01, sigma_max = 10 }
local sigmas = schedules.geometric_sigmas(5, 0.1, 4)
local function karras(n) return (schedules.karras_sigmas(n, { sigma_max = 10 })) end

F.cases = {}
local function case(name, old, new) F.cases[#F.cases + 1] = { name = name, old = old, new = new } end

-- ---- Langevin ------------------------------------------------------------------------------
case("langevin_mixture", function()
  return S.langevin(mix, points(1), { step = 0.05, n_steps = 10, generator = gen(2), progress = false }), nil
end, function()
  local g = gen(2)
  return S.langevin(param.wrap(mix, { kind = "score" }), points(1), nil,
    { step_size = 0.05, steps = 10, generator = g, progress = false })
end)
case("langevin_score_mlp_sigma", function()
  return S.langevin(score_mlp(), points(1), { step = 0.01, n_steps = 5, sigma = 0.5, generator = gen(2),
    progress = false }), nil
end, function()
  local g = gen(2)
  return S.langevin(param.wrap(score_mlp(), { kind = "score" }), points(1), 0.5,
    { step_size = 0.01, steps = 5, generator = g, progress = false })
end)
case("langevin_energy", function()
  return S.langevin(energy(), points(1), { step = 0.01, n_steps = 5, generator = gen(2), progress = false }), nil
end, function()
  local g = gen(2)
  return S.langevin(param.wrap(energy()), points(1), nil, { step_size = 0.01, steps = 5, generator = g,
    progress = false })
end)
case("annealed_mixture_denoise", function()
  return S.annealed_langevin(mix, points(1) * 5, sigmas, { eps = 0.01, T = 3, generator = gen(2),
    denoise = true, progress = false }), nil
end, function()
  local g = gen(2)
  return S.annealed_langevin(param.wrap(mix), points(1) * 5, sigmas, { step_size = 0.01, steps_per_level = 3,
    generator = g, denoise = true, progress = false })
end)
case("annealed_score_mlp_reference", function()
  return S.annealed_langevin(score_mlp(true), points(1), sigmas, { eps = 0.01, T = 3, generator = gen(2),
    convention = "reference", progress = false }), nil
end, function()
  local g = gen(2)
  return S.annealed_langevin(param.wrap(score_mlp(true), { kind = "score" }), points(1), sigmas,
    { step_size = 0.01, steps_per_level = 3, generator = g, convention = "reference", progress = false })
end)
case("annealed_ncsn", function()
  return S.annealed_langevin(ncsn(), images(1), { 2, 0.5, 0.1 }, { eps = 0.01, T = 2, generator = gen(2),
    progress = false }), nil
end, function()
  local g = gen(2)
  return S.annealed_langevin(param.wrap(ncsn(), { kind = "score" }), images(1), { 2, 0.5, 0.1 },
    { step_size = 0.01, steps_per_level = 2, generator = g, progress = false })
end)

-- ---- DDPM / DDIM -------------------------------------------------------------------------------
case("ddpm_eps", function()
  return S.ddpm(dmlp(), sched, N, { generator = gen(2), steps = 10 })
end, function()
  local g = gen(2)
  local x = S.prior(sched, { N, 2 }, { generator = g })
  return S.ddpm(param.wrap(dmlp(), { kind = "eps", process = sched }), x, sched, { generator = g, steps = 10 })
end)
case("ddpm_x0_beta_tilde_clip", function()
  return S.ddpm(dmlp(), sched, N, { generator = gen(2), steps = 10, variance = "beta_tilde",
    clip_x0 = 1, prediction = "x0" })
end, function()
  local g = gen(2)
  local x = S.prior(sched, { N, 2 }, { generator = g })
  return S.ddpm(param.wrap(dmlp(), { kind = "x0", process = sched }), x, sched, { generator = g, steps = 10,
    variance = "beta_tilde", clip_x0 = 1 })
end)
case("ddpm_v_timesteps", function()
  return S.ddpm(dmlp(), sched, N, { generator = gen(2), timesteps = { 50, 31, 17, 4, 1 }, prediction = "v" })
end, function()
  local g = gen(2)
  local x = S.prior(sched, { N, 2 }, { generator = g })
  return S.ddpm(param.wrap(dmlp(), { kind = "v", process = sched }), x, sc.tensor { 50, 31, 17, 4, 1 },
    { generator = g })
end)
case("ddpm_full_T", function()
  return S.ddpm(dmlp(), sched, N, { generator = gen(2) })
end, function()
  local g = gen(2)
  local x = S.prior(sched, { N, 2 }, { generator = g })
  return S.ddpm(param.wrap(dmlp(), { kind = "eps", process = sched }), x, sched, { generator = g })
end)
case("ddim_eta0", function()
  return S.ddim(dmlp(), sched, N, { generator = gen(2), steps = 10 })
end, function()
  local g = gen(2)
  local x = S.prior(sched, { N, 2 }, { generator = g })
  return S.ddim(param.wrap(dmlp(), { kind = "eps", process = sched }), x, sched, { generator = g, steps = 10 })
end)
case("ddim_eta_half_trailing_x0_clip", function()
  return S.ddim(dmlp(), sched, N, { generator = gen(2), steps = 10, eta = 0.5, spacing = "trailing",
    prediction = "x0", clip_x0 = true })
end, function()
  local g = gen(2)
  local x = S.prior(sched, { N, 2 }, { generator = g })
  return S.ddim(param.wrap(dmlp(), { kind = "x0", process = sched }), x, sched, { generator = g, steps = 10,
    eta = 0.5, spacing = "trailing", clip_x0 = true })
end)
case("ddim_unet", function()
  return S.ddim(unet(), sched, { 2, 1, 8, 8 }, { generator = gen(2), steps = 3 })
end, function()
  local g = gen(2)
  local x = S.prior(sched, { 2, 1, 8, 8 }, { generator = g })
  return S.ddim(param.wrap(unet(), { process = sched }), x, sched, { generator = g, steps = 3 })
end)
case("ddim_x_init_float64_eps_fn", function()
  local D = param.from_distribution(mix)
  return S.ddim(param.eps_fn(D, sched), sched, N, { generator = gen(2), steps = 8, eta = 1,
    x_init = points(1):double() })
end, function()
  local g = gen(2)
  return S.ddim(param.wrap(mix), points(1):double(), sched, { generator = g, steps = 8, eta = 1 })
end)

-- ---- reverse SDE ----------------------------------------------------------------------------------
case("euler_maruyama_vp_score", function()
  return S.euler_maruyama(dmlp(1000), vp, N, { generator = gen(2), steps = 10 })
end, function()
  local g = gen(2)
  local x = S.prior(vp, { N, 2 }, { generator = g })
  return S.euler_maruyama(param.wrap(dmlp(1000), { kind = "score", process = vp }), x, vp,
    { generator = g, steps = 10 })
end)
case("euler_maruyama_ve_eps", function()
  return S.euler_maruyama(dmlp(1000), ve, N, { generator = gen(2), steps = 10, prediction = "eps", eps = 1e-3 })
end, function()
  local g = gen(2)
  local x = S.prior(ve, { N, 2 }, { generator = g })
  return S.euler_maruyama(param.wrap(dmlp(1000), { kind = "eps", process = ve }), x, ve,
    { generator = g, steps = 10, eps = 1e-3 })
end)
case("euler_maruyama_vp_score_fn_edm", function()
  return S.euler_maruyama(param.score_fn(param.edm(dmlp(250)), vp), vp, N, { generator = gen(2), steps = 10 })
end, function()
  local g = gen(2)
  local x = S.prior(vp, { N, 2 }, { generator = g })
  return S.euler_maruyama(param.wrap(dmlp(250), { kind = "edm" }), x, vp, { generator = g, steps = 10 })
end)
case("pc_vp_reverse_diffusion_langevin", function()
  return S.predictor_corrector(dmlp(1000), vp, N, { generator = gen(2), steps = 25 })
end, function()
  local g = gen(2)
  local x = S.prior(vp, { N, 2 }, { generator = g })
  return S.predictor_corrector(param.wrap(dmlp(1000), { kind = "score", process = vp }), x, vp,
    { generator = g, steps = 25 })
end)
case("pc_subvp_em_no_corrector_x0", function()
  return S.predictor_corrector(dmlp(1000), subvp, N, { generator = gen(2), steps = 5,
    predictor = "euler_maruyama", corrector = "none", prediction = "x0" })
end, function()
  local g = gen(2)
  local x = S.prior(subvp, { N, 2 }, { generator = g })
  return S.predictor_corrector(param.wrap(dmlp(1000), { kind = "x0", process = subvp }), x, subvp,
    { generator = g, steps = 5, predictor = "euler_maruyama", corrector = "none" })
end)
case("pc_ve_corrector_only_2", function()
  return S.predictor_corrector(dmlp(1000), ve, N, { generator = gen(2), steps = 4, predictor = "none",
    corrector_steps = 2, snr = 0.1 })
end, function()
  local g = gen(2)
  local x = S.prior(ve, { N, 2 }, { generator = g })
  return S.predictor_corrector(param.wrap(dmlp(1000), { kind = "score", process = ve }), x, ve,
    { generator = g, steps = 4, predictor = "none", corrector_steps = 2, snr = 0.1 })
end)
case("pc_ve_mixture_score_fn", function()
  return S.predictor_corrector(param.score_fn(param.from_distribution(mix), ve), ve, N,
    { generator = gen(2), steps = 6 })
end, function()
  local g = gen(2)
  local x = S.prior(ve, { N, 2 }, { generator = g })
  return S.predictor_corrector(param.from_distribution(mix), x, ve, { generator = g, steps = 6 })
end)
case("pflow_vp_rk45", function()
  return S.probability_flow(dmlp(1000), vp, N, { generator = gen(2), rtol = 1e-3, atol = 1e-3 })
end, function()
  local g = gen(2)
  local x = S.prior(vp, { N, 2 }, { generator = g })
  return S.probability_flow(param.wrap(dmlp(1000), { kind = "score", process = vp }), x, vp,
    { rtol = 1e-3, atol = 1e-3 })
end)
case("pflow_vp_heun_denoise_v", function()
  return S.probability_flow(dmlp(1000), vp, N, { generator = gen(2), method = "heun", steps = 5,
    denoise = true, prediction = "v" })
end, function()
  local g = gen(2)
  local x = S.prior(vp, { N, 2 }, { generator = g })
  return S.probability_flow(param.wrap(dmlp(1000), { kind = "v", process = vp }), x, vp,
    { method = "heun", steps = 5, denoise = true })
end)
case("pflow_ve_euler_mixture", function()
  return S.probability_flow(param.score_fn(param.from_distribution(mix), ve), ve, N,
    { generator = gen(2), method = "euler", steps = 6 })
end, function()
  local g = gen(2)
  local x = S.prior(ve, { N, 2 }, { generator = g })
  return S.probability_flow(param.wrap(mix), x, ve, { method = "euler", steps = 6 })
end)

-- ---- denoiser samplers ----------------------------------------------------------------------------
case("naive_edm", function()
  return S.naive_backward(param.edm(dmlp(250)), karras(8), N, { generator = gen(2) })
end, function()
  local g = gen(2)
  local lv = karras(8)
  return S.naive_backward(param.edm(dmlp(250)), S.prior(lv, { N, 2 }, { generator = g }), lv)
end)
case("naive_edm_stochastic", function()
  return S.naive_backward(param.edm(dmlp(250)), karras(8), N, { generator = gen(2), stochastic = true })
end, function()
  local g = gen(2)
  local lv = karras(8)
  return S.naive_backward(param.edm(dmlp(250)), S.prior(lv, { N, 2 }, { generator = g }), lv,
    { method = "ancestral", generator = g })
end)
case("naive_edm_stochastic_eta_huge", function()
  return S.naive_backward(param.edm(dmlp(250)), karras(8), N, { generator = gen(2), stochastic = true,
    eta = math.huge })
end, function()
  local g = gen(2)
  local lv = karras(8)
  return S.naive_backward(param.edm(dmlp(250)), S.prior(lv, { N, 2 }, { generator = g }), lv,
    { method = "ancestral", eta = math.huge, generator = g })
end)
case("naive_mixture_default_levels", function()
  return S.naive_backward(param.from_distribution(mix), nil, N, { generator = gen(2), steps = 6,
    sigma_max = 20 })
end, function()
  local g = gen(2)
  local lv = schedules.karras_sigmas(6, { sigma_max = 20 })
  return S.naive_backward(param.wrap(mix), S.prior(lv, { N, 2 }, { generator = g }), lv)
end)
case("heun_edm", function()
  return S.heun(param.edm(dmlp(250)), karras(6), N, { generator = gen(2) })
end, function()
  local g = gen(2)
  local lv = karras(6)
  return S.heun(param.wrap(dmlp(250), { kind = "edm" }), S.prior(lv, { N, 2 }, { generator = g }), lv)
end)
case("heun_edm_churn", function()
  return S.heun(param.edm(dmlp(250)), karras(6), N, { generator = gen(2), S_churn = 5, S_min = 0.05,
    S_max = 5, S_noise = 1.003 })
end, function()
  local g = gen(2)
  local lv = karras(6)
  return S.heun(param.edm(dmlp(250)), S.prior(lv, { N, 2 }, { generator = g }), lv,
    { generator = g, S_churn = 5, S_min = 0.05, S_max = 5, S_noise = 1.003 })
end)
case("heun_ddpm_denoiser_tensor_levels", function()
  local D = param.denoiser(dmlp(), { prediction = "eps", process = sched })
  local _, levels = schedules.karras_sigmas(5, { sigma_max = 10, sigma_min = 0.05 })
  return S.heun(D, levels, N, { generator = gen(2) })
end, function()
  local g = gen(2)
  local m = param.wrap(dmlp(), { kind = "eps", process = sched })
  local _, levels = schedules.karras_sigmas(5, { sigma_max = 10, sigma_min = 0.05 })
  return S.heun(m, S.prior(levels, { N, 2 }, { generator = g }), levels)
end)
case("heun_vp_denoiser_images", function()
  local D = param.denoiser(unet(), { prediction = "eps", process = vp })
  return S.heun(D, karras(3), { 2, 1, 8, 8 }, { generator = gen(2) })
end, function()
  local g = gen(2)
  local lv = karras(3)
  return S.heun(param.wrap(unet(), { kind = "eps", process = vp }), S.prior(lv, { 2, 1, 8, 8 },
    { generator = g }), lv)
end)
case("dpmpp_2m_edm", function()
  return S.dpmpp_2m(param.edm(dmlp(250)), karras(6), N, { generator = gen(2) })
end, function()
  local g = gen(2)
  local lv = karras(6)
  return S.dpmpp_2m(param.edm(dmlp(250)), S.prior(lv, { N, 2 }, { generator = g }), lv)
end)
case("dpmpp_2m_mixture_default_levels", function()
  return S.dpmpp_2m(param.from_distribution(mix), nil, N, { generator = gen(2), steps = 5, sigma_max = 20 })
end, function()
  local g = gen(2)
  local lv = schedules.karras_sigmas(5, { sigma_max = 20 })
  return S.dpmpp_2m(param.wrap(mix), S.prior(lv, { N, 2 }, { generator = g }), lv)
end)

-- run(which) -> {name = x}, {name = nfe (string)}
function F.run(which, only)
  local out, meta = {}, {}
  for _, c in ipairs(F.cases) do
    if not only or only[c.name] then
      local fn = c[which or "old"]
      if fn then
        local x, info = fn()
        out[c.name] = x
        if info and info.nfe then meta[c.name .. ".nfe"] = tostring(math.tointeger(info.nfe)) end
      end
    end
  end
  return out, meta
end

-- as a script: write the fingerprints
if arg and arg[0] and arg[0]:match("sampler_fingerprint%.lua$") then
  local path, which = arg[1], arg[2] or "old"
  assert(path, "usage: scorch spec/support/sampler_fingerprint.lua OUT.safetensors [old|new]")
  local out, meta = F.run(which)
  -- the CPU it was recorded on: the spec asks for the same bits only there
  local info = io.open("/proc/cpuinfo", "r")
  meta.cpu = info and info:read("a"):match("model name%s*:%s*([^\n]*)") or "?"
  if info then info:close() end
  sc.save(path, out, meta)
  local n = 0
  for _ in pairs(out) do n = n + 1 end
  print(("%d fingerprints (%s form) written to %s"):format(n, which, path))
end

return F
