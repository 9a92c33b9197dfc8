#!/usr/bin/env bash
# Batch inference benchmark (kind: infer), side by side in one run:
#   1. tabular (DLRM over CSV): the baton pipeline vs the same job with infer.pipeline.mode:
#      sequential, and vs plain PyTorch (examples/infer-tabular/pytorch_baseline.py, DataLoader
#      workers 0, 1, 2; --full also 0 workers with 2 intra-op threads);
#   2. efficiency: the pipelined job's steady-state records/s against the bound set by the busiest
#      resource (model compute and CSV parsing sharing the cores, measured alone by
#      infer_model_throughput);
#   3. vision (ResNet-18 over JPEGs) vs plain PyTorch, next to the model's compute bound;
#   4. the proposer -> classifier DAG pipelined vs sequential, and vs its bound;
#   5. fault cost: 2 workers, one SIGKILLed at ~50% of the records; job time and output vs a
#      fault-free run.
# Prints a short header per section and key=value lines, then all key=value lines again as a
# summary. docs/benchmarks.md ("Batch inference") says what each figure means.
#
#   bench/infer/run.sh [--quick | --full] [--worker-env VAR=VALUE]... [BUILD_DIR]
#
# --quick: 300k rows, 400 images (< 4 min on 2 cores); --full (default): 1M rows, 2,000 images and
# PyTorch also with 2 intra-op threads (~15 min). BUILD_DIR defaults to build. --worker-env adds a
# variable to every job's worker.env and to infer_model_throughput's environment (to try a worker
# setting before changing the worker).
# Data (fixed seeds), job specs, state dirs and outputs go to bench-out/infer/ (data is generated
# once per size and reused). Needs the baton, baton-infer-worker and infer_model_throughput targets
# and /usr/bin/python3 with torch and torchvision.
set -euo pipefail

size=full
build=build
worker_env=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) size=quick; shift ;;
    --full) size=full; shift ;;
    --worker-env) worker_env+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
bin="$build/bin"
py=/usr/bin/python3
for b in baton baton-infer-worker infer_model_throughput; do
  [ -x "$bin/$b" ] || { echo "run.sh: $bin/$b not built (ninja -C $build $b)" >&2; exit 2; }
done

cores=$(nproc)
if [ "$size" = quick ]; then
  rows=300000; images=400; rows_per_shard=5000; images_per_shard=20; bound_s=2
  pytorch_configs="w0 w1 w2"
else
  rows=1000000; images=2000; rows_per_shard=10000; images_per_shard=50; bound_s=4
  pytorch_configs="w0 w1 w2 w0t2"
