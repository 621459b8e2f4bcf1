"""The measuring half of scripts/bench-peers: runs every configuration
ROUNDS times, interleaved (so load from other processes hits them alike),
and prints medians beside their goals and ratios."""

import os
import statistics
import subprocess
import sys
import time

rounds, bench, guests, arcella, peer, cli, wasmi, wasm3, device = sys.argv[1:10]
rounds = int(rounds)


def run(argv):
    """Runs argv; returns (stdout, seconds, ru_maxrss in KiB: see peak_rss_mib)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(argv)} failed: {err.decode(errors='replace')}")
    return out.decode(), took, usage.ru_maxrss


def result(out):
    line = next(l for l in out.splitlines() if l.startswith("RESULT"))
    return float(line.split()[2])


def guest(name):
    return f"{guests}/{name}.wasm"


def art(name, variant=""):
    return f"{bench}/{name}{variant}.cwasm"


def configs(name, pulley=True):
    c = {
        "wasmtime crate, defaults": [peer, guest(name)],
        "wasmtime crate + fuel": [peer, "--fuel", guest(name)],
        "wasmtime crate + epoch": [peer, "--epoch", guest(name)],
        "wasmtime crate + fuel + epoch": [peer, "--fuel", "--epoch", guest(name)],
        "wasmtime crate + 32 MiB reservation": [peer, "--small-reservation", guest(name)],
        "wasmtime crate + all three (Arcella before)": [peer, "--fuel", "--epoch", "--small-reservation", guest(name)],
        "arcella run, native --no-epoch": [arcella, "run", art(name, ".noepoch")],
        "arcella run, native (epoch: daemon-ready)": [arcella, "run", art(name)],
        "arcella run, native --fuel --no-epoch": [arcella, "run", "--fuel", str(10**18), art(name, ".fuel-noepoch")],
        "arcella run, native --fuel (epoch)": [arcella, "run", "--fuel", str(10**18), art(name, ".fuel")],
    }
    if pulley:
        c.update({
            "wasmtime crate, pulley64": [peer, "--pulley", guest(name)],
            "wasmtime crate, pulley64 + epoch": [peer, "--pulley", "--epoch", guest(name)],
            "arcella run, pulley64 --no-epoch": [arcella, "run", art(name, ".pulley64-noepoch")],
            "arcella run, pulley64 (epoch)": [arcella, "run", art(name, ".pulley64")],
        })
    c["wasmi 2.0 (interpreter)"] = [wasmi, guest(name)]
    c["wasm3 0.5.0 (interpreter)"] = [wasm3, guest(name)]
    if cli:
        c["wasmtime CLI, defaults"] = [cli, "run", "--allow-precompiled", art(name, ".wasmtime")]
    return c


def measure(name, pulley=True):
    figures = {label: [] for label in configs(name, pulley)}
    for _ in range(rounds):
        for label, argv in configs(name, pulley).items():
            figures[label].append(result(run(argv)[0]))
    return {label: statistics.median(v) for label, v in figures.items()}


def table(title, unit, figures, higher_is_better, goals):
    base_label = "wasmtime CLI, defaults" if cli else "wasmtime crate, defaults"
    print(f"\n{title} (median of {rounds}; {unit})")
    print(f"ratio: against the goal's reference where a goal is named, else against {base_label}; >1 is faster")
    print(f"{'configuration':48} {'figure':>12} {'ratio':>8}  goal")
    for label, value in figures.items():
        ref_label, want, goal_text = goals.get(label, (base_label, None, ""))
        ref = figures[ref_label]
        ratio = value / ref if higher_is_better else ref / value
        verdict = ""
        if want is not None:
            verdict = " met" if ratio >= want else " MISSED"
        print(f"{label:48} {value:12.1f} {ratio:7.2f}x  {goal_text}{verdict}")


base = "wasmtime CLI, defaults" if cli else "wasmtime crate, defaults"
goals = {
    "arcella run, native --no-epoch": (base, 0.95, ">= 0.95x wasmtime defaults"),
    "arcella run, native (epoch: daemon-ready)": ("wasmtime crate + epoch", 0.95, "within 5% of wasmtime + epoch"),
    "arcella run, native --fuel --no-epoch": ("wasmtime crate + fuel", 0.95, "within 5% of wasmtime + fuel"),
    "arcella run, native --fuel (epoch)": ("wasmtime crate + fuel + epoch", 0.95, "within 5% of wasmtime + fuel + epoch"),
    "arcella run, pulley64 --no-epoch": ("wasmtime crate, pulley64", 0.95, ">= 0.95x wasmtime pulley64"),
    "arcella run, pulley64 (epoch)": ("wasmtime crate, pulley64 + epoch", 0.95, "within 5% of wasmtime pulley64 + epoch"),
}
print(f"host: {os.uname().machine}, load average before: {os.getloadavg()[0]:.2f}")
table("CoreMark-like CPU workload", "iterations/s, higher is better", measure("cpu"), True, goals)
table(
    "Memory-heavy kernel: SHA-256 of 16 MiB + sort of 4 Mi u32 (native only: pulley takes ~25 s a run)",
    "ms, lower is better",
    measure("mem", pulley=False),
    False,
    goals,
)

# Start-up and peak RSS of a whole `hello` process.
starts = {
    "arcella run hello.cwasm (dev build)": [arcella, "run", art("hello")],
    "arcella run hello.noepoch.cwasm (dev build)": [arcella, "run", art("hello", ".noepoch")],
}
if device:
    starts["arcella run hello.cwasm (device build)"] = [device, "run", art("hello")]
starts["wasmi 2.0 hello.wasm"] = [wasmi, guest("hello")]
starts["wasm3 0.5.0 hello.wasm"] = [wasm3, guest("hello")]
if cli:
    starts["wasmtime CLI run hello.cwasm"] = [cli, "run", "--allow-precompiled", art("hello", ".wasmtime")]
def peak_rss_mib(argv):
    """GNU time's maximum resident set size: Linux carries ru_maxrss over
    exec, so wait4 on a child forked from this (~15 MiB) Python would report
    Python's own; time(1) is small."""
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv, capture_output=True, check=True)
    return int(out.stderr.decode().strip().splitlines()[-1]) / 1024


