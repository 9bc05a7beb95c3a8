-- LuaRocks build of scorch from a checkout: `luarocks --lua-version=5.4 make`
-- (offline: no dependency but Lua itself, built by the project's Makefile).
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
modelling: a C core for tensors, autograd and kernels, and a Lua layer for
models, losses, noise schedules and samplers.
]],
}

dependencies = {
  "lua >= 5.4, < 5.5",
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
