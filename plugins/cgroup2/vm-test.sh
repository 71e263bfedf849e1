#!/bin/bash
# Runs the cgroup2 plugin's tests inside a throw-away VM whose kernel has a pure cgroup v2
# hierarchy with every controller (cpu cpuset io memory pids), with BERTH_CG2_VM=1 and
# --include-ignored so the v2-limit tests (memory.max OOM kill, pids.max, cpu.max, live update),
# #[ignore]d on an ordinary host, run too. `cargo xtask test` runs this script.
# usage: plugins/cgroup2/vm-test.sh [-A uml|tcg] [extra test-binary args, e.g. a test name]
# Needs (apt-get): cpio busybox-static, and user-mode-linux (-A uml, default when present,
# ~native speed, 1 CPU) or qemu-system-x86 (-A tcg, emulated, slower).
# The VM recipe is scripts/cgroup2-vm.sh (a copy of the shared recipe), or $CG2VM_SCRIPT.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
accel=
if [ "${1:-}" = -A ]; then accel=$2; shift 2; fi
if [ -z "$accel" ]; then
  if command -v linux.uml >/dev/null; then accel=uml; else accel=tcg; fi
fi
vm=${CG2VM_SCRIPT:-}
for c in "$repo/scripts/cgroup2-vm.sh" "$repo/../shared/recipes/cgroup2-vm.sh"; do
  [ -n "$vm" ] && break; [ -f "$c" ] && vm=$c
done
[ -n "$vm" ] || { echo "vm-test.sh: cgroup2-vm.sh not found; set CG2VM_SCRIPT" >&2; exit 2; }

# Build the integration-test binary and find its path.
bin=$(cd "$repo" && cargo test -p berth-plugin-cgroup2 --test host --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "vm-test.sh: could not build the cgroup2 test binary" >&2; exit 2; }

start=$(date +%s)
set +e
bash "$vm" -A "$accel" -t "${CG2VM_TIMEOUT:-300}" -e BERTH_CG2_VM=1 -e RUST_BACKTRACE=1 "$bin" --include-ignored --test-threads=2 "$@"
rc=$?
set -e
echo "vm-test.sh: accel=$accel rc=$rc total=$(( $(date +%s) - start ))s" >&2
exit $rc
