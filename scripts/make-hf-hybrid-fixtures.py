#!/usr/bin/env python3
"""Make the Hugging Face reference fixtures of hybrid models: Qwen3.5's text models, dense and mixture of experts,
Qwen3-Next, LFM2 and LFM2-MoE.

They (`transformers/models/qwen3_5`, `qwen3_5_moe`, `qwen3_next`) mix gated DeltaNet layers (linear attention: a
causal convolution, then the gated delta rule's recurrence) with gated softmax-attention layers, which
`make-hf-fixtures.py`'s uniform attention hooks cannot describe. This script builds a tiny `Qwen3_5ForCausalLM`,
`Qwen3_5MoeForCausalLM` and `Qwen3NextForCausalLM` (float32, CPU, eval mode, eager attention), redraws every parameter
from a seeded generator, runs one forward pass on seeded ids long enough for more than one of the delta rule's
64-position chunks, and records its activations as transformers computes them. LFM2 (`transformers/models/lfm2`)
mixes short-convolution layers with softmax attention: a tiny `Lfm2ForCausalLM` made the same way, and a tiny
`Lfm2MoeForCausalLM` (`lfm2_moe`), the same blocks with a mixture of experts.

Usage
-----
    python3 scripts/make-hf-hybrid-fixtures.py [OUT]

    OUT  output folder (default: src/test/resources/fixtures-hf); the fixtures go to OUT/qwen3-5, OUT/qwen3-5-moe,
         OUT/qwen3-next, OUT/lfm2 and OUT/lfm2-moe.

Requirements: Python >= 3.10, torch, transformers 5.17, safetensors. Runs on CPU in seconds; nothing is downloaded.

Output in each folder
---------------------
config.json, generation_config.json, model.safetensors: as `save_pretrained` writes them.
reference.safetensors:
    input_ids                          int64   [batch, pos]
    blocks.{i}.hook_resid_pre/post     float32 [batch, pos, d_model]  the input and output of decoder layer i
    blocks.{i}.hook_attn_out           float32 [batch, pos, d_model]  the token mixer's output (either kind)
    blocks.{i}.hook_mlp_out            float32 [batch, pos, d_model]
  full-attention layers:
    blocks.{i}.attn.hook_q             float32 [batch, pos, heads, d_head]      q_proj's query half, before q_norm
    blocks.{i}.attn.hook_k/hook_v      float32 [batch, pos, kv_heads, d_head]   before k_norm and rotary
    blocks.{i}.attn.hook_gate          float32 [batch, pos, heads, d_head]      sigmoid of q_proj's gate half
    blocks.{i}.attn.hook_pattern       float32 [batch, heads, query, key]
    blocks.{i}.attn.hook_z             float32 [batch, pos, heads, d_head]      o_proj's input (gated)
  linear-attention layers (the delta rule's arguments and result, as transformers passes them):
    blocks.{i}.linear_attn.hook_q/k    float32 [batch, pos, key_heads, key_dim]  after the convolution and SiLU
    blocks.{i}.linear_attn.hook_v      float32 [batch, pos, value_heads, value_dim]
    blocks.{i}.linear_attn.hook_beta   float32 [batch, pos, value_heads]         sigmoid of in_proj_b
    blocks.{i}.linear_attn.hook_decay  float32 [batch, pos, value_heads]         g, the log of each step's decay
    blocks.{i}.linear_attn.hook_core   float32 [batch, pos, value_heads, value_dim]  the delta rule's output
    blocks.{i}.linear_attn.hook_gate   float32 [batch, pos, value_heads, value_dim]  the gated norm's gate
    blocks.{i}.linear_attn.hook_z      float32 [batch, pos, value_heads, value_dim]  out_proj's input
  LFM2's convolution layers:
    blocks.{i}.conv.hook_b/c/x         float32 [batch, pos, d_model]  in_proj's three gates
    blocks.{i}.conv.hook_conv          float32 [batch, pos, d_model]  the causal convolution of B * x
    blocks.{i}.conv.hook_z             float32 [batch, pos, d_model]  out_proj's input, C times the convolution
  LFM2's attention layers: attn.hook_q/k/v as above (no gate), attn.hook_q_normed/k_normed (after q_layernorm and
    k_layernorm), attn.hook_pattern, attn.hook_z
  LFM2-MoE's sparse layers:
    blocks.{i}.mlp.hook_router_logits  float32 [batch, pos, experts]  the router's logits
    blocks.{i}.mlp.hook_expert_weights float32 [batch, pos, top_k]    the chosen experts' weights, best first
    ln_final.hook_normalized, logits
    bfloat16.logits                    float32 [batch, pos, vocab]  the logits of the saved model loaded in bfloat16
README.md: how it was made, with the versions.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import hf_fixtures  # noqa: E402  (keeps transformers offline)

SEED = 3505
BATCH = 2
SEQ = 75  # more than one 64-position chunk, and not a multiple of 64

CONFIG = dict(
    vocab_size=96, hidden_size=32, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
    hidden_act="silu", max_position_embeddings=128, rms_norm_eps=1e-6, tie_word_embeddings=False,
    attention_bias=False, linear_conv_kernel_dim=4, linear_key_head_dim=8, linear_value_head_dim=8,
    linear_num_key_heads=2, linear_num_value_heads=4, bos_token_id=1, eos_token_id=2, pad_token_id=0,
)  # layer_types left out: the config classes fill in three linear layers, then a full one


def redraw(model, gen):
    """Every parameter from the seeded generator, at scales that keep every activation of order one."""
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(tuple(p.shape), generator=gen)
            if name.endswith("A_log"):  # decays exp(-A * softplus(a + dt_bias)) spread over (0, 1)
                p.copy_(torch.log(torch.rand(tuple(p.shape), generator=gen) * 1.5 + 0.1))
            elif name.endswith("dt_bias"):
                p.copy_(0.5 * noise)
            elif name.endswith("linear_attn.norm.weight"):  # the gated norm multiplies by its weight itself
                p.copy_(1.0 + 0.2 * noise)
            elif "norm" in name:  # Qwen3.5's RMSNorms multiply by (1 + weight)
                p.copy_(0.2 * noise)
            elif name.endswith("conv1d.weight"):
                p.copy_(0.5 * noise)
            else:
                p.copy_(noise / p.shape[-1] ** 0.5)
        c = model.config
        for layer in model.model.layers:
            if hasattr(layer, "linear_attn"):
                # each query near its own key, as trained models' are: random queries and keys read nearly nothing of
                # the state, which makes a model whose bfloat16 pass drifts far from its float32 one
                a = layer.linear_attn
                keys = c.linear_num_key_heads * c.linear_key_head_dim
                fused = getattr(a, "in_proj_qkv", None)  # Qwen3-Next groups its rows by key head instead
                rows = [(fused.weight, slice(0, keys), slice(keys, 2 * keys))] if fused is not None else [
                    (a.in_proj_qkvz.weight.view(c.linear_num_key_heads, -1, c.hidden_size),
                     (slice(None), slice(0, c.linear_key_head_dim)),
                     (slice(None), slice(c.linear_key_head_dim, 2 * c.linear_key_head_dim)))]
                rows.append((a.conv1d.weight, slice(0, keys), slice(keys, 2 * keys)))
                for w, queries, keys_ in rows:
                    noise = torch.randn(tuple(w[queries].shape), generator=gen)
                    w[queries] = w[keys_] + 0.15 * noise * w[queries].std()


ROPE = {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25}
MROPE = dict(ROPE, mrope_section=[1, 1, 0], mrope_interleaved=True)  # Qwen3.5's sections, which text does not see
EXPERTS = dict(moe_intermediate_size=16, shared_expert_intermediate_size=24, num_experts=4, num_experts_per_tok=2)

# folder, model module, config class, causal LM class, the settings besides CONFIG
FAMILIES = [
    ("qwen3-5", "qwen3_5", "Qwen3_5TextConfig", "Qwen3_5ForCausalLM", dict(intermediate_size=64,
                                                                           rope_parameters=MROPE)),
    ("qwen3-5-moe", "qwen3_5_moe", "Qwen3_5MoeTextConfig", "Qwen3_5MoeForCausalLM",
     dict(EXPERTS, rope_parameters=MROPE)),
    ("qwen3-next", "qwen3_next", "Qwen3NextConfig", "Qwen3NextForCausalLM",  # layer 1's MLP dense
     dict(EXPERTS, intermediate_size=64, mlp_only_layers=[1], rope_parameters=ROPE, linear_value_head_dim=12)),
]


# LFM2: short-convolution layers between two softmax-attention ones; its MLP width adjusted from 50 to 48 (two thirds,
# rounded up to a multiple of 16); biases on the convolutions
LFM2 = dict(
    vocab_size=96, hidden_size=32, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
    intermediate_size=50, block_multiple_of=16, max_position_embeddings=128, norm_eps=1e-5, conv_bias=True,
    conv_L_cache=3, layer_types=["conv", "full_attention", "conv", "full_attention"], tie_word_embeddings=True,
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, bos_token_id=1, eos_token_id=2, pad_token_id=0,
)


# LFM2-MoE: LFM2's blocks without convolution biases, a dense first layer (MLP 48), then 8 experts of 16, top 4 as the
# published model's (where a token's four outputs summed at once and one by one round apart in bfloat16), picked with
# each layer's expert bias, their weights normalised and scaled by 1.5
LFM2_MOE = dict(
    vocab_size=96, hidden_size=32, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
    intermediate_size=48, moe_intermediate_size=16, num_dense_layers=1, num_experts=8, num_experts_per_tok=4,
    use_expert_bias=True, routed_scaling_factor=1.5, norm_topk_prob=True, max_position_embeddings=128,
    norm_eps=1e-5, conv_bias=False, conv_L_cache=3, layer_types=["conv", "full_attention", "conv", "full_attention"],
    tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, bos_token_id=1,
    eos_token_id=2, pad_token_id=0,
)


def main(argv):
    root = argv[1] if len(argv) > 1 else "src/test/resources/fixtures-hf"
    for family in FAMILIES:
        make(root, *family)
    make_lfm2(root, "lfm2", LFM2, "lfm2", "Lfm2Config", "Lfm2ForCausalLM",
              "d_model 32, 4 heads of 8 with 2 key/value heads, convolution kernel 3 with biases, MLP 48 wide from"
              " intermediate_size 50")
    make_lfm2(root, "lfm2-moe", LFM2_MOE, "lfm2_moe", "Lfm2MoeConfig", "Lfm2MoeForCausalLM",
              "d_model 32, 4 heads of 8 with 2 key/value heads, convolution kernel 3 without biases, layer 0's MLP"
              " 48 wide, then 8 experts of 16, top 4, expert biases drawn too, routed_scaling_factor 1.5")


def make_lfm2(root, folder, settings, module, config_class, model_class, about):
    """LFM2's (or LFM2-MoE's) fixture: its convolution layers' gates, convolution and product, its attention layers'
    hooks, and a mixture's router logits and expert weights."""
    import importlib

    import torch
    import transformers

    m = importlib.import_module("transformers.models.%s.modeling_%s" % (module, module))
    gen = torch.Generator().manual_seed(SEED)
    config = getattr(transformers, config_class)(attn_implementation="eager", **settings)
    causal_lm = getattr(transformers, model_class)
    model = causal_lm(config).to(torch.float32).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(tuple(p.shape), generator=gen)
            p.copy_(1.0 + 0.2 * noise if "norm" in name else noise / p.shape[-1] ** 0.5)
        for name, b in model.named_buffers():
            if name.endswith("expert_bias"):  # zeros when made: drawn, so that the bias changes some choices
                b.copy_(0.3 * torch.randn(tuple(b.shape), generator=gen))
    ids = torch.randint(0, settings["vocab_size"], (BATCH, SEQ), generator=gen)
    rec = hf_fixtures.Recorder()

    conv_layers = [i for i, t in enumerate(config.layer_types) if t == "conv"]
    conv_layer = iter(conv_layers)  # the convolution is called once per convolution layer, in order
    conv_fn = m.causal_conv1d_fn

    def recorded_conv(hidden_states, *args, **kwargs):
        out = conv_fn(hidden_states, *args, **kwargs)
        rec.keep("blocks.%d.conv.hook_conv" % next(conv_layer), out.transpose(1, 2))
        return out

    m.causal_conv1d_fn = recorded_conv
    heads, d_head = config.num_attention_heads, config.hidden_size // config.num_attention_heads
    d = config.hidden_size
    for i, layer in enumerate(model.model.layers):
        b = "blocks.%d." % i
        rec.layer(layer, b)
        rec.output(layer.feed_forward, b + "hook_mlp_out")
        if hasattr(layer.feed_forward, "gate"):  # a mixture: the router's logits and the chosen experts' weights

            def routing(o, b=b):
                rec.keep(b + "mlp.hook_router_logits", o[0].reshape(BATCH, SEQ, -1))
                rec.keep(b + "mlp.hook_expert_weights", o[1].reshape(BATCH, SEQ, -1))

            rec.call(layer.feed_forward.gate, routing)
        if i in conv_layers:
            c = layer.conv

            def gates(o, b=b):
                rec.keep(b + "conv.hook_b", o[..., :d])
                rec.keep(b + "conv.hook_c", o[..., d:2 * d])
                rec.keep(b + "conv.hook_x", o[..., 2 * d:])

            rec.output(c, b + "hook_attn_out")
            rec.call(c.in_proj, gates)
            rec.input(c.out_proj, b + "conv.hook_z")
        else:
            a = layer.self_attn
            rec.output(a, b + "hook_attn_out")
            for proj, hook in ((a.q_proj, "attn.hook_q"), (a.k_proj, "attn.hook_k"), (a.v_proj, "attn.hook_v")):
                rec.output(proj, b + hook, lambda o: o.unflatten(-1, (-1, d_head)))
            rec.output(a.q_layernorm, b + "attn.hook_q_normed")
            rec.output(a.k_layernorm, b + "attn.hook_k_normed")
            rec.input(a.out_proj, b + "attn.hook_z", lambda t: t.unflatten(-1, (heads, d_head)))
    rec.output(model.model.embedding_norm, "ln_final.hook_normalized")
    try:
        rec.run(model, ids, [i for i in range(config.num_hidden_layers) if i not in conv_layers])
    finally:
        m.causal_conv1d_fn = conv_fn
    if next(conv_layer, None) is not None:
        raise RuntimeError("the convolution ran fewer times than there are convolution layers")
    save(root, folder, model, causal_lm, ids, rec,
         "`%s` (layer types %s; %s), float32, CPU, eager attention, every parameter redrawn from a generator seeded"
         " with %d" % (model_class, ", ".join(config.layer_types), about, SEED))


