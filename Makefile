# scorch — build, test and tooling.  `make help` lists the targets.
#
# Sources are found by wildcard: csrc/core/*.c (the engine, no Lua headers),
# csrc/lua/*.c (the binding) → lib/scorch/core.so; csrc/host/*.c → bin/scorch.

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
.DEFAULT_GOAL := all
.DELETE_ON_ERROR:
.SUFFIXES:
MAKEFLAGS += --no-builtin-rules

# ---- tools -------------------------------------------------------------------
LUA        ?= lua5.4
PKG_CONFIG ?= pkg-config
PYTHON     ?= /usr/bin/python3
CLANG      ?= clang
LUACHECK   ?= luacheck
LDOC       ?= ldoc
CPPCHECK   ?= cppcheck
# Debian's busted is a Lua script (run below as `lua5.4 busted`); prefer it
# to a LuaRocks shell wrapper earlier on the PATH.
BUSTED     ?= $(firstword $(wildcard /usr/bin/busted) $(shell command -v busted 2>/dev/null))

# ---- flags -------------------------------------------------------------------
# CFLAGS is the part a user (or LuaRocks, which passes "-O2 -fPIC") may
# replace; SC_CFLAGS is what the code needs whatever CFLAGS says.  No
# -ffast-math and no -march: the binary must run on any x86-64, and kernels
# that want AVX2 dispatch at run time.
CFLAGS    ?= -O2 -g
LDFLAGS   ?=
# Loop vectorisation is asked for explicitly: at -O2 gcc 12 only does its
# "very cheap" model, which skips the elementwise kernels; -fno-trapping-math
# (we never read FP exception flags) lets it turn selects into blends.
# -ffp-contract=fast lets the x86-64-v3 clones fuse a*b + c into one FMA
# (-std=c11 turns contraction off).  -fno-math-errno: nothing reads errno
# after a libm call, and with it sqrt is one instruction that vectorises
# instead of a call kept for sqrt(-1)'s errno (Adam's loop ran scalar).
# No other fast-math liberty is taken: values are unchanged.
SC_CFLAGS  = -std=c11 -D_GNU_SOURCE -Wall -Wextra -fPIC -pthread -MMD -MP \
             -ftree-loop-vectorize -fvect-cost-model=dynamic -fno-trapping-math \
             -ffp-contract=fast -fno-math-errno
CORE_LIBS  = -lopenblas -lz -lm

