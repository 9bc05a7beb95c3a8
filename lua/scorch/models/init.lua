--- sc.models: score, noise and denoiser networks and energy models.  Each
-- file holds one model class; U-Nets, VAEs, GANs and flows join here.
-- @module scorch.models
local M = {}

M.ScoreMLP = require "scorch.models.score_mlp"
M.EnergyMLP = require "scorch.models.energy"
-- The convolutional energy for images (energy.lua), trained by sc.losses.cd.
M.ConvEnergy = M.EnergyMLP.ConvEnergy

--- Lower-case constructors, as in sc.models.score_mlp{...}
function M.score_mlp(opts) return M.ScoreMLP(opts) end
function M.energy_mlp(opts) return M.EnergyMLP(opts) end

-- Time-conditional MLP for diffusion models (diffusion_mlp.lua).
M.DiffusionMLP = require "scorch.models.diffusion_mlp"
--- sc.models.diffusion_mlp{...}: a DiffusionMLP (see diffusion_mlp.lua for options).
function M.diffusion_mlp(opts) return M.DiffusionMLP(opts) end

-- Image networks: U-Net, NCSN CNN, classifier, noise embeddings.
M.UNet = require("scorch.models.unet").UNet
M.embeddings = require "scorch.models.embeddings"
M.NCSN = require "scorch.models.ncsn"
M.Classifier = require "scorch.models.classifier"
M.classifier_path, M.load_classifier = M.Classifier.path, M.Classifier.load

-- Class conditioning (labels, the null class, label dropout) and the exact
-- class-conditional models of a labelled Gaussian mixture.
M.conditioning = require "scorch.models.conditioning"
M.drop_labels = M.conditioning.drop_labels
M.NULL_CLASS = M.conditioning.NULL
local mixture = require "scorch.models.mixture"
M.mixture_score, M.mixture_classifier = mixture.mixture_score, mixture.mixture_classifier
-- The noise-conditional classifier of classifier guidance (noisy_classifier.lua).
M.NoisyClassifier = require "scorch.models.noisy_classifier"

-- GANs: MLP and DCGAN-style generators and critics, the training loop (gan.lua).
M.gan = require "scorch.models.gan"
M.MLPGenerator, M.MLPDiscriminator = M.gan.MLPGenerator, M.gan.MLPDiscriminator
M.DCGenerator, M.DCCritic = M.gan.DCGenerator, M.gan.DCCritic

-- Likelihood models: RealNVP flows (flow layers in scorch.flows) and VAEs.
M.RealNVP = require "scorch.models.realnvp"
M.flows = require "scorch.flows"
M.VAE = require "scorch.models.vae"

return M