def make(root, folder, module, config_class, model_class, settings):
    import importlib

    import torch
    import transformers

    m = importlib.import_module("transformers.models.%s.modeling_%s" % (module, module))
    causal_lm = getattr(transformers, model_class)
    gen = torch.Generator().manual_seed(SEED)
    config = getattr(transformers, config_class)(attn_implementation="eager", **dict(CONFIG, **settings))
    model = causal_lm(config).to(torch.float32).eval()
    redraw(model, gen)
    ids = torch.randint(0, CONFIG["vocab_size"], (BATCH, SEQ), generator=gen)
    rec = hf_fixtures.Recorder()

    layers = model.model.layers
    linear = [i for i, t in enumerate(config.layer_types) if t == "linear_attention"]
    delta_layer = iter(linear)  # the delta rule is called once per linear layer, in order
    chunk = m.torch_chunk_gated_delta_rule

    def recorded_delta_rule(query, key, value, g, beta, **kwargs):
        i = next(delta_layer)
        ratio = config.linear_num_value_heads // config.linear_num_key_heads
        b = "blocks.%d.linear_attn." % i
        rec.keep(b + "hook_q", query[:, :, ::ratio])  # each key head repeated per value head by then: one copy
        rec.keep(b + "hook_k", key[:, :, ::ratio])
        rec.keep(b + "hook_v", value)
        rec.keep(b + "hook_beta", beta)
        rec.keep(b + "hook_decay", g)
        result = chunk(query, key, value, g=g, beta=beta, **kwargs)
        rec.keep(b + "hook_core", result[0])
        return result

    m.torch_chunk_gated_delta_rule = recorded_delta_rule
    heads, d_head = config.num_attention_heads, config.head_dim
    for i, layer in enumerate(layers):
        b = "blocks.%d." % i
        rec.layer(layer, b)
        rec.output(layer.mlp, b + "hook_mlp_out")
        if i in linear:
            a = layer.linear_attn
            vh, vd = config.linear_num_value_heads, config.linear_value_head_dim
            rec.output(a, b + "hook_attn_out")
            rec.handles.append(a.norm.register_forward_pre_hook(  # the gated norm's gate, as it reads it
                lambda mod, args, b=b: rec.keep(b + "linear_attn.hook_gate", args[1].reshape(BATCH, SEQ, vh, vd))))
            rec.input(a.out_proj, b + "linear_attn.hook_z", lambda t: t.unflatten(-1, (vh, vd)))
        else:
            a = layer.self_attn

            def q_and_gate(o, b=b):
                q, gate = o.unflatten(-1, (heads, 2 * d_head)).chunk(2, dim=-1)
                rec.keep(b + "attn.hook_q", q)
                rec.keep(b + "attn.hook_gate", torch.sigmoid(gate))

            rec.output(a, b + "hook_attn_out")
            rec.call(a.q_proj, q_and_gate)
            rec.output(a.k_proj, b + "attn.hook_k", lambda o: o.unflatten(-1, (-1, d_head)))
            rec.output(a.v_proj, b + "attn.hook_v", lambda o: o.unflatten(-1, (-1, d_head)))
            rec.input(a.o_proj, b + "attn.hook_z", lambda t: t.unflatten(-1, (heads, d_head)))
    rec.output(model.model.norm, "ln_final.hook_normalized")
    try:
        rec.run(model, ids, [i for i in range(config.num_hidden_layers) if i not in linear])
    finally:
        m.torch_chunk_gated_delta_rule = chunk
    last = rec.tensors["blocks.%d.hook_resid_post" % (config.num_hidden_layers - 1)]
    with torch.no_grad():
        logits = model.lm_head(model.model.norm(last))
    if not torch.allclose(logits, rec.tensors["logits"], atol=1e-5):
        raise RuntimeError("the logits are not the last residual stream's through the final norm and head")

    save(root, folder, model, causal_lm, ids, rec,
         "`%s` (layer types %s; d_model 32, 4 heads of 16 with 2 key/value heads, linear attention with %d key heads"
         " of %d and %d value heads of %d, convolution kernel 4; %s), float32, CPU, eager attention, every parameter"
         " redrawn from a generator seeded with %d (the query rows of the linear attention's projection and"
         " convolution are its key rows plus 15%% noise, so that queries find their keys as in a trained model)"
         % (model_class, ", ".join(config.layer_types), config.linear_num_key_heads, config.linear_key_head_dim,
            config.linear_num_value_heads, config.linear_value_head_dim,
            ", ".join("%s %s" % kv for kv in settings.items()), SEED))


def save(root, folder, model, causal_lm, ids, rec, made):
    """The fixture folder, with the saved model's bfloat16 logits and a README saying how it was made."""
    hf_fixtures.save(os.path.join(root, folder), "make-hf-hybrid-fixtures.py", model, ids, rec.tensors,
                     "a tiny %s; `reference.safetensors` holds one forward pass of %d x %d seeded ids, and the logits "
                     "of the same pass with the weights in bfloat16 (the script's docstring lists each tensor)."
                     % (made, BATCH, SEQ), causal_lm)


if __name__ == "__main__":
    main(sys.argv)
