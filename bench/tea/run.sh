#!/usr/bin/env bash
# LightTEA benchmark on YAGO-WIKI20K: 400, 1,000 and 2,000 seeds, default mode, and 400 seeds
# faithful mode, each over several random seeds, one process per run. Prints every run's key=value
# lines, then a summary (mean, min-max) per configuration.
#
#   bench/tea/run.sh [BUILD_DIR] [RUNS]      (defaults: build, 5)
#   TEA_BENCH=path/to/tea_bench TEA_DATA=path/to/YAGO-WIKI20K TEA_SEEDS="400 1000 2000" ...
#   TEA_KERNEL=avx2 ...     kernel path (auto | avx512 | avx2 | generic; docs/tea.md). To stand in
#                           for an AVX2-only CPU, also set OPENBLAS_CORETYPE=Haswell so that BLAS
#                           (fp32 phases) does not use AVX-512 either.
#   TEA_FAITHFUL=0 ...      skip the faithful configuration
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-build}"
runs="${2:-5}"
bench="${TEA_BENCH:-$build/bin/tea_bench}"
data="${TEA_DATA:-$here/../../../shared/data/tea/YAGO-WIKI20K}"
seed_counts="${TEA_SEEDS:-400 1000 2000}"
threads="${TEA_THREADS:-2}"
kernel="${TEA_KERNEL:-auto}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

[ -x "$bench" ] || { echo "run.sh: $bench not found; build the tea_bench target first" >&2; exit 2; }
[ -d "$data" ] || { echo "run.sh: dataset $data not found" >&2; exit 2; }

echo "host cores=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\" threads=$threads kernel=$kernel openblas_coretype=${OPENBLAS_CORETYPE:-auto}"
echo "load_before=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
run() {  # label, then tea_bench flags
  local label="$1"; shift
  for s in $(seq 1 "$runs"); do
    "$bench" --data "$data" --threads "$threads" --seed "$s" --kernel "$kernel" "$@" |
      tee -a "$out/$label.txt"
  done
}
for n in $seed_counts; do run "default_$n" --seeds "$n"; done
[ "${TEA_FAITHFUL:-1}" = 0 ] || run "faithful_400" --seeds 400 --faithful
echo "load_after=\"$(cut -d' ' -f1-3 /proc/loadavg)\""

echo "# summary: mean [min-max] over $runs seeds"
python3 - "$out" <<'PY'
import glob, os, statistics, sys
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.txt")), key=lambda p: (("faithful" in p), len(p), p)):
    rows = []
    for line in open(path):
        if line.startswith("final "):
            rows.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
    if not rows:
        continue
    label = os.path.basename(path)[:-4]
    parts = [f"config={label}", f"runs={len(rows)}", f"kernel={rows[0].get('kernel', '?')}"]
    for key in ("hits1", "hits10", "mrr", "round1_hits1", "total_s", "cpu_s", "peak_rss_mb"):
        v = [float(r[key]) for r in rows]
        parts.append(f"{key}={statistics.mean(v):.3f}[{min(v):.3f}-{max(v):.3f}]")
    print(" ".join(parts))
PY
