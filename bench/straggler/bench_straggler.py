#!/usr/bin/python3
"""Driver of bench/straggler/run.sh (see there): runs baton (policies off, ND, DD) and the DDP peer
under the same stragglers, clean and slowed, and prints key=value lines. Epoch times of baton come
from rank 0's log (its generation formed at step 0 -> "training done"), DDP's from its script."""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "train"))
from bench_train import clock_of, cpu_features, logs, worker_pids  # noqa: E402

POLICIES = {
    "off": "",
    "nd": "rules: [adjust_batch], ",
    "dd": "rules: [profile], ",
}


def write_rows(path, rows, inputs, seed):
    import numpy as np
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, inputs)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    with open(path, "w") as f:
        f.write("id," + ",".join(f"x{i}" for i in range(inputs)) + ",y\n")
        for i in range(rows):
            f.write(f"r{i}," + ",".join(f"{v:.4f}" for v in x[i]) + f",{y[i]:.0f}\n")


class Setting:
    def __init__(self, name, model, nodes, per_node, batch, rows, emulate_us, label):
        self.name, self.model, self.nodes, self.per_node = name, model, nodes, per_node
        self.batch, self.rows, self.emulate_us, self.label = batch, rows, emulate_us, label

    @property
    def ranks(self):
        return self.nodes * self.per_node


def baton_spec(out, s, name, rows_csv, model_pt, straggler, spares=0):
    path = os.path.join(out, name + ".yaml")
    inputs = 16 if s.model == "tiny" else 64
    with open(path, "w") as f:
        f.write(f"""name: {name}
kind: train
nodes: {s.nodes}
spare_nodes: {spares}
input: {{paths: [{rows_csv}], format: csv, skip_header: true, records_per_shard: {s.batch}}}
worker: {{per_node: {s.per_node}, restart_backoff_ms: 100}}
master: {{state_dir: {name}-state}}
train:
  model: {model_pt}
  save: {name}-model.pt
  key: id
  tensors: [{{name: x, columns: [x0..x{inputs - 1}]}}, {{name: y, columns: [y]}}]
  global_batch: {s.batch}
  optimizer: {{kind: adam, lr: 0.001}}
  straggler: {{{straggler.rstrip(", ")}}}
""")
    shutil.rmtree(os.path.join(out, name + "-state"), ignore_errors=True)
    return path


def epoch_of_logs(out, name):
    """Rank 0's training time: its first generation formed -> its "training done" line."""
    text = logs(out, name)
    start = done = None
    for line in text.splitlines():
        if start is None and re.search(r"\] generation \d+: rank 0 of", line):
            start = clock_of(line)
        if "] training done after" in line and "/0]" in line:
            done = clock_of(line)
    if start is None or done is None:
        raise RuntimeError(f"{name}: no start or end of training in its logs")
    return done - start, text


def span_of_logs(out, name):
    """From the first generation formed to the last worker's "training done" line, whichever
    workers those are (kill_restart replaces some)."""
    text = logs(out, name)
    starts = [clock_of(line) for line in text.splitlines()
              if re.search(r"\] generation \d+: rank 0 of", line)]
    ends = [clock_of(line) for line in text.splitlines() if "] training done after" in line]
    if not starts or not ends:
        raise RuntimeError(f"{name}: no start or end of training in its logs")
    return max(ends) - min(starts), text


def pin_workers(spec_path, wait_for):
    """Rank r's worker (worker id node-n/l, in rank order) on core r mod 2, every thread."""
    deadline = time.time() + 60
    while time.time() < deadline:
        pids = worker_pids(spec_path)
        if len(pids) >= wait_for:
            break
        time.sleep(0.05)
    ids = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
            ids[pid] = env.get(b"BATON_WORKER_ID", b"").decode()
        except OSError:
            pass
    for rank, pid in enumerate(sorted(ids, key=lambda p: ids[p])):
        subprocess.run(["taskset", "-a", "-cp", str(rank % os.cpu_count()), str(pid)],
                       stdout=subprocess.DEVNULL, check=False)


