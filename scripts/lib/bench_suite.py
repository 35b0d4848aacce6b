#!/usr/bin/env python3
"""The benchmark suite of scripts/bench.sh --quick|--full [--json]: runs every workload for ours (JMH, our libtorch),
the JVM peers (JMH, each in its own fork: JavaCPP's PyTorch API, DJL's PyTorch engine) and Python eager PyTorch, then
prints one table (or, with --json, exactly one JSON object on stdout; everything else goes to stderr).

Each figure is a median: of JMH's measurement iterations, of the Python script's timed runs, of the start-up runs.

No figure is lost silently to a crash: a cell whose run died (a JMH fork, the Python process, a JVM of ours) is run
once more, and its row says so ("retried": {column: why}); a figure still missing after that carries its reason
("missing": {column: why}), and the table refers to both in notes under it.
"""
import argparse
import fcntl
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH_DIR = os.path.join(ROOT, "target", "bench")
COLUMNS = ("ours", "python", "javacpp", "djl", "reference")
# Every JVM runs in ROOT; a crash report or JIT replay file goes under target/, never into the working tree. JMH's forks
# inherit these flags: without jvmArgs of their own, JMH starts each fork with the arguments of the JVM that runs it.
JVM_FLAGS = ["-XX:ErrorFile=target/hs_err_pid%p.log", "-XX:ReplayDataFile=target/replay_pid%p.log",
             "--enable-native-access=ALL-UNNAMED"]
# What a JVM that times something adds (ours and the JVM peers alike; not the cold start-up row): a heap committed and
# touched when it starts, so that G1 growing its young generation does not fault pages in inside timed passes (see
# BENCHMARKS.md).
MEASURING_JVM_FLAGS = JVM_FLAGS + ["-Xms256m", "-XX:+AlwaysPreTouch"]
# JMH refuses to start while another JMH run on the machine (anyone's) holds a lock on this file.
JMH_LOCK = "/tmp/jmh.lock"


def log(*args):
    print(*args, file=sys.stderr, flush=True)


class Figure:
    """One cell: its value (None if none), why it was measured a second time, why it has no value."""

    def __init__(self, value=None, retried=None, missing=None):
        self.value = value
        self.retried = retried
        self.missing = missing if value is None else None


def second_try(why, value, why_again):
    """The figure of a cell measured once more because its first run gave none, for the reason why."""
    if value is not None:
        return Figure(value, retried=why)
    return Figure(missing=why if why_again == why else "%s; run again: %s" % (why, why_again))


def twice(attempt):
    """attempt() -> (value, why there is none); a failed attempt is made once more."""
    value, why = attempt()
    if value is not None:
        return Figure(value)
    log("bench: %s; running it once more" % why)
    return second_try(why, *attempt())


def run_logged(cmd, stdout=None, echo=True, env=None):
    """Runs cmd in ROOT (in env, else this process's environment), its output echoed to stderr (with echo); stdout goes
    to the given file, else with stderr. Returns the exit code and the output lines."""
    log("bench: $ " + " ".join("CLASSPATH" if len(c) > 200 else c for c in cmd))
    lines = []
    with subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=stdout or subprocess.PIPE,
                          stderr=subprocess.PIPE if stdout else subprocess.STDOUT, text=True, errors="replace") as p:
        for line in (p.stderr if stdout else p.stdout):
            if echo:
                sys.stderr.write(line)
            lines.append(line.rstrip("\n"))
    return p.returncode, lines


def exit_status(code):
    if code < 0:
        try:
            return "killed by " + signal.Signals(-code).name
        except ValueError:
            return "killed by signal %d" % -code
    return "exit %d" % code


def crash_details(lines):
    """What a dying JVM printed about its crash (signal, problematic frame, report file), as one phrase, or None."""
    sig = frame = report = None
    for i, line in enumerate(lines):
        following = " ".join(lines[i + 1].lstrip("#").split()) if i + 1 < len(lines) else ""
        m = re.match(r"#\s+(SIG[A-Z0-9]+) \(0x", line)
        if m and sig is None:
            sig = m.group(1)
        elif line.startswith("# Problematic frame:") and frame is None:
            frame = following
        elif "error report file with more information is saved as" in line and report is None:
            report = os.path.relpath(following, ROOT) if following.startswith(ROOT + os.sep) else following
    if sig is None:
        return None
    return sig + (" at " + frame if frame else "") + (", report " + report if report else "")


