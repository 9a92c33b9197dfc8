#!/usr/bin/python3
"""Driver of bench/train/run.sh (see there): runs baton and the DDP baseline and prints key=value
lines. Times of baton's steps come from its workers' logs (a summary line each prints at the end);
the kill time from this process's clock, the generation's from the workers' log timestamps (same
machine, same clock)."""
import argparse
import datetime
import glob
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
EXAMPLE = os.path.join(ROOT, "examples", "train-ctr")


def sh(args, **kw):
    return subprocess.run(args, check=True, **kw)


def cpu_features():
    flags = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                break
    keep = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni") if f in flags]
    return ",".join(keep)


def spec(out, name, rows_csv, epochs, model, every_steps=50, workers=2):
    path = os.path.join(out, name + ".yaml")
    with open(path, "w") as f:
        f.write(f"""name: {name}
kind: train
input: {{paths: [{rows_csv}], format: csv, skip_header: true, records_per_shard: 10000,
        epochs: {epochs}}}
worker: {{per_node: {workers}, restart_backoff_ms: 100}}
master: {{state_dir: {name}-state}}
train:
  model: {model}
  loss_method: loss
  save: {name}-model.pt
  key: id
  tensors:
    - {{name: dense, type: float32, columns: [d0..d7]}}
    - {{name: sparse, type: int64, columns: [c0..c7]}}
    - {{name: label, type: float32, columns: [label]}}
  global_batch: 256
  optimizer: {{kind: adam, lr: 0.003}}
  checkpoint: {{every_steps: {every_steps}}}
""")
    shutil.rmtree(os.path.join(out, name + "-state"), ignore_errors=True)
    return path


def logs(out, name):
    text = ""
    for p in glob.glob(os.path.join(out, name + "-state", "*.log")):
        with open(p, errors="replace") as f:
            text += f.read()
    return text


