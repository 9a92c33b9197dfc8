#!/usr/bin/env bash
# Exports the vision models and generates 2,000 JPEGs once (2 corrupted on purpose), then runs
# the ResNet-18 job and the proposer -> classifier DAG job.
set -euo pipefail
build_dir=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
data="$here/data"
mkdir -p "$data"
[ -s "$data/classifier.pt" ] || /usr/bin/python3 "$here/export_models.py" "$data"
if [ ! -s "$data/images/manifest.txt" ]; then
  echo "demo: generating 2,000 JPEGs in $data/images..."
  /usr/bin/python3 "$here/generate_images.py" "$data/images" --count 2000 --corrupt 2
fi
"$root/$build_dir/bin/baton" run "$here/job.yaml"
"$root/$build_dir/bin/baton" run "$here/dag.yaml"
echo "demo: outputs in $root/demo-out/infer-vision and $root/demo-out/infer-vision-dag"
