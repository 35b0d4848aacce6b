#!/usr/bin/env python3
"""Merges the GPU check's Java half (io.arrakis.model.GpuCheck) and Python half (scripts/gpu_bench.py) into one JSON
and a short table, with the targets of issue #7 met or missed. Standard library only.

usage: gpu_report.py JAVA_JSON PYTHON_JSON OUT_JSON OUT_TABLE [JUNIT_RC]
Exits with 1 where a result is wrong or missing (a parity check, or a comparison with Hugging Face or TransformerLens,
that failed or could not be made; a CUDA graph that failed or differs from the eager pass; a row that could not be
measured; a half that wrote nothing or was cut short); a missed speed target is reported, not an exit status.
"""
import json
import sys

F32_TOL = 1e-3          # float32: GPU vs CPU, ours vs Hugging Face (absolute, or relative above |logit| 1)
BF16_REL_TOL = 0.05     # bfloat16 logits: max |diff| / max |logit| (bfloat16 keeps 8 bits of mantissa)
FORWARD_TARGET = 0.6    # ours / Python
COMPOSITION_TARGET = 0.5
GRAPH_VS_EAGER_TARGET = 0.25   # ours as one CUDA graph / Python eager, at 128 tokens
GRAPH_VS_GRAPH_TARGET = 1.1    # ours as one CUDA graph / the Hugging Face model captured by torch.cuda.graph


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except Exception as e:  # noqa: BLE001
        return {"error": f"{path}: {e!r}"}


def rows(doc, key):
    v = doc.get(key) if isinstance(doc, dict) else None
    return v if isinstance(v, list) else []


def fmt(x, spec=".3g"):
    return "-" if x is None else format(x, spec) if isinstance(x, (int, float)) else str(x)


