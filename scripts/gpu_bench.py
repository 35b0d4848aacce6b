#!/usr/bin/env python3
"""The Python half of scripts/gpu-check.sh's parity and benchmark run (issue #7); JSON out.

Reads what io.arrakis.model.GpuCheck (the Java half) wrote under --work and its JSON (--java-json), and does the
same workloads in Python PyTorch on the same device:

  parity       Hugging Face transformers' logits (AutoModelForCausalLM.from_pretrained on the very checkpoint our
               side loaded, same ids) against ours on the CPU and on the device: float32 within 1e-3 (absolute, or
               relative to the largest logit when that is above 1), and bfloat16 on the device against ours in
               bfloat16 on the device, stated as max |diff| / max |logit|; plus TransformerLens's all-pairs
               Q-composition scores of the GPT-2-small checkpoint against ours (float32, sender layer < receiver).
  forward      latency of transformers' model(ids) (no KV cache, inference mode) in bfloat16 on the same checkpoint
               and sequence lengths as ours; the clock is read after torch.cuda.synchronize().
  composition  all-pairs Q-composition as TransformerLens computes it (HookedTransformer.all_composition_scores ->
               utils.composition_scores on FactoredMatrix), GPT-2-small from the checkpoint and a Llama-7B attention
               shape from torch.randn on the device (timing does not depend on the values). TransformerLens
               materialises [senders, L, H, d_model, d_head] matrices; the work is done one sender head at a time
               within --tl-budget-s per model, and the time is the median per-head time times the number of heads
               (the row states how many heads were timed).

Without transformers (e.g. Debian's torch 1.13 here) the parity rows say so, GPT-2's forward uses a torch-only GPT-2
(Hugging Face's GPT2Model computation) and the Llama forward rows are skipped with that reason.
"""
import argparse
import json
import os
import statistics
import sys
import time
import traceback

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bench_python import FactoredMatrix, Gpt2, composition_scores  # noqa: E402  (TransformerLens's algorithm, GPT-2 in torch)
from safetensors_torch import load_safetensors  # noqa: E402

try:
    import transformers
    from transformers import AutoModelForCausalLM
    TRANSFORMERS = transformers.__version__
except Exception as e:  # noqa: BLE001
    AutoModelForCausalLM = None
    TRANSFORMERS = None
    TRANSFORMERS_ERROR = f"transformers not importable: {e}"


def log(*args):
    print("gpu_bench:", *args, file=sys.stderr, flush=True)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn, device, warmup, runs):
    for _ in range(warmup):
        fn()
    sync(device)
    samples = []
    for _ in range(runs):
        t = time.perf_counter_ns()
        fn()
        sync(device)
        samples.append((time.perf_counter_ns() - t) / 1e6)
    return statistics.median(samples)


def read_f32(path):
    return torch.frombuffer(bytearray(open(path, "rb").read()), dtype=torch.float32)


def read_ids(path):
    return torch.tensor([[int(x) for x in row.split(",")] for row in open(path).read().strip().split(";")])


def hf_model(model_dir, dtype, device):
    major, minor = (int(x) for x in TRANSFORMERS.split(".")[:2])
    # "dtype" from transformers 4.56 on ("torch_dtype" is deprecated there); .to() makes sure either way
    kwargs = {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    return model.to(device=device, dtype=dtype).eval()


def diff_stats(ours, theirs):
    d = (ours.float() - theirs.float()).abs().max().item()
    scale = theirs.float().abs().max().item()
    return d, scale


# ------------------------------------------------------------------------------------------------------ parity

def parity(java, work, device):
    rows = []
    for jrow in java.get("parity", []):
        if not isinstance(jrow, dict) or "model" not in jrow:
            continue
        name = jrow["model"]
        row = {"model": name}
        try:
            pdir = os.path.join(work, "parity", name)
            ids = read_ids(os.path.join(pdir, "ids.txt"))
            if TRANSFORMERS is None:
                row["skipped"] = TRANSFORMERS_ERROR
            else:
                with torch.inference_mode():
                    model = hf_model(jrow["model_dir"], torch.float32, device)
                    hf = model(ids.to(device)).logits.float().cpu()
                    del model
                    for key, file in (("hf_vs_ours_cpu_f32", "ours_cpu_logits.f32"),
                                      ("hf_vs_ours_device_f32", "ours_device_logits.f32")):
                        d, scale = diff_stats(read_f32(os.path.join(pdir, file)).reshape(hf.shape), hf)
                        row[key + "_max_abs"] = d
                        row[key + "_ok"] = d <= 1e-3 * max(1.0, scale)
                    model = hf_model(jrow["model_dir"], torch.bfloat16, device)
                    hfb = model(ids.to(device)).logits.float().cpu()
                    del model
                    d, scale = diff_stats(read_f32(os.path.join(pdir, "ours_device_bf16_logits.f32")).reshape(hfb.shape), hfb)
                    row["hf_vs_ours_device_bf16_max_abs"] = d
                    row["hf_vs_ours_device_bf16_max_rel"] = d / max(scale, 1e-12)
                    row["hf_bf16_vs_hf_f32_max_rel"] = diff_stats(hfb, hf)[0] / max(hf.abs().max().item(), 1e-12)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            row["error"] = repr(e)
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------------ forward

def graph_ms(call, device, warmup, runs, row):
    """The same forward captured once with torch.cuda.graph and replayed (the ids tensor is the graph's static input):
    row["python_graph_ms"], or row["python_graph_error"] where capture fails."""
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(3):
                call()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph):
            call()
        row["python_graph_ms"] = median_ms(graph.replay, device, warmup, runs)
        del graph
    except Exception as e:  # noqa: BLE001
        row["python_graph_error"] = repr(e)[:200]