samples = {label: ([], []) for label in starts}
for _ in range(max(rounds, 3) * 5):
    for label, argv in starts.items():
        took = run(argv)[1]
        samples[label][0].append(took * 1e3)
        samples[label][1].append(peak_rss_mib(argv))
print(f"\nhello start-up, whole process, fork/exec from Python included (median of {max(rounds, 3) * 5})")
print(f"{'process':48} {'ms':>8} {'peak RSS MiB':>13}")
medians = {label: (statistics.median(ms), statistics.median(rss)) for label, (ms, rss) in samples.items()}
for label, (ms, rss) in medians.items():
    print(f"{label:48} {ms:8.2f} {rss:13.2f}")

# Issue 18's start-up goals are stated against wasm3, for the device build
# (the dev build's figures are printed too, for when no device build is named).
w3_ms, w3_rss = medians["wasm3 0.5.0 hello.wasm"]
print("goals (issue 18, against wasm3 0.5.0 hello.wasm; stated for the device build):")
for label, (ms, rss) in medians.items():
    if not label.startswith("arcella run hello.cwasm"):
        continue
    for what, value, ref, want, unit in (("start-up", ms, w3_ms, 1.3, "ms"), ("peak RSS", rss, w3_rss, 1.5, "MiB")):
        ratio = value / ref
        verdict = "met" if ratio <= want else "MISSED"
        print(f"  {label:46} {what:9} {value:7.2f} {unit:3} = {ratio:5.2f}x wasm3  goal <= {want}x  {verdict}")
print(f"load average after: {os.getloadavg()[0]:.2f}")
