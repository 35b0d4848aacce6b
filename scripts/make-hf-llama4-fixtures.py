#!/usr/bin/env python3
"""Make the Hugging Face reference fixture of Llama 4's text model (`transformers/models/llama4`).

Llama 4's layers differ in kind: the layers that rotate normalise their rotated queries and keys without a weight and
attend within chunks, the others (NoPE) do not rotate and scale their queries by a temperature that grows with the
position, and its mixture-of-experts layers weigh each chosen expert's input, beside a shared expert, between dense
layers of another width; its feed-forward module is named `feed_forward`, so `make-hf-fixtures.py`'s hooks cannot
describe it. This script builds a tiny `Llama4ForCausalLM` (float32, CPU, eval mode, eager attention) whose chunks,
temperature interval and llama3 rotary scaling all take effect within its seeded ids, redraws every parameter from a
seeded generator, runs one forward pass and records its activations as transformers computes them.

Usage
-----
    python3 scripts/make-hf-llama4-fixtures.py [OUT]

    OUT  output folder (default: src/test/resources/fixtures-hf); the fixture goes to OUT/llama4.

Requirements: Python >= 3.10, torch, transformers 5.17, safetensors. Runs on CPU in seconds; nothing is downloaded.

Output
------
config.json, generation_config.json, model.safetensors: as `save_pretrained` writes them.
reference.safetensors:
    input_ids                          int64   [batch, pos]
    blocks.{i}.hook_resid_pre/post     float32 [batch, pos, d_model]  the input and output of decoder layer i
    blocks.{i}.hook_attn_out           float32 [batch, pos, d_model]  o_proj's output
    blocks.{i}.hook_mlp_out            float32 [batch, pos, d_model]  feed_forward's output
    blocks.{i}.attn.hook_q             float32 [batch, pos, heads, d_head]     q_proj's output
    blocks.{i}.attn.hook_k/hook_v      float32 [batch, pos, kv_heads, d_head]  k_proj's and v_proj's
    blocks.{i}.attn.hook_q_normed/hook_k_normed
                                       float32 [batch, pos, (kv_)heads, d_head]  qk_norm's outputs (layers that rotate)
    blocks.{i}.attn.hook_pattern       float32 [batch, heads, query, key]
    blocks.{i}.attn.hook_z             float32 [batch, pos, heads, d_head]     o_proj's input
    blocks.{i}.mlp.hook_pre/hook_pre_linear/hook_post
                                       float32 [batch, pos, d_mlp]     a dense layer's gate_proj and up_proj outputs
                                                                       and down_proj's input
    blocks.{i}.mlp.hook_router_logits  float32 [batch, pos, experts]  the router's logits (mixture layers)
    blocks.{i}.mlp.hook_expert_indices float32 [batch, pos, top_k]    the router's top k, best first
    blocks.{i}.mlp.hook_expert_weights float32 [batch, pos, top_k]    the router's scores of those experts
    blocks.{i}.mlp.shared_expert.hook_pre/hook_pre_linear/hook_post
                                       float32 [batch, pos, d_mlp]    the shared expert's, as a dense layer's
    ln_final.hook_normalized, logits
    bfloat16.logits                    float32 [batch, pos, vocab]  the logits of the saved model loaded in bfloat16
README.md: how it was made, with the versions.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import datetime
import platform
import shutil
import sys

SEED = 4405
BATCH = 2
SEQ = 13

# four layers, the last NoPE (every fourth), experts on the odd ones (every second), dense MLPs of 48 on the others;
# chunks of 5 and a temperature interval of 4 within the 13 positions; llama3 rotary scaling of an 8-position context
SETTINGS = dict(
    vocab_size=96, hidden_size=32, intermediate_size=12, intermediate_size_mlp=48, num_hidden_layers=4,
    num_attention_heads=4, num_key_value_heads=2, head_dim=8, num_local_experts=4, num_experts_per_tok=2,
    interleave_moe_layer_step=2, no_rope_layer_interval=4, attention_chunk_size=5, attn_temperature_tuning=True,
    floor_scale=4, attn_scale=0.5, use_qk_norm=True, max_position_embeddings=64, rms_norm_eps=1e-5,
    rope_parameters={"rope_type": "llama3", "rope_theta": 500.0, "factor": 8.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8},
    tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0,
)


def main(argv):
    root = argv[1] if len(argv) > 1 else "src/test/resources/fixtures-hf"
    make(root, "llama4", SETTINGS)


def make(root, folder, settings):
    import torch
    import transformers
    from safetensors.torch import save_file

    config = transformers.Llama4TextConfig(attn_implementation="eager", **settings)
    model = transformers.Llama4ForCausalLM(config).to(torch.float32).eval()
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(tuple(p.shape), generator=gen)
            if "norm" in name:
                p.copy_(1.0 + 0.2 * noise)
            elif "experts." in name and "shared" not in name:  # [experts, in, out]: scaled by the input width
                p.copy_(noise / p.shape[-2] ** 0.5)
            else:
                p.copy_(noise / p.shape[-1] ** 0.5)
    ids = torch.randint(0, settings["vocab_size"], (BATCH, SEQ), generator=gen)

    rec = {}

    def keep(key, t):
        rec[key] = t.detach().to(torch.float32).contiguous().clone()

    tokens = lambda t: t.reshape(BATCH, SEQ, -1)
    handles = []
    for i, layer in enumerate(model.model.layers):
        b = "blocks.%d." % i
        a = layer.self_attn
        heads = lambda o, d=a.head_dim: o.unflatten(-1, (-1, d))
        handles.append(layer.register_forward_pre_hook(
            lambda mod, args, kw, b=b: keep(b + "hook_resid_pre", args[0] if args else kw["hidden_states"]),
            with_kwargs=True))
        handles.append(layer.register_forward_hook(lambda mod, args, o, b=b: keep(b + "hook_resid_post", o)))
        handles.append(a.o_proj.register_forward_hook(lambda mod, args, o, b=b: keep(b + "hook_attn_out", o)))
        handles.append(a.o_proj.register_forward_pre_hook(
            lambda mod, args, b=b, h=heads: keep(b + "attn.hook_z", h(args[0]))))
        for proj, hook in ((a.q_proj, "hook_q"), (a.k_proj, "hook_k"), (a.v_proj, "hook_v")):
            handles.append(proj.register_forward_hook(
                lambda mod, args, o, n=b + "attn." + hook, h=heads: keep(n, h(o))))
        if hasattr(a, "qk_norm"):  # called on the rotated queries, then on the rotated keys
            calls = []
            handles.append(a.qk_norm.register_forward_hook(
                lambda mod, args, o, b=b, calls=calls: (calls.append(1), keep(
                    b + ("attn.hook_q_normed" if len(calls) % 2 == 1 else "attn.hook_k_normed"), o)) and None))
        ff = layer.feed_forward
        handles.append(ff.register_forward_hook(
            lambda mod, args, o, b=b: keep(b + "hook_mlp_out", tokens(o[0] if isinstance(o, tuple) else o))))
        if layer.is_moe_layer:
            k = config.num_experts_per_tok

            def routed(mod, args, o, b=b, k=k):
                scores, logits = o
                keep(b + "mlp.hook_router_logits", tokens(logits))
                chosen = torch.topk(logits, k, dim=1).indices
                keep(b + "mlp.hook_expert_indices", tokens(chosen))
                keep(b + "mlp.hook_expert_weights", tokens(scores.gather(1, chosen)))

            handles.append(ff.router.register_forward_hook(routed))
            mlp, prefix = ff.shared_expert, b + "mlp.shared_expert."
        else:
            mlp, prefix = ff, b + "mlp."
        handles.append(mlp.gate_proj.register_forward_hook(
            lambda mod, args, o, n=prefix: keep(n + "hook_pre", tokens(o))))
        handles.append(mlp.up_proj.register_forward_hook(
            lambda mod, args, o, n=prefix: keep(n + "hook_pre_linear", tokens(o))))
        handles.append(mlp.down_proj.register_forward_pre_hook(
            lambda mod, args, n=prefix: keep(n + "hook_post", tokens(args[0]))))
    handles.append(model.model.norm.register_forward_hook(lambda mod, args, o: keep("ln_final.hook_normalized", o)))
    with torch.no_grad():
        result = model(input_ids=ids, output_attentions=True, use_cache=False, return_dict=True)
    for h in handles:
        h.remove()
    keep("logits", result.logits)
    for i, pattern in enumerate(result.attentions):
        keep("blocks.%d.attn.hook_pattern" % i, pattern)

    out = os.path.join(root, folder)
    if os.path.isdir(out):
        shutil.rmtree(out)
    model.save_pretrained(out)
    bfloat16 = transformers.Llama4ForCausalLM.from_pretrained(out, dtype=torch.bfloat16,
                                                              attn_implementation="eager").eval()
    with torch.no_grad():
        keep("bfloat16.logits", bfloat16(input_ids=ids, use_cache=False).logits)
    save_file(dict(rec, input_ids=ids), os.path.join(out, "reference.safetensors"))
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("# %s, made by transformers\n\n"
                "Made by `scripts/make-hf-llama4-fixtures.py` on %s with transformers %s, torch %s, Python %s: a tiny "
                "`Llama4ForCausalLM` (%s), float32, CPU, eager attention, every parameter redrawn from a generator "
                "seeded with %d; `reference.safetensors` holds one forward pass of %d x %d seeded ids and the logits "
                "of the same pass with the weights in bfloat16 (the script's docstring lists each tensor).\n"
                % (folder, datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                   transformers.__version__, torch.__version__, platform.python_version(),
                   ", ".join("%s %s" % kv for kv in settings.items()), SEED, BATCH, SEQ))
    print("wrote %s: %d tensors" % (out, len(rec) + 1))


if __name__ == "__main__":
    main(sys.argv)
