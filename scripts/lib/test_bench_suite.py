"""Tests of the suite driver's bookkeeping (python3 -m unittest discover -s scripts/lib), on JMH output recorded from
real runs (testdata/): a JavaCPP fork that died of SIGSEGV, a benchmark whose set-up threw, JMH refusing to start."""
import json
import os
import tempfile
import unittest
from unittest import mock

import bench_suite
from bench_suite import Figure, jmh_key, measure_jmh, render

HERE = os.path.dirname(os.path.abspath(__file__))
FORWARD = "io.arrakis.peers.JavaCppPeer.Forward.forward"
OPS = "io.arrakis.peers.JavaCppPeer.Ops.mul2x2"


def recorded(name):
    with open(os.path.join(HERE, "testdata", name)) as f:
        return f.read().splitlines()


class JmhOutputTest(unittest.TestCase):
    def test_a_fork_that_died_is_named_with_its_signal_frame_and_report(self):
        # recorded in a checkout at /work/wt-bench, before crash reports went under target/
        with mock.patch.object(bench_suite, "ROOT", "/work/wt-bench"):
            reasons = bench_suite.jmh_failures(recorded("jmh-fork-crash.txt"))
        self.assertEqual({jmh_key(FORWARD, {"dtype": "float32"}):
                          "forked JVM died (exit 134): SIGSEGV at C [libc.so.6+0x8c370] pthread_mutex_lock+0x0,"
                          " report hs_err_pid15377.log"}, reasons)
        with mock.patch.object(bench_suite, "ROOT", "/elsewhere"):
            reasons = bench_suite.jmh_failures(recorded("jmh-fork-crash.txt"))
        self.assertTrue(reasons[jmh_key(FORWARD, {"dtype": "float32"})].endswith(
            ", report /work/wt-bench/hs_err_pid15377.log"))

    def test_a_benchmark_that_threw_is_named_with_its_exception(self):
        reasons = bench_suite.jmh_failures(recorded("jmh-benchmark-threw.txt"))
        self.assertEqual({jmh_key(FORWARD, {"dtype": "float32"}):
                          "the benchmark threw java.io.UncheckedIOException: java.nio.file.NoSuchFileException:"
                          " /nonexistent/gpt2s/config.json"}, reasons)

    def test_jmh_that_did_not_start_says_why(self):
        lines = recorded("jmh-lock-held.txt")
        self.assertEqual({}, bench_suite.jmh_failures(lines))
        why = bench_suite.jmh_gave_nothing(1, lines)
        self.assertTrue(why.startswith("JMH failed (exit 1): ERROR: "), why)
        self.assertIn("Unable to acquire the JMH lock", why)

    def test_a_fork_killed_by_a_signal_is_named(self):
        self.assertEqual("StartupProbe failed (killed by SIGKILL): last words",
                         bench_suite.process_failure("StartupProbe", -9, ["first", "last words", ""]))