def forward(java, device, warmup, runs):
    rows = []
    models = {}
    for jrow in java.get("forward", []):
        if not isinstance(jrow, dict) or "model" not in jrow:
            continue
        name, seq, mdir = jrow["model"], jrow["seq"], jrow["model_dir"]
        row = {"model": name, "seq": seq, "dtype": "bfloat16"}
        try:
            config = json.load(open(os.path.join(mdir, "config.json")))
            if name not in models:
                models.clear()
                if TRANSFORMERS is not None:
                    hf = hf_model(mdir, torch.bfloat16, device)
                    # which attention was timed (transformers 5 picks sdpa where it can)
                    attention = getattr(hf.config, "_attn_implementation", None) or "default"
                    models[name] = (f"transformers {TRANSFORMERS}, {attention} attention", hf)
                elif config.get("model_type") == "gpt2":
                    models[name] = ("torch-only GPT-2 (no transformers)",
                                    Gpt2(load_safetensors(os.path.join(mdir, "model.safetensors")), config,
                                         torch.bfloat16, device))
                else:
                    models[name] = (None, None)
            impl, model = models[name]
            if model is None:
                row["skipped"] = TRANSFORMERS_ERROR
            else:
                row["python_impl"] = impl
                gen = torch.Generator().manual_seed(1)
                ids = torch.randint(0, config["vocab_size"], (1, seq), generator=gen).to(device)
                if TRANSFORMERS is not None:
                    call = lambda: model(ids, use_cache=False).logits  # noqa: E731
                else:
                    call = lambda: model(ids)  # noqa: E731
                with torch.inference_mode():
                    row["python_ms"] = median_ms(call, device, warmup, runs)
                if str(device).startswith("cuda"):
                    graph_ms(call, device, warmup, runs, row)
                if "ours_ms" in jrow:
                    row["ours_ms"] = jrow["ours_ms"]
                    row["ours_over_python"] = jrow["ours_ms"] / row["python_ms"]
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            row["error"] = repr(e)
        rows.append(row)
        log(f"forward {row}")
    models.clear()
    return rows


# ------------------------------------------------------------------------------------------------------ composition

def tl_q_scores(W_Q, W_K, W_V, W_O, senders):
    """HookedTransformer.all_composition_scores("Q") rows for the (layer, head) senders: [len(senders), L, H]."""
    right = FactoredMatrix(W_Q, W_K.transpose(-2, -1))  # model.QK, [L, H, d_model, d_model] factored
    rows = []
    for layer, head in senders:
        left = FactoredMatrix(W_V[layer, head][None, None], W_O[layer, head][None, None])  # one sender's OV
        rows.append(composition_scores(left, right).reshape(W_Q.shape[0], W_Q.shape[1]))
    return torch.stack(rows)


def gpt2_tl_weights(weights, config, device):
    L, H, d = config["n_layer"], config["n_head"], config["n_embd"]
    dh = d // H
    W_Q, W_K, W_V, W_O = [], [], [], []
    for i in range(L):
        wq, wk, wv = weights[f"transformer.h.{i}.attn.c_attn.weight"].float().split(d, dim=1)
        W_Q.append(wq.reshape(d, H, dh).permute(1, 0, 2))
        W_K.append(wk.reshape(d, H, dh).permute(1, 0, 2))
        W_V.append(wv.reshape(d, H, dh).permute(1, 0, 2))
        W_O.append(weights[f"transformer.h.{i}.attn.c_proj.weight"].float().reshape(H, dh, d))
    return [torch.stack(x).to(device) for x in (W_Q, W_K, W_V, W_O)]


