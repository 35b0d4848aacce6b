#!/usr/bin/env python3
"""Make the Hugging Face reference fixture of Cohere's query and key norms (`transformers/models/cohere`).

Command R+ sets `use_qk_norm`: a LayerNorm without bias over each query and key head, with a weight of its own per
head and feature, before the rotary embedding. The shared `cohere` fixture has none, so this script builds a tiny
`CohereForCausalLM` with them (float32, CPU, eval mode, eager attention, grouped-query heads), redraws every
parameter from a seeded generator, runs one forward pass on seeded ids and records what transformers computes.

Usage
-----
    python3 scripts/make-hf-cohere-qk-norm-fixture.py [OUT]

    OUT  output folder (default: src/test/resources/fixtures-hf); the fixture goes to OUT/cohere-qk-norm.

Requirements: Python >= 3.10, torch, transformers 5.17, safetensors. Runs on CPU in seconds; nothing is downloaded.

Output
------
config.json, generation_config.json, model.safetensors: as `save_pretrained` writes them.
reference.safetensors:
    input_ids                               int64   [batch, pos]
    blocks.{i}.hook_resid_pre/post          float32 [batch, pos, d_model]  decoder layer i's input and output
    blocks.{i}.attn.hook_q/hook_k           float32 [batch, pos, (kv_)heads, d_head]  q_proj's and k_proj's outputs
    blocks.{i}.attn.hook_q_normed/k_normed  float32 [batch, pos, (kv_)heads, d_head]  q_norm's and k_norm's outputs
    blocks.{i}.attn.hook_pattern            float32 [batch, heads, query, key]
    ln_final.hook_normalized, logits
    bfloat16.logits                         float32 [batch, pos, vocab]  the logits of the model loaded in bfloat16
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

SEED = 4407
BATCH = 2
SEQ = 9
SETTINGS = dict(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=64, use_qk_norm=True, logit_scale=0.25,
                layer_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=True)


def main(argv):
    import torch
    import transformers
    from safetensors.torch import save_file

    root = argv[1] if len(argv) > 1 else "src/test/resources/fixtures-hf"
    config = transformers.CohereConfig(attn_implementation="eager", **SETTINGS)
    model = transformers.CohereForCausalLM(config).to(torch.float32).eval()
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(tuple(p.shape), generator=gen)
            p.copy_(1.0 + 0.2 * noise if "norm" in name else noise / p.shape[-1] ** 0.5)
    ids = torch.randint(0, SETTINGS["vocab_size"], (BATCH, SEQ), generator=gen)
    rec = {}

    def keep(key, t):
        rec[key] = t.detach().to(torch.float32).contiguous().clone()

    handles = []
    for i, layer in enumerate(model.model.layers):
        b = "blocks.%d." % i
        a = layer.self_attn
        heads = lambda o, d=a.head_dim: o.unflatten(-1, (-1, d))
        handles.append(layer.register_forward_pre_hook(
            lambda mod, args, kw, b=b: keep(b + "hook_resid_pre", args[0] if args else kw["hidden_states"]),
            with_kwargs=True))
        handles.append(layer.register_forward_hook(
            lambda mod, args, o, b=b: keep(b + "hook_resid_post", o[0] if isinstance(o, tuple) else o)))
        handles.append(a.q_proj.register_forward_hook(lambda mod, args, o, b=b, h=heads: keep(b + "attn.hook_q", h(o))))
        handles.append(a.k_proj.register_forward_hook(lambda mod, args, o, b=b, h=heads: keep(b + "attn.hook_k", h(o))))
        handles.append(a.q_norm.register_forward_hook(lambda mod, args, o, b=b: keep(b + "attn.hook_q_normed", o)))
        handles.append(a.k_norm.register_forward_hook(lambda mod, args, o, b=b: keep(b + "attn.hook_k_normed", o)))
    handles.append(model.model.norm.register_forward_hook(lambda mod, args, o: keep("ln_final.hook_normalized", o)))
    with torch.no_grad():
        result = model(input_ids=ids, output_attentions=True, use_cache=False, return_dict=True)
    for h in handles:
        h.remove()
    keep("logits", result.logits)
    for i, pattern in enumerate(result.attentions):
        keep("blocks.%d.attn.hook_pattern" % i, pattern)

    out = os.path.join(root, "cohere-qk-norm")
    if os.path.isdir(out):
        shutil.rmtree(out)
    model.save_pretrained(out)
    bfloat16 = transformers.CohereForCausalLM.from_pretrained(out, dtype=torch.bfloat16,
                                                              attn_implementation="eager").eval()
    with torch.no_grad():
        keep("bfloat16.logits", bfloat16(input_ids=ids, use_cache=False).logits)
    save_file(dict(rec, input_ids=ids), os.path.join(out, "reference.safetensors"))
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("# cohere-qk-norm, made by transformers\n\n"
                "Made by `scripts/make-hf-cohere-qk-norm-fixture.py` on %s with transformers %s, torch %s, Python %s: "
                "a tiny `CohereForCausalLM` (%s), float32, CPU, eager attention, every parameter redrawn from a "
                "generator seeded with %d; `reference.safetensors` holds one forward pass of %d x %d seeded ids and "
                "the logits of the same pass with the weights in bfloat16 (the script's docstring lists each "
                "tensor).\n"
                % (datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                   transformers.__version__, torch.__version__, platform.python_version(),
                   ", ".join("%s %s" % kv for kv in SETTINGS.items()), SEED, BATCH, SEQ))
    print("wrote %s: %d tensors" % (out, len(rec) + 1))


if __name__ == "__main__":
    main(sys.argv)
