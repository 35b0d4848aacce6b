#!/usr/bin/env python3
"""Make tiny Hugging Face reference fixtures for arrakis-jvm.

For each of the families gpt2, gpt-neo, gpt-neox, llama, gemma, phi3, qwen2,
mistral and stable-lm this script builds a TINY randomly initialised causal LM
with Hugging Face `transformers` (float32, CPU, eval mode, eager attention,
seeded), re-initialises every parameter with seeded non-trivial noise, runs one
forward pass on a seeded batch of token ids and records the activations under
TransformerLens hook names.  It needs no network and nothing else from this
repository.

Usage
-----
    python3 scripts/make-hf-fixtures.py [OUT] [FAMILY ...]

    OUT      output folder (default: fixtures-hf); created if missing.
    FAMILY   optional subset of families to build (default: all nine).

Requirements: Python >= 3.10, torch, transformers (written against 5.17.0),
safetensors.  Runs on CPU in well under a minute; the GPU is not used.
HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE are forced on, so nothing is downloaded.

Output (per family, in OUT/<family>/)
-------------------------------------
config.json, model.safetensors (+ generation_config.json)
    exactly as `model.save_pretrained(dir, safe_serialization=True)` writes
    them (Hugging Face tensor names; tied embeddings stored the HF way).
reference.safetensors  (written with safetensors.torch.save_file)
    input_ids                       int64   [batch, pos]
    blocks.{i}.hook_resid_pre       float32 [batch, pos, d_model]  input of decoder layer i
    blocks.{i}.hook_resid_post      float32 [batch, pos, d_model]  output of decoder layer i
    blocks.{i}.hook_attn_out        float32 [batch, pos, d_model]  attention module output (after the
                                                                   output projection incl. its bias)
    blocks.{i}.hook_mlp_out         float32 [batch, pos, d_model]  MLP module output
    blocks.{i}.attn.hook_q          float32 [batch, pos, n_heads, d_head]     BEFORE rotary
    blocks.{i}.attn.hook_k          float32 [batch, pos, n_kv_heads, d_head]  BEFORE rotary
    blocks.{i}.attn.hook_v          float32 [batch, pos, n_kv_heads, d_head]
    blocks.{i}.attn.hook_z          float32 [batch, pos, n_heads, d_head]     input of the output projection
    blocks.{i}.attn.hook_pattern    float32 [batch, n_heads, query, key]      post-softmax attention
    ln_final.hook_normalized        float32 [batch, pos, d_model]  OUTPUT of the final norm module
                                                                   (i.e. including its weight/bias)
    logits                          float32 [batch, pos, vocab]
manifest.json
    family, versions, classes, config values, seeds, init scheme, hooks stored
    (with shapes), hooks skipped (with reasons), saved weight names/shapes,
    consistency checks and "self_check".
FAILED.txt
    only when the family failed: the exception and traceback.

OUT/README.md describes how the fixtures were made; OUT/summary.json lists the
per-family result.  Exit code 0 when at least one family succeeded.
"""

import os

# Never touch the network: everything here is built from configs.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import datetime
import json
import math
import platform
import shutil
import sys
import time
import traceback

SCRIPT_NAME = "scripts/make-hf-fixtures.py"

# ---------------------------------------------------------------- constants
N_LAYERS = 2
N_HEADS = 4
D_MODEL = 32
VOCAB = 96
MAX_POS = 64
BATCH = 2
SEQ = 11

MATRIX_STD = 0.2  # embeddings and every weight with >= 2 dims
BIAS_STD = 0.1  # every other 1-d parameter that is not a norm weight
NORM_STD = 0.1  # norm weight = 1 + NORM_STD * noise (or NORM_STD * noise for Gemma-style (1 + w) norms)

ATOL_LOGITS = 1e-4
ATOL_CHECK = 1e-4

# Fixed seeds per family, so a subset run gives the same fixtures as a full run.
SEEDS = {
    "gpt2": 101,
    "gpt-neo": 102,
    "gpt-neox": 103,
    "llama": 104,
    "gemma": 105,
    "phi3": 106,
    "qwen2": 107,
    "mistral": 108,
    "stable-lm": 109,
}

# Token ids used for bos/eos/pad in every config (HF defaults are often >= VOCAB).
SPECIAL = dict(bos_token_id=1, eos_token_id=2, pad_token_id=0)

ROPE_THETA = 10000.0


def rope(partial=None):
    p = {"rope_type": "default", "rope_theta": ROPE_THETA}
    if partial is not None:
        p["partial_rotary_factor"] = partial
    return p