def process_failure(name, code, lines):
    """Why a process we started gave no figure."""
    details = crash_details(lines) or next((l.strip() for l in reversed(lines) if l.strip()), None)
    return "%s failed (%s)%s" % (name, exit_status(code), ": " + details if details else "")


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
    jdk = subprocess.run([java] + JVM_FLAGS + ["-version"], cwd=ROOT, capture_output=True, text=True).stderr.splitlines()
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "os": platform.platform(),
        "jdk": jdk[0] if jdk else None,
        "threads": threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),  # set, it chooses every OpenBLAS's kernels here
        "libtorch_ours": pom_property("libtorch.version"),
        "javacpp_pytorch": pom_property("libtorch.version"),
        "djl": "%s (pytorch-native-cpu %s)" % (pom_property("djl.version"), pom_property("djl.pytorch.version")),
    }


def jmh_key(bench, params=None):
    """A JMH result's identity: the benchmark and its parameters (as strings, the way JMH reports them)."""
    return bench, tuple(sorted((k, str(v)) for k, v in (params or {}).items()))


def medians(results):
    """{jmh_key: (median, unit)} of a JMH JSON result file's content."""
    out = {}
    for r in results:
        raw = [x for fork in r["primaryMetric"]["rawData"] for x in fork]
        out[jmh_key(r["benchmark"], r.get("params"))] = (statistics.median(raw), r["primaryMetric"]["scoreUnit"])
    return out


def jmh_failures(lines):
    """{jmh_key: why it has no result} from JMH's human-readable output: a forked VM that died, a benchmark that threw."""
    segments = {}
    key = None
    for line in lines:
        if line.startswith("# Benchmark: "):
            key = jmh_key(line[len("# Benchmark: "):].strip())
        elif line.startswith("# Parameters: (") and key:
            pairs = [p.split(" = ", 1) for p in line[len("# Parameters: ("):].rstrip().rstrip(")").split(", ")]
            key = jmh_key(key[0], dict(pairs))
        if key:
            segments.setdefault(key, []).append(line)
    reasons = {}
    for key, seg in segments.items():
        died = next((m for m in (re.match(r"<forked VM failed with exit code (\d+)>", l) for l in seg) if m), None)
        if died:
            details = crash_details(seg)
            reasons[key] = "forked JVM died (exit %s)%s" % (died.group(1), ": " + details if details else "")
        elif "<failure>" in seg:
            thrown = next((l.strip() for l in seg[seg.index("<failure>") + 1:] if l.strip()), "no message")
            reasons[key] = "the benchmark threw " + thrown
    return reasons


def wait_for_jmh_lock(budget):
    """Waits, at most budget["s"] seconds over the whole suite, until no other JMH run holds JMH's lock."""
    try:
        f = open(JMH_LOCK, "a")
    except OSError:
        return  # JMH will say what is wrong with the file
    with f:
        said = False
        while True:
            try:
                fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # JMH takes the same (fcntl) lock
                fcntl.lockf(f, fcntl.LOCK_UN)
                return
            except OSError:
                if budget["s"] <= 0:
                    return
                if not said:
                    log("bench: another JMH run holds %s; waiting for it to end" % JMH_LOCK)
                    said = True
                time.sleep(5)
                budget["s"] -= 5


def jmh_runner(java, cp, lock_wait_s=1800):
    """run(pattern, options) -> ({jmh_key: (median, unit)}, {jmh_key: why no result}, why a result may be missing
    beyond those): one JMH run."""
    count = [0]
    budget = {"s": lock_wait_s}

    def run(pattern, options):
        count[0] += 1
        out = os.path.join(BENCH_DIR, "jmh-%d.json" % count[0])
        if os.path.exists(out):
            os.remove(out)  # a file of an earlier suite must not stand in for a run that wrote none
        wait_for_jmh_lock(budget)
        code, lines = run_logged([java] + MEASURING_JVM_FLAGS + ["-cp", cp, "org.openjdk.jmh.Main", pattern, "-rf", "json",
                                                       "-rff", out] + options)
        results = medians(json.load(open(out))) if os.path.exists(out) else {}
        return results, jmh_failures(lines), jmh_gave_nothing(code, lines)
    return run


