"""gpu_report's verdicts on what the Java half may write: deviations that are not numbers fail, and missing
sections are said."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


class GpuReportTest(unittest.TestCase):
    def report(self, java):
        with tempfile.TemporaryDirectory() as d:
            j, p = os.path.join(d, "j.json"), os.path.join(d, "p.json")
            with open(j, "w") as f:
                json.dump(java, f)
            with open(p, "w") as f:
                json.dump({}, f)
            out = subprocess.run([sys.executable, os.path.join(HERE, "gpu_report.py"), j, p,
                                  os.path.join(d, "o.json"), os.path.join(d, "o.txt"), "0"],
                                 capture_output=True, text=True, check=True).stdout
            return out

    def test_a_deviation_written_as_nan_fails(self):
        row = {"model": "gpt2", "device_vs_cpu_logits_max_abs": "NaN", "device_vs_cpu_cache_max_abs": 0.0,
               "composition_device_vs_cpu_max_abs": {"Q": 0.0}}
        out = self.report({"meta": {}, "parity": [row], "forward": [], "composition": []})
        line = next(l for l in out.splitlines() if l.startswith("gpt2"))
        self.assertIn("FAIL", line)
        self.assertNotIn("no forward", out)

    def test_sections_a_cut_short_run_did_not_write_are_said(self):
        out = self.report({"meta": {}, "parity": []})
        self.assertIn("java half: FAIL, no forward, composition section", out)


if __name__ == "__main__":
    unittest.main()