# Each family: config class, model class (first importable name wins), config
# kwargs, how to find its modules, how to split q/k/v, and what the
# independent attention re-computation needs to know.
FAMILIES = [
    {
        "family": "gpt2",
        "config_class": "GPT2Config",
        "model_classes": ["GPT2LMHeadModel"],
        "config": dict(
            vocab_size=VOCAB, n_positions=MAX_POS, n_embd=D_MODEL, n_layer=N_LAYERS, n_head=N_HEADS,
            n_inner=4 * D_MODEL, activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
            attn_pdrop=0.0, layer_norm_epsilon=1e-5, scale_attn_weights=True,
            scale_attn_by_inverse_layer_idx=False, reorder_and_upcast_attn=False, tie_word_embeddings=True,
            use_cache=False, **SPECIAL,
        ),
        "base": "transformer", "layers": "h", "final_norm": "ln_f",
        "attn": "attn", "mlp": "mlp", "out_proj": "attn.c_proj",
        "qkv": ("gpt2_fused", "attn.c_attn"),
        "scale": "inv_sqrt_dh", "rotary": False,
    },
    {
        "family": "gpt-neo",
        "config_class": "GPTNeoConfig",
        "model_classes": ["GPTNeoForCausalLM"],
        "config": dict(
            vocab_size=VOCAB, max_position_embeddings=MAX_POS, hidden_size=D_MODEL, num_layers=N_LAYERS,
            num_heads=N_HEADS, attention_types=[[["global", "local"], 1]], window_size=4,
            intermediate_size=4 * D_MODEL, activation_function="gelu_new", resid_dropout=0.0,
            embed_dropout=0.0, attention_dropout=0.0, layer_norm_epsilon=1e-5, tie_word_embeddings=True,
            use_cache=False, **SPECIAL,
        ),
        "base": "transformer", "layers": "h", "final_norm": "ln_f",
        # GPTNeoBlock.attn is a GPTNeoAttention wrapper around GPTNeoSelfAttention (.attention).
        "attn": "attn", "mlp": "mlp", "out_proj": "attn.attention.out_proj",
        "qkv": ("separate", "attn.attention.q_proj", "attn.attention.k_proj", "attn.attention.v_proj"),
        "scale": "none",  # GPT-Neo does not scale q.k by 1/sqrt(d_head)
        "rotary": False,
    },
    {
        "family": "gpt-neox",
        "config_class": "GPTNeoXConfig",
        "model_classes": ["GPTNeoXForCausalLM"],
        "config": dict(
            vocab_size=VOCAB, hidden_size=D_MODEL, num_hidden_layers=N_LAYERS, num_attention_heads=N_HEADS,
            intermediate_size=4 * D_MODEL, hidden_act="gelu", max_position_embeddings=MAX_POS,
            rope_parameters=rope(0.25), use_parallel_residual=True, attention_bias=True,
            layer_norm_eps=1e-5, attention_dropout=0.0, hidden_dropout=0.0, tie_word_embeddings=False,
            use_cache=False, **SPECIAL,
        ),
        "base": "gpt_neox", "layers": "layers", "final_norm": "final_layer_norm",
        "attn": "attention", "mlp": "mlp", "out_proj": "attention.dense",
        "qkv": ("neox_fused", "attention.query_key_value"),
        "scale": "inv_sqrt_dh", "rotary": True,
    },
    {
        "family": "llama",
        "config_class": "LlamaConfig",
        "model_classes": ["LlamaForCausalLM"],
        "config": dict(
            vocab_size=VOCAB, hidden_size=D_MODEL, intermediate_size=2 * D_MODEL, num_hidden_layers=N_LAYERS,
            num_attention_heads=N_HEADS, num_key_value_heads=2, hidden_act="silu",
            max_position_embeddings=MAX_POS, rms_norm_eps=1e-6, rope_parameters=rope(),
            attention_bias=False, mlp_bias=False, attention_dropout=0.0, tie_word_embeddings=False,
            use_cache=False, **SPECIAL,
        ),
        "base": "model", "layers": "layers", "final_norm": "norm",
        "attn": "self_attn", "mlp": "mlp", "out_proj": "self_attn.o_proj",
        "qkv": ("separate", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
        "scale": "inv_sqrt_dh", "rotary": True,
    },
    {
        "family": "gemma",
        "config_class": "GemmaConfig",
        "model_classes": ["GemmaForCausalLM"],
        "config": dict(
            # head_dim 16 != d_model / n_heads (= 8) on purpose, like gemma-7b; 1 kv head = multi-query.
            vocab_size=VOCAB, hidden_size=D_MODEL, intermediate_size=2 * D_MODEL, num_hidden_layers=N_LAYERS,
            num_attention_heads=N_HEADS, num_key_value_heads=1, head_dim=16, hidden_act="gelu_pytorch_tanh",
            max_position_embeddings=MAX_POS, rms_norm_eps=1e-6, rope_parameters=rope(),
            attention_bias=False, attention_dropout=0.0, tie_word_embeddings=True,
            use_cache=False, **SPECIAL,
        ),
        "base": "model", "layers": "layers", "final_norm": "norm",
        "attn": "self_attn", "mlp": "mlp", "out_proj": "self_attn.o_proj",
        "qkv": ("separate", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
        "scale": "inv_sqrt_dh", "rotary": True,
    },
    {
        "family": "phi3",
        "config_class": "Phi3Config",
        "model_classes": ["Phi3ForCausalLM"],
        "config": dict(
            vocab_size=VOCAB, hidden_size=D_MODEL, intermediate_size=2 * D_MODEL, num_hidden_layers=N_LAYERS,
            num_attention_heads=N_HEADS, num_key_value_heads=2, hidden_act="silu",
            max_position_embeddings=MAX_POS, original_max_position_embeddings=MAX_POS, rms_norm_eps=1e-5,
            rope_parameters=rope(), sliding_window=None, resid_pdrop=0.0, embd_pdrop=0.0,
            attention_dropout=0.0, tie_word_embeddings=False, use_cache=False, **SPECIAL,
        ),
        "base": "model", "layers": "layers", "final_norm": "norm",
        "attn": "self_attn", "mlp": "mlp", "out_proj": "self_attn.o_proj",
        "qkv": ("phi3_fused", "self_attn.qkv_proj"),
        "scale": "inv_sqrt_dh", "rotary": True,
    },
    {
        "family": "qwen2",
        "config_class": "Qwen2Config",
        "model_classes": ["Qwen2ForCausalLM"],
        "config": dict(
            vocab_size=VOCAB, hidden_size=D_MODEL, intermediate_size=2 * D_MODEL, num_hidden_layers=N_LAYERS,
            num_attention_heads=N_HEADS, num_key_value_heads=2, hidden_act="silu",
            max_position_embeddings=MAX_POS, rms_norm_eps=1e-6, rope_parameters=rope(),
            use_sliding_window=False, attention_dropout=0.0, tie_word_embeddings=False,
            use_cache=False, **SPECIAL,
        ),
        "base": "model", "layers": "layers", "final_norm": "norm",
        "attn": "self_attn", "mlp": "mlp", "out_proj": "self_attn.o_proj",
        "qkv": ("separate", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
        "scale": "inv_sqrt_dh", "rotary": True,
    },
    {
        "family": "mistral",
        "config_class": "MistralConfig",
        "model_classes": ["MistralForCausalLM"],
        "config": dict(
            vocab_size=VOCAB, hidden_size=D_MODEL, intermediate_size=2 * D_MODEL, num_hidden_layers=N_LAYERS,
            num_attention_heads=N_HEADS, num_key_value_heads=2, head_dim=D_MODEL // N_HEADS, hidden_act="silu",
            max_position_embeddings=MAX_POS, rms_norm_eps=1e-6, rope_parameters=rope(), sliding_window=4,
            attention_dropout=0.0, tie_word_embeddings=False, use_cache=False, **SPECIAL,
        ),
        "base": "model", "layers": "layers", "final_norm": "norm",
        "attn": "self_attn", "mlp": "mlp", "out_proj": "self_attn.o_proj",
        "qkv": ("separate", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
        "scale": "inv_sqrt_dh", "rotary": True,
    },
    {
        "family": "stable-lm",
        "config_class": "StableLmConfig",
        "model_classes": ["StableLmForCausalLM"],
        "config": dict(
            vocab_size=VOCAB, hidden_size=D_MODEL, intermediate_size=2 * D_MODEL, num_hidden_layers=N_LAYERS,
            num_attention_heads=N_HEADS, num_key_value_heads=N_HEADS, hidden_act="silu",
            max_position_embeddings=MAX_POS, layer_norm_eps=1e-5, rope_parameters=rope(0.25),
            use_qkv_bias=True, qk_layernorm=False, use_parallel_residual=False, hidden_dropout=0.0,
            attention_dropout=0.0, tie_word_embeddings=False, use_cache=False, **SPECIAL,
        ),
        "base": "model", "layers": "layers", "final_norm": "norm",
        "attn": "self_attn", "mlp": "mlp", "out_proj": "self_attn.o_proj",
        "qkv": ("separate", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
        "scale": "inv_sqrt_dh", "rotary": True,
    },
]

FAMILY_NAMES = [f["family"] for f in FAMILIES]


# ---------------------------------------------------------------- helpers
def get_path(root, dotted):
    obj = root
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def first_tensor(x):
    """The hidden-state tensor of a module output (first element of a tuple/list/ModelOutput)."""
    import torch

    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)) and len(x) > 0:
        return first_tensor(x[0])
    if hasattr(x, "to_tuple"):
        return first_tensor(x.to_tuple())
    raise TypeError("cannot find a tensor in module output of type %s" % type(x).__name__)


def jsonable(v):
    """Config values made safe for json.dumps."""
    if isinstance(v, (str, int, float, bool)) or v is None:
        if isinstance(v, float) and not math.isfinite(v):
            return repr(v)
        return v
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return repr(v)


def max_abs_diff(a, b):
    import torch

    if a.shape != b.shape:
        return float("inf")
    if a.numel() == 0:
        return 0.0
    return float((a.double() - b.double()).abs().max().item())


def cfg_get(config, *names, default=None):
    for n in names:
        v = getattr(config, n, None)
        if v is not None:
            return v
    return default


def rope_params(config):
    rp = getattr(config, "rope_parameters", None)
    if isinstance(rp, dict) and "full_attention" in rp and isinstance(rp.get("full_attention"), dict):
        rp = rp["full_attention"]  # per-layer-type layout, not expected for these families
    if not isinstance(rp, dict):
        rp = {}
    theta = rp.get("rope_theta", getattr(config, "rope_theta", None))
    partial = rp.get("partial_rotary_factor", getattr(config, "partial_rotary_factor", None))
    if partial is None:
        partial = getattr(config, "rotary_pct", None)
    return theta, (1.0 if partial is None else float(partial)), rp.get("rope_type", "default")


class Recorder:
    """Collects every call of a hook under a key; a key hit more than once per forward is flagged."""

    def __init__(self):
        self.data = {}
        self.handles = []

    def put(self, key, tensor):
        self.data.setdefault(key, []).append(tensor.detach().clone())

    def once(self, key):
        v = self.data.get(key)
        if v is None:
            return None, "not captured"
        if len(v) != 1:
            return None, "captured %d times in one forward" % len(v)
        return v[0], None

    def remove(self):
        for h in self.handles:
            try:
                h.remove()
            except Exception:
                pass
        self.handles = []


def reinit_parameters(model, seed):
    """Seeded non-trivial values for EVERY parameter (tied parameters once).

    Norm weights: 1 + NORM_STD*n, except norms whose HF init is all zeros
    (Gemma's (1 + weight) RMSNorm): NORM_STD*n.  Norm biases and other 1-d
    parameters: BIAS_STD*n.  Everything else (matrices, embeddings): MATRIX_STD*n.
    """
    import torch
    from torch import nn

    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    owner = {}
    for mname, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            owner.setdefault(id(p), (mname, module, pname))
    counts = {"norm_weight_one_centred": 0, "norm_weight_zero_centred": 0, "bias_or_1d": 0, "matrix": 0}
    with torch.no_grad():
        for name, p in model.named_parameters():  # de-duplicates tied parameters
            _, module, pname = owner[id(p)]
            is_norm = isinstance(module, nn.LayerNorm) or "norm" in type(module).__name__.lower()
            noise = torch.randn(tuple(p.shape), generator=gen, dtype=torch.float32)
            if is_norm and pname == "weight" and p.dim() == 1:
                if bool((p == 0).all()):
                    p.copy_(NORM_STD * noise)
                    counts["norm_weight_zero_centred"] += 1
                else:
                    p.copy_(1.0 + NORM_STD * noise)
                    counts["norm_weight_one_centred"] += 1
            elif p.dim() <= 1:
                p.copy_(BIAS_STD * noise)
                counts["bias_or_1d"] += 1
            else:
                p.copy_(MATRIX_STD * noise)
                counts["matrix"] += 1
    return counts


def import_classes(spec):
    import transformers

    config_cls = getattr(transformers, spec["config_class"])
    errors = []
    for name in spec["model_classes"]:
        cls = getattr(transformers, name, None)
        if cls is not None:
            return config_cls, cls
        errors.append(name)
    raise ImportError("none of %s found in transformers" % errors)


def make_config(config_cls, kwargs):
    cfg = config_cls(attn_implementation="eager", **kwargs)
    try:
        cfg._attn_implementation = "eager"
    except Exception:
        pass
    return cfg


def build_model(config_cls, model_cls, kwargs, seed):
    import torch

    config = make_config(config_cls, kwargs)
    torch.manual_seed(seed)
    model = model_cls(config)
    impl = getattr(model.config, "_attn_implementation", None)
    if impl != "eager":
        if hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation("eager")
        else:
            model.config._attn_implementation = "eager"
    impl = getattr(model.config, "_attn_implementation", None)
    if impl != "eager":
        raise RuntimeError("could not switch to eager attention (got %r)" % impl)
    model = model.to(device="cpu", dtype=torch.float32)
    model.eval()
    return model


def save_hf(model, directory):
    try:
        model.save_pretrained(directory, safe_serialization=True)
    except TypeError as e:
        if "safe_serialization" not in str(e):
            raise
        model.save_pretrained(directory)  # newer versions always write safetensors


def dims_of(spec, model):
    config = model.config
    n_heads = int(cfg_get(config, "num_attention_heads", "n_head", "num_heads"))
    d_model = int(cfg_get(config, "hidden_size", "n_embd"))
    n_kv = int(cfg_get(config, "num_key_value_heads", default=n_heads))
    head_dim = cfg_get(config, "head_dim", default=None)
    if head_dim is None or spec["family"] in ("gpt2", "gpt-neo", "gpt-neox", "stable-lm", "phi3"):
        # these families compute head_dim = hidden_size // num_heads in their attention module
        head_dim = d_model // n_heads
    return {
        "n_layers": int(cfg_get(config, "num_hidden_layers", "n_layer", "num_layers")),
        "d_model": d_model,
        "n_heads": n_heads,
        "n_key_value_heads": n_kv,
        "d_head": int(head_dim),
        "vocab": int(config.vocab_size),
    }


def window_for_layer(spec, config, i):
    """Sliding window (number of keys incl. the query itself) of layer i, or None."""
    fam = spec["family"]
    if fam == "gpt-neo":
        types = getattr(config, "attention_layers", None)
        if types and types[i] == "local":
            return int(config.window_size)
        return None
    layer_types = getattr(config, "layer_types", None)
    sw = getattr(config, "sliding_window", None)
    if layer_types:
        return int(sw) if (layer_types[i] == "sliding_attention" and sw) else None
    return int(sw) if sw else None


def rotate_half(x):
    import torch

    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def recompute_pattern(spec, config, dims, q, k, layer):
    """Independent re-computation of the attention pattern from hook_q / hook_k.

    q: [b, p, h, d], k: [b, p, kv, d] (before rotary).  Rotary is the
    GPT-NeoX "rotate half" form on the first rotary_dim dims of each head.
    """
    import torch

    q = q.double().transpose(1, 2)  # b h p d
    k = k.double().transpose(1, 2)
    d = q.shape[-1]
    pos = q.shape[2]
    if spec["rotary"]:
        theta, partial, rtype = rope_params(config)
        if rtype not in (None, "default"):
            raise RuntimeError("rope_type %r not re-implemented" % rtype)
        rot = int(d * partial)
        inv = 1.0 / (float(theta) ** (torch.arange(0, rot, 2, dtype=torch.float64) / rot))
        t = torch.arange(pos, dtype=torch.float64)
        freqs = torch.outer(t, inv)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()

        def apply(x):
            xr, xp = x[..., :rot], x[..., rot:]
            return torch.cat((xr * cos + rotate_half(xr) * sin, xp), dim=-1)

        q, k = apply(q), apply(k)
    n_rep = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(n_rep, dim=1)
    scores = q @ k.transpose(-1, -2)
    if spec["scale"] == "inv_sqrt_dh":
        scores = scores / math.sqrt(d)
    qi = torch.arange(pos).view(-1, 1)
    ki = torch.arange(pos).view(1, -1)
    allowed = ki <= qi
    w = window_for_layer(spec, config, layer)
    if w is not None:
        allowed = allowed & (ki > qi - w)
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1)


# ---------------------------------------------------------------- one family
def run_family(spec, out_root, versions):
    import torch
    from safetensors.torch import save_file

    fam = spec["family"]
    seed = SEEDS[fam]
    input_seed = seed + 1000
    t0 = time.time()
    fdir = os.path.join(out_root, fam)
    if os.path.isdir(fdir):
        shutil.rmtree(fdir)
    os.makedirs(fdir, exist_ok=True)

    config_cls, model_cls = import_classes(spec)
    model = build_model(config_cls, model_cls, spec["config"], seed)
    init_counts = reinit_parameters(model, seed)
    config = model.config
    dims = dims_of(spec, model)
    L, H, KV, DH = dims["n_layers"], dims["n_heads"], dims["n_key_value_heads"], dims["d_head"]

    base = get_path(model, spec["base"])
    layers = list(get_path(base, spec["layers"]))
    if len(layers) != L:
        raise RuntimeError("found %d layers, config says %d" % (len(layers), L))
    final_norm = get_path(base, spec["final_norm"])
    lm_head = model.get_output_embeddings()

    gen = torch.Generator(device="cpu")
    gen.manual_seed(input_seed)
    input_ids = torch.randint(0, VOCAB, (BATCH, SEQ), generator=gen, dtype=torch.int64)

    rec = Recorder()
    skipped = {}

    def add(module, kind, fn):
        if kind == "pre":
            rec.handles.append(module.register_forward_pre_hook(fn, with_kwargs=True))
        else:
            rec.handles.append(module.register_forward_hook(fn))

    def pre_hidden(key):
        def fn(module, args, kwargs):
            if len(args) > 0 and isinstance(args[0], torch.Tensor):
                rec.put(key, args[0])
            elif isinstance(kwargs.get("hidden_states"), torch.Tensor):
                rec.put(key, kwargs["hidden_states"])
            else:
                raise RuntimeError("%s: no hidden_states in layer inputs" % key)
        return fn

    def pre_input(key):
        def fn(module, args, kwargs):
            x = args[0] if len(args) > 0 else next(v for v in kwargs.values() if isinstance(v, torch.Tensor))
            rec.put(key, x)
        return fn

    def post_first(key):
        def fn(module, args, output):
            rec.put(key, first_tensor(output))
        return fn

    def post_attn(i):
        def fn(module, args, output):
            rec.put("blocks.%d.hook_attn_out" % i, first_tensor(output))
            if isinstance(output, (tuple, list)) and len(output) > 1 and isinstance(output[1], torch.Tensor):
                rec.put("_module_pattern.%d" % i, output[1])
        return fn

    def post_split(i, how):
        def fn(module, args, output):
            y = first_tensor(output)
            b, p = y.shape[0], y.shape[1]
            if how == "gpt2_fused":  # c_attn: [q | k | v] along the last dim, each d_model wide
                q, k, v = y.split(H * DH, dim=-1)
                q, k, v = q.reshape(b, p, H, DH), k.reshape(b, p, H, DH), v.reshape(b, p, H, DH)
            elif how == "neox_fused":  # query_key_value: per head [q | k | v] (view(b, p, H, 3*DH).chunk(3))
                q, k, v = y.view(b, p, H, 3 * DH).chunk(3, dim=-1)
            elif how == "phi3_fused":  # qkv_proj: [q (H*DH) | k (KV*DH) | v (KV*DH)]
                q = y[..., : H * DH].reshape(b, p, H, DH)
                k = y[..., H * DH: H * DH + KV * DH].reshape(b, p, KV, DH)
                v = y[..., H * DH + KV * DH:].reshape(b, p, KV, DH)
            else:
                raise RuntimeError("unknown qkv layout " + how)
            rec.put("blocks.%d.attn.hook_q" % i, q)
            rec.put("blocks.%d.attn.hook_k" % i, k)
            rec.put("blocks.%d.attn.hook_v" % i, v)
        return fn

    def post_heads(key, n):
        def fn(module, args, output):
            y = first_tensor(output)
            rec.put(key, y.reshape(y.shape[0], y.shape[1], n, DH))
        return fn

    def pre_z(key):
        def fn(module, args, kwargs):
            x = args[0] if len(args) > 0 else next(v for v in kwargs.values() if isinstance(v, torch.Tensor))
            rec.put(key, x.reshape(x.shape[0], x.shape[1], H, DH))
        return fn

    for i, layer in enumerate(layers):
        add(layer, "pre", pre_hidden("blocks.%d.hook_resid_pre" % i))
        add(layer, "post", post_first("blocks.%d.hook_resid_post" % i))
        add(get_path(layer, spec["attn"]), "post", post_attn(i))
        add(get_path(layer, spec["mlp"]), "post", post_first("blocks.%d.hook_mlp_out" % i))
        add(get_path(layer, spec["out_proj"]), "pre", pre_z("blocks.%d.attn.hook_z" % i))
        qkv = spec["qkv"]
        if qkv[0] == "separate":
            add(get_path(layer, qkv[1]), "post", post_heads("blocks.%d.attn.hook_q" % i, H))
            add(get_path(layer, qkv[2]), "post", post_heads("blocks.%d.attn.hook_k" % i, KV))
            add(get_path(layer, qkv[3]), "post", post_heads("blocks.%d.attn.hook_v" % i, KV))
        else:
            add(get_path(layer, qkv[1]), "post", post_split(i, qkv[0]))
    add(final_norm, "post", post_first("ln_final.hook_normalized"))
    add(final_norm, "pre", pre_input("_final_norm_in"))

    try:
        with torch.no_grad():
            out = model(
                input_ids=input_ids,
                output_hidden_states=True,
                output_attentions=True,
                use_cache=False,
                return_dict=True,
            )
    finally:
        rec.remove()

    logits = out.logits.detach().clone()
    attentions = getattr(out, "attentions", None)
    hidden_states = getattr(out, "hidden_states", None)

    tensors = {}
    shapes = {}

    def store(key, t):
        t = t.detach().to(torch.float32).contiguous().clone()
        tensors[key] = t
        shapes[key] = list(t.shape)

    per_layer = ["hook_resid_pre", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_z",
                 "attn.hook_pattern", "hook_attn_out", "hook_mlp_out", "hook_resid_post"]
    expect = {
        "hook_resid_pre": (BATCH, SEQ, dims["d_model"]),
        "hook_resid_post": (BATCH, SEQ, dims["d_model"]),
        "hook_attn_out": (BATCH, SEQ, dims["d_model"]),
        "hook_mlp_out": (BATCH, SEQ, dims["d_model"]),
        "attn.hook_q": (BATCH, SEQ, H, DH),
        "attn.hook_k": (BATCH, SEQ, KV, DH),
        "attn.hook_v": (BATCH, SEQ, KV, DH),
        "attn.hook_z": (BATCH, SEQ, H, DH),
        "attn.hook_pattern": (BATCH, H, SEQ, SEQ),
    }
    for i in range(L):
        for name in per_layer:
            key = "blocks.%d.%s" % (i, name)
            if name == "attn.hook_pattern":
                t, why = None, None
                if attentions is not None and len(attentions) == L and isinstance(attentions[i], torch.Tensor):
                    t = attentions[i]
                else:
                    t, why = rec.once("_module_pattern.%d" % i)
                    why = None if t is not None else "output_attentions gave nothing (%s)" % why
            else:
                t, why = rec.once(key)
            if t is None:
                skipped[key] = why
                continue
            if tuple(t.shape) != expect[name]:
                skipped[key] = "unexpected shape %s, expected %s" % (list(t.shape), list(expect[name]))
                continue
            store(key, t)
    t, why = rec.once("ln_final.hook_normalized")
    if t is not None and tuple(t.shape) == (BATCH, SEQ, dims["d_model"]):
        store("ln_final.hook_normalized", t)
    else:
        skipped["ln_final.hook_normalized"] = why or "unexpected shape %s" % list(t.shape)
    store("logits", logits)

    # ------------------------------------------------------------ checks
    checks = {}
    notes = []

    def check(name, ok, detail=None):
        checks[name] = {"ok": bool(ok), "detail": detail}

    with torch.no_grad():
        last = "blocks.%d.hook_resid_post" % (L - 1)
        if last in tensors:
            relogits = lm_head(final_norm(tensors[last]))
            d = max_abs_diff(relogits, logits)
            check("logits_from_last_resid_post", d <= ATOL_LOGITS, "max_abs_diff=%.3g" % d)
        else:
            check("logits_from_last_resid_post", False, "last resid_post not captured")

        pats = [tensors[k] for k in sorted(tensors) if k.endswith("attn.hook_pattern")]
        if len(pats) == L:
            worst = max(float((p.double().sum(-1) - 1).abs().max()) for p in pats)
            causal = all(bool((torch.triu(p, diagonal=1) == 0).all()) for p in pats)
            check("pattern_rows_sum_to_1", worst <= 1e-5, "max |row sum - 1| = %.3g" % worst)
            check("pattern_causal", causal, None)
        else:
            check("pattern_rows_sum_to_1", False, "patterns missing")

        # informational checks (reported, not part of self_check)
        if "ln_final.hook_normalized" in tensors:
            d = max_abs_diff(lm_head(tensors["ln_final.hook_normalized"]), logits)
            check("logits_from_ln_final", d <= ATOL_LOGITS, "max_abs_diff=%.3g" % d)
        fin, _ = rec.once("_final_norm_in")
        if fin is not None and last in tensors:
            d = max_abs_diff(fin, tensors[last])
            check("final_norm_input_is_last_resid_post", d == 0.0, "max_abs_diff=%.3g" % d)
        if hidden_states is not None and len(hidden_states) == L + 1:
            worst = 0.0
            for i in range(L):
                key = "blocks.%d.hook_resid_pre" % i
                if key in tensors:
                    worst = max(worst, max_abs_diff(hidden_states[i], tensors[key]))
            check("hidden_states_match_resid_pre", worst <= 1e-6, "max_abs_diff=%.3g" % worst)
        worst_chain = 0.0
        worst_sum = 0.0
        for i in range(L):
            pre, post = "blocks.%d.hook_resid_pre" % i, "blocks.%d.hook_resid_post" % i
            a, m = "blocks.%d.hook_attn_out" % i, "blocks.%d.hook_mlp_out" % i
            if i + 1 < L and post in tensors and "blocks.%d.hook_resid_pre" % (i + 1) in tensors:
                worst_chain = max(worst_chain, max_abs_diff(tensors[post], tensors["blocks.%d.hook_resid_pre" % (i + 1)]))
            if all(k in tensors for k in (pre, post, a, m)):
                worst_sum = max(worst_sum, max_abs_diff(tensors[pre] + tensors[a] + tensors[m], tensors[post]))
        check("resid_post_equals_next_resid_pre", worst_chain == 0.0, "max_abs_diff=%.3g" % worst_chain)
        check("resid_post_equals_pre_plus_attn_plus_mlp", worst_sum <= ATOL_CHECK, "max_abs_diff=%.3g" % worst_sum)

        # attention re-computed independently from hook_q / hook_k / hook_v / hook_z
        try:
            worst_qk, worst_z, worst_o = 0.0, 0.0, 0.0
            for i in range(L):
                q = tensors.get("blocks.%d.attn.hook_q" % i)
                k = tensors.get("blocks.%d.attn.hook_k" % i)
                v = tensors.get("blocks.%d.attn.hook_v" % i)
                z = tensors.get("blocks.%d.attn.hook_z" % i)
                pat = tensors.get("blocks.%d.attn.hook_pattern" % i)
                ao = tensors.get("blocks.%d.hook_attn_out" % i)
                if q is None or k is None or pat is None:
                    raise RuntimeError("q/k/pattern missing in layer %d" % i)
                mine = recompute_pattern(spec, config, dims, q, k, i)
                worst_qk = max(worst_qk, max_abs_diff(mine, pat))
                if v is not None and z is not None:
                    vr = v.double().transpose(1, 2).repeat_interleave(H // KV, dim=1)  # b h p d
                    zz = (pat.double() @ vr).transpose(1, 2)  # b p h d
                    worst_z = max(worst_z, max_abs_diff(zz, z))
                if z is not None and ao is not None:
                    op = get_path(layers[i], spec["out_proj"])
                    worst_o = max(worst_o, max_abs_diff(op(z.reshape(BATCH, SEQ, H * DH)), ao))
            check("pattern_recomputed_from_q_k", worst_qk <= ATOL_CHECK, "max_abs_diff=%.3g" % worst_qk)
            check("z_recomputed_from_pattern_v", worst_z <= ATOL_CHECK, "max_abs_diff=%.3g" % worst_z)
            check("attn_out_recomputed_from_z", worst_o <= ATOL_CHECK, "max_abs_diff=%.3g" % worst_o)
        except Exception as e:  # informational only
            check("pattern_recomputed_from_q_k", False, "could not re-compute: %r" % (e,))

    self_check = checks["logits_from_last_resid_post"]["ok"] and checks["pattern_rows_sum_to_1"]["ok"]
    failed_info = sorted(k for k, v in checks.items() if not v["ok"])

    # ------------------------------------------------------------ write
    save_hf(model, fdir)
    ref = {"input_ids": input_ids.contiguous()}
    ref.update(tensors)
    save_file(ref, os.path.join(fdir, "reference.safetensors"), metadata={
        "family": fam, "generator": SCRIPT_NAME, "transformers": versions.get("transformers", "?"),
    })

    # round trip: reload what save_pretrained wrote and compare logits
    try:
        reloaded = model_cls.from_pretrained(fdir, attn_implementation="eager", dtype=torch.float32)
    except TypeError:
        reloaded = model_cls.from_pretrained(fdir, attn_implementation="eager", torch_dtype=torch.float32)
    reloaded.eval()
    with torch.no_grad():
        rl = reloaded(input_ids=input_ids, use_cache=False).logits
    d = max_abs_diff(rl, logits)
    check("reload_from_save_pretrained", d <= 1e-6, "max_abs_diff=%.3g" % d)
    del reloaded

    weights = {}
    try:
        from safetensors import safe_open

        for fn in sorted(os.listdir(fdir)):
            if fn.startswith("model") and fn.endswith(".safetensors"):
                with safe_open(os.path.join(fdir, fn), framework="pt") as f:
                    for k in f.keys():
                        weights[k] = list(f.get_slice(k).get_shape())
    except Exception as e:
        notes.append("could not list saved weights: %r" % (e,))

    effective = {
        "attn_implementation": getattr(config, "_attn_implementation", None),
        "tie_word_embeddings": bool(getattr(config, "tie_word_embeddings", False)),
        "rope_theta_partial_type": list(rope_params(config)) if spec["rotary"] else None,
        "sliding_window_per_layer": [window_for_layer(spec, config, i) for i in range(L)],
        "attention_layers": getattr(config, "attention_layers", None),
        "layer_types": getattr(config, "layer_types", None),
        "use_parallel_residual": getattr(config, "use_parallel_residual", None),
        "attn_scale": "1/sqrt(d_head)" if spec["scale"] == "inv_sqrt_dh" else "1 (no scaling)",
    }
    for i, layer in enumerate(layers[:1]):
        a = get_path(layer, spec["attn"])
        for attr in ("rotary_ndims", "scaling", "head_dim", "head_size"):
            if hasattr(a, attr):
                effective["layer0_attn_" + attr] = jsonable(getattr(a, attr))

    hooks_stored = sorted(k for k in tensors)
    manifest = {
        "family": fam,
        "generator": SCRIPT_NAME,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": versions,
        "config_class": config_cls.__name__,
        "model_class": model_cls.__name__,
        "model_type": getattr(config, "model_type", None),
        "config_kwargs": jsonable(spec["config"]),
        "effective": jsonable(effective),
        "dims": dims,
        "seeds": {"torch_manual_seed_before_construction": seed, "reinit_generator": seed,
                  "input_ids_generator": input_seed},
        "init": {"matrix_std": MATRIX_STD, "bias_std": BIAS_STD, "norm_weight": "1 + %g*N(0,1) "
                 "(zero-centred (1+w) norms such as Gemma's: %g*N(0,1))" % (NORM_STD, NORM_STD),
                 "counts": init_counts},
        "input": {"batch": BATCH, "seq": SEQ, "dtype": "int64", "low": 0, "high_exclusive": VOCAB,
                  "attention_mask": None},
        "dtype": "float32",
        "device": "cpu",
        "hooks": hooks_stored,
        "hook_shapes": shapes,
        "hooks_skipped": skipped,
        "saved_weights": weights,
        "checks": checks,
        "self_check": bool(self_check),
        "failed_checks": [k for k in sorted(checks) if not checks[k]["ok"]],
        "notes": notes,
        "seconds": round(time.time() - t0, 3),
    }
    with open(os.path.join(fdir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=False)
        f.write("\n")
    return manifest


# ---------------------------------------------------------------- README
def write_readme(out_root, versions, results):
    lines = []
    lines.append("# Hugging Face reference fixtures")
    lines.append("")
    lines.append("Made by `%s` on %s with transformers %s, torch %s, safetensors %s, Python %s." % (
        SCRIPT_NAME, datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        versions.get("transformers"), versions.get("torch"), versions.get("safetensors"), versions.get("python")))
    lines.append("")
    lines.append("Each folder holds a TINY randomly initialised model (%d layers, %d heads, d_model %d, vocab %d, "
                 "max positions %d), built with the family's `*Config` / causal-LM class, float32, CPU, eval mode, "
                 "`attn_implementation=\"eager\"`, seeded with `torch.manual_seed`; then EVERY parameter was "
                 "re-initialised from a seeded generator (matrices and embeddings N(0, %g); biases N(0, %g); norm "
                 "weights 1 + %g N(0,1), or %g N(0,1) for norms whose HF form is (1 + w), i.e. Gemma)."
                 % (N_LAYERS, N_HEADS, D_MODEL, VOCAB, MAX_POS, MATRIX_STD, BIAS_STD, NORM_STD, NORM_STD))
    lines.append("")
    lines.append("- `config.json`, `model.safetensors` (and `generation_config.json`): written by "
                 "`model.save_pretrained(dir, safe_serialization=True)`, i.e. Hugging Face names; tied "
                 "embeddings are stored as HF stores them (lm_head absent when tied).")
    lines.append("- `reference.safetensors`: `input_ids` (int64 [%d, %d], seeded uniform in [0, %d)) and float32 "
                 "activations of one forward pass (no attention mask, no KV cache), under TransformerLens names:"
                 % (BATCH, SEQ, VOCAB))
    lines.append("  - `blocks.{i}.hook_resid_pre` [batch, pos, d_model]: input hidden state of decoder layer i "
                 "(forward pre-hook on the layer).")
    lines.append("  - `blocks.{i}.hook_resid_post` [batch, pos, d_model]: output hidden state of layer i.")
    lines.append("  - `blocks.{i}.hook_attn_out` [batch, pos, d_model]: output of the attention module, after its "
                 "output projection (with its bias, if any).")
    lines.append("  - `blocks.{i}.hook_mlp_out` [batch, pos, d_model]: output of the MLP module.")
    lines.append("  - `blocks.{i}.attn.hook_q` [batch, pos, n_heads, d_head], `hook_k` / `hook_v` "
                 "[batch, pos, n_key_value_heads, d_head]: q/k/v projection outputs (with bias) BEFORE rotary, "
                 "split per head (GPT-2 `c_attn` = [q|k|v]; GPT-NeoX `query_key_value` = per head [q|k|v]; "
                 "Phi-3 `qkv_proj` = [q (H*d) | k (KV*d) | v (KV*d)]). For GQA/MQA k and v keep the kv head count; "
                 "query head h uses kv head h // (n_heads / n_kv_heads).")
    lines.append("  - `blocks.{i}.attn.hook_z` [batch, pos, n_heads, d_head]: input of the attention output "
                 "projection (pattern @ v, heads not yet merged).")
    lines.append("  - `blocks.{i}.attn.hook_pattern` [batch, n_heads, query, key]: post-softmax attention "
                 "probabilities (`output_attentions=True`).")
    lines.append("  - `ln_final.hook_normalized` [batch, pos, d_model]: the OUTPUT of the final norm module "
                 "(including its weight and bias; note TransformerLens' own hook_normalized is taken before the "
                 "weight/bias, which only coincides when the norm is folded).")
    lines.append("  - `logits` [batch, pos, vocab].")
    lines.append("- `manifest.json`: versions, classes, config values, seeds, stored/skipped hooks with shapes, "
                 "saved weight names, consistency checks and `self_check` (logits re-computed from the last "
                 "`hook_resid_post` through the final norm and lm_head within %g, and pattern rows summing to 1)."
                 % ATOL_LOGITS)
    lines.append("")
    lines.append("| family | result | hooks | self_check | failed checks |")
    lines.append("| --- | --- | --- | --- | --- |")
    for fam in FAMILY_NAMES:
        r = results.get(fam)
        if r is None:
            continue
        if r["ok"]:
            m = r["manifest"]
            lines.append("| %s | OK | %d | %s | %s |" % (fam, len(m["hooks"]), m["self_check"],
                                                         ", ".join(m["failed_checks"]) or "-"))
        else:
            lines.append("| %s | FAILED: %s | - | - | - |" % (fam, r["error"].replace("|", "/").replace("\n", " ")[:200]))
    lines.append("")
    with open(os.path.join(out_root, "README.md"), "w") as f:
        f.write("\n".join(lines))


# ---------------------------------------------------------------- main
def main(argv):
    args = list(argv[1:])
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    out_root = "fixtures-hf"
    if args and args[0] not in FAMILY_NAMES:
        out_root = args.pop(0)
    wanted = args or list(FAMILY_NAMES)
    unknown = [w for w in wanted if w not in FAMILY_NAMES]
    if unknown:
        print("unknown families: %s (known: %s)" % (unknown, ", ".join(FAMILY_NAMES)), file=sys.stderr)
        return 2

    versions = {"python": platform.python_version()}
    try:
        import torch

        versions["torch"] = torch.__version__
        torch.set_default_dtype(torch.float32)
        try:
            torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
        except Exception:
            pass
    except Exception:
        print("FATAL: cannot import torch", file=sys.stderr)
        traceback.print_exc()
        return 1
    for mod in ("transformers", "safetensors", "numpy"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception as e:
            versions[mod] = "unavailable (%r)" % (e,)
    print("make-hf-fixtures: OUT=%s python %s torch %s transformers %s safetensors %s" % (
        out_root, versions["python"], versions["torch"], versions["transformers"], versions["safetensors"]))
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:
        pass

    os.makedirs(out_root, exist_ok=True)
    results = {}
    t_all = time.time()
    for spec in FAMILIES:
        fam = spec["family"]
        if fam not in wanted:
            continue
        t0 = time.time()
        try:
            m = run_family(spec, out_root, versions)
            results[fam] = {"ok": True, "manifest": m}
            extra = ""
            if m["failed_checks"]:
                extra = "  [failed checks: %s]" % ", ".join(m["failed_checks"])
            if m["hooks_skipped"]:
                extra += "  [skipped: %s]" % ", ".join(sorted(m["hooks_skipped"]))
            print("%-10s OK      %2d hooks  self_check=%s  %.1fs%s" % (
                fam, len(m["hooks"]), m["self_check"], time.time() - t0, extra), flush=True)
        except Exception as e:
            tb = traceback.format_exc()
            results[fam] = {"ok": False, "error": "%s: %s" % (type(e).__name__, e), "traceback": tb}
            print("%-10s FAILED  %s: %s" % (fam, type(e).__name__, e), flush=True)
            print(tb, flush=True)
            try:
                fdir = os.path.join(out_root, fam)
                os.makedirs(fdir, exist_ok=True)
                with open(os.path.join(fdir, "FAILED.txt"), "w") as f:
                    f.write(tb)
            except Exception:
                pass

    ok = [f for f, r in results.items() if r["ok"]]
    bad = [f for f, r in results.items() if not r["ok"]]
    unchecked = [f for f in ok if not results[f]["manifest"]["self_check"]]
    summary = {
        "generator": SCRIPT_NAME,
        "versions": versions,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "families": {
            f: ({"ok": True, "hooks": len(r["manifest"]["hooks"]), "self_check": r["manifest"]["self_check"],
                 "failed_checks": r["manifest"]["failed_checks"]} if r["ok"]
                else {"ok": False, "error": r["error"]})
            for f, r in results.items()
        },
    }
    try:
        with open(os.path.join(out_root, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
            f.write("\n")
        write_readme(out_root, versions, results)
    except Exception:
        traceback.print_exc()

    print("-" * 72)
    print("SUMMARY: %d OK (%s), %d FAILED (%s); self_check false: %s; %.1fs total" % (
        len(ok), ", ".join(ok) or "-", len(bad), ", ".join(bad) or "-", ", ".join(unchecked) or "none",
        time.time() - t_all))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