def jmh_gave_nothing(code, lines):
    """Why a JMH run has no result for a benchmark when its output names no failure of that benchmark."""
    if code == 0:
        return "JMH gave no result"
    error = next((l.strip() for l in lines if l.startswith("ERROR:")), None)
    return "JMH failed (%s)%s" % (exit_status(code), ": " + error if error else "")


def measure_jmh(cells, batches, run):
    """Figures of the JMH cells ({jmh_key: JMH timing options}): measured by the batches ([(pattern, options)]), and
    any cell its batch left without a result (a crashed fork, say) measured once more on its own. run is
    jmh_runner's."""
    results, failures, nothing = {}, {}, []
    for pattern, options in batches:
        r, f, why = run(pattern, options)
        results.update(r)
        failures.update(f)
        nothing.append(why)
    general = next((w for w in nothing if w != "JMH gave no result"), "JMH gave no result")
    figures = {}
    for key, timing in cells.items():
        if key in results:
            figures[key] = Figure(results[key])
            continue
        why = failures.get(key) or general
        log("bench: %s%s: %s; running it once more" % (key[0], "".join(" %s=%s" % kv for kv in key[1]), why))
        r, f, why_again = run("^%s$" % re.escape(key[0]), timing + [a for k, v in key[1] for a in ("-p", "%s=%s" % (k, v))])
        figures[key] = second_try(why, r.get(key), f.get(key) or why_again)
    return figures


def python_figures(python, threads, tl_layers, quick, skip_reason):
    """{workload: Figure} of bench_python.py's workloads, its run made once more if the process died."""
    names = ("op_mul_2x2", "op_matmul_64", "gpt2s_forward_f32", "gpt2s_forward_bf16", "gpt2_tiny_forward",
             "composition_all_pairs_q_tl_algorithm")
    if skip_reason:
        return {n: Figure(missing=skip_reason) for n in names}, {}
    out_path = os.path.join(BENCH_DIR, "python.json")
    os.makedirs(BENCH_DIR, exist_ok=True)

    def attempt():
        with open(out_path, "w") as out:
            code, lines = run_logged([python, os.path.join(ROOT, "scripts", "lib", "bench_python.py"), "--dir",
                                      BENCH_DIR, "--threads", str(threads), "--tl-sender-layers", str(tl_layers)]
                                     + (["--quick"] if quick else []), stdout=out)
        if code != 0:
            return None, process_failure("the Python run", code, lines)
        try:
            return json.load(open(out_path)), None
        except ValueError as e:
            return None, "bench_python.py printed no JSON object (%s)" % e

    run = twice(attempt)
    if run.value is None:
        return {n: Figure(missing=run.missing) for n in names}, {}
    return {n: Figure(run.value["rows"].get(n), retried=run.retried,
                      missing="bench_python.py gave no figure (see its log)") for n in names}, run.value


def startup(java, cp, runs):
    """Median wall time of a new JVM that loads libtorch and runs a first forward (StartupProbe)."""
    cmd = [java] + JVM_FLAGS + ["-cp", cp, "io.arrakis.suite.StartupProbe", os.path.join(BENCH_DIR, "tiny")]

    def attempt():
        code, lines = run_logged(cmd)  # unmeasured: extraction, page cache
        if code != 0:
            return None, process_failure("StartupProbe", code, lines)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            code, lines = run_logged(cmd, echo=False)
            times.append(time.perf_counter() - t)
            if code != 0:
                return None, process_failure("StartupProbe", code, lines)
        log("bench: startup_cold runs (s): " + ", ".join("%.2f" % t for t in times))
        return statistics.median(times), None
    return twice(attempt)


