#!/usr/bin/env python3
"""Make the Hugging Face reference fixtures of Gemma 4's text model (`transformers/models/gemma4`).

Gemma 4's layers do not share one head shape: its full-attention layers have wider heads and fewer key/value heads
than its sliding ones, and, with `attention_k_eq_v`, no value projection (their values are their keys' projection),
so `make-hf-fixtures.py`'s uniform hooks cannot describe it; and with per-layer embeddings each block adds a third
term to the residual stream. This script builds three tiny `Gemma4ForCausalLM` (float32, CPU, eval mode, eager
attention): `gemma4`, with per-layer embeddings, full layers with a value projection, and its last two layers
attending to the keys and values of the last earlier layer of their type (`num_kv_shared_layers`), their MLPs twice
as wide (`use_double_wide_mlp`), `gemma4-k-eq-v`, without per-layer embeddings and with full layers whose values are
their keys, and `gemma4-moe`, like it with experts beside each block's MLP (`enable_moe_block`). It redraws every
parameter and each layer's `layer_scalar` from a seeded generator, runs one forward pass on seeded ids longer than
the sliding window, and records its activations as transformers computes them.

Usage
-----
    python3 scripts/make-hf-gemma4-fixtures.py [OUT]

    OUT  output folder (default: src/test/resources/fixtures-hf); the fixtures go to OUT/gemma4,
         OUT/gemma4-k-eq-v and OUT/gemma4-moe.

Requirements: Python >= 3.10, torch, transformers 5.17, safetensors. Runs on CPU in seconds; nothing is downloaded.

Output
------
config.json, generation_config.json, model.safetensors: as `save_pretrained` writes them (the full layers' heads as
    `per_layer_config` overrides).
reference.safetensors:
    input_ids                          int64   [batch, pos]
    blocks.{i}.hook_resid_pre/post     float32 [batch, pos, d_model]  the input and output of decoder layer i (the
                                                                      output times the layer's layer_scalar)
    blocks.{i}.hook_attn_out           float32 [batch, pos, d_model]  post_attention_layernorm's output
    blocks.{i}.hook_mlp_out            float32 [batch, pos, d_model]  post_feedforward_layernorm's output
    blocks.{i}.attn.hook_q             float32 [batch, pos, heads, d_head]     q_proj's output, before q_norm
    blocks.{i}.attn.hook_k/hook_v      float32 [batch, pos, kv_heads, d_head]  k_proj's and v_proj's (k_proj's for a
                                                                              layer without v_proj), before the norms;
                                                                              none in a layer that shares them
    blocks.{i}.attn.hook_v_normed      float32 [batch, pos, kv_heads, d_head]  v_norm's output (likewise)
    blocks.{i}.attn.hook_pattern       float32 [batch, heads, query, key]
    blocks.{i}.attn.hook_z             float32 [batch, pos, heads, d_head]     o_proj's input
    blocks.{i}.hook_per_layer_input    float32 [batch, pos, width]     the layer's per-layer input (gemma4)
    blocks.{i}.hook_per_layer_out      float32 [batch, pos, d_model]   post_per_layer_input_norm's output (gemma4)
    blocks.{i}.mlp.hook_router_logits  float32 [batch, pos, experts]  router.proj's output (gemma4-moe)
    blocks.{i}.mlp.hook_expert_weights float32 [batch, pos, top_k]    the router's weights, times per_expert_scale
    blocks.{i}.mlp.hook_expert_indices float32 [batch, pos, top_k]    the router's experts, best first
    blocks.{i}.mlp.shared_expert.hook_pre/hook_pre_linear/hook_post
                                       float32 [batch, pos, d_mlp]    the block MLP's gate_proj and up_proj outputs
                                                                      and down_proj's input (gemma4-moe)
    ln_final.hook_normalized, logits
    bfloat16.logits                    float32 [batch, pos, vocab]  the logits of the saved model loaded in bfloat16
README.md: how it was made, with the versions.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import hf_fixtures  # noqa: E402  (keeps transformers offline)

SEED = 4404
BATCH = 2
SEQ = 13

# five layers, sliding ones with 4 heads of 8 and 2 key/value heads, full ones (2 and 4) with 4 heads of 16 (and, where
# their values are their keys, one key/value head); a window of 4; the full layers' proportional rope turns half of
# its frequencies; soft-capped logits; no experts but in gemma4-moe
CONFIG = dict(
    vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=5, num_attention_heads=4,
    num_key_value_heads=2, head_dim=8, global_head_dim=16, num_global_key_value_heads=1, enable_moe_block=False,
    sliding_window=4,
    layer_types=["sliding_attention", "sliding_attention", "full_attention", "sliding_attention", "full_attention"],
    rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 100.0},
                     "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.5,
                                        "rope_theta": 1000.0}},
    final_logit_softcapping=3.0, max_position_embeddings=128, rms_norm_eps=1e-6, tie_word_embeddings=True,
    bos_token_id=2, eos_token_id=1, pad_token_id=0,
)

# folder, the settings besides CONFIG
FIXTURES = [
    ("gemma4", dict(attention_k_eq_v=False, hidden_size_per_layer_input=4, vocab_size_per_layer_input=96,
                    num_kv_shared_layers=2, use_double_wide_mlp=True)),
    ("gemma4-k-eq-v", dict(attention_k_eq_v=True, hidden_size_per_layer_input=0, num_kv_shared_layers=0)),
    ("gemma4-moe", dict(attention_k_eq_v=True, hidden_size_per_layer_input=0, num_kv_shared_layers=0,
                        enable_moe_block=True, num_experts=4, top_k_experts=2, moe_intermediate_size=16)),
]


def main(argv):
    root = argv[1] if len(argv) > 1 else "src/test/resources/fixtures-hf"
    for folder, settings in FIXTURES:
        make(root, folder, dict(CONFIG, **settings))


def value(name, p, noise):
    """Query and key norms near 0.5, which scale scores to the order of a trained model's (Gemma 4 scales none); the
    other norms' weights and the router's scales near 1; the rest scaled by their last dimension."""
    if "q_norm" in name or "k_norm" in name:
        return 0.5 + 0.1 * noise
    return 1.0 + 0.2 * noise if "norm" in name or name.endswith("scale") else noise / p.shape[-1] ** 0.5


def make(root, folder, settings):
    import torch
    import transformers

    config = transformers.Gemma4TextConfig(attn_implementation="eager", **settings)
    model = transformers.Gemma4ForCausalLM(config).to(torch.float32).eval()
    gen = torch.Generator().manual_seed(SEED)
    hf_fixtures.redraw(model, gen, value)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.layer_scalar.copy_(0.5 + torch.rand(1, generator=gen))
    ids = torch.randint(0, settings["vocab_size"], (BATCH, SEQ), generator=gen)

    rec = hf_fixtures.Recorder()
    tokens = lambda t: t.view(BATCH, SEQ, -1)
    for i, layer in enumerate(model.model.layers):
        b = "blocks.%d." % i
        a = layer.self_attn
        heads = lambda o, d=a.head_dim: o.unflatten(-1, (-1, d))
        rec.layer(layer, b)
        rec.output(layer.post_attention_layernorm, b + "hook_attn_out")
        rec.output(layer.post_feedforward_layernorm, b + "hook_mlp_out")
        rec.output(a.q_proj, b + "attn.hook_q", heads)
        if not a.is_kv_shared_layer:  # a sharing layer projects queries only
            rec.output(a.k_proj, b + "attn.hook_k", heads)
            rec.output(a.v_proj if a.v_proj is not None else a.k_proj, b + "attn.hook_v", heads)
            rec.output(a.v_norm, b + "attn.hook_v_normed")
        rec.input(a.o_proj, b + "attn.hook_z", heads)
        if config.hidden_size_per_layer_input:
            rec.argument(layer, b + "hook_per_layer_input", 1, "per_layer_input")
            rec.output(layer.post_per_layer_input_norm, b + "hook_per_layer_out")
        if config.enable_moe_block:
            rec.output(layer.router.proj, b + "mlp.hook_router_logits", tokens)
            def routed(o, b=b):  # the router's probabilities, weights and experts
                rec.keep(b + "mlp.hook_expert_weights", tokens(o[1]))
                rec.keep(b + "mlp.hook_expert_indices", tokens(o[2]))

            rec.call(layer.router, routed)
            shared = b + "mlp.shared_expert."
            rec.output(layer.mlp.gate_proj, shared + "hook_pre")
            rec.output(layer.mlp.up_proj, shared + "hook_pre_linear")
            rec.input(layer.mlp.down_proj, shared + "hook_post")
    rec.output(model.model.norm, "ln_final.hook_normalized")
    rec.run(model, ids)
    hf_fixtures.save(os.path.join(root, folder), "make-hf-gemma4-fixtures.py", model, ids, rec.tensors,
                     "a tiny `Gemma4ForCausalLM` (%s), float32, CPU, eager attention, every parameter and layer "
                     "scalar redrawn from a generator seeded with %d; `reference.safetensors` holds one forward pass "
                     "of %d x %d seeded ids and the logits of the same pass with the weights in bfloat16 (the "
                     "script's docstring lists each tensor)."
                     % (", ".join("%s %s" % kv for kv in settings.items() if kv[0] != "rope_parameters")
                        + ", rope_parameters " + str(settings["rope_parameters"]), SEED, BATCH, SEQ),
                     transformers.Gemma4ForCausalLM)


if __name__ == "__main__":
    main(sys.argv)
