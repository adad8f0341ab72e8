#!/usr/bin/env bash
# Installs what Backplane needs to build and test on Debian 12, and only what is
# missing, plus any packages named as arguments (scripts/test.sh adds chromium). Needs
# root (or sudo). Safe to run again: it does nothing when all is there.
set -euo pipefail

packages=(
  g++ make cmake ccache                      # toolchain
  libeigen3-dev                              # tensors
  libopenblas-pthread-dev                    # the layers' matrix products (BACKPLANE_BLAS)
  libtbb-dev                                 # data-parallel training
  libopenmpi-dev openmpi-bin                 # ... over several processes (mpirun; BACKPLANE_MPI)
  libyaml-cpp-dev                            # experiment files
  libboost-dev libboost-filesystem-dev       # Boost.DLL plugin loading
  nlohmann-json3-dev                         # summary.json
  libcli11-dev                               # the command line
  zlib1g-dev                                 # gzipped data files
  catch2                                     # tests
  dataset-fashion-mnist                      # real data: /usr/share/datasets/fashion-mnist
  fortunes                                   # real text: /usr/share/games/fortunes
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "Installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: run as root (or install sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
