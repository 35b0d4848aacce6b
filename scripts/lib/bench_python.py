#!/usr/bin/env python3
"""The benchmark suite's workloads in Python eager PyTorch (run by scripts/bench.sh; JSON on stdout).

Same checkpoint as the JVM implementations (target/bench/gpt2s, written by io.arrakis.model.BenchCheckpoint), same
thread count (--threads, torch.set_num_threads). Each figure is the median of several timed runs.

Workloads: op_mul_2x2 and op_matmul_64 (us per call), gpt2s_forward_f32 / _bf16 (ms, GPT-2 written as Hugging Face's
GPT2Model computes it, under torch.no_grad; the float32 logits are checked against ours), gpt2_tiny_forward (us, the
same code on the tiny checkpoint: 2 layers, d_model 128, 4 heads, 32 tokens, float32), and
composition_all_pairs_q_tl_algorithm (ms): all-pairs Q-composition scores as TransformerLens computes them
(HookedTransformer.all_composition_scores -> utils.composition_scores on FactoredMatrix: broadcast, collapse, and
Frobenius norms from SVDs), done for the first --tl-sender-layers sender layers (memory: TransformerLens materialises
[L, H, L, H, d_model, d_head]) and scaled by L / that number (the cost is linear in the sender layers).
With --forward-times, only the two float32 forward passes, timed as io.arrakis.suite.ForwardTimes times ours, for the
suite's paired comparison.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch

from safetensors_torch import load_safetensors


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def per_call_us(fn, calls, repeats):
    samples = []
    for _ in range(repeats):
        t = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter_ns() - t) / calls / 1e3)
    return statistics.median(samples)


def median_ms(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t) / 1e6)
    return statistics.median(samples)


class Gpt2:
    """GPT-2 as Hugging Face's GPT2Model computes it (Conv1D weights [in, out], tanh GELU, tied unembedding), in plain
    torch on any device (scripts/gpu_bench.py uses it where transformers is missing)."""

    def __init__(self, w, config, dtype, device="cpu"):
        self.layers, self.heads, self.d = config["n_layer"], config["n_head"], config["n_embd"]
        self.eps = config.get("layer_norm_epsilon", 1e-5)
        self.w = {k: v.to(device=device, dtype=dtype) for k, v in w.items()}
        self.device = device

    def __call__(self, ids):
        w, d, h = self.w, self.d, self.heads
        b, t = ids.shape
        dh = d // h
        f = torch.nn.functional
        mask = torch.ones(t, t, dtype=torch.bool, device=self.device).triu(1)
        x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][:t]
        for i in range(self.layers):
            p = f"transformer.h.{i}."
            a = f.layer_norm(x, (d,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], self.eps)
            q, k, v = (a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]).split(d, dim=2)
            q, k, v = (y.view(b, t, h, dh).transpose(1, 2) for y in (q, k, v))
            scores = (q @ k.transpose(-2, -1) / math.sqrt(dh)).masked_fill(mask, float("-inf"))
            z = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
            x = x + (z @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"])
            m = f.layer_norm(x, (d,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], self.eps)
            m = f.gelu(m @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"], approximate="tanh")
            x = x + (m @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"])
        x = f.layer_norm(x, (d,), w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], self.eps)
        return x @ w["transformer.wte.weight"].T


# ----------------------------------------------------------------------------- TransformerLens's composition scores

class FactoredMatrix:
    """The parts of transformer_lens.FactoredMatrix that composition scores use, as TransformerLens writes them."""

    def __init__(self, A, B):
        self.A, self.B = A, B
        self.ldim, self.mdim, self.rdim = A.size(-2), A.size(-1), B.size(-1)

    def __matmul__(self, other):
        if isinstance(other, torch.Tensor):
            if self.rdim > self.mdim:
                return FactoredMatrix(self.A, self.B @ other)
            return FactoredMatrix(self.AB, other)
        return (self @ other.A) @ other.B

    @property
    def AB(self):
        return self.A @ self.B

    def unsqueeze(self, k):
        return FactoredMatrix(self.A.unsqueeze(k), self.B.unsqueeze(k))

    @property
    def ndim(self):
        return len(torch.broadcast_shapes(self.A.shape[:-2], self.B.shape[:-2])) + 2

    def svd(self):
        Ua, Sa, Vha = torch.svd(self.A)
        Ub, Sb, Vhb = torch.svd(self.B)
        middle = Sa[..., :, None] * Vha.transpose(-2, -1) @ Ub * Sb[..., None, :]
        Um, Sm, Vhm = torch.svd(middle)
        return Ua @ Um, Sm, Vhb @ Vhm

    def norm(self):
        return self.svd()[1].pow(2).sum(-1).sqrt()


def composition_scores(left, right):
    """transformer_lens.utils.composition_scores(left, right, broadcast_dims=True)."""
    r_dims, l_dims = right.ndim - 2, left.ndim - 2
    for _ in range(l_dims):
        right = right.unsqueeze(-3 - r_dims)
    for _ in range(r_dims):
        left = left.unsqueeze(-3)
    return (left @ right).norm() / right.norm() / left.norm()


def tl_q_scores(W_Q, W_K, W_V, W_O, sender_layers):
    """HookedTransformer.all_composition_scores("Q") for the first sender_layers sender layers."""
    L = W_Q.shape[0]
    right = FactoredMatrix(W_Q, W_K.transpose(-2, -1))  # model.QK
    rows = []
    for l1 in range(sender_layers):
        left = FactoredMatrix(W_V[l1:l1 + 1], W_O[l1:l1 + 1])  # model.OV, one sender layer
        rows.append(composition_scores(left, right))
    scores = torch.cat(rows, 0)  # [sender_layers, H, L, H]
    mask = torch.triu(torch.ones(L, L, dtype=torch.bool), diagonal=1)[:sender_layers, None, :, None]
    return torch.where(mask, scores, torch.zeros_like(scores))


def checkpoint(folder, name):
    """A suite checkpoint (BenchCheckpoint): config, weights, input ids, and our logits at the first and last position."""
    d = os.path.join(folder, name)
    ids = torch.tensor([[int(i) for i in open(os.path.join(d, "ids.txt")).read().strip().split(",")]])
    ours = torch.frombuffer(bytearray(open(os.path.join(d, "logits.f32"), "rb").read()), dtype=torch.float32)
    return (json.load(open(os.path.join(d, "config.json"))), load_safetensors(os.path.join(d, "model.safetensors")),
            ids, ours.reshape(2, -1))


def median_of_batches_us(fn, warmup, per_batch, batches):
    """The median over batches of the mean time of per_batch calls, after warmup calls (as ForwardTimes.java)."""
    for _ in range(warmup):
        fn()
    means = []
    for _ in range(batches):
        t = time.perf_counter_ns()
        for _ in range(per_batch):
            fn()
        means.append((time.perf_counter_ns() - t) / 1e3 / per_batch)
    return statistics.median(means)


def forward_times(folder):
    """Python's side of the suite's paired comparison (see io.arrakis.suite.ForwardTimes): one JSON object."""
    with torch.no_grad():
        config, weights, ids, _ = checkpoint(folder, "tiny")
        tiny = Gpt2(weights, config, torch.float32)
        tiny_us = median_of_batches_us(lambda: tiny(ids), 300, 100, 7)
        config, weights, ids, _ = checkpoint(folder, "gpt2s")
        small = Gpt2(weights, config, torch.float32)
        small_ms = median_of_batches_us(lambda: small(ids), 3, 1, 5) / 1e3
    print(json.dumps({"gpt2_tiny_forward": tiny_us, "gpt2s_forward_f32": small_ms}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="target/bench")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tl-sender-layers", type=int, default=12)
    ap.add_argument("--forward-times", action="store_true", help="only the paired comparison's forward passes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.forward_times:
        forward_times(args.dir)
        return
    quick = args.quick
    rows = {}
    with torch.no_grad():
        a2, b2 = torch.randn(2, 2), torch.randn(2, 2)
        a64, b64 = torch.randn(64, 64), torch.randn(64, 64)
        rows["op_mul_2x2"] = per_call_us(lambda: a2 * b2, 20000 if quick else 100000, 5 if quick else 10)
        rows["op_matmul_64"] = per_call_us(lambda: a64 @ b64, 2000 if quick else 10000, 5 if quick else 10)
        log(f"python: ops done, mul {rows['op_mul_2x2']:.2f} us, matmul64 {rows['op_matmul_64']:.2f} us")

        def matches(model, ids, ours, what):
            t = ids.shape[1]
            logits = model(ids).float()
            diff = (torch.stack([logits[0, 0], logits[0, t - 1]]) - ours).abs().max().item()
            ok = diff <= 1e-3 * max(1.0, ours.abs().max().item())
            log(f"python: {what} logits vs ours: max |diff| {diff:.3g}: {'match' if ok else 'MISMATCH'}")
            return ok

        config, weights, ids, ours = checkpoint(args.dir, "gpt2s")
        for dtype, name in ((torch.float32, "gpt2s_forward_f32"), (torch.bfloat16, "gpt2s_forward_bf16")):
            model = Gpt2(weights, config, dtype)
            if dtype == torch.float32:
                if not matches(model, ids, ours, "GPT-2"):
                    rows[name] = None
                    continue
            else:
                logits = model(ids).float()
                diff = (torch.stack([logits[0, 0], logits[0, ids.shape[1] - 1]]) - ours).abs().max().item()
                log(f"python: bfloat16 logits vs ours (float32): max |diff| {diff:.3g} of {ours.abs().max().item():.3g}")
            rows[name] = median_ms(lambda: model(ids), 2 if quick else 5, 5 if quick else 15)
            log(f"python: {name} {rows[name]:.1f} ms")
            del model

        tiny_config, tiny_weights, tiny_ids, tiny_ours = checkpoint(args.dir, "tiny")
        tiny = Gpt2(tiny_weights, tiny_config, torch.float32)
        if matches(tiny, tiny_ids, tiny_ours, "tiny GPT-2"):
            runs = 200
            rows["gpt2_tiny_forward"] = statistics.median(
                median_ms(lambda: [tiny(tiny_ids) for _ in range(runs)], 1, 1) * 1e3 / runs for _ in range(5 if quick else 15))
            log(f"python: gpt2_tiny_forward {rows['gpt2_tiny_forward']:.0f} us")

        L, H, d, dh = config["n_layer"], config["n_head"], config["n_embd"], config["n_embd"] // config["n_head"]
        W_Q, W_K, W_V, W_O = [], [], [], []
        for i in range(L):
            wq, wk, wv = weights[f"transformer.h.{i}.attn.c_attn.weight"].split(d, dim=1)  # [d_model, d_model] each
            W_Q.append(wq.reshape(d, H, dh).permute(1, 0, 2))
            W_K.append(wk.reshape(d, H, dh).permute(1, 0, 2))
            W_V.append(wv.reshape(d, H, dh).permute(1, 0, 2))
            W_O.append(weights[f"transformer.h.{i}.attn.c_proj.weight"].reshape(H, dh, d))
        W_Q, W_K, W_V, W_O = (torch.stack(x) for x in (W_Q, W_K, W_V, W_O))
        k = max(1, min(L, args.tl_sender_layers))
        tl = median_ms(lambda: tl_q_scores(W_Q, W_K, W_V, W_O, k), 0, 1 if quick else 2)
        rows["composition_all_pairs_q_tl_algorithm"] = tl * L / k
        log(f"python: TransformerLens all-pairs Q ({k} of {L} sender layers) {tl:.0f} ms -> {tl * L / k:.0f} ms")
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "blas": "openblas" if "openblas" in torch.__config__.show().lower() else "see torch.__config__",
                      "tl_sender_layers": k, "rows": rows}))


if __name__ == "__main__":
    main()
