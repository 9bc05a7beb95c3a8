-- Does matmul precision "medium" change an image DDPM's samples?  Not a
-- paired workload: a check of scorch alone, the image half of
-- examples/mixed_precision_2d.lua.
--
-- Loads the EMA weights of an examples/ddpm_fashion_mnist.lua checkpoint
-- (its metadata gives the U-Net), draws the same images from the same x_T
-- and noise with float32 products ("highest") and with bfloat16 ones
-- ("medium": in the U-Net only the noise embedding's linear layers, since
-- convolutions and attention stay float32), for each seed, and
-- prints FID, KID, precision and recall against Fashion-MNIST's reference
-- features (the trained classifier's, scripts/train_classifier.lua), the
-- sampling time, and how far apart the two draws' pixels are.
--
--   bin/scorch bench/scorch/bf16_images.lua [--ckpt out/ddpm_fashion_mnist/ddpm.safetensors]
--       [--n 500] [--steps 50] [--seeds 2] [--threads 1]
local sc = require "scorch"

local A = { ckpt = "out/ddpm_fashion_mnist/ddpm.safetensors", n = 500, steps = 50, seeds = 2, threads = 1 }
do
  local i = 1
  while i <= #arg do
    local k = arg[i]:match("^%-%-(%w+)$")
    local v = arg[i + 1]
    if not k or A[k] == nil or v == nil then
      io.stderr:write("usage: bf16_images.lua [--ckpt F] [--n N] [--steps S] [--seeds K] [--threads T] (bad: "
        .. tostring(arg[i]) .. ")\n")
      os.exit(2)
    end
    A[k] = k == "ckpt" and v or math.tointeger(tonumber(v))
    if A[k] == nil or (k ~= "ckpt" and A[k] < 1) then
      io.stderr:write("bf16_images.lua: --" .. k .. " wants a positive integer\n")
      os.exit(2)
    end
    i = i + 2
  end
end
sc.set_num_threads(A.threads)

local sd, meta = sc.load(A.ckpt)
if not sd then
  io.stderr:write(("bf16_images.lua: %s (train one with bin/scorch examples/ddpm_fashion_mnist.lua --quick)\n")
    :format(tostring(meta)))
  os.exit(1)
end
local mults, attention = {}, {}
for m in meta.mults:gmatch("[^,]+") do
  mults[#mults + 1] = math.tointeger(tonumber(m))
  attention[#attention + 1] = false
end
local net = sc.models.UNet { channels = math.tointeger(tonumber(meta.channels)), mults = mults,
  attention = attention, blocks = math.tointeger(tonumber(meta.blocks)), mid_attention = false,
  out = "eps", cond = "t", generator = sc.Generator(0) }
local ema = {}
for k, v in pairs(sd) do
  local name = k:match("^ema%.(.*)$")
  if name then ema[name] = v end
end
net:load_state_dict(ema)
net:eval()
local sched = sc.schedules.ddpm { kind = "linear", T = math.tointeger(tonumber(meta.T)) }
local eps = sc.param.wrap(net, { kind = "eps", process = sched })

local function draw(precision, seed)
  local before = sc.set_matmul_precision(precision)
  local g = sc.Generator(seed)
  local x0 = sc.randn({ A.n, 1, 28, 28 }, { generator = g })
  local t0 = sc.time()
  local x = sc.util.in_chunks(A.n, 250, function(first, m)
    return sc.samplers.ddpm(eps, x0:narrow(1, first, m), sched, { steps = A.steps, generator = g, clip_x0 = true })
  end)
  local secs = sc.time() - t0
  sc.set_matmul_precision(before)
  return (sc.clamp(x, -1, 1) + 1) / 2, secs
end

print(("%s: U-Net channels %s mults {%s}, %d images, %d DDPM steps, %d thread(s); AVX512-BF16: %s"):format(
  A.ckpt, meta.channels, meta.mults, A.n, A.steps, sc.get_num_threads(),
  sc.core.cpu_has_bf16() and "yes" or "no (\"medium\" is float32 here)"))
print(("%-5s %-9s %8s %10s %9s %7s %8s %s"):format("seed", "precision", "FID", "KID", "precision", "recall",
  "time", "max |pixel diff|"))
local fids = { highest = {}, medium = {} }
for s = 1, A.seeds do
  local hi
  for _, p in ipairs({ "highest", "medium" }) do
    local x, secs = draw(p, 100 + s)
    local rep = sc.metrics.image_report(x, "fashion_mnist",
      { per_class = false, floor = false, generator = sc.Generator(7) })
    fids[p][s] = rep.fid
    local diff = hi and ("%.3g (mean %.2g)"):format((x - hi):abs():max():item(), (x - hi):abs():mean():item()) or "-"
    print(("%-5d %-9s %8.3f %10.5f %9.3f %7.3f %7.1fs %s"):format(s, p, rep.fid, rep.kid, rep.precision,
      rep.recall, secs, diff))
    hi = hi or x
  end
end
if A.seeds > 1 then
  print(("FID between seeds at float32: %.3f to %.3f; medium minus highest per seed:"):format(
    math.min(table.unpack(fids.highest)), math.max(table.unpack(fids.highest))))
  for s = 1, A.seeds do io.write((" %+.3f"):format(fids.medium[s] - fids.highest[s])) end
  print()
end
