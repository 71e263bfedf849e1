#!/usr/bin/env bash
# The main job: the seed tutorial end to end with berth.
#   build berth and its plugins → make the base images (cached) → berth build → berth run
#   → fetch / and a missing page (custom 404) → ps, logs, stats → stop and remove.
# Run as root on Debian 12 with a Rust toolchain. Missing packages are installed with
# apt-get (and it says so). Every step shows what it runs and how long it took.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
port=${PORT:-8080}
export BERTH_ROOT=${BERTH_ROOT:-/var/lib/berth}

step() {  # step "title" cmd...
  local title=$1; shift
  printf '\n\033[1m==> %s\033[0m\n$ %s\n' "$title" "$*"
  local t0; t0=$(date +%s.%N)
  "$@"
  local rc=$?
  printf '   (%.2fs)\n' "$(echo "$(date +%s.%N) - $t0" | bc)"
  return $rc
}

need=()
for p in mmdebstrap:mmdebstrap nft:nftables curl:curl bc:bc ip:iproute2; do
  command -v "${p%%:*}" >/dev/null || need+=("${p#*:}")
done
# berth links libseccomp (its default seccomp profile is compiled with it).
dpkg-query -W -f='${Status}' libseccomp-dev 2>/dev/null | grep -q "ok installed" || need+=(libseccomp-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "missing packages: ${need[*]} (run as root to install them)" >&2; exit 1; fi
  echo "installing with apt-get: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
[ "$(id -u)" = 0 ] || { echo "berth needs root (namespaces, mounts, cgroups)" >&2; exit 1; }

berth=$repo/target/stage/release/bin/berth
cleanup() { "$berth" rm -f site >/dev/null 2>&1 || true; "$berth" network prune >/dev/null 2>&1 || true; }
trap cleanup EXIT

step "build berth and its plugins" cargo xtask build --release
step "base images (mmdebstrap, cached after the first run)" cargo xtask images
step "build the example image" "$berth" build -t static-site examples/static-site
step "list images" "$berth" images
"$berth" rm -f site >/dev/null 2>&1 || true
step "run it" "$berth" run -d --name site -p "$port:80" static-site
for i in $(seq 1 50); do curl -fs -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
step "fetch /" curl -sS -i "http://127.0.0.1:$port/"
step "fetch a missing page (expect the custom 404)" curl -sS -i "http://127.0.0.1:$port/no-such-page"
step "containers" "$berth" ps
step "logs" "$berth" logs site
step "stats" "$berth" stats --no-stream site
step "stop" "$berth" stop site
step "remove" "$berth" rm site
step "remove unused networks (never the default one)" "$berth" network prune
trap - EXIT
printf '\ndone: nothing is left running.\n'