class FakeJmh:
    """Stands in for jmh_runner: each call answers with the next prepared (results, failures, why) and is recorded."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, pattern, options):
        self.calls.append((pattern, options))
        return self.answers.pop(0)


@mock.patch.object(bench_suite, "log", lambda *args: None)
class RetryTest(unittest.TestCase):
    f32 = jmh_key(FORWARD, {"dtype": "float32"})
    bf16 = jmh_key(FORWARD, {"dtype": "bfloat16"})
    ops = jmh_key(OPS)
    timing = ["-f", "1", "-i", "3"]

    def test_a_cell_whose_fork_died_is_run_once_more_on_its_own_and_marked(self):
        crash = "forked JVM died (exit 134): SIGSEGV"
        jmh = FakeJmh(({self.bf16: (900.0, "ms/op"), self.ops: (4.6, "ns/op")}, {self.f32: crash}, "JMH gave no result"),
                      ({self.f32: (500.0, "ms/op")}, {}, "JMH gave no result"))
        figures = measure_jmh({k: self.timing for k in (self.f32, self.bf16, self.ops)},
                              [("io\\.arrakis\\.peers\\.", self.timing + ["-e", "Tl"])], jmh)
        self.assertEqual([("io\\.arrakis\\.peers\\.", self.timing + ["-e", "Tl"]),
                          ("^io\\.arrakis\\.peers\\.JavaCppPeer\\.Forward\\.forward$",
                           self.timing + ["-p", "dtype=float32"])], jmh.calls)
        self.assertEqual((500.0, "ms/op"), figures[self.f32].value)
        self.assertEqual(crash, figures[self.f32].retried)
        self.assertIsNone(figures[self.bf16].retried)
        self.assertIsNone(figures[self.ops].missing)

    def test_a_cell_that_fails_twice_says_why_both_times(self):
        jmh = FakeJmh(({}, {self.ops: "forked JVM died (exit 134): SIGSEGV"}, "JMH gave no result"),
                      ({}, {self.ops: "the benchmark threw java.lang.IllegalStateException"}, "JMH gave no result"))
        figure = measure_jmh({self.ops: self.timing}, [("x", [])], jmh)[self.ops]
        self.assertIsNone(figure.value)
        self.assertEqual("forked JVM died (exit 134): SIGSEGV; run again: the benchmark threw"
                         " java.lang.IllegalStateException", figure.missing)
        self.assertEqual(("^io\\.arrakis\\.peers\\.JavaCppPeer\\.Ops\\.mul2x2$", self.timing), jmh.calls[1])

    def test_when_jmh_itself_failed_the_reason_is_jmhs(self):
        refused = "JMH failed (exit 1): ERROR: lock"
        jmh = FakeJmh(({}, {}, refused), ({}, {}, refused))
        self.assertEqual(refused, measure_jmh({self.ops: self.timing}, [("x", [])], jmh)[self.ops].missing)

    def test_twice_makes_a_failed_attempt_once_more(self):
        answers = [(None, "exit 134"), (1.25, None)]
        figure = bench_suite.twice(lambda: answers.pop(0))
        self.assertEqual((1.25, "exit 134", None), (figure.value, figure.retried, figure.missing))
        self.assertEqual([], answers)
        answers = [(None, "exit 134"), (None, "exit 134"), (9.0, None)]
        figure = bench_suite.twice(lambda: answers.pop(0))
        self.assertEqual((None, "exit 134"), (figure.value, figure.missing))
        self.assertEqual(1, len(answers))

    def test_a_jmh_figure_is_converted_to_the_rows_unit(self):
        self.assertAlmostEqual(4.6, bench_suite.in_unit(Figure((4600.0, "ns/op")), "us").value)
        self.assertAlmostEqual(24.0, bench_suite.in_unit(Figure((2.0, "ms/op"), retried="x"), "ms", 12).value)
        self.assertEqual("x", bench_suite.in_unit(Figure((2.0, "ms/op"), retried="x"), "ms").retried)


class TableTest(unittest.TestCase):
    def test_every_missing_or_retried_cell_points_to_a_note_with_its_reason(self):
        skipped = "not run: Debian's python3-torch is not installed"
        rows = [
            {"workload": "op_mul_2x2", "unit": "us", "ours": 0.9, "python": None, "javacpp": 4.66, "djl": 4.1,
             "reference": None, "retried": {}, "missing": {"python": skipped}},
            {"workload": "gpt2s_forward_f32", "unit": "ms", "ours": 606.0, "python": None, "javacpp": 502.0,
             "djl": None, "reference": 428.0, "retried": {"javacpp": "forked JVM died (exit 134): SIGSEGV"},
             "missing": {"python": skipped, "djl": "the benchmark threw java.lang.IllegalStateException"}},
        ]
        targets = [{"target": "op_mul_2x2 ours/python", "value": None, "limit": "<= 1.00", "met": None,
                    "what": "per-op 2x2 mul vs Python eager", "missing": "op_mul_2x2 python: " + skipped}]
        lines = render(rows, targets, {"cores": 2}).splitlines()
        self.assertEqual("| op_mul_2x2 | us | 0.9 | — [1] | 4.66 | 4.1 | — | — | 0.193 | 0.22 | — |", lines[2])
        self.assertEqual("| gpt2s_forward_f32 | ms | 606 | — [1] | 502 [2] | — [3] | 428 | — | 1.21 | — | 1.42 |",
                         lines[3])
        self.assertEqual(["[1] no figure (op_mul_2x2 python, gpt2s_forward_f32 python): " + skipped,
                          "[2] measured on a second run; the first (gpt2s_forward_f32 javacpp): forked JVM died"
                          " (exit 134): SIGSEGV",
                          "[3] no figure (gpt2s_forward_f32 djl): the benchmark threw java.lang.IllegalStateException"],
                         lines[5:8])
        self.assertIn("no value: op_mul_2x2 python: " + skipped, lines[10])

    def test_a_target_with_a_floor_says_what_the_products_alone_would_give(self):
        rows = [{"workload": "gpt2_tiny_forward", "unit": "us", "ours": 800.0, "python": 1000.0, "javacpp": None,
                 "djl": None, "reference": 550.0, "retried": {}, "missing": {}}]
        targets = [{"target": "gpt2_tiny_forward ours/python", "value": 0.8, "limit": "<= 0.50", "met": False,
                    "what": "tiny GPT-2 forward vs Python eager", "floor": 0.55}]
        line = [l for l in render(rows, targets, {"cores": 2}).splitlines() if l.startswith("target")][0]
        self.assertTrue(line.endswith("MISSED — tiny GPT-2 forward vs Python eager; products alone would give 0.550"), line)


@mock.patch.object(bench_suite, "log", lambda *args: None)
class PythonColumnTest(unittest.TestCase):
    def test_a_skipped_python_column_gives_every_python_cell_the_reason(self):
        figures, python = bench_suite.python_figures("/usr/bin/python3", 2, 1, True, "not installed")
        self.assertEqual({"op_mul_2x2", "op_matmul_64", "gpt2s_forward_f32", "gpt2s_forward_bf16", "gpt2_tiny_forward",
                          "composition_all_pairs_q_tl_algorithm"}, set(figures))
        self.assertTrue(all(f.value is None and f.missing == "not installed" for f in figures.values()))
        self.assertEqual({}, python)

    def test_a_python_run_that_fails_twice_leaves_its_reason_in_every_cell(self):
        figures, python = bench_suite.python_figures("/bin/false", 2, 1, True, None)
        self.assertEqual({"the Python run failed (exit 1)"}, {f.missing for f in figures.values()})
        self.assertEqual({}, python)


@mock.patch.object(bench_suite, "log", lambda *args: None)
class PairedWithPythonTest(unittest.TestCase):
    def test_the_ratio_is_the_median_of_the_turns_and_the_order_alternates(self):
        ours = iter([(100.0, 300.0), (120.0, 310.0), (90.0, 280.0)])
        python = iter([(200.0, 250.0), (200.0, 250.0), (100.0, 250.0)])
        calls = []

        def fake_run(cmd, echo=True, env=None):
            who = "python" if "--forward-times" in cmd else "ours"
            calls.append(who)
            tiny, small = next(ours if who == "ours" else python)
            return 0, ["WARNING: a JVM warning", json.dumps({"gpt2_tiny_forward": tiny, "gpt2s_forward_f32": small})]

        with mock.patch.object(bench_suite, "run_logged", fake_run):
            figures, turns = bench_suite.paired_with_python("java", "cp", "python3", 2, 3, None)
        self.assertEqual(["ours", "python", "python", "ours", "ours", "python"], calls)
        self.assertAlmostEqual(0.6, figures["gpt2_tiny_forward"].value)  # median of 0.5, 0.6, 0.9
        self.assertAlmostEqual(1.2, figures["gpt2s_forward_f32"].value)  # median of 1.2, 1.24, 1.12
        self.assertEqual(3, len(turns))

    def test_a_failed_process_leaves_its_reason_and_a_skipped_python_its_own(self):
        with mock.patch.object(bench_suite, "run_logged", lambda cmd, echo=True, env=None: (1, ["boom"])):
            figures, _ = bench_suite.paired_with_python("java", "cp", "python3", 2, 3, None)
        self.assertEqual({"ForwardTimes failed (exit 1)"}, {f.missing.split(":")[0] for f in figures.values()})
        figures, turns = bench_suite.paired_with_python("java", "cp", "python3", 2, 3, "not installed")
        self.assertEqual({"not installed"}, {f.missing for f in figures.values()})
        self.assertEqual([], turns)

    def test_every_process_of_the_comparison_runs_in_the_environment_given(self):
        envs = []

        def fake_run(cmd, echo=True, env=None):
            envs.append(env)
            return 0, [json.dumps({"gpt2_tiny_forward": 1.0, "gpt2s_forward_f32": 1.0})]

        own_kernels = {"PATH": "/usr/bin"}
        with mock.patch.object(bench_suite, "run_logged", fake_run):
            bench_suite.paired_with_python("java", "cp", "python3", 2, 2, None, own_kernels)
            bench_suite.paired_with_python("java", "cp", "python3", 2, 1, None)
        self.assertEqual([own_kernels] * 4 + [None] * 2, envs)


@mock.patch.object(bench_suite, "log", lambda *args: None)
class PairedWithJavaCppTest(unittest.TestCase):
    def test_javacpp_runs_in_its_own_jvm_in_turn_with_ours(self):
        javacpp = iter([(400.0, 300.0), (500.0, 200.0), (300.0, 100.0)])
        commands = []

        def fake_run(cmd, echo=True, env=None):
            commands.append(cmd)
            if "io.arrakis.peers.JavaCppForwardTimes" in cmd:
                tiny, small = next(javacpp)
            else:
                self.assertIn("io.arrakis.suite.ForwardTimes", cmd)
                tiny, small = 100.0, 100.0
            return 0, ["bench: javacpp libtorch threads 2", json.dumps({"gpt2_tiny_forward": tiny, "gpt2s_forward_f32": small})]

        with mock.patch.object(bench_suite, "run_logged", fake_run):
            figures, turns = bench_suite.paired_with_javacpp("java", "cp", 3)
        peers = ["javacpp" if "io.arrakis.peers.JavaCppForwardTimes" in c else "ours" for c in commands]
        self.assertEqual(["ours", "javacpp", "javacpp", "ours", "ours", "javacpp"], peers)
        javacpp_cmd = commands[1]
        self.assertEqual("java", javacpp_cmd[0])
        self.assertIn("-Dorg.bytedeco.javacpp.platform.preloadpath=/nonexistent", javacpp_cmd)
        self.assertAlmostEqual(0.25, figures["gpt2_tiny_forward"].value)  # median of 0.25, 0.2, 0.333
        self.assertAlmostEqual(0.5, figures["gpt2s_forward_f32"].value)  # median of 0.333, 0.5, 1.0
        self.assertEqual([{"ours": {"gpt2_tiny_forward": 100.0, "gpt2s_forward_f32": 100.0},
                           "javacpp": {"gpt2_tiny_forward": 400.0, "gpt2s_forward_f32": 300.0}}], turns[:1])

    def test_a_failed_javacpp_run_is_named(self):
        def fake_run(cmd, echo=True, env=None):
            if "io.arrakis.peers.JavaCppForwardTimes" in cmd:
                return 1, ["boom"]
            return 0, [json.dumps({"gpt2_tiny_forward": 1.0, "gpt2s_forward_f32": 1.0})]

        with mock.patch.object(bench_suite, "run_logged", fake_run):
            figures, _ = bench_suite.paired_with_javacpp("java", "cp", 2)
        self.assertEqual({"JavaCppForwardTimes failed (exit 1)"}, {f.missing.split(":")[0] for f in figures.values()})


@mock.patch.object(bench_suite, "log", lambda *args: None)
class MeasuringJvmTest(unittest.TestCase):
    def test_every_jvm_that_times_a_pass_touches_its_heap_first_and_the_cold_start_does_not(self):
        commands = []

        def fake_run(cmd, echo=True, env=None):
            commands.append(cmd)
            return 0, [json.dumps({"gpt2_tiny_forward": 1.0, "gpt2s_forward_f32": 1.0})]

        with mock.patch.object(bench_suite, "run_logged", fake_run), \
                mock.patch.object(bench_suite, "wait_for_jmh_lock", lambda budget: None), \
                tempfile.TemporaryDirectory() as bench_dir, mock.patch.object(bench_suite, "BENCH_DIR", bench_dir):
            bench_suite.paired_with_javacpp("java", "cp", 1)
            bench_suite.paired_ratios("java", "cp", 1)
            bench_suite.jmh_runner("java", "cp")("OursTinyForward", [])
            timing = list(commands)
            commands.clear()
            bench_suite.startup("java", "cp", 1)
        self.assertEqual(4, len(timing))  # ours, JavaCPP, PairedRatios, JMH
        for cmd in timing:  # JVM options, before the class path and the main class
            self.assertLess(cmd.index("-XX:+AlwaysPreTouch"), cmd.index("-cp"))
            self.assertLess(cmd.index("-Xms256m"), cmd.index("-cp"))
        for cmd in commands:
            self.assertNotIn("-XX:+AlwaysPreTouch", cmd)
            self.assertNotIn("-Xms256m", cmd)


if __name__ == "__main__":
    unittest.main()
