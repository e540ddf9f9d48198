# shellcheck shell=bash
# Shared by scripts/test and scripts/demo (sourced, not run).

# configure_build DIR [CMAKE_ARGS...]: configures DIR from the repository
# root with Ninja, or with whatever generator DIR was first configured with.
# The web console's browser tests are required (configuring fails, naming
# what is missing, rather than skipping them); CMAKE_ARGS may turn them off.
configure_build() {
  local dir=$1
  shift
  local generator=()
  if [[ ! -f $dir/CMakeCache.txt ]]; then
    generator=(-G Ninja)
  fi
  cmake -S . -B "$dir" "${generator[@]}" -DEVENTSTORE_BROWSER_TESTS=ON "$@"
}