def within(x, tol):
    """Whether a deviation is a number no larger than tol: "NaN" or "Infinity" (written as strings) are failures."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x <= tol


def verdict(ok):
    return "-" if ok is None else ("ok" if ok else "FAIL")


def main():
    java, python = load(sys.argv[1]), load(sys.argv[2])
    junit_rc = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[5].lstrip("-").isdigit() else None
    lines, summary, failures = [], {"parity": [], "forward": [], "composition": []}, []
    py_parity = {r.get("model"): r for r in rows(python, "parity")}

    lines.append("parity (float32 tolerance %g; bfloat16: max|diff|/max|logit| <= %g)" % (F32_TOL, BF16_REL_TOL))
    lines.append(f"{'model':<11} {'dev-cpu logits':>14} {'dev-cpu cache':>13} {'dev-cpu comp':>12} "
                 f"{'hf-ours cpu':>11} {'hf-ours dev':>11} {'bf16 rel':>9}  verdict")
    for j in rows(java, "parity"):
        p = py_parity.get(j.get("model"), {})
        comp = j.get("composition_device_vs_cpu_max_abs") or {}
        numbers = [v for v in comp.values() if isinstance(v, (int, float))]
        comp_max = (max(numbers) if len(numbers) == len(comp) else "NaN") if comp else None
        checks = [j.get("device_vs_cpu_logits_max_abs"), j.get("device_vs_cpu_cache_max_abs"), comp_max]
        ok = "error" not in j and all(within(c, F32_TOL) for c in checks)
        # a mixture's bfloat16 pass may route tokens to other experts: its distance from float32 bounds nothing
        own_bf16 = None if j.get("mixture_of_experts") else j.get("device_bf16_vs_cpu_f32_logits_max_rel")
        bf16 = p.get("hf_vs_ours_device_bf16_max_rel", own_bf16)
        ok = ok and (bf16 is None or within(bf16, BF16_REL_TOL))
        for key in ("hf_vs_ours_cpu_f32_ok", "hf_vs_ours_device_f32_ok"):
            if key in p:
                ok = ok and bool(p[key])
        ok = ok and "error" not in p  # a comparison with Hugging Face that failed checked nothing
        if not ok:
            failures.append(f"parity {j.get('model')}")
        row = {"model": j.get("model"), "ok": ok, "java": j, "python": p}
        summary["parity"].append(row)
        hf_note = "" if "hf_vs_ours_cpu_f32_max_abs" in p else "  (no HF: " + str(p.get("skipped", p.get("error", "not run")))[:60] + ")"
        lines.append(f"{str(j.get('model')):<11} {fmt(checks[0]):>14} {fmt(checks[1]):>13} {fmt(comp_max):>12} "
                     f"{fmt(p.get('hf_vs_ours_cpu_f32_max_abs')):>11} {fmt(p.get('hf_vs_ours_device_f32_max_abs')):>11} "
                     f"{fmt(bf16):>9}  {verdict(ok)}{hf_note}" + (f"  error: {j['error']}" if "error" in j else ""))

    py_forward = {(r.get("model"), r.get("seq")): r for r in rows(python, "forward")}
    lines.append("")
    lines.append(f"forward latency, bfloat16, batch 1 (target ours/python <= {FORWARD_TARGET})")
    lines.append(f"{'model':<9} {'tokens':>6} {'ours ms':>9} {'+cache ms':>9} {'python ms':>9} {'ratio':>6}  verdict  "
                 f"{'py graph':>9}  python")
    graph_lines = ["", f"forward as one CUDA graph, bfloat16, batch 1 (targets at 128 tokens: ours graph / python eager <= "
                   f"{GRAPH_VS_EAGER_TARGET}, ours graph / python graph <= {GRAPH_VS_GRAPH_TARGET})",
                   f"{'model':<9} {'tokens':>6} {'nodes':>6} {'graph ms':>9} {'py eager':>9} {'py graph':>9} "
                   f"{'/eager':>7} {'/graph':>7} {'=eager':>6}  verdict"]
    for j in rows(java, "forward"):
        p = py_forward.get((j.get("model"), j.get("seq")), {})
        ratio = j["ours_ms"] / p["python_ms"] if "ours_ms" in j and p.get("python_ms") else None
        met = None if ratio is None else ratio <= FORWARD_TARGET
        summary["forward"].append({"model": j.get("model"), "seq": j.get("seq"), "ours_ms": j.get("ours_ms"),
                                   "ours_with_cache_ms": j.get("ours_with_cache_ms"), "python_ms": p.get("python_ms"),
                                   "python_impl": p.get("python_impl"), "ratio": ratio, "target_met": met,
                                   "python_graph_ms": p.get("python_graph_ms")})
        g_eager = j["ours_graph_ms"] / p["python_ms"] if "ours_graph_ms" in j and p.get("python_ms") else None
        g_graph = j["ours_graph_ms"] / p["python_graph_ms"] if "ours_graph_ms" in j and p.get("python_graph_ms") else None
        g_met = None
        if g_eager is not None and g_graph is not None:
            g_met = g_graph <= GRAPH_VS_GRAPH_TARGET and (j.get("seq") != 128 or g_eager <= GRAPH_VS_EAGER_TARGET)
        # a graph that could not be captured, or whose logits differ from the eager pass's, is wrong, not slow
        g_ok = None if "ours_graph_error" not in j and "ours_graph_equals_eager" not in j else (
            "ours_graph_error" not in j and j.get("ours_graph_equals_eager") is True)
        if g_ok is False:
            failures.append(f"graph {j.get('model')} {j.get('seq')}")
        if "error" in j:  # the eager pass could not be timed
            failures.append(f"forward {j.get('model')} {j.get('seq')}")
        summary.setdefault("graph", []).append({"model": j.get("model"), "seq": j.get("seq"), "nodes": j.get("ours_graph_nodes"),
                                                "ours_graph_ms": j.get("ours_graph_ms"), "python_ms": p.get("python_ms"),
                                                "python_graph_ms": p.get("python_graph_ms"), "vs_eager": g_eager,
                                                "vs_graph": g_graph, "equals_eager": j.get("ours_graph_equals_eager"),
                                                "ok": g_ok, "target_met": g_met, "error": j.get("ours_graph_error")})
        graph_lines.append(f"{str(j.get('model')):<9} {fmt(j.get('seq'), 'd'):>6} {fmt(j.get('ours_graph_nodes'), 'd'):>6} "
                           f"{fmt(j.get('ours_graph_ms'), '.2f'):>9} {fmt(p.get('python_ms'), '.2f'):>9} "
                           f"{fmt(p.get('python_graph_ms'), '.2f'):>9} {fmt(g_eager, '.2f'):>7} {fmt(g_graph, '.2f'):>7} "
                           f"{str(j.get('ours_graph_equals_eager', '-')):>6}  "
                           f"{'FAIL' if g_ok is False else 'met' if g_met else 'MISSED' if g_met is False else '-':<7}"
                           + (f"  error: {str(j['ours_graph_error'])[:80]}" if "ours_graph_error" in j else ""))
        lines.append(f"{str(j.get('model')):<9} {fmt(j.get('seq'), 'd'):>6} {fmt(j.get('ours_ms'), '.2f'):>9} "
                     f"{fmt(j.get('ours_with_cache_ms'), '.2f'):>9} {fmt(p.get('python_ms'), '.2f'):>9} {fmt(ratio, '.2f'):>6}  "
                     f"{'met' if met else 'MISSED' if met is False else '-':<7}  {fmt(p.get('python_graph_ms'), '.2f'):>9}  "
                     f"{p.get('python_impl', p.get('skipped', p.get('error', '')))}"
                     + (f"  java error: {str(j['error'])[:80]}" if "error" in j else ""))

    lines.extend(graph_lines)

    py_comp = {r.get("model"): r for r in rows(python, "composition")}
    lines.append("")
    lines.append(f"all-pairs Q-composition, float32 (target ours/python <= {COMPOSITION_TARGET}; python = TransformerLens's algorithm)")
    lines.append(f"{'model':<18} {'L x H':>7} {'ours ms':>9} {'python ms':>10} {'ratio':>7}  verdict  note")
    for j in rows(java, "composition"):
        p = py_comp.get(j.get("model"), {})
        ratio = j["ours_ms"] / p["python_ms"] if "ours_ms" in j and p.get("python_ms") else None
        met = None if ratio is None else ratio <= COMPOSITION_TARGET
        note = []
        if p.get("extrapolated"):
            note.append(f"python timed {p['sender_heads_timed']} of {p['sender_heads_total']} sender heads, scaled")
        if "tl_vs_ours_max_abs" in p:
            note.append(f"TL vs ours max|diff| {p['tl_vs_ours_max_abs']:.2g} {verdict(p.get('tl_vs_ours_ok'))}")
        if p.get("tl_vs_ours_ok") is False:
            failures.append(f"composition {j.get('model')} against TransformerLens")
        for e in (j.get("error"), p.get("error")):
            if e:
                note.append("error: " + str(e)[:80])
                failures.append(f"composition {j.get('model')}")
        summary["composition"].append({"model": j.get("model"), "ours_ms": j.get("ours_ms"), "python_ms": p.get("python_ms"),
                                       "ratio": ratio, "target_met": met, "python_extrapolated": p.get("extrapolated"),
                                       "tl_vs_ours_max_abs": p.get("tl_vs_ours_max_abs")})
        lines.append(f"{str(j.get('model')):<18} {str(j.get('layers')) + 'x' + str(j.get('heads')):>7} "
                     f"{fmt(j.get('ours_ms'), '.2f'):>9} {fmt(p.get('python_ms'), '.1f'):>10} {fmt(ratio, '.3f'):>7}  "
                     f"{'met' if met else 'MISSED' if met is False else '-':<7}  {'; '.join(note)}")

    meta = {"java": java.get("meta") if isinstance(java, dict) else None,
            "python": python.get("meta") if isinstance(python, dict) else None, "junit_rc": junit_rc}
    head = [f"GPU check: {(meta['python'] or {}).get('gpu') or (meta['java'] or {}).get('device')}; "
            f"{(meta['java'] or {}).get('libtorch')}; torch {(meta['python'] or {}).get('torch')}, "
            f"transformers {(meta['python'] or {}).get('transformers')}; JUnit exit code {junit_rc}", ""]
    for doc, name in ((java, "java"), (python, "python")):
        if isinstance(doc, dict) and "error" in doc and len(doc) == 1:
            head.append(f"{name} half: {doc['error']}")
            failures.append(f"{name} half")
        elif isinstance(doc, dict) and name == "java":  # it writes every section, unless it was cut short
            missing = [k for k in ("parity", "forward", "composition") if k not in doc]
            if missing:
                head.append(f"{name} half: FAIL, no {', '.join(missing)} section (the run was cut short, or failed)")
                failures.append(f"{name} half")
        if isinstance(doc, dict):  # a section that failed as a whole is written as its error, not as rows
            for key in ("parity", "forward", "composition"):
                if key in doc and not isinstance(doc[key], list):
                    head.append(f"{name} half: FAIL, its {key} section: {str(doc[key])[:120]}")
                    failures.append(f"{name} {key}")
    if failures:
        head.append(f"FAILED: {', '.join(failures)}")
    table = "\n".join(head + lines) + "\n"
    with open(sys.argv[3], "w") as f:
        json.dump({"meta": meta, "summary": summary, "java": java, "python": python}, f, indent=1)
        f.write("\n")
    with open(sys.argv[4], "w") as f:
        f.write(table)
    print(table, end="")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
