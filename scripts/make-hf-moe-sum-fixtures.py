#!/usr/bin/env python3
"""Make the fixtures that pin how a mixture of experts sums a token's outputs in bfloat16.

transformers 5 runs its experts through `grouped_mm` by default: each expert's output is multiplied by its routing
weight, and a token's top-k weighted outputs are summed in one reduction (accumulated in float32), then rounded to the
model's dtype once; its `eager` experts add them one by one into a bfloat16 buffer. From top-k 3 on the two round
apart. This script builds a tiny Mixtral (float32 routing weights, which promote the weighted outputs) and a tiny
Qwen3-MoE (routing weights in the model's dtype), each with 8 experts and top 4, redraws every parameter from a seeded
generator, saves it, and records the bfloat16 logits of both implementations on seeded ids.

Usage
-----
    python3 scripts/make-hf-moe-sum-fixtures.py [OUT]

    OUT  output folder (default: src/test/resources/fixtures-moe-sum); the fixtures go to OUT/mixtral and
         OUT/qwen3-moe.

Requirements: Python >= 3.10, torch, transformers 5.17, safetensors. Runs on CPU in seconds; nothing is downloaded.

Output in each folder: config.json, generation_config.json, model.safetensors as `save_pretrained` writes them, and
reference.safetensors: input_ids int64 [2, 40]; logits float32 (the float32 pass); bfloat16.logits (the saved model
loaded in bfloat16, default experts) and bfloat16.eager.logits (the same with `experts_implementation="eager"`),
float32 [2, 40, 96].
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import shutil
import sys

SEED = 1
COMMON = dict(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=128, attn_implementation="eager")
FAMILIES = [
    ("mixtral", "MixtralConfig", "MixtralForCausalLM", dict(num_local_experts=8, num_experts_per_tok=4)),
    ("qwen3-moe", "Qwen3MoeConfig", "Qwen3MoeForCausalLM",
     dict(num_experts=8, num_experts_per_tok=4, moe_intermediate_size=16, norm_topk_prob=True, head_dim=8)),
]


def main(argv):
    import torch
    import transformers
    from safetensors.torch import save_file

    root = argv[1] if len(argv) > 1 else "src/test/resources/fixtures-moe-sum"
    for folder, config_class, model_class, settings in FAMILIES:
        causal_lm = getattr(transformers, model_class)
        model = causal_lm(getattr(transformers, config_class)(**dict(COMMON, **settings))).eval()
        gen = torch.Generator().manual_seed(SEED)
        with torch.no_grad():
            for name, p in model.named_parameters():
                noise = torch.randn(tuple(p.shape), generator=gen)
                p.copy_(1.0 + 0.2 * noise if "norm" in name else noise / p.shape[-1] ** 0.5)
        out = os.path.join(root, folder)
        if os.path.isdir(out):
            shutil.rmtree(out)
        model.save_pretrained(out)
        ids = torch.randint(0, COMMON["vocab_size"], (2, 40), generator=gen)
        rec = {"input_ids": ids}
        with torch.no_grad():
            rec["logits"] = model(input_ids=ids).logits.float()
            for key, impl in (("bfloat16.logits", None), ("bfloat16.eager.logits", "eager")):
                kw = {} if impl is None else {"experts_implementation": impl}
                bf16 = causal_lm.from_pretrained(out, dtype=torch.bfloat16, attn_implementation="eager", **kw).eval()
                rec[key] = bf16(input_ids=ids).logits.float()
        save_file(rec, os.path.join(out, "reference.safetensors"))
        print("wrote %s (transformers %s, torch %s)" % (out, transformers.__version__, torch.__version__))


if __name__ == "__main__":
    main(sys.argv)
