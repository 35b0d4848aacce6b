#!/usr/bin/env python3
"""Make the Hugging Face reference fixtures of the Mamba-2 hybrids: Granite 4.0
(`transformers/models/granitemoehybrid`) and Bamba (`transformers/models/bamba`).

These models mix tokens by Mamba-2 state spaces in most layers and by attention in a few; Granite 4.0's dense model is
the same family with attention alone. This script builds tiny `GraniteMoeHybridForCausalLM` and `BambaForCausalLM`
(float32, CPU, eval mode, eager attention), redraws every parameter from a seeded generator (the Mamba layers' `A_log`
around log 0.05, so that a state outlives a chunk), runs one forward pass on seeded ids and records what transformers
computes:

- granitemoehybrid: Granite 4.0-H's shape. Mamba, attention, Mamba, Mamba layers; no rotary embedding ("nope"); a
  mixture of experts beside the shared MLP; two groups of B and C; biases on the projections; a time-step limit;
  chunks of 4 positions over 11, so that states cross chunks and the last chunk is padded.
- granitemoehybrid-dense: Granite 4.0-Micro's shape with Mamba layers: no experts (the shared MLP is the MLP), the
  rotary embedding on the attention layers, one group, no projection biases, no limit, one chunk.
- bamba: Mamba, attention, Mamba layers (`attn_layer_indices`), the rotary embedding on half of each head, biases on
  the attention and MLP projections, four groups, chunks of 3.

Usage
-----
    python3 scripts/make-hf-mamba2-fixtures.py [OUT]

    OUT  output folder (default: src/test/resources/fixtures-hf); the fixtures go to OUT/granitemoehybrid,
         OUT/granitemoehybrid-dense and OUT/bamba.

Requirements: Python >= 3.10, torch, transformers 5.17, safetensors. Runs on CPU in seconds; nothing is downloaded.
The Mamba layers run transformers' torch fallbacks (`causal_conv1d_fn`, `mamba2_chunk_scan`): no kernels are fetched.

Output
------
config.json, generation_config.json, model.safetensors: as `save_pretrained` writes them.
reference.safetensors:
    input_ids                           int64   [batch, pos]
    blocks.{i}.hook_resid_pre/post      float32 [batch, pos, d_model]  decoder layer i's input and output
    blocks.{i}.mamba.hook_x             float32 [batch, pos, heads, head_dim]  x after the convolution and SiLU
    blocks.{i}.mamba.hook_b/hook_c      float32 [batch, pos, groups, state]  B and C, likewise
    blocks.{i}.mamba.hook_dt            float32 [batch, pos, heads]  softplus(dt + dt_bias) within the limits, as
                                                mamba2_chunk_scan computes it from its arguments
    blocks.{i}.mamba.hook_ssm           float32 [batch, pos, heads, head_dim]  mamba2_chunk_scan's output
    blocks.{i}.mamba.hook_gate          float32 [batch, pos, heads, head_dim]  the gate the norm takes
    blocks.{i}.mamba.hook_z             float32 [batch, pos, heads, head_dim]  out_proj's input
    blocks.{i}.attn.hook_q/k/v          float32 [batch, pos, (kv_)heads, d_head]  in attention layers
    blocks.{i}.attn.hook_pattern        float32 [batch, heads, query, key]
    ln_final.hook_normalized, logits
    bfloat16.logits                     float32 [batch, pos, vocab]  the logits of the model loaded in bfloat16
README.md: how it was made, with the versions.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import hf_fixtures  # noqa: E402  (keeps transformers offline)

BATCH = 2
SEQ = 11
COMMON = dict(vocab_size=96, hidden_size=32, num_attention_heads=4, num_key_value_heads=2,
              max_position_embeddings=64, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=0,
              embedding_multiplier=2.0, attention_multiplier=0.3, residual_multiplier=0.5, logits_scaling=3.0,
              mamba_n_heads=8, mamba_d_state=8, mamba_d_conv=4, mamba_expand=2)
BAMBA = dict(vocab_size=96, hidden_size=32, intermediate_size=40, num_hidden_layers=3, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2,
             pad_token_id=0, attn_layer_indices=[1], mamba_n_heads=8, mamba_d_state=8, mamba_d_conv=4,
             mamba_expand=2, mamba_n_groups=4, mamba_chunk_size=3, mamba_proj_bias=False, attention_bias=True,
             mlp_bias=True, tie_word_embeddings=False)
FIXTURES = {
    "granitemoehybrid": ("GraniteMoeHybridConfig", "GraniteMoeHybridForCausalLM", 7101, dict(
        COMMON, intermediate_size=24, shared_intermediate_size=40, num_hidden_layers=4,
        layer_types=["mamba", "attention", "mamba", "mamba"], position_embedding_type="nope", num_local_experts=4,
        num_experts_per_tok=2, mamba_n_groups=2, mamba_chunk_size=4, mamba_conv_bias=True, mamba_proj_bias=True,
        attention_bias=True, time_step_limit=[0.0, 0.9], tie_word_embeddings=True)),
    "granitemoehybrid-dense": ("GraniteMoeHybridConfig", "GraniteMoeHybridForCausalLM", 7102, dict(
        COMMON, intermediate_size=24, shared_intermediate_size=48, num_hidden_layers=3,
        layer_types=["attention", "mamba", "attention"], position_embedding_type="rope", num_local_experts=0,
        num_experts_per_tok=0, mamba_n_groups=1, mamba_conv_bias=False, tie_word_embeddings=False)),
    "bamba": ("BambaConfig", "BambaForCausalLM", 7103, BAMBA),
}


def value(name, p, noise):
    """The usual redraw, but A_log around log 0.05 (states decaying slowly enough to cross chunks)."""
    return -3.0 + 1.5 * noise if name.endswith("A_log") else hf_fixtures.near_one_or_scaled(name, p, noise)


def make(root, name, config_class, model_class, seed, settings):
    import importlib

    import torch
    import torch.nn.functional as F
    import transformers

    family = model_class[:-len("ForCausalLM")].lower()
    modeling = importlib.import_module("transformers.models.%s.modeling_%s" % (family, family))
    config = getattr(transformers, config_class)(attn_implementation="eager", **settings)
    model = getattr(transformers, model_class)(config).to(torch.float32).eval()
    gen = torch.Generator().manual_seed(seed)
    hf_fixtures.redraw(model, gen, value)
    ids = torch.randint(0, settings["vocab_size"], (BATCH, SEQ), generator=gen)

    rec = hf_fixtures.Recorder()
    scans = []  # (prefix) of each Mamba layer, in the order their scans run
    attention = []
    for i, layer in enumerate(model.model.layers):
        b = "blocks.%d." % i
        rec.layer(layer, b)
        if getattr(layer, "mamba", None) is not None:
            m = layer.mamba
            scans.append(b + "mamba.")
            heads = lambda t, m=m: t.unflatten(-1, (m.num_heads, m.head_dim))
            rec.handles.append(m.norm.register_forward_pre_hook(
                lambda mod, args, b=b, heads=heads: rec.keep(b + "mamba.hook_gate", heads(args[1]))))
            rec.input(m.out_proj, b + "mamba.hook_z", heads)
        else:
            attention.append(i)
            a = layer.self_attn
            split = lambda o, d=a.head_dim: o.unflatten(-1, (-1, d))
            rec.output(a.q_proj, b + "attn.hook_q", split)
            rec.output(a.k_proj, b + "attn.hook_k", split)
            rec.output(a.v_proj, b + "attn.hook_v", split)
    final_norm = model.model.final_layernorm if hasattr(model.model, "final_layernorm") else model.model.norm
    rec.output(final_norm, "ln_final.hook_normalized")

    scan = modeling.mamba2_chunk_scan
    calls = iter(scans)

    def recorded_scan(hidden_states, dt, A, B, C, chunk_size, D=None, dt_bias=None, dt_limit=(0.0, float("inf")),
                      **kwargs):
        prefix = next(calls)
        out = scan(hidden_states, dt, A, B, C, chunk_size, D=D, dt_bias=dt_bias, dt_limit=dt_limit, **kwargs)
        steps = torch.clamp(F.softplus(dt + dt_bias.to(dt.dtype)), min=dt_limit[0], max=dt_limit[1])
        for key, t in (("hook_x", hidden_states), ("hook_b", B), ("hook_c", C), ("hook_dt", steps),
                       ("hook_ssm", out)):
            rec.keep(prefix + key, t)
        return out

    modeling.mamba2_chunk_scan = recorded_scan
    try:
        rec.run(model, ids, attention)
    finally:
        modeling.mamba2_chunk_scan = scan
    assert next(calls, None) is None, "a Mamba layer's scan did not run through mamba2_chunk_scan"
    hf_fixtures.save(os.path.join(root, name), "make-hf-mamba2-fixtures.py", model, ids, rec.tensors,
                     "a tiny `%s` (%s), float32, CPU, eager attention, every parameter "
                     "redrawn from a generator seeded with %d (`A_log` as -3 + 1.5 noise); `reference.safetensors` "
                     "holds one forward pass of %d x %d seeded ids and the logits of the same pass with the weights "
                     "in bfloat16 (the script's docstring lists each tensor)."
                     % (model_class, ", ".join("%s %s" % kv for kv in settings.items()), seed, BATCH, SEQ),
                     getattr(transformers, model_class))


def main(argv):
    root = argv[1] if len(argv) > 1 else "src/test/resources/fixtures-hf"
    for name, (config_class, model_class, seed, settings) in FIXTURES.items():
        make(root, name, config_class, model_class, seed, settings)


if __name__ == "__main__":
    main(sys.argv)
