--- sc.viz: PNG pictures drawn on a small Lua raster canvas (canvas.lua) and
-- the figures of toy experiments built on it (plots.lua) and of image
-- experiments (image_figures.lua); text through a TrueType font; a run's
-- folder as a static HTML page (report.lua).
-- @module scorch.viz
local canvas = require "scorch.viz.canvas"
local plots = require "scorch.viz.plots"
local images = require "scorch.viz.image_figures"
local report = require "scorch.viz.report"

local M = {
  canvas = canvas.new,        -- sc.viz.canvas(w, h [, background])
  Canvas = canvas.Canvas,
  colors = canvas.colors,
  colormap = canvas.colormap,
  colormaps = canvas.colormaps,
  text_width = canvas.text_width,
  axes = plots.axes,
  panels = plots.panels,
  ticks = plots.ticks,
  scatter = plots.scatter,
  sample_panels = plots.sample_panels,
  density = plots.density,
  score_fields = plots.score_fields,
  trajectories = plots.trajectories,
  loss_curve = plots.loss_curve,
  image_grid = images.image_grid,
  denoising_strip = images.denoising_strip,
  class_histogram = images.class_histogram,
  report = report.report,
  text_height = canvas.text_height,
}

return M