def composition(java, work, device, budget_s):
    """TransformerLens's all-pairs Q-composition, one sender head at a time: one head to warm up, then heads in order
    until all are done or budget_s has passed; the time is the median per-head time times the number of heads (a
    head's cost does not depend on which head it is). Parity with ours (GPT-2-small) on the heads computed."""
    rows = []
    for jrow in java.get("composition", []):
        if not isinstance(jrow, dict) or "model" not in jrow:
            continue
        name = jrow["model"]
        L, H, d, dh = jrow["layers"], jrow["heads"], jrow["d_model"], jrow["d_head"]
        row = {"model": name, "mode": "Q", "dtype": "float32", "python_impl": "TransformerLens algorithm in torch"}
        try:
            if name == "gpt2s":
                mdir = os.path.join(work, "gpt2s")
                config = json.load(open(os.path.join(mdir, "config.json")))
                W = gpt2_tl_weights(load_safetensors(os.path.join(mdir, "model.safetensors")), config, device)
                row["weights"] = "the gpt2s checkpoint"
            else:
                gen = torch.Generator(device=device).manual_seed(0)
                W = [torch.randn(s, generator=gen, device=device) * 0.02
                     for s in ((L, H, d, dh), (L, H, d, dh), (L, H, d, dh), (L, H, dh, d))]
                row["weights"] = "torch.randn (same shapes as ours; values do not change the timing)"
            senders = [(l, h) for l in range(L) for h in range(H)]
            times, scores = [], []
            with torch.inference_mode():
                tl_q_scores(*W, senders[:1])  # warm-up
                sync(device)
                began = time.perf_counter()
                for sender in senders:
                    t = time.perf_counter_ns()
                    scores.append(tl_q_scores(*W, [sender]))
                    sync(device)
                    times.append((time.perf_counter_ns() - t) / 1e6)
                    if time.perf_counter() - began > budget_s:
                        break
            k = len(times)
            row["python_ms"] = statistics.median(times) * len(senders)
            row["python_ms_per_sender_head"] = statistics.median(times)
            row["sender_heads_timed"] = k
            row["sender_heads_total"] = len(senders)
            row["extrapolated"] = k < len(senders)
            ours_file = os.path.join(work, "parity", "gpt2s", "ours_cpu_q_scores.f32")
            if name == "gpt2s" and os.path.exists(ours_file):
                mine = torch.cat(scores).reshape(k, L, H).cpu()
                ours = read_f32(ours_file).reshape(L * H, L, H)[:k]
                sender_layer = torch.tensor([l for l, _ in senders[:k]])
                upper = (sender_layer[:, None] < torch.arange(L)[None, :])[:, :, None].expand(k, L, H)
                row["tl_vs_ours_max_abs"] = (ours[upper] - mine[upper]).abs().max().item() if upper.any() else 0.0
                row["tl_vs_ours_ok"] = row["tl_vs_ours_max_abs"] <= 1e-3
                row["tl_vs_ours_sender_heads"] = k
            if "ours_ms" in jrow:
                row["ours_ms"] = jrow["ours_ms"]
                row["ours_over_python"] = jrow["ours_ms"] / row["python_ms"]
            del W, scores
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            row["error"] = repr(e)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        rows.append(row)
        log(f"composition {row}")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", required=True, help="the Java half's --work folder")
    ap.add_argument("--java-json", required=True, help="the Java half's JSON")
    ap.add_argument("--out", help="JSON output (default: stdout)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--tl-budget-s", type=float, default=30,
                    help="seconds per model for TransformerLens's composition; heads not reached are extrapolated")
    args = ap.parse_args()
    device = torch.device(args.device)
    java = json.load(open(args.java_json))
    result = {"meta": {"torch": torch.__version__, "transformers": TRANSFORMERS, "device": str(device),
                       "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                       "runs": args.runs, "warmup": args.warmup}}
    def save():  # after each section, so that a run cut short by its time limit keeps what it did
        if args.out:
            with open(args.out, "w") as f:
                f.write(json.dumps(result, indent=1) + "\n")

    for key, fn in (("parity", lambda: parity(java, args.work, device)),
                    ("forward", lambda: forward(java, device, args.warmup, args.runs))):
        t = time.time()
        try:
            result[key] = fn()
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            result[key] = {"error": repr(e)}
        log(f"{key} done in {time.time() - t:.1f} s")
        save()
    try:
        comp = []
        for jrow in java.get("composition", []):
            comp += composition({"composition": [jrow]}, args.work, device, args.tl_budget_s)
            result["composition"] = comp
            save()
        result["composition"] = comp
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        result["composition"] = {"error": repr(e)}
    if args.out:
        save()
        log(f"wrote {args.out}")
    else:
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