def run_baton(args, s, tag, rows_csv, model_pt, straggler, pin=False, spares=0):
    name = f"{s.name}-{tag}"
    spec = baton_spec(args.out, s, name, rows_csv, model_pt, straggler, spares)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    run = subprocess.Popen([os.path.join(args.bin, "baton"), "run", spec], cwd=args.out, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    if pin:
        pin_workers(spec, s.ranks)
    if run.wait() != 0:
        raise RuntimeError(f"baton run {spec} failed; logs in {args.out}/{name}-state")
    seconds, text = (span_of_logs if spares else epoch_of_logs)(args.out, name)
    plans = len(re.findall(r"batch plan v\d+ for generation", text))
    moves = len(re.findall(r"worker\(s\) move from node", text))
    return seconds, (moves if spares else plans)


def run_ddp(s, extra, pin=False):
    cmd = ["/usr/bin/python3", os.path.join(HERE, "ddp_straggler.py"), "--model", s.model,
           "--ranks", str(s.ranks), "--rows", str(s.rows), "--global-batch", str(s.batch),
           "--emulate-us", str(s.emulate_us)] + extra + (["--pin"] if pin else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(re.search(r"ddp_epoch_s=([0-9.]+)", out).group(1))


class Hog:
    """`count` CPU hogs (stress-ng) pinned to core 1, next to rank 1 (the real setting)."""

    def __init__(self, count):
        self.count, self.proc = count, None

    def __enter__(self):
        if self.count > 0:
            self.proc = subprocess.Popen(
                ["stress-ng", "--cpu", str(self.count), "--taskset", "1", "--quiet"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        if self.proc:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def kill_restart(args, quick):
    """A slow host (every worker of node-1, 2 of the 4 ranks, 4x slower from the start) and one
    spare node: kill_restart moves node-1's workers to the spare once the straggler lasted
    persistent_after_s (1 s here; 300 by default, for production) and the saving beats twice the
    restart cost (1 s assumed until one is measured). Its epoch over the clean one (the same
    rules and spare, no straggler: it must never move); --full adds ND alone under the same slow
    host for comparison (ideal N / (N - 2 + 2/k) = 1.6)."""
    s = Setting("emulated_2x2_spare", "tiny", 2, 2, 128, 128 * 3000, 500,
                "emulated compute as above, plus one spare node; node-1 is a slow host")
    rows_csv = os.path.join(args.out, f"{s.name}.csv")
    write_rows(rows_csv, s.rows, 16, 1)
    model_pt = os.path.join(args.out, "tiny.pt")
    print(f"# {s.name}: {s.ranks} ranks + a spare node, {s.label}; global batch {s.batch}, "
          f"{s.rows} rows", flush=True)
    emulate = f"emulate_us_per_sample: {s.emulate_us}"
    rules = ("rules: [adjust_batch, kill_restart], persistent_after_s: 1, restart_cost_s: 1, ")
    slow_host = "inject: [{node: node-1, slowdown: 4}], "
    clean, clean_moves = run_baton(args, s, "clean", rows_csv, model_pt, rules + emulate,
                                   spares=1)
    kr, moves = run_baton(args, s, "slowhost-kr", rows_csv, model_pt,
                          rules + slow_host + emulate, spares=1)
    line = (f"setting={s.name} case=slow_host k=4 baton_clean_s={clean:.2f} clean_moves={clean_moves} "
            f"kr_s={kr:.2f} kr_moves={moves} kr_over_clean={kr / clean:.3f}")
    if not quick:
        nd, _ = run_baton(args, s, "slowhost-nd", rows_csv, model_pt,
                          POLICIES["nd"] + slow_host + emulate, spares=1)
        line += f" nd_over_clean={nd / clean:.3f} ideal_nd_ratio={ideal(4, 4, slow=2):.3f}"
    print(line, flush=True)
    return kr / clean


def ideal(n, k, slow=1):
    return n / (n - slow + slow / k)


def compute_growth(model):
    """Forward + backward of `model` (1 thread) at 256 rows over 128 rows: the real setting's
    compute must grow with the batch for batch sizing to help."""
    code = f"""
import time, torch, sys
sys.path.insert(0, {HERE!r})
from models import build, SHAPES
torch.set_num_threads(1)
m = build({model!r})
def t(b):
    x = torch.randn(b, SHAPES[{model!r}][0]); y = (torch.rand(b, 1) > 0.5).float()
    for _ in range(3): m(x, y).sum().backward()
    best = 1e9
    for _ in range(5):
        s = time.perf_counter()
        for _ in range(5): m(x, y).sum().backward()
        best = min(best, (time.perf_counter() - s) / 5)
    return best * 1000
a, b = t(128), t(256)
print(f"{{a:.2f}} {{b:.2f}}")
"""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    out = subprocess.run(["/usr/bin/python3", "-c", code], check=True, capture_output=True,
                         text=True, env=env).stdout.split()
    return float(out[0]), float(out[1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=["quick", "full"], default="full")
    parser.add_argument("--bin", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    quick = args.size == "quick"
    subprocess.run(["/usr/bin/python3", os.path.join(HERE, "models.py"), args.out], check=True)
    print(f"cpu_features={cpu_features()} cores={os.cpu_count()}")

    # (setting, cases): a case is (label, k, baton's inject items, DDP's flags, hogs on core 1).
    ks = [4] if quick else [2, 3, 4]
    settings = []
    emulated = [Setting("emulated_2x2", "tiny", 2, 2, 128, 128 * 700, 500,
                        "emulated compute: each rank sleeps rows x 500 us (x its slowdown)")]
    if not quick:
        emulated.append(Setting("emulated_2x4", "tiny", 2, 4, 256, 256 * 500, 500,
                                "emulated compute, 8 ranks on 2 cores (sleeps use no CPU)"))
    for s in emulated:
        last = s.ranks - 1
        cases = [(f"k{k}", k, f"inject: [{{rank: {last}, slowdown: {k}}}], ",
                  ["--slow-rank", str(last), "--slowdown", str(k)], 0) for k in ks]
        cases.append(("transient", 4, f"inject: [{{rank: {last}, slowdown: 4, on_s: 6, "
                      "period_s: 12}], ", ["--slow-rank", str(last), "--slowdown", "4", "--on-s",
                                           "6", "--period-s", "12"], 0))
        settings.append((s, cases))
    real = Setting("real_1x2", "wide", 1, 2, 512, 512 * (250 if quick else 400), 0,
                   "real compute, 1 thread a rank, each rank pinned to its core; the straggler "
                   "shares core 1 with stress-ng hogs (k = 1 + hogs, the CPU's fair share)")
    settings.append((real, [(f"hog{h}", 1 + h, "", [], h) for h in ([1] if quick else [1, 2])]))

    worst = {"nd": 0.0, "dd": 0.0}
    nd_vs_ddp_k4 = None
    for s, cases in settings:
        inputs = 16 if s.model == "tiny" else 64
        rows_csv = os.path.join(args.out, f"{s.name}.csv")
        write_rows(rows_csv, s.rows, inputs, 1)
        model_pt = os.path.join(args.out, s.model + ".pt")
        pin = s.emulate_us == 0
        print(f"# {s.name}: {s.ranks} ranks, {s.label}; global batch {s.batch}, {s.rows} rows",
              flush=True)
        if pin:
            small, large = compute_growth(s.model)
            print(f"setting={s.name} compute_ms_128_rows={small:.2f} compute_ms_256_rows={large:.2f} "
                  f"compute_growth_2x={large / small:.2f}")
        emulate = f"emulate_us_per_sample: {s.emulate_us}" if s.emulate_us else ""
        clean_ddp = run_ddp(s, [], pin)
        # The clean run has ND on: with no straggler it must never act.
        clean_baton, clean_plans = run_baton(args, s, "clean", rows_csv, model_pt,
                                             POLICIES["nd"] + emulate, pin)
        print(f"setting={s.name} ddp_clean_s={clean_ddp:.2f} baton_clean_s={clean_baton:.2f} "
              f"clean_plans={clean_plans}", flush=True)
        for label, k, inject, ddp_flags, hogs in cases:
            with Hog(hogs):
                ddp = run_ddp(s, ddp_flags, pin)
                ratios = {"ddp": ddp / clean_ddp}
                plans = {}
                for policy, rules in POLICIES.items():
                    t, plans[policy] = run_baton(args, s, f"{label}-{policy}", rows_csv, model_pt,
                                                 rules + inject + emulate, pin)
                    ratios[policy] = t / clean_baton
                    if policy == "nd":
                        nd_s = t
            best = ideal(s.ranks, k)
            if label == "transient":  # slow half of the time: the time-weighted ideal
                best = 1 / (0.5 / best + 0.5)
            for policy in ("nd", "dd"):
                worst[policy] = max(worst[policy], ratios[policy] / best)
            nd_vs_ddp = ddp / nd_s
            if label == "k4" and s.name == "emulated_2x2":
                nd_vs_ddp_k4 = nd_vs_ddp
            print(f"setting={s.name} case={label} k={k} ddp_straggler_ratio={ratios['ddp']:.3f} "
                  f"off_straggler_ratio={ratios['off']:.3f} nd_straggler_ratio={ratios['nd']:.3f} "
                  f"dd_straggler_ratio={ratios['dd']:.3f} ideal_ratio={best:.3f} "
                  f"nd_vs_ddp={nd_vs_ddp:.2f} nd_plans={plans['nd']} dd_plans={plans['dd']}",
                  flush=True)
    kr_over_clean = kill_restart(args, quick)
    print(f"nd_over_ideal={worst['nd']:.3f}")
    print(f"dd_over_ideal={worst['dd']:.3f}")
    print(f"nd_vs_ddp_k4={nd_vs_ddp_k4:.2f}")
    print(f"kr_over_clean={kr_over_clean:.3f}")


if __name__ == "__main__":
    main()