# LuaRocks passes LUA_INCDIR; otherwise ask pkg-config.  A LuaRocks set up
# for another Lua (Debian's defaults to 5.1) is stopped here with the
# command to run, rather than by a compile error in the binding.
ifdef LUA_INCDIR
LUA_CFLAGS := -I$(LUA_INCDIR)
LUA_VERSION_NUM := $(shell sed -n 's/^\#define LUA_VERSION_NUM[[:space:]]*\([0-9]*\).*/\1/p' '$(LUA_INCDIR)/lua.h' 2>/dev/null)
ifneq ($(LUA_VERSION_NUM),504)
$(error scorch needs Lua 5.4, but this build is for the Lua in $(LUA_INCDIR) (LUA_VERSION_NUM $(or $(LUA_VERSION_NUM),unknown)). LuaRocks builds for its default Lua, 5.1 on Debian: run `luarocks --lua-version=5.4 make` (or once `luarocks config lua_version 5.4`, then `luarocks make`))
endif
else
LUA_CFLAGS := $(shell $(PKG_CONFIG) --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
endif
LUA_LIBS := $(shell $(PKG_CONFIG) --libs lua5.4 2>/dev/null || echo -llua5.4)

# ---- where things go ---------------------------------------------------------
# `make sanitize` re-runs this Makefile with BUILD/LIBOUT/BINOUT pointing at
# a second tree, so both builds can coexist.
BUILD  ?= build
LIBOUT ?= lib
BINOUT ?= bin

CORE_SO := $(LIBOUT)/scorch/core.so
HOST    := $(BINOUT)/scorch

CORE_SRC   := $(wildcard csrc/core/*.c)
BIND_SRC   := $(wildcard csrc/lua/*.c)
HOST_SRC   := $(wildcard csrc/host/*.c)
CCHECK_SRC := $(wildcard spec/c/*.c)
FUZZ_SRC   := $(wildcard spec/fuzz/*.c)

CORE_OBJ   := $(CORE_SRC:csrc/%.c=$(BUILD)/%.o)
BIND_OBJ   := $(BIND_SRC:csrc/%.c=$(BUILD)/%.o)
HOST_OBJ   := $(HOST_SRC:csrc/%.c=$(BUILD)/%.o)
CCHECK_BIN := $(CCHECK_SRC:spec/c/%.c=$(BUILD)/spec-c/%)

# bin/scorch only once its sources exist, so the module can be built and
# tested on its own meanwhile.
BUILD_TARGETS := $(CORE_SO) $(if $(HOST_SRC),$(HOST))

# ---- install locations ---------------------------------------------------------
# Plain `make install` uses PREFIX (and DESTDIR); LuaRocks sets the INST_*
# variables to its own tree (see scorch-scm-1.rockspec).
PREFIX      ?= /usr/local
INST_LIBDIR ?= $(PREFIX)/lib/lua/5.4
INST_LUADIR ?= $(PREFIX)/share/lua/5.4
INST_BINDIR ?= $(PREFIX)/bin

# ---- test environment ----------------------------------------------------------
# Specs run from the repository root against the tree just built, never an
# installed copy.  Specs may rely on:
#   SCORCH_BIN      absolute path of the host executable to test
#   SCORCH_LUA      a Lua 5.4 interpreter that can load this tree's core.so
#                   (for specs that start a child `lua`)
#   SCORCH_CCHECKS  directory holding the compiled spec/c/*.c checks
# Paths are absolute so that a child process started from another
# directory still finds the tree.
TEST_LUA_PATH := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;
BUSTED_ARGS   ?=

# $(call busted_env,libdir,host,ccheck-dir,lua): environment for one run.
busted_env = LUA_PATH='$(TEST_LUA_PATH)' LUA_CPATH='$(CURDIR)/$(1)/?.so;;' \
  SCORCH_BIN='$(CURDIR)/$(2)' SCORCH_LUA='$(4)' SCORCH_CCHECKS='$(CURDIR)/$(3)'
# $(call busted_cmd,libdir,lua): busted run by a chosen interpreter; busted's
# own shebang may point at lua5.1 (luarocks switches /usr/bin/lua).  --cpath
# replaces the ./lib of .busted, which busted would put first.
busted_cmd = $(2) $(BUSTED) --ignore-lua --cpath='$(CURDIR)/$(1)/?.so' \
  --output=spec/support/summary.lua $(BUSTED_ARGS)

# ---- sanitizer build -------------------------------------------------------------
ASAN_BUILD := build-asan
ASAN_LIB   := lib-asan
ASAN_BIN   := $(ASAN_BUILD)/bin
SAN_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined
ASAN_REPORTS := $(CURDIR)/$(ASAN_BUILD)/reports
# ASan/LSan reports go to files, so that errors in child processes (the host
# started by a spec, spec/c checks) fail the run even when the spec ignores
# their exit status.  UBSan writes to stderr whatever log_path says (GCC 12)
# and halts the process: it fails the run through the exit status only.
# allocator_may_return_null / max_allocation_size_mb: an absurd allocation
# fails as malloc would without ASan, instead of aborting or reserving
# terabytes, so specs for "bad input never aborts" keep working.
SAN_ENV := SCORCH_SANITIZED=1 ASAN_OPTIONS='detect_leaks=1:halt_on_error=1:abort_on_error=0:allocator_may_return_null=1:max_allocation_size_mb=16384:detect_stack_use_after_return=1:log_path=$(ASAN_REPORTS)/asan' \
  UBSAN_OPTIONS='print_stacktrace=1:halt_on_error=1' \
  LSAN_OPTIONS='suppressions=$(CURDIR)/spec/support/lsan.supp:print_suppressions=0'

# ---- fuzzing ------------------------------------------------------------------------
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build-fuzz
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -O1 -g -pthread -fno-omit-frame-pointer \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CORE_OBJ := $(CORE_SRC:csrc/core/%.c=$(FUZZ_BUILD)/core/%.o)
FUZZ_BIN      := $(FUZZ_SRC:spec/fuzz/%.c=$(FUZZ_BUILD)/%)

# =====================================================================================
.PHONY: all test ccheck demo sanitize sanitize-build install uninstall lint docs \
        fuzz fuzz-build bench clean help env FORCE

all: $(BUILD_TARGETS)

help:
	@echo 'make            build lib/scorch/core.so and bin/scorch'
	@echo 'make test       build, then run every spec (busted, Lua 5.4)'
	@echo 'make demo       run $$(DEMO) with bin/scorch (default: $(DEMO))'
	@echo 'make sanitize   build with ASan+UBSan into build-asan/, lib-asan/ and run every spec'
	@echo 'make fuzz       build spec/fuzz/*.c with libFuzzer and run each FUZZ_SECONDS=$(FUZZ_SECONDS)'
	@echo 'make lint       luacheck and cppcheck'
	@echo 'make docs       the API reference (LDoc) in build/docs/index.html; fails on a warning'
	@echo 'make bench      run bench/run.py (scorch against PyTorch)'
	@echo 'make install    install under PREFIX=$(PREFIX) (DESTDIR honoured)'
	@echo 'make clean      remove every build output'
	@echo 'eval "$$(make -s env)"   point LUA_PATH/LUA_CPATH at this tree (for bin/scorch, lua5.4)'

# Shell exports that make lua5.4 and bin/scorch use this tree from anywhere.
env:
	@echo "export LUA_PATH='$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;'"
	@echo "export LUA_CPATH='$(CURDIR)/$(LIBOUT)/?.so;;'"

# ---- compiling ------------------------------------------------------------------------
# Objects depend on the flags they were built with: $(FLAGS_FILE) holds the
# compiler and flag string and is rewritten only when that string changes,
# so a CFLAGS edit (or another CC) rebuilds everything instead of linking
# stale objects.
FLAGS_STR  := $(CC) $(SC_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(LUA_CFLAGS) $(LDFLAGS)
FLAGS_FILE := $(BUILD)/.flags

$(FLAGS_FILE): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '$(subst ','\'',$(FLAGS_STR))' | cmp -s - $@ || \
	  printf '%s\n' '$(subst ','\'',$(FLAGS_STR))' > $@

FORCE:

# The core gets no Lua include path: a Lua header there fails to compile.
$(BUILD)/core/%.o: csrc/core/%.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) $(SC_CFLAGS) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/lua/%.o: csrc/lua/%.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) $(SC_CFLAGS) -Icsrc -Icsrc/core $(LUA_CFLAGS) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/host/%.o: csrc/host/%.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) $(SC_CFLAGS) -Icsrc $(LUA_CFLAGS) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# The module does not link liblua: its Lua symbols come from whichever
# interpreter loads it (lua5.4, bin/scorch).  -z nodelete keeps it loaded
# when lua_close() dlcloses it: the thread pool's idle workers (pool.c) run
# its code and would crash if it were unmapped under them (lua5.4 segfaulted
# at exit after a parallel kernel ran); sanitizer reports stay symbolized too.
$(CORE_SO): $(CORE_OBJ) $(BIND_OBJ) $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) -shared -pthread $(CFLAGS) $(LDFLAGS) -Wl,-z,nodelete -o $@ $(CORE_OBJ) $(BIND_OBJ) $(CORE_LIBS)

# -Wl,-E exports the Lua API from the executable for C modules.
$(HOST): $(HOST_OBJ) $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -Wl,-E -o $@ $(HOST_OBJ) $(LUA_LIBS) -lreadline -lm -ldl

# C-only checks: each spec/c/NAME.c is a program linked against the core
# objects; spec/build_spec.lua runs them, so they count in the summary.
$(BUILD)/spec-c/%: spec/c/%.c $(CORE_OBJ) $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) $(SC_CFLAGS) -Icsrc -Icsrc/core $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(CORE_OBJ) $(CORE_LIBS)

ccheck: $(CCHECK_BIN)
	@:

-include $(CORE_OBJ:.o=.d) $(BIND_OBJ:.o=.d) $(HOST_OBJ:.o=.d) $(CCHECK_BIN:=.d)

# ---- collectives (csrc/dist, sc.dist) --------------------------------------------------
# Two Lua C modules beside core.so, built from the same binding
# (csrc/dist/dist_lua.c) over one backend each:
#   $(LIBOUT)/scorch/dist_self.so  the world of one; always built, links nothing
#   $(LIBOUT)/scorch/dist_mpi.so   MPI; built with mpicc when it is on the PATH
# `make MPI=1` insists on the MPI module (and fails without mpicc), `make
# MPI=0` skips it.  core.so never links libmpi: without mpirun nothing of
# MPI is loaded, so a machine without it runs everything else.  The
# sanitizer build skips the MPI module (MPI's libraries are not
# instrumented and hold memory at exit that LSan would report).
MPICC ?= mpicc
ifeq ($(origin MPI),undefined)
MPI := $(if $(findstring -fsanitize,$(CFLAGS)),0,$(if $(shell command -v $(MPICC) 2>/dev/null),1,0))
endif
DIST_SELF_SO  := $(LIBOUT)/scorch/dist_self.so
DIST_MPI_SO   := $(LIBOUT)/scorch/dist_mpi.so
DIST_SELF_OBJ := $(BUILD)/dist/self/dist_common.o $(BUILD)/dist/self/dist_self.o $(BUILD)/dist/self/dist_lua.o
DIST_MPI_OBJ  := $(BUILD)/dist/mpi/dist_common.o $(BUILD)/dist/mpi/dist_mpi.o $(BUILD)/dist/mpi/dist_lua.o
DIST_TARGETS  := $(DIST_SELF_SO) $(if $(filter 1,$(MPI)),$(DIST_MPI_SO))

all: $(DIST_TARGETS)

$(BUILD)/dist/self/%.o: csrc/dist/%.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) $(SC_CFLAGS) -Icsrc $(LUA_CFLAGS) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/dist/mpi/%.o: csrc/dist/%.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	@command -v $(MPICC) >/dev/null || { echo 'MPI=1 but $(MPICC) not found: install libopenmpi-dev (scripts/bootstrap.sh) or build with MPI=0' >&2; exit 1; }
	$(MPICC) $(SC_CFLAGS) -DSC_DIST_MPI -Icsrc $(LUA_CFLAGS) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# -z nodelete as for core.so: MPI's progress threads must not outlive
# their code.
$(DIST_SELF_SO): $(DIST_SELF_OBJ)
	@mkdir -p $(@D)
	$(CC) -shared $(CFLAGS) $(LDFLAGS) -Wl,-z,nodelete -o $@ $(DIST_SELF_OBJ)

$(DIST_MPI_SO): $(DIST_MPI_OBJ)
	@mkdir -p $(@D)
	$(MPICC) -shared $(CFLAGS) $(LDFLAGS) -Wl,-z,nodelete -o $@ $(DIST_MPI_OBJ) -lm

-include $(DIST_SELF_OBJ:.o=.d) $(DIST_MPI_OBJ:.o=.d)

.PHONY: install-dist uninstall-dist
install: install-dist
install-dist: $(DIST_TARGETS)
	install -d '$(DESTDIR)$(INST_LIBDIR)/scorch'
	for f in $(DIST_TARGETS); do install -m 755 $$f '$(DESTDIR)$(INST_LIBDIR)/scorch/' || exit 1; done

uninstall: uninstall-dist
uninstall-dist:
	rm -f '$(DESTDIR)$(INST_LIBDIR)/scorch/dist_self.so' '$(DESTDIR)$(INST_LIBDIR)/scorch/dist_mpi.so'

# ---- test -----------------------------------------------------------------------------
# The output handler spec/support/summary.lua ends the run with the line
# "N passed, N failed[, N skipped]" (errors count as failures); busted exits
# non-zero when any spec failed or errored.
test: all ccheck
	@test -n "$(BUSTED)" || { echo 'busted not found: run scripts/bootstrap.sh' >&2; exit 1; }
	@$(call busted_env,$(LIBOUT),$(HOST),$(BUILD)/spec-c,$(LUA)) \
	  $(call busted_cmd,$(LIBOUT),$(LUA)); rc=$$?; \
	  if [ $$rc -ge 128 ]; then echo "busted died of signal $$((rc - 128)); see the output above" >&2; fi; \
	  exit $$rc

# ---- demo -----------------------------------------------------------------------------
DEMO ?= $(firstword $(wildcard examples/ncsn_2d.lua) examples/tensor_demo.lua)

demo: all
	LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./$(LIBOUT)/?.so;;' $(HOST) $(DEMO)

# ---- sanitize ---------------------------------------------------------------------------
# lua5.4 is not instrumented, and an instrumented module can only be loaded
# by a process whose first library is the ASan runtime.  Rather than
# LD_PRELOAD libasan into lua5.4 — the preload is inherited by every child
# (sh, script, mktemp, ...), whose own leaks then fail the run — busted runs
# under build-asan/bin/lua, a minimal ASan-linked Lua interpreter
# (spec/support/lua_asan.c); the sanitized host is build-asan/bin/scorch.
sanitize-build:
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) LIBOUT=$(ASAN_LIB) BINOUT=$(ASAN_BIN) \
	  CFLAGS='$(SAN_CFLAGS)' LDFLAGS= all ccheck $(ASAN_BIN)/lua

$(ASAN_BIN)/lua: spec/support/lua_asan.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra $(LUA_CFLAGS) $(SAN_CFLAGS) -Wl,-E -o $@ $< $(LUA_LIBS) -lm -ldl

sanitize: sanitize-build
	@test -n "$(BUSTED)" || { echo 'busted not found: run scripts/bootstrap.sh' >&2; exit 1; }
	@rm -rf $(ASAN_REPORTS) && mkdir -p $(ASAN_REPORTS)
	@$(SAN_ENV) $(call busted_env,$(ASAN_LIB),$(ASAN_BIN)/scorch,$(ASAN_BUILD)/spec-c,$(CURDIR)/$(ASAN_BIN)/lua) \
	  $(call busted_cmd,$(ASAN_LIB),$(ASAN_BIN)/lua); rc=$$?; \
	  if [ $$rc -ge 128 ]; then echo "busted died of signal $$((rc - 128)); see the output above" >&2; fi; \
	  reports=$$(find $(ASAN_REPORTS) -type f | sort); \
	  for f in $$reports; do echo "==== sanitizer report $$f"; cat "$$f"; done; \
	  if [ -n "$$reports" ]; then \
	    echo "sanitize: FAILED: $$(echo "$$reports" | wc -l) sanitizer report(s) above" >&2; exit 1; fi; \
	  if [ $$rc -ne 0 ]; then echo "sanitize: FAILED (exit status $$rc)" >&2; exit $$rc; fi

# ---- install ----------------------------------------------------------------------------
install: all
	install -d '$(DESTDIR)$(INST_LIBDIR)/scorch' '$(DESTDIR)$(INST_LUADIR)'
	install -m 755 $(CORE_SO) '$(DESTDIR)$(INST_LIBDIR)/scorch/core.so'
	cd lua && find scorch -type f | while read -r f; do \
	  install -D -m 644 "$$f" '$(DESTDIR)$(INST_LUADIR)/'"$$f" || exit 1; done
	$(if $(HOST_SRC),install -d '$(DESTDIR)$(INST_BINDIR)' && \
	  install -m 755 $(HOST) '$(DESTDIR)$(INST_BINDIR)/scorch')

uninstall:
	rm -f '$(DESTDIR)$(INST_LIBDIR)/scorch/core.so' '$(DESTDIR)$(INST_BINDIR)/scorch'
	rm -rf '$(DESTDIR)$(INST_LUADIR)/scorch'
	-rmdir '$(DESTDIR)$(INST_LIBDIR)/scorch' 2>/dev/null

# ---- docs -------------------------------------------------------------------------------
# The API reference from the doc comments (docs/config.ld); generated, not
# committed.  Any LDoc warning fails the target (spec/docs_spec.lua checks
# the same).  The tutorial and family pages are Markdown in docs/.
DOCS_OUT := $(BUILD)/docs

docs:
	@command -v $(LDOC) >/dev/null || { echo 'docs: ldoc not found: run scripts/bootstrap.sh (Debian package lua-ldoc)' >&2; exit 1; }
	@rm -rf $(DOCS_OUT)
	@out=$$($(LDOC) -c docs/config.ld -d '$(CURDIR)/$(DOCS_OUT)' . 2>&1) || { echo "$$out" >&2; exit 1; }; \
	  warnings=$$(echo "$$out" | grep -v -e '^reading configuration' -e '^changing to directory' -e '^output written' || true); \
	  if [ -n "$$warnings" ]; then echo "$$warnings" >&2; echo 'docs: FAILED: LDoc warnings above' >&2; exit 1; fi; \
	  echo 'docs: $(DOCS_OUT)/index.html'

# ---- lint -------------------------------------------------------------------------------
LINT_DIRS := $(wildcard lua spec bench examples scripts)
# invalidPointerCast is off: the kernels walk byte-strided `char *` operands
# and cast them to float/double on purpose, which is well defined.

lint:
	@rc=0; \
	echo '$(LUACHECK) $(LINT_DIRS)'; $(LUACHECK) -q --no-color $(LINT_DIRS) || rc=1; \
	echo '$(CPPCHECK) csrc/'; \
	$(CPPCHECK) --enable=warning,performance,portability --error-exitcode=1 \
	  --inline-suppr -q -j2 --std=c11 \
	  --suppress=invalidPointerCast -D_GNU_SOURCE -Icsrc -Icsrc/core csrc/ || rc=1; \
	exit $$rc

# ---- fuzz -------------------------------------------------------------------------------
# Each spec/fuzz/NAME.c defines LLVMFuzzerTestOneInput and is linked against
# the core; it starts from spec/fuzz/corpus/NAME/ (read only) and writes what
# it finds under build-fuzz/.  Every harness runs; any crash, leak or
# timeout makes the target fail, the input kept in build-fuzz/artifacts/.
$(FUZZ_BUILD)/core/%.o: csrc/core/%.c
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/%: spec/fuzz/%.c $(FUZZ_CORE_OBJ)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Icsrc -Icsrc/core -o $@ $< $(FUZZ_CORE_OBJ) $(CORE_LIBS)

-include $(FUZZ_CORE_OBJ:.o=.d)
.SECONDARY: $(FUZZ_CORE_OBJ)

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
ifeq ($(strip $(FUZZ_SRC)),)
	@echo 'fuzz: no harnesses in spec/fuzz/*.c, nothing to do'
else
	@failed=; for bin in $(FUZZ_BIN); do \
	  name=$${bin##*/}; work=$(FUZZ_BUILD)/corpus/$$name; seeds=spec/fuzz/corpus/$$name; \
	  mkdir -p $$work $(FUZZ_BUILD)/artifacts; \
	  dict=; [ -f spec/fuzz/$$name.dict ] && dict=-dict=spec/fuzz/$$name.dict; \
	  [ -d $$seeds ] || seeds=; \
	  echo "== fuzz $$name for $(FUZZ_SECONDS) s"; \
	  OMP_NUM_THREADS=1 ASAN_OPTIONS=allocator_may_return_null=1:max_allocation_size_mb=4096 \
	    ./$$bin -max_total_time=$(FUZZ_SECONDS) -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$name- $$dict $$work $$seeds \
	    || failed="$$failed $$name"; \
	 done; \
	 if [ -n "$$failed" ]; then echo "fuzz: FAILED:$$failed (inputs in $(FUZZ_BUILD)/artifacts/)" >&2; exit 1; fi; \
	 echo 'fuzz: no crashes'
endif

# ---- bench ------------------------------------------------------------------------------
bench: all
	LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./$(LIBOUT)/?.so;;' \
	  SCORCH_BIN='$(CURDIR)/$(HOST)' $(PYTHON) bench/run.py

# ---- clean ------------------------------------------------------------------------------
clean:
	rm -rf build $(ASAN_BUILD) $(FUZZ_BUILD) lib $(ASAN_LIB) bin
