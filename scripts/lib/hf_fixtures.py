"""What the scripts that make Hugging Face fixtures share: transformers kept offline, a recorder of a model's
activations under this library's hook names, one recorded forward pass, and the folder a fixture is saved as.

Importing it sets the offline switches; torch, transformers and safetensors are imported where they are used.
"""

import datetime
import os
import platform
import shutil

for _switch in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ.setdefault(_switch, "1")


def near_one_or_scaled(name, p, noise):
    """The usual redraw: norms' weights 1 + 0.2 noise, every other parameter noise / sqrt(its last dimension)."""
    return 1.0 + 0.2 * noise if "norm" in name else noise / p.shape[-1] ** 0.5


def redraw(model, gen, value=near_one_or_scaled):
    """Every parameter of model, in order, as value(name, parameter, standard normal noise drawn from gen)."""
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(value(name, p, torch.randn(tuple(p.shape), generator=gen)))


class Recorder:
    """Activations kept in float32 under hook names, from forward hooks that remove() takes off the model."""

    def __init__(self):
        self.tensors = {}
        self.handles = []

    def keep(self, key, t):
        import torch

        self.tensors[key] = t.detach().to(torch.float32).contiguous().clone()

    def output(self, module, key, view=lambda t: t):
        """module's output (the first of a tuple) under key, through view."""
        self.handles.append(module.register_forward_hook(
            lambda mod, args, o: self.keep(key, view(o[0] if isinstance(o, tuple) else o))))

    def input(self, module, key, view=lambda t: t):
        """module's first input under key, through view."""
        self.handles.append(module.register_forward_pre_hook(lambda mod, args: self.keep(key, view(args[0]))))

    def call(self, module, record):
        """record(output) at each call of module, for outputs that hold more than one activation."""
        self.handles.append(module.register_forward_hook(lambda mod, args, o: record(o)))

    def argument(self, module, key, position, name):
        """module's input at position, or passed as name, under key."""
        self.handles.append(module.register_forward_pre_hook(
            lambda mod, args, kw: self.keep(key, args[position] if len(args) > position else kw[name]),
            with_kwargs=True))

    def layer(self, layer, prefix):
        """A decoder layer's input and output as prefix + hook_resid_pre and hook_resid_post."""
        self.argument(layer, prefix + "hook_resid_pre", 0, "hidden_states")
        self.output(layer, prefix + "hook_resid_post")

    def run(self, model, ids, pattern_layers=None):
        """One eager pass of model on ids, recording its logits and each layer's pattern; the hooks removed.
        pattern_layers: the layers whose patterns transformers returns, in order (None: every layer)."""
        import torch

        with torch.no_grad():
            result = model(input_ids=ids, output_attentions=True, use_cache=False, return_dict=True)
        for h in self.handles:
            h.remove()
        self.handles = []
        self.keep("logits", result.logits)
        layers = pattern_layers if pattern_layers is not None else range(len(result.attentions))
        assert len(layers) == len(result.attentions), "%d patterns for layers %s" % (len(result.attentions), layers)
        for i, pattern in zip(layers, result.attentions):
            self.keep("blocks.%d.attn.hook_pattern" % i, pattern)


def save(out, script, model, ids, tensors, description, bfloat16_class=None):
    """The fixture folder out, made anew: the model as save_pretrained writes it, reference.safetensors with tensors,
    the ids and, with bfloat16_class, bfloat16.logits (that class's eager pass of the saved model loaded in
    bfloat16), and README.md saying that script made it, when, with which versions: description."""
    import torch
    import transformers
    from safetensors.torch import save_file

    if os.path.isdir(out):
        shutil.rmtree(out)
    model.save_pretrained(out)
    tensors = dict(tensors)
    if bfloat16_class is not None:
        bfloat16 = bfloat16_class.from_pretrained(out, dtype=torch.bfloat16, attn_implementation="eager").eval()
        with torch.no_grad():
            logits = bfloat16(input_ids=ids, use_cache=False).logits
        tensors["bfloat16.logits"] = logits.detach().to(torch.float32).contiguous().clone()
    save_file(dict(tensors, input_ids=ids), os.path.join(out, "reference.safetensors"))
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("# %s, made by transformers\n\nMade by `scripts/%s` on %s with transformers %s, torch %s, Python %s: "
                "%s\n" % (os.path.basename(out), script,
                          datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                          transformers.__version__, torch.__version__, platform.python_version(), description))
    print("wrote %s: %d tensors" % (out, len(tensors) + 1))
