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
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import hf_fixtures  # noqa: E402  (keeps transformers offline)

SEED = 4407
BATCH = 2
SEQ = 9
SETTINGS = dict(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=64, use_qk_norm=True, logit_scale=0.25,
                layer_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=True)


def main(argv):
    import torch
    import transformers

    root = argv[1] if len(argv) > 1 else "src/test/resources/fixtures-hf"
    config = transformers.CohereConfig(attn_implementation="eager", **SETTINGS)
    model = transformers.CohereForCausalLM(config).to(torch.float32).eval()
    gen = torch.Generator().manual_seed(SEED)
    hf_fixtures.redraw(model, gen)
    ids = torch.randint(0, SETTINGS["vocab_size"], (BATCH, SEQ), generator=gen)

    rec = hf_fixtures.Recorder()
    for i, layer in enumerate(model.model.layers):
        b = "blocks.%d." % i
        a = layer.self_attn
        heads = lambda o, d=a.head_dim: o.unflatten(-1, (-1, d))
        rec.layer(layer, b)
        rec.output(a.q_proj, b + "attn.hook_q", heads)
        rec.output(a.k_proj, b + "attn.hook_k", heads)
        rec.output(a.q_norm, b + "attn.hook_q_normed")
        rec.output(a.k_norm, b + "attn.hook_k_normed")
    rec.output(model.model.norm, "ln_final.hook_normalized")
    rec.run(model, ids)
    hf_fixtures.save(os.path.join(root, "cohere-qk-norm"), "make-hf-cohere-qk-norm-fixture.py", model, ids,
                     rec.tensors, "a tiny `CohereForCausalLM` (%s), float32, CPU, eager attention, every parameter "
                     "redrawn from a generator seeded with %d; `reference.safetensors` holds one forward pass of %d x "
                     "%d seeded ids and the logits of the same pass with the weights in bfloat16 (the script's "
                     "docstring lists each tensor)." % (", ".join("%s %s" % kv for kv in SETTINGS.items()), SEED,
                                                         BATCH, SEQ), transformers.CohereForCausalLM)


if __name__ == "__main__":
    main(sys.argv)
