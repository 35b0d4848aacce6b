#!/usr/bin/env python3
"""The benchmark suite of scripts/bench.sh --quick|--full [--json]: runs every workload for ours (JMH, our libtorch),
the JVM peers (JMH, each in its own fork: JavaCPP's PyTorch API, DJL's PyTorch engine) and Python eager PyTorch, then
prints one table (or, with --json, exactly one JSON object on stdout; everything else goes to stderr).

Each figure is a median: of JMH's measurement iterations, of the Python script's timed runs, of the start-up runs.
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH_DIR = os.path.join(ROOT, "target", "bench")


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("bench: $ " + " ".join("CLASSPATH" if len(c) > 200 else c for c in cmd))
    return subprocess.run(cmd, cwd=ROOT, check=True, stdout=kw.pop("stdout", sys.stderr), **kw)


def pom_property(name):
    text = open(os.path.join(ROOT, "pom.xml")).read()
    m = re.search(r"<%s>([^<]+)</%s>" % (re.escape(name), re.escape(name)), text)
    return m.group(1) if m else None


def machine(java, threads):
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    jdk = subprocess.run([java, "-version"], capture_output=True, text=True).stderr.splitlines()
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "os": platform.platform(),
        "jdk": jdk[0] if jdk else None,
        "threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "libtorch_ours": pom_property("libtorch.version"),
        "javacpp_pytorch": pom_property("libtorch.version"),
        "djl": "%s (pytorch-native-cpu %s)" % (pom_property("djl.version"), pom_property("djl.pytorch.version")),
    }


def jmh(java, cp, pattern, out, options, excludes=()):
    cmd = [java, "--enable-native-access=ALL-UNNAMED", "-cp", cp, "org.openjdk.jmh.Main", pattern,
           "-rf", "json", "-rff", out] + options
    for e in excludes:
        cmd += ["-e", e]
    run(cmd)
    return json.load(open(out))


def medians(results):
    """{(benchmark, params...): (median, unit)}"""
    out = {}
    for r in results:
        raw = [x for fork in r["primaryMetric"]["rawData"] for x in fork]
        params = tuple(sorted((r.get("params") or {}).items()))
        out[(r["benchmark"], params)] = (statistics.median(raw), r["primaryMetric"]["scoreUnit"])
    return out


def pick(m, bench, unit, **params):
    key = (bench, tuple(sorted((k, str(v)) for k, v in params.items())))
    if key not in m:
        return None
    value, jmh_unit = m[key]
    scale = {("ns/op", "us"): 1e-3, ("us/op", "us"): 1.0, ("ms/op", "ms"): 1.0, ("ops/s", "per_s"): 1.0,
             ("s/op", "ms"): 1e3, ("ms/op", "s"): 1e-3}[(jmh_unit, unit)]
    return value * scale


def startup(java, cp, runs):
    cmd = [java, "--enable-native-access=ALL-UNNAMED", "-cp", cp, "io.arrakis.suite.StartupProbe",
           os.path.join(BENCH_DIR, "tiny")]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=sys.stderr)  # unmeasured: extraction, page cache
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    log("bench: startup_cold runs (s): " + ", ".join("%.2f" % t for t in times))
    return statistics.median(times)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt(x, unit):
    if x is None:
        return "—"
    if unit == "per_s":
        return "%.0f" % x
    return ("%.3g" % x) if x < 100 else "%.0f" % x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--java", required=True)
    ap.add_argument("--classpath", required=True)
    ap.add_argument("--python", default="/usr/bin/python3")
    args = ap.parse_args()
    quick = args.quick
    java, cp = args.java, args.classpath
    threads = int(os.environ.get("ARRAKIS_BENCH_THREADS", os.cpu_count()))
    started = time.time()

    run([java, "--enable-native-access=ALL-UNNAMED", "-cp", cp, "io.arrakis.model.BenchCheckpoint", BENCH_DIR])

    timing = (["-f", "1", "-wi", "2", "-w", "1s", "-i", "3", "-r", "1s"] if quick
              else ["-f", "2", "-wi", "3", "-w", "2s", "-i", "5", "-r", "3s"])
    m = medians(jmh(java, cp, r"io\.arrakis\.(suite|peers)\.|io\.arrakis\.torch\.OpOverheadBench\.(mul2x2|matmul64)$",
                    os.path.join(BENCH_DIR, "jmh.json"), timing,
                    excludes=[r"OursCompositionTl"]))
    layers = 12
    tl_layers = 1 if quick else layers
    m.update(medians(jmh(java, cp, r"io\.arrakis\.suite\.OursCompositionTl", os.path.join(BENCH_DIR, "jmh-tl.json"),
                         ["-f", "1", "-wi", "0", "-i", "1" if quick else "2", "-p", "senderLayers=%d" % tl_layers])))

    py = subprocess.run([args.python, os.path.join(ROOT, "scripts", "lib", "bench_python.py"), "--dir", BENCH_DIR,
                         "--threads", str(threads), "--tl-sender-layers", str(tl_layers)] + (["--quick"] if quick else []),
                        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    python = json.loads(py.stdout) if py.returncode == 0 else {"rows": {}}
    if py.returncode != 0:
        log("bench: the Python run failed (exit %d); its column is empty" % py.returncode)
    p = python["rows"]

    start = startup(java, cp, 3 if quick else 7)

    # ours against ours, A and B alternating in one JVM: immune to drift between JMH forks (see PairedRatios)
    paired_out = subprocess.run([java, "-Xmx6g", "--enable-native-access=ALL-UNNAMED", "-cp", cp,
                                 "io.arrakis.suite.PairedRatios", "7" if quick else "15"],
                                cwd=ROOT, stdout=subprocess.PIPE, text=True)
    paired = json.loads(paired_out.stdout.strip().splitlines()[-1]) if paired_out.returncode == 0 else {}

    S, P, J, D = "io.arrakis.suite.", "io.arrakis.peers.", "io.arrakis.peers.JavaCppPeer.", "io.arrakis.peers.DjlPeer."
    ref_f32 = pick(m, S + "OursForward.matmulsAlone", "ms", dtype="float32")
    ref_comp = pick(m, S + "OursComposition.unavoidableProduct", "ms", dtype="float32")
    tl_ours = pick(m, S + "OursCompositionTl.tlAlgorithm", "ms", senderLayers=tl_layers)
    rows = [
        ("op_mul_2x2", "us", pick(m, "io.arrakis.torch.OpOverheadBench.mul2x2", "us"), p.get("op_mul_2x2"),
         pick(m, J + "Ops.mul2x2", "us"), pick(m, D + "Ops.mul2x2", "us"), None),
        ("op_matmul_64", "us", pick(m, "io.arrakis.torch.OpOverheadBench.matmul64", "us"), p.get("op_matmul_64"),
         pick(m, J + "Ops.matmul64", "us"), pick(m, D + "Ops.matmul64", "us"), None),
        ("gpt2s_forward_f32", "ms", pick(m, S + "OursForward.noCache", "ms", dtype="float32"),
         p.get("gpt2s_forward_f32"), pick(m, J + "Forward.forward", "ms", dtype="float32"),
         pick(m, D + "Forward.forward", "ms"), ref_f32),
        ("gpt2s_forward_bf16", "ms", pick(m, S + "OursForward.noCache", "ms", dtype="bfloat16"),
         p.get("gpt2s_forward_bf16"), pick(m, J + "Forward.forward", "ms", dtype="bfloat16"), None,
         pick(m, S + "OursForward.matmulsAlone", "ms", dtype="bfloat16")),
        ("gpt2s_forward_f32_cache", "ms", pick(m, S + "OursForwardCache.fullCache", "ms"), None, None, None, ref_f32),
        ("composition_all_pairs_q", "ms", pick(m, S + "OursComposition.allPairsQ", "ms", dtype="float32"), None, None, None, ref_comp),
        ("composition_all_pairs_q_tl_algorithm", "ms", None if tl_ours is None else tl_ours * layers / tl_layers,
         p.get("composition_all_pairs_q_tl_algorithm"), None, None, ref_comp),
        ("path_patching", "ms", pick(m, S + "OursPathPatching.patch", "ms"), None, None, None, None),
    ]
    for n in (1, 2, 4, 8):
        rows.append(("throughput_threads_%d" % n, "per_s", pick(m, S + "OursThroughput.threads%d" % n, "per_s"),
                     None, None, None, None))
    rows.append(("startup_cold", "s", start, None, None, None, None))
    row_dicts = [dict(zip(("workload", "unit", "ours", "python", "javacpp", "djl", "reference"), r)) for r in rows]
    by = {r["workload"]: r for r in row_dicts}

    def target(name, value, op, limit, why):
        met = None if value is None else (value <= limit if op == "<=" else value >= limit)
        return {"target": name, "value": None if value is None else round(value, 3), "limit": "%s %.2f" % (op, limit),
                "met": met, "what": why}

    fwd = by["gpt2s_forward_f32"]
    comp = by["composition_all_pairs_q"]
    targets = [
        target("op_mul_2x2 ours/python", ratio(by["op_mul_2x2"]["ours"], by["op_mul_2x2"]["python"]), "<=", 1.0, "per-op 2x2 mul vs Python eager"),
        target("op_mul_2x2 ours/javacpp", ratio(by["op_mul_2x2"]["ours"], by["op_mul_2x2"]["javacpp"]), "<=", 1.0, "per-op 2x2 mul vs JavaCPP"),
        target("gpt2s_forward_f32 ours/javacpp", ratio(fwd["ours"], fwd["javacpp"]), "<=", 1.0, "GPT-2-small forward vs JavaCPP"),
        target("gpt2s_forward_f32 ours/matmuls", ratio(fwd["ours"], fwd["reference"]), "<=", 1.1, "forward vs its matrix products alone"),
        target("cache/no cache", ratio(by["gpt2s_forward_f32_cache"]["ours"], fwd["ours"]), "<=", 1.05, "full cache vs no cache"),
        target("composition ours/TL algorithm", ratio(comp["ours"], by["composition_all_pairs_q_tl_algorithm"]["ours"]), "<=", 0.5, "all-pairs Q vs TransformerLens's algorithm, same libtorch"),
        target("composition ours/product", ratio(comp["ours"], comp["reference"]), "<=", 1.5, "all-pairs Q vs its one matrix product"),
        target("forward/matmuls, paired", paired.get("forward_vs_matmuls"), "<=", 1.1, "the same, A/B alternating in one JVM"),
        target("cache/no cache, paired", paired.get("cache_vs_no_cache"), "<=", 1.05, "the same, A/B alternating in one JVM"),
        target("composition/product, paired", paired.get("composition_vs_product"), "<=", 1.5, "the same, A/B alternating in one JVM"),
        target("threads 4/1", ratio(by["throughput_threads_4"]["ours"], by["throughput_threads_1"]["ours"]), ">=", 1.6, "throughput of small forwards, 4 threads vs 1"),
        target("startup_cold", by["startup_cold"]["ours"], "<=", 1.5, "seconds to first forward, cold JVM"),
    ]
    mach = machine(java, threads)
    mach["python_torch"] = python.get("torch")
    mach["python_threads"] = python.get("threads")
    mach["mode"] = "quick" if quick else "full"
    mach["tl_algorithm_sender_layers"] = "%d of %d (time scaled by %d)" % (tl_layers, layers, layers // tl_layers) \
        if tl_layers != layers else "all %d" % layers
    mach["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    mach["suite_seconds"] = round(time.time() - started)

    table = render(row_dicts, targets, mach)
    if args.json:
        log(table)  # the table for people on stderr, the one JSON object on stdout
        print(json.dumps({"machine": mach, "rows": row_dicts, "targets": targets}, indent=1))
    else:
        print(table)


def render(row_dicts, targets, mach):
    header = ["workload", "unit", "ours", "python", "javacpp", "djl", "reference", "ours/python", "ours/javacpp",
              "ours/djl", "ours/reference"]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in row_dicts:
        u = r["unit"]
        cells = [r["workload"], u] + [fmt(r[k], u) for k in ("ours", "python", "javacpp", "djl", "reference")] \
            + [fmt(ratio(r["ours"], r[k]), "x") for k in ("python", "javacpp", "djl", "reference")]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    for t in targets:
        state = "n/a" if t["met"] is None else ("met" if t["met"] else "MISSED")
        out.append("target %-34s %8s  (%s)  %s — %s" % (t["target"], "—" if t["value"] is None else "%.3f" % t["value"],
                                                     t["limit"], state, t["what"]))
    out.append("")
    out.append("machine: " + json.dumps(mach))
    return "\n".join(out)


if __name__ == "__main__":
    main()
