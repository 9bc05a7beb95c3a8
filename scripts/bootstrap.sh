#!/usr/bin/env bash
# Installs the Debian packages scorch needs to build, test, lint and fuzz,
# skipping what is already there (so it is fast the second time).
#
#   bash scripts/bootstrap.sh           build, test, sanitize, lint, fuzz
#   bash scripts/bootstrap.sh --bench   also PyTorch for `make bench`
#   bash scripts/bootstrap.sh --data    also the Fashion-MNIST data set
#   bash scripts/bootstrap.sh --check   only report what is missing
#
# Needs root to install (Debian 12).  Safe to run any number of times.
set -euo pipefail

# The toolchain, libraries and test tools.  Recommends are not installed, so
# everything used is named here: libomp-dev is clang's OpenMP (make fuzz),
# lua-ldoc builds the API reference (make docs, checked by spec/docs_spec.lua),
# util-linux gives `script` for the REPL's pty test, fonts-dejavu-core the
# plots' text, chromium the report's browser check (spec/report_spec.lua).
# Open MPI (mpicc, mpirun) builds lib/scorch/dist_mpi.so and runs the
# distributed specs under `mpirun -np 2`; core.so never links it, so a
# machine without it still builds and runs everything else.
core_pkgs=(
  build-essential pkg-config
  lua5.4 liblua5.4-dev
  libopenblas-dev libstb-dev zlib1g-dev libreadline-dev
  lua-busted luarocks lua-check lua-ldoc cppcheck
  clang libclang-rt-14-dev libomp-dev
  util-linux
  fonts-dejavu-core chromium
  openmpi-bin libopenmpi-dev
)
# `make bench` and the PyTorch-generated fixtures only.
bench_pkgs=(python3 python3-torch python3-safetensors)
# The real data set for the Fashion-MNIST examples.
data_pkgs=(dataset-fashion-mnist)

want=("${core_pkgs[@]}")
optional=()   # may be absent from the archive; skipped with a note
check_only=0
for opt in "$@"; do
  case "$opt" in
    --bench) optional+=("${bench_pkgs[@]}") ;;
    --data) optional+=("${data_pkgs[@]}") ;;
    --check) check_only=1 ;;
    -h|--help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "bootstrap: unknown option '$opt' (try --help)" >&2; exit 2 ;;
  esac
done

# Prints the packages among "$@" that are not installed.
missing_of() {
  local installed
  # dpkg-query exits 1 when it knows nothing of a package: not an error here.
  installed=$( (dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null || true) |
              awk '$2 == "installed" { print $1 }')
  local p
  for p in "$@"; do
    grep -qxF -- "$p" <<<"$installed" || echo "$p"
  done
}

mapfile -t missing < <(missing_of "${want[@]}" ${optional[@]+"${optional[@]}"})
if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all packages present"
  exit 0
fi
echo "bootstrap: missing: ${missing[*]}"
if [ "$check_only" = 1 ]; then exit 1; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "bootstrap: not root; as root run:" >&2
  echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt=(apt-get -y -q -o DPkg::Lock::Timeout=600)
"${apt[@]}" update </dev/null

# Optional packages the archive does not have (python3-safetensors is not
# in Debian 12) are reported and skipped; the core set must all install.
install=()
for p in "${missing[@]}"; do
  is_optional=0
  for o in ${optional[@]+"${optional[@]}"}; do [ "$o" = "$p" ] && is_optional=1; done
  if [ "$is_optional" = 1 ] && ! apt-cache show "$p" >/dev/null 2>&1; then
    echo "bootstrap: $p is not in this distribution's archive; skipped"
    continue
  fi
  install+=("$p")
done
if [ ${#install[@]} -gt 0 ]; then
  "${apt[@]}" install --no-install-recommends "${install[@]}" </dev/null
fi

mapfile -t still < <(missing_of "${want[@]}")
if [ ${#still[@]} -ne 0 ]; then
  echo "bootstrap: failed to install: ${still[*]}" >&2
  exit 1
fi
echo "bootstrap: done"
