# shellcheck shell=bash
# Shared by scripts/test and scripts/demo (sourced, not run).

# configure_build DIR [CMAKE_ARGS...]: configures DIR from the repository
# root with Ninja, or with whatever generator DIR was first configured with.
configure_build() {
  local dir=$1
  shift
  local generator=()
  if [[ ! -f $dir/CMakeCache.txt ]]; then
    generator=(-G Ninja)
  fi
  cmake -S . -B "$dir" "${generator[@]}" "$@"
}