def clock_of(line):
    """Seconds since midnight of a worker log line's [HH:MM:SS.mmm] stamp."""
    m = re.match(r"\[(\d\d):(\d\d):(\d\d)\.(\d\d\d)\]", line)
    h, mi, s, ms = (int(x) for x in m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000


def now_clock():
    t = datetime.datetime.now()
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def worker_pids(spec_path):
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"baton-train-worker") and spec_path.encode() in cmd \
                and b"--check" not in cmd:
            pids.append(int(d))
    return sorted(pids)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=["quick", "full"], default="full")
    parser.add_argument("--bin", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    rows, epochs = (200000, 1) if args.size == "quick" else (400000, 2)
    os.makedirs(args.out, exist_ok=True)
    data = os.path.join(args.out, f"rows-{rows}.csv")
    model = os.path.join(args.out, "model.pt")
    if not os.path.exists(data):
        sh(["/usr/bin/python3", os.path.join(EXAMPLE, "generate_rows.py"), data, "--rows",
            str(rows), "--seed", "1"])
    if not os.path.exists(model):
        sh(["/usr/bin/python3", os.path.join(EXAMPLE, "export_model.py"), model])
    baton = os.path.join(args.bin, "baton")
    print(f"cpu_features={cpu_features()} ranks=2 threads_per_rank=1 rows={rows} epochs={epochs}")

    # 1. Throughput: baton and DDP alternately on the same rows, `repeats` times each (this
    # machine is shared and noisy: medians, with the range).
    repeats = 3
    steps = rows * epochs // 256
    baton_runs, ddp_runs, split = [], [], []
    for _ in range(repeats):
        path = spec(args.out, "throughput", data, epochs, model)
        sh([baton, "run", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        text = logs(args.out, "throughput")
        baton_runs.append(float(re.search(r"steady (\d+) samples/s", text).group(1)))
        split = re.findall(r"per step \(this rank\): (.*)", text)
        ddp = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "ddp_baseline.py"), data,
                              "--ranks", "2", "--global-batch", "256", "--steps", str(steps)],
                             check=True, capture_output=True, text=True).stdout
        ddp_runs.append(float(re.search(r"ddp_samples_per_s=(\d+)", ddp).group(1)))
    ratios = sorted(b / d for b, d in zip(baton_runs, ddp_runs))
    print(f"baton_samples_per_s={statistics.median(baton_runs):.0f} "
          f"range=[{min(baton_runs):.0f}-{max(baton_runs):.0f}]")
    print(f"ddp_samples_per_s={statistics.median(ddp_runs):.0f} "
          f"range=[{min(ddp_runs):.0f}-{max(ddp_runs):.0f}]")
    print(f"train_vs_ddp={statistics.median(ratios):.2f} "
          f"range=[{ratios[0]:.2f}-{ratios[-1]:.2f}] pairs={repeats}")
    if split:
        print(f"baton_step_split=\"{split[0]}\"")

    # 2. Flash checkpoints every 50 steps against none (one at step 0 and one at the end only:
    # every_steps larger than the run), alternately; step time is the inverse of throughput.
    with_ckpt, without, shares = [], [], []
    ckpt_line = ""
    pairs = 3 if args.size == "quick" else 5
    for i in range(pairs):
        pair = [(50, with_ckpt), (10**9, without)]
        for every, runs in (pair if i % 2 == 0 else pair[::-1]):  # alternate which goes first
            path = spec(args.out, "checkpoint", data, epochs, model, every_steps=every)
            sh([baton, "run", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            text = logs(args.out, "checkpoint")
            runs.append(float(re.search(r"steady (\d+) samples/s", text).group(1)))
            if every == 50:
                ckpt_line = " | ".join(re.findall(r"checkpoints \(this rank\): (.*)", text))
                # The same run's own accounting: the share of each rank's step time spent in
                # checkpoints (the background persist thread's CPU time is not in it).
                for split_line in re.findall(r"per step \(this rank\): (.*)", text):
                    parts = {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+) ms", split_line)}
                    shares.append(parts.get("checkpoint", 0.0) / sum(parts.values()))
    overheads = sorted(w / c for w, c in zip(without, with_ckpt))
    print(f"checkpoint_overhead={statistics.median(overheads):.3f} "
          f"range=[{overheads[0]:.3f}-{overheads[-1]:.3f}] pairs={pairs} every_steps=50")
    print(f"checkpoint_in_step_share={max(shares):.4f} note=\"largest of any rank and run\"")
    print(f"checkpoint_per_rank=\"{ckpt_line}\"")

    # 3. Two ranks against four, on the same rows. Four single-thread ranks share the 2 cores
    # here: this measures the scheduler as much as baton (labelled as such).
    four = spec(args.out, "scaling4", data, epochs, model, workers=4)
    sh([baton, "run", four], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    four_rate = float(re.search(r"steady (\d+) samples/s", logs(args.out, "scaling4")).group(1))
    print(f"scaling_2_to_4={four_rate / statistics.median(baton_runs):.2f} "
          f"note=\"4 ranks x 1 thread on {os.cpu_count()} cores: oversubscribed, not a scaling "
          f"figure\"")

    # 4 and 5. Recovery from a SIGKILLed worker; rendezvous of the first generation.
    path = spec(args.out, "recovery", data, max(2, epochs), model)
    run = subprocess.Popen([baton, "run", path], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while "generation 1: rank" not in logs(args.out, "recovery"):
        if time.time() > deadline or run.poll() is not None:
            sys.exit("bench_train: the recovery job never formed a generation")
        time.sleep(0.05)
    time.sleep(2.0)
    victims = worker_pids(path)
    killed_at = now_clock()
    os.kill(victims[-1], signal.SIGKILL)
    if run.wait(timeout=600) != 0:
        sys.exit("bench_train: the recovery job failed")
    text = logs(args.out, "recovery")
    gen2 = [clock_of(l) for l in text.splitlines() if "generation 2: rank" in l]
    print(f"recovery_s={max(gen2) - killed_at:.2f}")
    joins = [clock_of(l) for l in text.splitlines() if "joining a generation (last: 0)" in l]
    gen1 = [clock_of(l) for l in text.splitlines() if "generation 1: rank" in l]
    first_joins = sorted(joins)[:2]
    print(f"rendezvous_s={max(gen1) - max(first_joins):.3f}")
    steps_from = re.search(r"generation 2: rank \d+ of \d+ .*from step (\d+)", text)
    print(f"recovery_resumed_from_step={steps_from.group(1)}")


if __name__ == "__main__":
    main()
