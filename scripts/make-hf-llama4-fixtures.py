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
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import hf_fixtures  # noqa: E402  (keeps transformers offline)

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


def value(name, p, noise):
    """Norms near 1, the fused experts ([experts, in, out]) scaled by their input width, the rest by their last."""
    if "experts." in name and "shared" not in name and "norm" not in name:
        return noise / p.shape[-2] ** 0.5
    return hf_fixtures.near_one_or_scaled(name, p, noise)


def make(root, folder, settings):
    import torch
    import transformers

    config = transformers.Llama4TextConfig(attn_implementation="eager", **settings)
    model = transformers.Llama4ForCausalLM(config).to(torch.float32).eval()
    gen = torch.Generator().manual_seed(SEED)
    hf_fixtures.redraw(model, gen, value)
    ids = torch.randint(0, settings["vocab_size"], (BATCH, SEQ), generator=gen)

    rec = hf_fixtures.Recorder()
    tokens = lambda t: t.reshape(BATCH, SEQ, -1)
    for i, layer in enumerate(model.model.layers):
        b = "blocks.%d." % i
        a = layer.self_attn
        heads = lambda o, d=a.head_dim: o.unflatten(-1, (-1, d))
        rec.layer(layer, b)
        rec.output(a.o_proj, b + "hook_attn_out")
        rec.input(a.o_proj, b + "attn.hook_z", heads)
        for proj, hook in ((a.q_proj, "hook_q"), (a.k_proj, "hook_k"), (a.v_proj, "hook_v")):
            rec.output(proj, b + "attn." + hook, heads)
        if hasattr(a, "qk_norm"):  # called on the rotated queries, then on the rotated keys
            calls = []
            rec.call(a.qk_norm, lambda o, b=b, calls=calls: calls.append(1) or rec.keep(
                b + ("attn.hook_q_normed" if len(calls) % 2 == 1 else "attn.hook_k_normed"), o))
        ff = layer.feed_forward
        rec.output(ff, b + "hook_mlp_out", tokens)
        if layer.is_moe_layer:
            def routed(o, b=b, k=config.num_experts_per_tok):
                scores, logits = o
                rec.keep(b + "mlp.hook_router_logits", tokens(logits))
                chosen = torch.topk(logits, k, dim=1).indices
                rec.keep(b + "mlp.hook_expert_indices", tokens(chosen))
                rec.keep(b + "mlp.hook_expert_weights", tokens(scores.gather(1, chosen)))

            rec.call(ff.router, routed)
            mlp, prefix = ff.shared_expert, b + "mlp.shared_expert."
        else:
            mlp, prefix = ff, b + "mlp."
        rec.output(mlp.gate_proj, prefix + "hook_pre", tokens)
        rec.output(mlp.up_proj, prefix + "hook_pre_linear", tokens)
        rec.input(mlp.down_proj, prefix + "hook_post", tokens)
    rec.output(model.model.norm, "ln_final.hook_normalized")
    rec.run(model, ids)
    hf_fixtures.save(os.path.join(root, folder), "make-hf-llama4-fixtures.py", model, ids, rec.tensors,
                     "a tiny `Llama4ForCausalLM` (%s), float32, CPU, eager attention, every parameter redrawn from a "
                     "generator seeded with %d; `reference.safetensors` holds one forward pass of %d x %d seeded ids "
                     "and the logits of the same pass with the weights in bfloat16 (the script's docstring lists each "
                     "tensor)." % (", ".join("%s %s" % kv for kv in settings.items()), SEED, BATCH, SEQ),
                     transformers.Llama4ForCausalLM)


if __name__ == "__main__":
    main(sys.argv)