fi
# worker.env lines of every job (--worker-env).
env_yaml=""
if [ ${#worker_env[@]} -gt 0 ]; then
  env_yaml="  env:"
  for e in "${worker_env[@]}"; do env_yaml+=$'\n'"    ${e%%=*}: \"${e#*=}\""; done
fi
data="$root/bench-out/infer/data-${rows}r-${images}i"
work="$root/bench-out/infer/$size"
rm -rf "$work"
mkdir -p "$data" "$work"
results="$work/results.txt"
: >"$results"

kv() {  # kv KEY VALUE: print a key=value line and keep it for the summary
  echo "$1=$2"
  echo "$1=$2" >>"$results"
}
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }  # calc EXPR [DECIMALS]
get() { sed -n "s/^$1=//p" "$results" | tail -1; }     # a value printed earlier
hz=$(getconf CLK_TCK)
# CPU seconds the whole host has spent busy (user, nice, system, irq, softirq, steal) since boot.
host_busy_s() { awk -v hz="$hz" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat; }
# other_cores NAME BUSY0 BUSY1 OWN_CPU_S WALL_S: prints NAME_other_cores, the cores that processes
# other than the one measured kept busy on average while it ran (0 on a quiet machine).
other_cores() { kv "${1}_other_cores" "$(calc "($3 - $2 - $4) / $5" 2)"; }

echo "infer bench start=$(date -u +%FT%TZ) size=$size host_cores=$cores rows=$rows images=$images" \
  "load_avg=\"$(cut -d' ' -f1-3 /proc/loadavg)\" worker_env=\"${worker_env[*]}\""

# ---- data (fixed seeds; made once per size) ----------------------------------------------------
if [ ! -s "$data/model.pt" ]; then
  "$py" "$root/examples/infer-tabular/export_model.py" "$data/model.pt" --seed 0
fi
if [ ! -s "$data/rows.csv" ]; then
  echo "generating $rows CSV rows..."
  "$py" "$root/examples/infer-tabular/generate_rows.py" "$data/rows.csv" --rows "$rows" --seed 1
fi
if [ ! -s "$data/classifier.pt" ]; then
  "$py" "$root/examples/infer-vision/export_models.py" "$data" --seed 0
fi
if [ ! -s "$data/images/manifest.txt" ]; then
  echo "generating $images JPEGs..."
  "$py" "$root/examples/infer-vision/generate_images.py" "$data/images" --count "$images" --seed 1
fi

# ---- job specs ---------------------------------------------------------------------------------
# The pipelined jobs start with one predictor per core (autoscale on, as in the examples): the
# examples start at 1 and the autoscaler adds one per 2 s period, a ramp that would be most of a
# --quick job. tab_autoscale measures the examples' setting (1 predictor at start).
# tab_spec NAME MODE WORKERS [PREDICTORS]: the DLRM job of examples/infer-tabular (batch 512,
# intra_op_threads 1) with the given pipeline mode and workers per node.
tab_spec() {
  cat >"$work/$1.yaml" <<EOF
name: bench-$1
kind: infer
input:
  paths: [$data/rows.csv]
  format: csv
  skip_header: true
  records_per_shard: $rows_per_shard
output:
  dir: $work/$1.out
  suffix: .csv
worker:
  per_node: $3
$env_yaml
master:
  state_dir: $work/$1.state
infer:
  key: id
  tensors:
    - {name: dense, type: float32, columns: [d0..d12]}
    - {name: sparse, type: int64, columns: [c0..c25]}
  models:
    - {name: dlrm, path: $data/model.pt, batch_size: 512, predictors: ${4:-$cores}, outputs: [score]}
  intra_op_threads: 1
  pipeline:
    mode: $2
    autoscale: true
EOF
}
# images_head NAME SUFFIX: the part of the spec every images job here shares.
images_head() {
  cat <<EOF
name: bench-$1
kind: infer
input:
  paths: [$data/images/manifest.txt]
  format: images
  records_per_shard: $images_per_shard
output:
  dir: $work/$1.out
  suffix: $2
worker:
$env_yaml
master:
  state_dir: $work/$1.state
EOF
}
# vision_spec NAME MODE: examples/infer-vision/job.yaml (ResNet-18, 112x112, batch 8).
vision_spec() {
  { images_head "$1" .csv
    cat <<EOF
infer:
  image: {width: 112, height: 112}
  max_error_rate: 0.05
  models:
    - {name: resnet18, path: $data/resnet18.pt, batch_size: 8, predictors: $cores}
  pipeline:
    mode: $2
EOF
  } >"$work/$1.yaml"
}
# dag_spec NAME MODE: examples/infer-vision/dag.yaml (proposer -> classifier on crops); the
# classifier, ~6x the proposer's work per image here, starts with one predictor per core.
dag_spec() {
  { images_head "$1" .jsonl
    cat <<EOF
infer:
  image: {width: 128, height: 128}
  max_error_rate: 0.05
  models:
    - {name: proposer, path: $data/proposer.pt, batch_size: 16, outputs: [boxes, scores], write: true}
    - name: classifier
      path: $data/classifier.pt
      after: proposer
      emit: crops
      score_threshold: 0.5
      crop_width: 64
      crop_height: 64
      batch_size: 32
      predictors: $cores
      outputs: [logits]
  pipeline:
    mode: $2
EOF
  } >"$work/$1.yaml"
}

# run_job NAME RECORDS_PER_SHARD TOTAL [KILL_AT]: runs `baton run NAME.yaml` and prints
# NAME_job_s (wall time of `baton run`: start-up, model loads and shutdown included) and
# NAME_records_per_s, the steady-state rate: records committed between the moments 20% and 80% of
# them were, over the time between. Progress is sampled every 50 ms from the committed part files
# (the master promotes a shard's part file when its commit is durable; it is what
# `baton status --json` counts as recordsDone, read without starting a process per sample: a
# status call costs ~90 ms of CPU here). With KILL_AT (a fraction), SIGKILLs one of the job's
# baton-infer-worker processes once that fraction of the records is committed.
run_job() {
  local name=$1 per_shard=$2 total=$3 kill_at=${4:-}
  local spec="$work/$name.yaml" out="$work/$name.out" samples="$work/$name.samples"
  local killed="" last=-1 n t0 t1 rc=0 kill_records=0 busy0 sleep_fd
  local -a parts
  : >"$samples"
  [ -n "$kill_at" ] && kill_records=$(calc "$kill_at * $total" 0)
  exec {sleep_fd}<> <(:)  # `read -t` on it sleeps without starting a process
  busy0=$(host_busy_s)
  t0=$EPOCHREALTIME
  /usr/bin/time -f "%U %S" -o "$work/$name.cpu" "$bin/baton" run "$spec" >"$work/$name.log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    parts=("$out"/part-*)
    n=${#parts[@]}
    if [ "$n" != "$last" ]; then
      echo "$EPOCHREALTIME $n" >>"$samples"
      last=$n
    fi
    if [ -n "$kill_at" ] && [ -z "$killed" ] && [ $((n * per_shard)) -ge "$kill_records" ]; then
      killed=$(pgrep -f -- "baton-infer-worker --spec $spec" | head -1 || true)
      if [ -n "$killed" ]; then
        kill -KILL "$killed"
        echo "killed worker pid $killed at $((n * per_shard)) committed records"
        kv "${name}_killed_at_records" $((n * per_shard))
      fi
    fi
    read -r -t 0.05 -u "$sleep_fd" _ || true
  done
  wait "$pid" || rc=$?
  t1=$EPOCHREALTIME
  exec {sleep_fd}>&-
  if [ "$rc" -ne 0 ]; then
    echo "run.sh: baton run $spec exited $rc; its log:" >&2
    tail -20 "$work/$name.log" >&2
    exit 1
  fi
  kv "${name}_job_s" "$(calc "$t1 - $t0" 2)"
  # CPU of `baton run` and everything it started (master, agents, workers, preflight).
  kv "${name}_cpu_s" "$(awk 'END { printf "%.2f", $1 + $2 }' "$work/$name.cpu")"
  other_cores "$name" "$busy0" "$(host_busy_s)" "$(get "${name}_cpu_s")" "$(get "${name}_job_s")"
  kv "${name}_records_per_s" "$(awk -v rs="$per_shard" -v total="$total" '
    { r = $2 * rs; if (r > total) r = total }
    !a && r >= 0.2 * total { ta = $1; ra = r; a = 1 }
    !b && r >= 0.8 * total { tb = $1; rb = r; b = 1 }
    END { if (tb > ta) printf "%.1f", (rb - ra) / (tb - ta); else print "nan" }' "$samples")"
  if [ -n "$kill_at" ]; then
    kv "${name}_worker_restarts" "$(grep -o 'restarts [0-9]*' "$work/$name.log" |
      awk '$2 > m { m = $2 } END { print m + 0 }')"
  fi
}

# same_outputs DIR1 DIR2: 1 when both hold the same part files, byte for byte.
same_outputs() {
  local a=$1 b=$2 f
  [ "$(cd "$a" && ls part-* | sort)" = "$(cd "$b" && ls part-* | sort)" ] || { echo 0; return; }
  for f in "$a"/part-*; do cmp -s "$f" "$b/$(basename "$f")" || { echo 0; return; }; done
  echo 1
}

# throughput ARGS...: records_per_s of one infer_model_throughput run (with --worker-env's variables).
throughput() {
  env OMP_NUM_THREADS=1 "${worker_env[@]}" "$bin/infer_model_throughput" --seconds "$bound_s" "$@" |
    sed -n 's/.*records_per_s=//p'
}

# ---- bounds ------------------------------------------------------------------------------------
echo "== bounds: each model's forward() alone ($cores threads, one model instance each, intra-op 1)" \
  "and CSV parsing alone ($cores threads), by infer_model_throughput"
tab_shapes=(--shape dense:f32:13 --shape sparse:i64:26:10000)
tab_spec tab_pipelined pipelined 1  # the parse and data modes read its schema
# The DLRM's cost depends on its data (embedding lookups spread over 26 tables of 10,000 rows miss
# the cache where one random batch repeated hits it): its bound runs forward() on the job's own
# records. diag_tab_model_one_batch_records_per_s is the same loop on one random batch per thread.
tab_data=(--data-csv "$data/rows.csv" --spec "$work/tab_pipelined.yaml")
kv bound_tab_model_records_per_s "$(throughput --model "$data/model.pt" "${tab_data[@]}" --batch 512 --threads "$cores")"
kv diag_tab_model_one_batch_records_per_s "$(throughput --model "$data/model.pt" "${tab_shapes[@]}" --batch 512 --threads "$cores")"
kv bound_tab_parse_records_per_s "$(throughput --parse-csv "$data/rows.csv" --spec "$work/tab_pipelined.yaml" --batch 512 --threads "$cores")"
# Parse and compute share the cores: r/model + r/parse <= 1 (each rate measured on all cores).
kv bound_tab_records_per_s "$(calc "1 / (1 / $(get bound_tab_model_records_per_s) + 1 / $(get bound_tab_parse_records_per_s))" 1)"
kv vision_compute_bound_images_per_s "$(throughput --model "$data/resnet18.pt" --shape x:f32:3x112x112 --batch 8 --threads "$cores")"
kv bound_proposer_images_per_s "$(throughput --model "$data/proposer.pt" --shape x:f32:3x128x128 --batch 16 --threads "$cores")"
kv bound_classifier_crops_per_s "$(throughput --model "$data/classifier.pt" --shape x:f32:3x64x64 --batch 32 --threads "$cores")"
# The same forward() loop with glibc malloc's default thresholds (the bounds above keep freed
# memory; see infer_model_throughput's header), without --worker-env: what allocator churn costs.
saved_env=("${worker_env[@]}")
worker_env=()
kv diag_tab_model_default_malloc_records_per_s "$(throughput --default-malloc --model "$data/model.pt" "${tab_data[@]}" --batch 512 --threads "$cores")"
kv diag_resnet18_default_malloc_images_per_s "$(throughput --default-malloc --model "$data/resnet18.pt" --shape x:f32:3x112x112 --batch 8 --threads "$cores")"
worker_env=("${saved_env[@]}")

# ---- 1. tabular: pipelined vs sequential vs PyTorch ----------------------------------------------
echo "== tabular: DLRM over $rows CSV rows, 1 worker; baton pipelined vs sequential vs plain PyTorch"
tab_spec tab_sequential sequential 1
run_job tab_pipelined "$rows_per_shard" "$rows"
run_job tab_sequential "$rows_per_shard" "$rows"
kv pipeline_vs_sequential "$(calc "$(get tab_pipelined_records_per_s) / $(get tab_sequential_records_per_s)")"
kv pipeline_vs_sequential_job_time "$(calc "$(get tab_sequential_job_s) / $(get tab_pipelined_job_s)")"
kv tab_outputs_identical "$(same_outputs "$work/tab_pipelined.out" "$work/tab_sequential.out")"
tab_spec tab_autoscale pipelined 1 1
run_job tab_autoscale "$rows_per_shard" "$rows"

best=0; best_cfg=""; best_wall=0
for cfg in $pytorch_configs; do
  workers=${cfg:1:1}; threads=1
  [ "$cfg" = w0t2 ] && threads=2
  busy0=$(host_busy_s)
  t0=$EPOCHREALTIME
  /usr/bin/time -f "%U %S" -o "$work/pytorch_$cfg.cpu" "$py" "$root/examples/infer-tabular/pytorch_baseline.py" \
    --model "$data/model.pt" --csv "$data/rows.csv" --out "$work/pytorch_$cfg.csv" --workers "$workers" \
    --threads "$threads" --batch-size 512 >"$work/pytorch_$cfg.txt" 2>"$work/pytorch_$cfg.err"
  wall=$(calc "$EPOCHREALTIME - $t0" 2)
  rps=$(sed -n 's/.*rows_per_s=//p' "$work/pytorch_$cfg.txt")
  kv "pytorch_${cfg}_records_per_s" "$rps"
  kv "pytorch_${cfg}_wall_s" "$wall"
  other_cores "pytorch_$cfg" "$busy0" "$(host_busy_s)" "$(awk 'END { print $1 + $2 }' "$work/pytorch_$cfg.cpu")" "$wall"
  if awk "BEGIN { exit !($rps > $best) }"; then best=$rps; best_cfg=$cfg; best_wall=$wall; fi
done
kv pytorch_best "$best_cfg"
kv pytorch_best_records_per_s "$best"
kv vs_pytorch "$(calc "$(get tab_pipelined_records_per_s) / $best")"
kv vs_pytorch_wall "$(calc "$best_wall / $(get tab_pipelined_job_s)")"

# ---- 2. efficiency -------------------------------------------------------------------------------
echo "== efficiency: pipelined steady-state records/s vs the parse+compute bound"
kv efficiency "$(calc "$(get tab_pipelined_records_per_s) / $(get bound_tab_records_per_s)")"
kv efficiency_vs_model_only "$(calc "$(get tab_pipelined_records_per_s) / $(get bound_tab_model_records_per_s)")"

# ---- 3. vision vs PyTorch ------------------------------------------------------------------------
echo "== vision: ResNet-18 over $images JPEGs (112x112, batch 8), 1 worker; baton vs plain PyTorch"
vision_spec vision pipelined
run_job vision "$images_per_shard" "$images"
vbest=0; vbest_cfg=""
for cfg in $pytorch_configs; do
  workers=${cfg:1:1}; threads=1
  [ "$cfg" = w0t2 ] && threads=2
  busy0=$(host_busy_s)
  t0=$EPOCHREALTIME
  /usr/bin/time -f "%U %S" -o "$work/pytorch_vision_$cfg.cpu" "$py" "$root/examples/infer-vision/pytorch_baseline.py" \
    --manifest "$data/images/manifest.txt" --model "$data/resnet18.pt" --out "$work/pytorch_vision_$cfg.csv" \
    --workers "$workers" --threads "$threads" --batch-size 8 --size 112 \
    >"$work/pytorch_vision_$cfg.txt" 2>"$work/pytorch_vision_$cfg.err"
  wall=$(calc "$EPOCHREALTIME - $t0" 2)
  ips=$(sed -n 's/.*images_per_s=//p' "$work/pytorch_vision_$cfg.txt")
  kv "vision_pytorch_${cfg}_images_per_s" "$ips"
  kv "vision_pytorch_${cfg}_wall_s" "$wall"
  other_cores "vision_pytorch_$cfg" "$busy0" "$(host_busy_s)" "$(awk 'END { print $1 + $2 }' "$work/pytorch_vision_$cfg.cpu")" "$wall"
  if awk "BEGIN { exit !($ips > $vbest) }"; then vbest=$ips; vbest_cfg=$cfg; fi
done
kv vision_pytorch_best "$vbest_cfg"
kv vision_pytorch_best_images_per_s "$vbest"
kv vision_images_per_s "$(get vision_records_per_s)"
kv vision_vs_pytorch "$(calc "$(get vision_records_per_s) / $vbest")"
kv vision_vs_bound "$(calc "$(get vision_records_per_s) / $(get vision_compute_bound_images_per_s)")"

# ---- 4. DAG --------------------------------------------------------------------------------------
echo "== DAG: proposer -> classifier on crops over $images JPEGs, 1 worker; pipelined vs sequential"
dag_spec dag_pipelined pipelined
dag_spec dag_sequential sequential
run_job dag_pipelined "$images_per_shard" "$images"
run_job dag_sequential "$images_per_shard" "$images"
# The classifier's batches are cut from crops as they arrive, so they differ between runs and its
# logits may differ in the last bits (batch-dependent kernels): compare the rows, then the numbers.
kv dag_outputs_identical "$(same_outputs "$work/dag_pipelined.out" "$work/dag_sequential.out")"
kv dag_outputs_max_abs_diff "$("$py" - "$work/dag_pipelined.out" "$work/dag_sequential.out" <<'PY'
import glob, json, os, sys
a, b = (sorted(glob.glob(os.path.join(d, "part-*"))) for d in sys.argv[1:3])
if [os.path.basename(p) for p in a] != [os.path.basename(p) for p in b]:
    sys.exit(print("nan (different part files)"))
worst = 0.0
def numbers(row):
    return [v for k in sorted(row) if isinstance(row[k], list) for v in row[k]]
for pa, pb in zip(a, b):
    la, lb = open(pa).read().splitlines(), open(pb).read().splitlines()
    if len(la) != len(lb):
        sys.exit(print(f"nan (row counts differ in {os.path.basename(pa)})"))
    for x, y in zip(la, lb):
        x, y = json.loads(x), json.loads(y)
        if (x["key"], x["model"], x["item"]) != (y["key"], y["model"], y["item"]):
            sys.exit(print(f"nan (rows differ in {os.path.basename(pa)})"))
        worst = max([worst] + [abs(u - v) for u, v in zip(numbers(x), numbers(y))])
print(f"{worst:.3g}")
PY
)"
crops=$(cat "$work/dag_pipelined.out"/part-* | grep -c '"model":"classifier"' || true)
kv dag_crops_per_image "$(calc "$crops / $images")"
kv dag_images_per_s "$(get dag_pipelined_records_per_s)"
kv dag_sequential_images_per_s "$(get dag_sequential_records_per_s)"
kv dag_vs_sequential "$(calc "$(get dag_pipelined_records_per_s) / $(get dag_sequential_records_per_s)")"
# The issue's bound: the slowest model's standalone rate on all the cores, in images/s.
proposer=$(get bound_proposer_images_per_s)
classifier=$(calc "$(get bound_classifier_crops_per_s) / $(get dag_crops_per_image)" 1)
kv dag_bound_images_per_s "$(calc "($proposer < $classifier) ? $proposer : $classifier" 1)"
# Both models sharing the cores: 1/proposer + crops_per_image/classifier seconds per image.
kv dag_shared_bound_images_per_s "$(calc "1 / (1 / $(get bound_proposer_images_per_s) + $(get dag_crops_per_image) / $(get bound_classifier_crops_per_s))" 1)"
kv dag_vs_bound "$(calc "$(get dag_pipelined_records_per_s) / $(get dag_bound_images_per_s)")"
kv dag_vs_shared_bound "$(calc "$(get dag_pipelined_records_per_s) / $(get dag_shared_bound_images_per_s)")"

# ---- 5. fault cost -------------------------------------------------------------------------------
echo "== fault: tabular job, 2 workers; one SIGKILLed at ~50% of the records vs no fault"
tab_spec fault_free pipelined 2
tab_spec fault pipelined 2
run_job fault_free "$rows_per_shard" "$rows"
run_job fault "$rows_per_shard" "$rows" 0.5
kv fault_time_ratio "$(calc "$(get fault_job_s) / $(get fault_free_job_s)")"
kv fault_output_identical "$(same_outputs "$work/fault_free.out" "$work/fault.out")"
kv fault_output_identical_to_1_worker "$(same_outputs "$work/fault_free.out" "$work/tab_pipelined.out")"

echo "== summary (size=$size, $(date -u +%FT%TZ), load_avg \"$(cut -d' ' -f1-3 /proc/loadavg)\")"
cat "$results"
