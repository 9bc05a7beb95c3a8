-- LuaRocks build of scorch from a checkout:
--
--   luarocks --lua-version=5.4 make               (Debian: LuaRocks defaults to 5.1)
--   luarocks --lua-version=5.4 --local make       (into ~/.luarocks, no root)
--
-- Offline: no dependency is fetched; the project's Makefile builds with the
-- system's Lua 5.4 headers, OpenBLAS, zlib and readline (the Debian packages
-- liblua5.4-dev libopenblas-dev zlib1g-dev libreadline-dev libstb-dev).
-- Lua 5.4 is not listed as a dependency on purpose: a LuaRocks set up for
-- another Lua then reaches the Makefile, whose check says which command to
-- run instead of "Could not satisfy dependency lua >= 5.4".  The installed
-- `scorch` finds its modules beside itself (<tree>/share/lua/5.4,
-- <tree>/lib/lua/5.4) from any directory, without `luarocks path`.
rockspec_format = "3.0"
package = "scorch"
version = "scm-1"

source = {
  url = ".",
}

description = {
  summary = "Lua 5.4 host with a C core for score-based and diffusion models",
  detailed = [[
scorch is a Lua 5.4 library and scripting host for deep generative
modelling: a C core for tensors, autograd and kernels (OpenBLAS, threads),
and a Lua layer for models, losses, noise schedules, samplers and metrics.
It installs the `scorch` executable (scripts, a REPL) and the `scorch`
module for plain lua5.4.
]],
  license = "MIT",
  labels = { "deep-learning", "tensor", "autograd", "diffusion" },
}

-- Checked by LuaRocks before the build: the headers and libraries the
-- Makefile links.  OpenBLAS by its library only: Debian keeps cblas.h in
-- /usr/include/x86_64-linux-gnu (where the compiler finds it), which
-- LuaRocks does not search.
external_dependencies = {
  OPENBLAS = { library = "openblas" },
  ZLIB = { header = "zlib.h", library = "z" },
  READLINE = { header = "readline/readline.h", library = "readline" },
}

build = {
  type = "make",
  build_target = "all",
  install_target = "install",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LUA_INCDIR = "$(LUA_INCDIR)",
  },
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
    INST_BINDIR = "$(BINDIR)",
  },
}

test = {
  type = "command",
  command = "make test",
}
