"""gpu_report's verdicts on what the Java half may write: deviations that are not numbers fail, a CUDA graph that
failed or differs from the eager pass fails, missing sections are said, and any failure is the exit status."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


class GpuReportTest(unittest.TestCase):
    def run_report(self, java, python=None):
        """The table and the exit status."""
        with tempfile.TemporaryDirectory() as d:
            j, p = os.path.join(d, "j.json"), os.path.join(d, "p.json")
            with open(j, "w") as f:
                json.dump(java, f)
            with open(p, "w") as f:
                json.dump(python or {}, f)
            done = subprocess.run([sys.executable, os.path.join(HERE, "gpu_report.py"), j, p,
                                   os.path.join(d, "o.json"), os.path.join(d, "o.txt"), "0"],
                                  capture_output=True, text=True)
            self.assertIn(done.returncode, (0, 1), done.stderr)
            return done.stdout, done.returncode

    def report(self, java):
        return self.run_report(java)[0]

    GOOD_PARITY = {"model": "gpt2", "device_vs_cpu_logits_max_abs": 1e-5, "device_vs_cpu_cache_max_abs": 1e-5,
                   "composition_device_vs_cpu_max_abs": {"Q": 0.0}}

    def graph_row(self, **graph):
        forward = dict({"model": "gpt2s", "seq": 128, "ours_ms": 3.0}, **graph)
        python = {"forward": [{"model": "gpt2s", "seq": 128, "python_ms": 6.0, "python_graph_ms": 1.0}]}
        out, rc = self.run_report({"meta": {}, "parity": [self.GOOD_PARITY], "forward": [forward], "composition": []},
                                  python)
        graph = out.split("forward as one CUDA graph")[1]
        return next(l for l in graph.splitlines() if l.startswith("gpt2s")), out, rc

    def test_a_correct_run_exits_0(self):
        line, out, rc = self.graph_row(ours_graph_ms=1.0, ours_graph_equals_eager=True, ours_graph_nodes=200)
        self.assertEqual(0, rc, out)
        self.assertIn("met", line)
        self.assertNotIn("FAILED", out)

    def test_a_slow_graph_is_missed_not_failed(self):
        line, out, rc = self.graph_row(ours_graph_ms=5.0, ours_graph_equals_eager=True)
        self.assertIn("MISSED", line)
        self.assertEqual(0, rc, out)

    def test_a_graph_that_differs_from_the_eager_pass_fails(self):
        line, out, rc = self.graph_row(ours_graph_ms=1.0, ours_graph_equals_eager=False)
        self.assertIn("FAIL", line)
        self.assertIn("FAILED: graph gpt2s 128", out)
        self.assertEqual(1, rc)

    def test_a_graph_that_could_not_be_captured_fails(self):
        line, out, rc = self.graph_row(ours_graph_error="operation not permitted when stream is capturing")
        self.assertIn("FAIL", line)
        self.assertEqual(1, rc)

    def test_a_deviation_written_as_nan_fails(self):
        row = {"model": "gpt2", "device_vs_cpu_logits_max_abs": "NaN", "device_vs_cpu_cache_max_abs": 0.0,
               "composition_device_vs_cpu_max_abs": {"Q": 0.0}}
        out = self.report({"meta": {}, "parity": [row], "forward": [], "composition": []})
        line = next(l for l in out.splitlines() if l.startswith("gpt2"))
        self.assertIn("FAIL", line)
        self.assertNotIn("no forward", out)
        self.assertEqual(1, self.run_report({"meta": {}, "parity": [row], "forward": [], "composition": []})[1])

    def test_sections_a_cut_short_run_did_not_write_are_said(self):
        out = self.report({"meta": {}, "parity": []})
        self.assertIn("java half: FAIL, no forward, composition section", out)
        self.assertEqual(1, self.run_report({"meta": {}, "parity": []})[1])

    def test_a_section_that_failed_as_a_whole_fails_and_says_why(self):
        # was: an empty table, exit 0, as if the rows had never been asked for
        java = {"meta": {}, "parity": [self.GOOD_PARITY], "forward": {"error": "CUDA out of memory"}, "composition": []}
        out, rc = self.run_report(java)
        self.assertEqual(1, rc)
        self.assertIn("java half: FAIL, its forward section: {'error': 'CUDA out of memory'}", out)
        out, rc = self.run_report({"meta": {}, "parity": [self.GOOD_PARITY], "forward": [], "composition": []},
                                  {"parity": {"error": "no transformers"}})
        self.assertEqual(1, rc)
        self.assertIn("python half: FAIL, its parity section", out)

    def test_a_java_forward_rows_error_is_shown_beside_pythons_figures(self):
        java = {"meta": {}, "parity": [self.GOOD_PARITY], "composition": [],
                "forward": [{"model": "gpt2s", "seq": 128, "error": "loading failed"}]}
        out, _ = self.run_report(java, {"forward": [{"model": "gpt2s", "seq": 128, "python_ms": 6.0,
                                                     "python_impl": "eager"}]})
        self.assertIn("java error: loading failed", out)

    def test_a_row_that_could_not_be_measured_fails(self):
        # were: exit 0, as if the row had been measured
        java = {"meta": {}, "parity": [self.GOOD_PARITY], "composition": [],
                "forward": [{"model": "gpt2s", "seq": 128, "error": "CUDA out of memory"}]}
        out, rc = self.run_report(java)
        self.assertEqual(1, rc, out)
        self.assertIn("FAILED: forward gpt2s 128", out)
        java = {"meta": {}, "parity": [self.GOOD_PARITY], "forward": [],
                "composition": [{"model": "gpt2s", "layers": 12, "heads": 12, "error": "failed"}]}
        self.assertEqual(1, self.run_report(java)[1])

    def test_a_comparison_with_hugging_face_that_failed_fails(self):
        # was: "ok", exit 0, the bfloat16 figure taken from the Java half instead
        java = {"meta": {}, "parity": [self.GOOD_PARITY], "forward": [], "composition": []}
        out, rc = self.run_report(java, {"parity": [{"model": "gpt2", "error": "logits differ in shape"}]})
        line = next(l for l in out.splitlines() if l.startswith("gpt2"))
        self.assertIn("FAIL", line)
        self.assertEqual(1, rc, out)

    def test_composition_that_differs_from_transformer_lens_fails(self):
        # was: "FAIL" in the table, exit 0
        java = {"meta": {}, "parity": [self.GOOD_PARITY], "forward": [],
                "composition": [{"model": "gpt2s", "layers": 12, "heads": 12, "ours_ms": 10.0}]}
        python = {"composition": [{"model": "gpt2s", "python_ms": 100.0, "tl_vs_ours_max_abs": 0.5,
                                   "tl_vs_ours_ok": False}]}
        out, rc = self.run_report(java, python)
        self.assertEqual(1, rc, out)
        self.assertIn("FAILED: composition gpt2s against TransformerLens", out)


if __name__ == "__main__":
    unittest.main()
