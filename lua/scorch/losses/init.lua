--- sc.losses: training objectives, each loss(model, batch, opts) -> scalar.
-- Score matching lives in score_matching.lua; DDPM, EDM, ELBO and GAN losses
-- join as files of their own, merged here.
-- @module scorch.losses
local M = {}

local function merge(mod) require("scorch.util").merge_module(M, mod, "scorch.losses") end

merge(require "scorch.losses.score_matching")
merge(require "scorch.losses.diffusion")
merge(require "scorch.losses.classification")
merge(require "scorch.losses.vae")   -- elbo, iwae
merge(require "scorch.losses.cd")    -- cd, langevin_negatives, ReplayBuffer
-- GAN, f-GAN, WGAN(-GP) and MMD-GAN objectives: a table of their own.
M.gan = require "scorch.losses.gan"

-- Long names, as the papers call them.
M.explicit_score_matching = M.esm
M.implicit_score_matching = M.ism
M.sliced_score_matching = M.ssm
M.sliced_score_matching_vr = M.ssm_vr
M.denoising_score_matching = M.dsm

return M
