#!/usr/bin/env python3
"""Make Hugging Face reference fixtures that record each block's residual stream and outputs.

For families whose attention has no per-head query, key and value projections to hook from the outside (MiniCPM3's
multi-head latent attention), this records what every family has: the input and output of each decoder layer, its
attention and MLP outputs, the final norm's output and the logits. It builds a tiny model of each family (float32, CPU,
eval mode, eager attention), redraws every parameter from a seeded generator, runs one forward pass on seeded ids, and
saves the model with `save_pretrained`.

Usage
-----
    python3 scripts/make-hf-residual-fixtures.py [OUT]

    OUT  output folder (default: src/test/resources/fixtures-hf-residual); the fixtures go to OUT/minicpm3.

Requirements: Python >= 3.10, torch, transformers 5.17, safetensors. Runs on CPU in seconds; nothing is downloaded.

Output in each folder
---------------------
config.json, generation_config.json, model.safetensors: as `save_pretrained` writes them.
reference.safetensors:
    input_ids                          int64   [batch, pos]
    blocks.{i}.hook_resid_pre/post     float32 [batch, pos, d_model]  the input and output of decoder layer i
    blocks.{i}.hook_attn_out           float32 [batch, pos, d_model]  the attention's output as the block adds it
    blocks.{i}.hook_mlp_out            float32 [batch, pos, d_model]  the MLP's output (both times MiniCPM3's
                                                                      residual scale)
    ln_final.hook_normalized           float32 [batch, pos, d_model]
    logits                             float32 [batch, pos, vocab]
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

SEED = 2027
BATCH = 2
SEQ = 24

# folder, config class, causal LM class, settings, what the README says of them
FAMILIES = [
    ("minicpm3", "MiniCPM3Config", "MiniCPM3ForCausalLM",
     dict(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
          num_key_value_heads=4, q_lora_rank=16, kv_lora_rank=12, qk_nope_head_dim=8, qk_rope_head_dim=4,
          v_head_dim=6, scale_emb=12.3, scale_depth=1.4, dim_model_base=10, max_position_embeddings=128,
          rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0,
          rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
     "3 layers, d_model 32, 4 heads, latent attention with query rank 16, key/value rank 12, 8 unrotated and 4 rotated"
     " query/key features and 6 value features per head, scale_emb 12.3 (which bfloat16 rounds), scale_depth 1.4,"
     " dim_model_base 10 (the final norm's output divided by 3.2, which rounds otherwise than the logits times"
     " 0.3125)"),
]


def main(argv):
    import torch
    import transformers
    from safetensors.torch import save_file

    root = argv[1] if len(argv) > 1 else "src/test/resources/fixtures-hf-residual"
    for folder, config_class, model_class, settings, about in FAMILIES:
        causal_lm = getattr(transformers, model_class)
        config = getattr(transformers, config_class)(attn_implementation="eager", **settings)
        model = causal_lm(config).to(torch.float32).eval()
        gen = torch.Generator().manual_seed(SEED)
        with torch.no_grad():
            for name, p in model.named_parameters():
                noise = torch.randn(tuple(p.shape), generator=gen)
                p.copy_(1.0 + 0.2 * noise if "norm" in name else noise / p.shape[-1] ** 0.5)
        ids = torch.randint(0, settings["vocab_size"], (BATCH, SEQ), generator=gen)
        rec = {}

        def keep(key, t):
            rec[key] = t.detach().to(torch.float32).contiguous().clone()

        handles = []
        for i, layer in enumerate(model.model.layers):
            b = "blocks.%d." % i
            handles.append(layer.register_forward_pre_hook(
                lambda mod, args, kw, b=b: keep(b + "hook_resid_pre", args[0] if args else kw["hidden_states"]),
                with_kwargs=True))
            handles.append(layer.register_forward_hook(lambda mod, args, o, b=b: keep(b + "hook_resid_post", o)))
            # what the block adds to the residual stream: MiniCPM3 scales each output by its residual_scale first
            scale = getattr(layer, "residual_scale", 1.0)
            handles.append(layer.self_attn.register_forward_hook(
                lambda mod, args, o, b=b, scale=scale: keep(b + "hook_attn_out", o[0] * scale)))
            handles.append(layer.mlp.register_forward_hook(
                lambda mod, args, o, b=b, scale=scale: keep(b + "hook_mlp_out", o * scale)))
        handles.append(model.model.norm.register_forward_hook(
            lambda mod, args, o: keep("ln_final.hook_normalized", o)))
        with torch.no_grad():
            keep("logits", model(input_ids=ids, use_cache=False).logits)
        for h in handles:
            h.remove()
        out = os.path.join(root, folder)
        if os.path.isdir(out):
            shutil.rmtree(out)
        model.save_pretrained(out)
        bfloat16 = causal_lm.from_pretrained(out, dtype=torch.bfloat16, attn_implementation="eager").eval()
        with torch.no_grad():
            keep("bfloat16.logits", bfloat16(input_ids=ids, use_cache=False).logits)
        save_file(dict(rec, input_ids=ids), os.path.join(out, "reference.safetensors"))
        with open(os.path.join(out, "README.md"), "w") as f:
            f.write("# %s, made by transformers\n\n"
                    "Made by `scripts/make-hf-residual-fixtures.py` on %s with transformers %s, torch %s, Python %s: "
                    "a tiny `%s` (%s), float32, CPU, eager attention, every parameter redrawn from a generator seeded "
                    "with %d; `reference.safetensors` holds one forward pass of %d x %d seeded ids and the logits of "
                    "the same pass with the weights in bfloat16 (the script's docstring lists each tensor).\n"
                    % (folder, datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                       transformers.__version__, torch.__version__, platform.python_version(), model_class, about,
                       SEED, BATCH, SEQ))
        print("wrote %s: %d tensors" % (out, len(rec) + 1))


if __name__ == "__main__":
    main(sys.argv)
