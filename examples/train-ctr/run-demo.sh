#!/usr/bin/env bash
# `make demo` (third part): exports the untrained click model and generates its data once, trains
# it with `baton run train.yaml` (two ranks), scores held-out rows with the trained model through
# `baton run infer.yaml`, and prints the hold-out AUC next to the untrained model's.
set -euo pipefail
build_dir=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
data="$here/data"
out="$root/demo-out"
mkdir -p "$data"
if [ ! -s "$data/model.pt" ]; then
  echo "demo: exporting the untrained model to $data/model.pt..."
  /usr/bin/python3 "$here/export_model.py" "$data/model.pt"
fi
if [ ! -s "$data/train.csv" ]; then
  echo "demo: generating $data/train.csv (200,000 rows) and $data/holdout.csv (20,000 rows)..."
  /usr/bin/python3 "$here/generate_rows.py" "$data/train.csv" --rows 200000 --seed 1
  /usr/bin/python3 "$here/generate_rows.py" "$data/holdout.csv" --rows 20000 --seed 2
fi
# A finished demo is run again from the start: the trained model is the point of it.
rm -rf "$out/train-ctr-state" "$out/train-ctr-scores-state" "$out/train-ctr-scores"
"$root/$build_dir/bin/baton" run "$here/train.yaml"
echo
"$root/$build_dir/bin/baton" run "$here/infer.yaml"
echo
echo "demo: trained model: $out/train-ctr/model.pt"
echo "demo: hold-out $(/usr/bin/python3 "$here/auc.py" "$data/holdout.csv" "$out/train-ctr-scores") (trained)"
# The same scoring with the untrained model, for comparison.
sed -e "s#path: ../../demo-out/train-ctr/model.pt#path: data/model.pt#" \
    -e "s#train-ctr-scores#train-ctr-untrained-scores#g" "$here/infer.yaml" > "$here/.untrained.yaml"
rm -rf "$out/train-ctr-untrained-scores" "$out/train-ctr-untrained-scores-state"
"$root/$build_dir/bin/baton" run "$here/.untrained.yaml" > /dev/null 2>&1
rm -f "$here/.untrained.yaml"
echo "demo: hold-out $(/usr/bin/python3 "$here/auc.py" "$data/holdout.csv" "$out/train-ctr-untrained-scores") (untrained)"