def paired_ratios(java, cp, rounds):
    """Ours against ours, A and B alternating in one JVM: immune to drift between JMH forks (see PairedRatios)."""
    def attempt():
        code, lines = run_logged([java, "-Xmx6g"] + MEASURING_JVM_FLAGS + ["-cp", cp, "io.arrakis.suite.PairedRatios", str(rounds)])
        if code != 0:
            return None, process_failure("PairedRatios", code, lines)
        result = next((l for l in reversed(lines) if l.startswith("{")), None)
        return (json.loads(result), None) if result else (None, "PairedRatios printed no result")
    return twice(attempt)


PAIRED_FORWARDS = ("gpt2_tiny_forward", "gpt2s_forward_f32")


def paired_with_python(java, cp, python, threads, turns, skip_reason, env=None):
    """({workload: Figure of the median per-turn ratio ours/Python}, [per-turn figures]): our forward passes
    (ForwardTimes) and Python's (bench_python.py --forward-times) in turn; both in env (None: this process's
    environment)."""
    python_cmd = [python, os.path.join(ROOT, "scripts", "lib", "bench_python.py"), "--dir", BENCH_DIR, "--threads",
                  str(threads), "--forward-times"]
    return paired_forwards(java, cp, ("python", "bench_python.py --forward-times", python_cmd), turns, skip_reason, env)


def paired_with_javacpp(java, cp, turns):
    """The same against JavaCPP's forward passes (JavaCppForwardTimes), each in a JVM of its own as its JMH rows are."""
    javacpp_cmd = [java, "-Xmx4g", "-Dorg.bytedeco.javacpp.platform.preloadpath=/nonexistent"] + MEASURING_JVM_FLAGS + [
        "-cp", cp, "io.arrakis.peers.JavaCppForwardTimes"]
    return paired_forwards(java, cp, ("javacpp", "JavaCppForwardTimes", javacpp_cmd), turns, None)


def paired_forwards(java, cp, peer, turns, skip_reason, env=None):
    """({workload: Figure of the median per-turn ratio ours/peer}, [per-turn figures]): our forward passes
    (ForwardTimes) and the peer's, given as (name, what to call it in a message, command), run in turn, in alternating
    order, so that drift between processes does not decide the ratio; both in env (None: this process's
    environment)."""
    if skip_reason:
        return {w: Figure(missing=skip_reason) for w in PAIRED_FORWARDS}, []
    ours_cmd = [java, "-Xmx4g"] + MEASURING_JVM_FLAGS + ["-cp", cp, "io.arrakis.suite.ForwardTimes"]
    name, label, peer_cmd = peer

    def figures(who, cmd):
        code, lines = run_logged(cmd, echo=False, env=env)
        result = next((l for l in reversed(lines) if l.startswith("{")), None)
        if code != 0 or result is None:
            return None, process_failure(who, code, lines) if code != 0 else who + " printed no result"
        return json.loads(result), None

    turns_seen, ratios = [], {w: [] for w in PAIRED_FORWARDS}
    for turn in range(turns):
        order = [("ours", "ForwardTimes", ours_cmd), (name, label, peer_cmd)]
        if turn % 2:
            order.reverse()
        seen = {}
        for who, what, cmd in order:
            seen[who], why = figures(what, cmd)
            if why:
                return {w: Figure(missing=why) for w in PAIRED_FORWARDS}, turns_seen
        turns_seen.append(seen)
        for w in PAIRED_FORWARDS:
            ratios[w].append(seen["ours"][w] / seen[name][w])
        log("bench: paired turn %d with %s%s: %s" % (turn + 1, name, "" if env is None else " (OpenBLAS's own kernels)",
                                                     json.dumps(seen)))
    return {w: Figure(statistics.median(r)) for w, r in ratios.items()}, turns_seen


class Jmh:
    """A cell measured by JMH: benchmark, parameters, the timing options it runs with, and a factor on its value."""

    def __init__(self, bench, timing, scale=1.0, **params):
        self.key = jmh_key(bench, params)
        self.timing = timing
        self.scale = scale


class Py:
    """A cell of bench_python.py."""

    def __init__(self, name):
        self.name = name


UNIT_SCALE = {("ns/op", "us"): 1e-3, ("us/op", "us"): 1.0, ("ms/op", "ms"): 1.0, ("ops/s", "per_s"): 1.0,
              ("s/op", "ms"): 1e3, ("ms/op", "s"): 1e-3}


def in_unit(figure, unit, scale=1.0):
    """A JMH figure, (median, JMH's unit), in the row's unit."""
    if figure.value is None:
        return figure
    value, jmh_unit = figure.value
    return Figure(value * UNIT_SCALE[(jmh_unit, unit)] * scale, retried=figure.retried)


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
    ap.add_argument("--skip-python", metavar="REASON", help="leave the Python column empty, for this reason")
    args = ap.parse_args()
    quick = args.quick
    java, cp = args.java, args.classpath
    threads = int(os.environ.get("ARRAKIS_BENCH_THREADS", os.cpu_count()))
    # the same intra-op threads for every implementation: Python gets torch.set_num_threads(threads), and each libtorch
    # in a JVM (ours, JavaCPP's, DJL's) reads OMP_NUM_THREADS when it starts, as do their OpenBLAS pools
    os.environ["OMP_NUM_THREADS"] = str(threads)
    started = time.time()

    subprocess.run([java] + JVM_FLAGS + ["-cp", cp, "io.arrakis.model.BenchCheckpoint", BENCH_DIR], cwd=ROOT,
                   check=True, stdout=sys.stderr)

    timing = (["-f", "1", "-wi", "2", "-w", "1s", "-i", "3", "-r", "1s"] if quick
              else ["-f", "2", "-wi", "3", "-w", "2s", "-i", "5", "-r", "3s"])
    layers = 12
    tl_layers = 1 if quick else layers
    tl_timing = ["-f", "1", "-wi", "0", "-i", "1" if quick else "2"]
    # a tiny model's pass is a millisecond of many small calls: on 2 cores the JIT still competes with it for seconds
    # after a JVM starts, so every JVM implementation gets a longer warm-up there (Python has no JIT to wait for)
    tiny_timing = (["-f", "1", "-wi", "8", "-w", "1s", "-i", "3", "-r", "1s"] if quick
                   else ["-f", "2", "-wi", "10", "-w", "2s", "-i", "5", "-r", "3s"])
    batches = [(r"io\.arrakis\.(suite|peers)\.|io\.arrakis\.torch\.OpOverheadBench\.(mul2x2|matmul64)$",
                timing + ["-e", "OursCompositionTl|TinyForward"]),
               (r"io\.arrakis\.suite\.OursTinyForward\.|io\.arrakis\.peers\.\w+\.TinyForward\.", tiny_timing),
               (r"io\.arrakis\.suite\.OursCompositionTl", tl_timing + ["-p", "senderLayers=%d" % tl_layers])]

    S, J, D = "io.arrakis.suite.", "io.arrakis.peers.JavaCppPeer.", "io.arrakis.peers.DjlPeer."
    O = "io.arrakis.torch.OpOverheadBench."

    def jmh(bench, **params):
        return Jmh(bench, timing, **params)

    forward_products = jmh(S + "OursForward.matmulsAlone", dtype="float32")
    composition_product = jmh(S + "OursComposition.unavoidableProduct", dtype="float32")
    spec = [
        ("op_mul_2x2", "us", dict(ours=jmh(O + "mul2x2"), python=Py("op_mul_2x2"), javacpp=jmh(J + "Ops.mul2x2"),
                                  djl=jmh(D + "Ops.mul2x2"))),
        ("op_matmul_64", "us", dict(ours=jmh(O + "matmul64"), python=Py("op_matmul_64"),
                                    javacpp=jmh(J + "Ops.matmul64"), djl=jmh(D + "Ops.matmul64"))),
        ("gpt2s_forward_f32", "ms", dict(ours=jmh(S + "OursForward.noCache", dtype="float32"),
                                         python=Py("gpt2s_forward_f32"),
                                         javacpp=jmh(J + "Forward.forward", dtype="float32"),
                                         djl=jmh(D + "Forward.forward"), reference=forward_products)),
        ("gpt2s_forward_bf16", "ms", dict(ours=jmh(S + "OursForward.noCache", dtype="bfloat16"),
                                          python=Py("gpt2s_forward_bf16"),
                                          javacpp=jmh(J + "Forward.forward", dtype="bfloat16"),
                                          reference=jmh(S + "OursForward.matmulsAlone", dtype="bfloat16"))),
        ("gpt2_tiny_forward", "us", dict(ours=Jmh(S + "OursTinyForward.noCache", tiny_timing),
                                         python=Py("gpt2_tiny_forward"),
                                         javacpp=Jmh(J + "TinyForward.forward", tiny_timing),
                                         djl=Jmh(D + "TinyForward.forward", tiny_timing),
                                         reference=Jmh(S + "OursTinyForward.matmulsAlone", tiny_timing))),
        ("gpt2s_forward_f32_cache", "ms", dict(ours=jmh(S + "OursForwardCache.fullCache"),
                                               reference=forward_products)),
        ("composition_all_pairs_q", "ms", dict(ours=jmh(S + "OursComposition.allPairsQ", dtype="float32"),
                                               reference=composition_product)),
        ("composition_all_pairs_q_tl_algorithm", "ms",
         dict(ours=Jmh(S + "OursCompositionTl.tlAlgorithm", tl_timing, scale=layers / tl_layers, senderLayers=tl_layers),
              python=Py("composition_all_pairs_q_tl_algorithm"), reference=composition_product)),
        ("path_patching", "ms", dict(ours=jmh(S + "OursPathPatching.patch"))),
    ] + [("throughput_threads_%d" % n, "per_s", dict(ours=jmh(S + "OursThroughput.threads%d" % n))) for n in (1, 2, 4, 8)]

    measured = measure_jmh({c.key: c.timing for _, _, cells in spec for c in cells.values() if isinstance(c, Jmh)},
                           batches, jmh_runner(java, cp))
    py, python = python_figures(args.python, threads, tl_layers, quick, args.skip_python)
    start = startup(java, cp, 3 if quick else 7)
    paired = paired_ratios(java, cp, 7 if quick else 15)
    with_python, python_turns = paired_with_python(java, cp, args.python, threads, 3 if quick else 7, args.skip_python)
    # a forced OpenBLAS core (OPENBLAS_CORETYPE) handicaps whoever multiplies through OpenBLAS (Python's products, not
    # our oneDNN linear layers): the comparison runs once more with every OpenBLAS choosing its kernels for this CPU
    forced_core = os.environ.get("OPENBLAS_CORETYPE")
    own_kernels_env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    with_python_own, python_turns_own = paired_with_python(
        java, cp, args.python, threads, 3 if quick else 7,
        args.skip_python or (None if forced_core else "OPENBLAS_CORETYPE is not set: the comparison above is this one"),
        own_kernels_env)
    with_javacpp, javacpp_turns = paired_with_javacpp(java, cp, 3 if quick else 7)

    figures = {}  # workload -> column -> Figure
    for workload, unit, cells in spec:
        figures[workload] = {col: in_unit(measured[c.key], unit, c.scale) if isinstance(c, Jmh) else py[c.name]
                             for col, c in cells.items()}
    figures["startup_cold"] = {"ours": start}

    row_dicts = []
    for workload, unit in [(w, u) for w, u, _ in spec] + [("startup_cold", "s")]:
        cells = figures[workload]
        row = {"workload": workload, "unit": unit}
        row.update({col: cells[col].value if col in cells else None for col in COLUMNS})
        row["retried"] = {col: f.retried for col, f in cells.items() if f.retried}
        row["missing"] = {col: f.missing for col, f in cells.items() if f.missing}
        row_dicts.append(row)

    def cell(workload, column):
        f = figures[workload].get(column) or Figure(missing="not measured")
        return Figure(f.value, missing=f.missing and "%s %s: %s" % (workload, column, f.missing))

    def quotient(a, b):
        if a.value is not None and b.value:
            return Figure(a.value / b.value)
        return Figure(missing="; ".join(f.missing for f in (a, b) if f.missing) or "a zero denominator")

    def from_paired(name):
        if paired.value is None:
            return Figure(missing=paired.missing)
        return Figure(paired.value.get(name), missing="PairedRatios gave no " + name)

    def target(name, figure, op, limit, why, floor=None):
        value = figure.value
        t = {"target": name, "value": None if value is None else round(value, 3), "limit": "%s %.2f" % (op, limit),
             "met": None if value is None else (value <= limit if op == "<=" else value >= limit), "what": why}
        if figure.missing:
            t["missing"] = figure.missing
        if floor is not None and floor.value is not None:
            t["floor"] = round(floor.value, 3)
        return t

    def floor(row, peer):
        """The ratio ours would have if nothing but the row's matrix products took time."""
        return quotient(cell(row, "reference"), cell(row, peer))

    fwd, comp = "gpt2s_forward_f32", "composition_all_pairs_q"
    targets = [
        target("op_mul_2x2 ours/python", quotient(cell("op_mul_2x2", "ours"), cell("op_mul_2x2", "python")), "<=", 1.0, "per-op 2x2 mul vs Python eager"),
        target("op_mul_2x2 ours/javacpp", quotient(cell("op_mul_2x2", "ours"), cell("op_mul_2x2", "javacpp")), "<=", 1.0, "per-op 2x2 mul vs JavaCPP"),
        target("gpt2_tiny_forward ours/python", quotient(cell("gpt2_tiny_forward", "ours"), cell("gpt2_tiny_forward", "python")), "<=", 0.5, "tiny GPT-2 forward vs Python eager", floor("gpt2_tiny_forward", "python")),
        target("gpt2_tiny_forward ours/javacpp", quotient(cell("gpt2_tiny_forward", "ours"), cell("gpt2_tiny_forward", "javacpp")), "<=", 0.5, "tiny GPT-2 forward vs JavaCPP", floor("gpt2_tiny_forward", "javacpp")),
        target("gpt2s_forward_f32 ours/python", quotient(cell(fwd, "ours"), cell(fwd, "python")), "<=", 0.95, "GPT-2-small forward vs Python eager", floor(fwd, "python")),
        target("gpt2s_forward_f32 ours/javacpp", quotient(cell(fwd, "ours"), cell(fwd, "javacpp")), "<=", 1.0, "GPT-2-small forward vs JavaCPP", floor(fwd, "javacpp")),
        target("gpt2_tiny_forward ours/python, paired", with_python["gpt2_tiny_forward"], "<=", 0.5, "the same, ours and Python in turn"),
        target("gpt2s_forward_f32 ours/python, paired", with_python[fwd], "<=", 0.95, "the same, ours and Python in turn"),
        target("gpt2_tiny_forward ours/python, own BLAS", with_python_own["gpt2_tiny_forward"], "<=", 0.5, "the same, OpenBLAS choosing its kernels (no OPENBLAS_CORETYPE)"),
        target("gpt2s_forward_f32 ours/python, own BLAS", with_python_own[fwd], "<=", 0.95, "the same, OpenBLAS choosing its kernels (no OPENBLAS_CORETYPE)"),
        target("gpt2_tiny_forward ours/javacpp, paired", with_javacpp["gpt2_tiny_forward"], "<=", 0.5, "tiny GPT-2 forward, ours and JavaCPP in turn"),
        target("gpt2s_forward_f32 ours/javacpp, paired", with_javacpp[fwd], "<=", 1.0, "GPT-2-small forward, ours and JavaCPP in turn"),
        target("gpt2s_forward_f32 ours/matmuls", quotient(cell(fwd, "ours"), cell(fwd, "reference")), "<=", 1.1, "forward vs its matrix products alone"),
        target("cache/no cache", quotient(cell("gpt2s_forward_f32_cache", "ours"), cell(fwd, "ours")), "<=", 1.05, "full cache vs no cache"),
        target("composition ours/TL algorithm", quotient(cell(comp, "ours"), cell("composition_all_pairs_q_tl_algorithm", "ours")), "<=", 0.5, "all-pairs Q vs TransformerLens's algorithm, same libtorch"),
        target("composition ours/product", quotient(cell(comp, "ours"), cell(comp, "reference")), "<=", 1.5, "all-pairs Q vs its one matrix product"),
        target("forward/matmuls, paired", from_paired("forward_vs_matmuls"), "<=", 1.1, "the same, A/B alternating in one JVM"),
        target("cache/no cache, paired", from_paired("cache_vs_no_cache"), "<=", 1.05, "the same, A/B alternating in one JVM"),
        target("composition/product, paired", from_paired("composition_vs_product"), "<=", 1.5, "the same, A/B alternating in one JVM"),
        target("threads 4/1", quotient(cell("throughput_threads_4", "ours"), cell("throughput_threads_1", "ours")), ">=", 1.6, "throughput of small forwards, 4 threads vs 1"),
        target("startup_cold", cell("startup_cold", "ours"), "<=", 1.5, "seconds to first forward, cold JVM"),
    ]
    mach = machine(java, threads)
    mach["python_torch"] = python.get("torch")
    mach["python_threads"] = python.get("threads")
    mach["mode"] = "quick" if quick else "full"
    mach["tl_algorithm_sender_layers"] = "%d of %d (time scaled by %d)" % (tl_layers, layers, layers // tl_layers) \
        if tl_layers != layers else "all %d" % layers
    mach["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    mach["paired_with_python"] = python_turns
    if python_turns_own:
        mach["paired_with_python_own_blas_kernels"] = python_turns_own
    mach["paired_with_javacpp"] = javacpp_turns
    mach["suite_seconds"] = round(time.time() - started)
    if paired.retried:
        mach["paired_retried"] = paired.retried

    table = render(row_dicts, targets, mach)
    if args.json:
        log(table)  # the table for people on stderr, the one JSON object on stdout
        print(json.dumps({"machine": mach, "rows": row_dicts, "targets": targets}, indent=1))
    else:
        print(table)


def render(row_dicts, targets, mach):
    """The rows as a Markdown table, a numbered note for every cell run twice or left without a figure, the targets
    and the machine."""
    notes = []  # [(kind, reason, [cells])], numbered from 1 in order of appearance

    def note(kind, reason, where):
        for i, (k, r, cells) in enumerate(notes):
            if (k, r) == (kind, reason):
                cells.append(where)
                return "[%d]" % (i + 1)
        notes.append((kind, reason, [where]))
        return "[%d]" % len(notes)

    header = ["workload", "unit", "ours", "python", "javacpp", "djl", "reference", "ours/python", "ours/javacpp",
              "ours/djl", "ours/reference"]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in row_dicts:
        u = r["unit"]
        cells = [r["workload"], u]
        for k in COLUMNS:
            text = fmt(r[k], u)
            where = "%s %s" % (r["workload"], k)
            if k in r["missing"]:
                text += " " + note("no figure", r["missing"][k], where)
            elif k in r["retried"]:
                text += " " + note("measured on a second run; the first", r["retried"][k], where)
            cells.append(text)
        cells += [fmt(ratio(r["ours"], r[k]), "x") for k in ("python", "javacpp", "djl", "reference")]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    for i, (kind, reason, where) in enumerate(notes):
        out.append("[%d] %s (%s): %s" % (i + 1, kind, ", ".join(where), reason))
    if notes:
        out.append("")
    for t in targets:
        state = "n/a" if t["met"] is None else ("met" if t["met"] else "MISSED")
        out.append("target %-38s %8s  (%s)  %s — %s%s" % (t["target"], "—" if t["value"] is None else "%.3f" % t["value"],
                                                       t["limit"], state, t["what"],
                                                       "; products alone would give %.3f" % t["floor"] if "floor" in t else ""))
        if "missing" in t:
            out.append("       %-34s no value: %s" % ("", t["missing"]))
    out.append("")
    out.append("machine: " + json.dumps(mach))
    return "\n".join(out)


if __name__ == "__main__":
    main()
