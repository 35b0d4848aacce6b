package io.arrakis.model;

import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Reads a Hugging Face checkpoint's tensors, by their Hugging Face names, into {@link Weights}: transposed into the
 * {@code x @ W} layout, split where Hugging Face fuses, checked against the config's shapes, converted to the model's
 * dtype and device.
 */
final class HfWeights {

    /** Where checkpoint tensors come from, by name. */
    interface Source {
        Set<String> names();

        /** The tensor on the CPU in the file's dtype; the caller owns it. */
        Tensor load(String name);
    }

    /** Buffers checkpoints carry that are not parameters. */
    private static final List<String> IGNORABLE_SUFFIXES = List.of(".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq");

    private final HookedAutoConfig config;
    private final Source source;
    private final DType dtype;
    private final Device device;
    private final Set<String> used = new HashSet<>();

    private HfWeights(HookedAutoConfig config, Source source, DType dtype, Device device) {
        this.config = config;
        this.source = source;
        this.dtype = dtype;
        this.device = device;
    }

    static Weights load(HookedAutoConfig config, Source source, DType dtype, Device device) {
        HfWeights reader = new HfWeights(config, source, dtype, device);
        Weights weights = switch (config.family()) {
            case "gpt2" -> reader.gpt2();
            case "llama", "mistral", "qwen2" -> reader.llama();
            default -> throw new UnsupportedOperationException("loading " + config.family()
                    + " checkpoints is not implemented yet; supported so far: gpt2, llama, mistral, qwen2");
        };
        reader.checkAllUsed(weights);
        return weights;
    }

    private Weights gpt2() {
        String p = source.names().contains("transformer.wte.weight") ? "transformer." : "";
        int d = config.dModel();
        try (TensorScope scope = TensorScope.open()) {
            Tensor embed = param(p + "wte.weight", false, config.vocabSize(), d);
            Tensor pos = param(p + "wpe.weight", false, config.maxPositions(), d);
            List<Weights.Layer> layers = new ArrayList<>();
            for (int i = 0; i < config.nLayers(); i++) {
                String l = p + "h." + i + ".";
                Tensor qkv = param(l + "attn.c_attn.weight", false, d, 3L * d);
                Tensor qkvBias = param(l + "attn.c_attn.bias", false, 3L * d);
                layers.add(new Weights.Layer(
                        param(l + "ln_1.weight", false, d), param(l + "ln_1.bias", false, d),
                        param(l + "ln_2.weight", false, d), param(l + "ln_2.bias", false, d),
                        qkv.narrow(1, 0, d).contiguous(), qkvBias.narrow(0, 0, d).contiguous(),
                        qkv.narrow(1, d, d).contiguous(), qkvBias.narrow(0, d, d).contiguous(),
                        qkv.narrow(1, 2L * d, d).contiguous(), qkvBias.narrow(0, 2L * d, d).contiguous(),
                        param(l + "attn.c_proj.weight", false, d, d), param(l + "attn.c_proj.bias", false, d),
                        param(l + "mlp.c_fc.weight", false, d, config.dMlp()), param(l + "mlp.c_fc.bias", false, config.dMlp()),
                        null,
                        param(l + "mlp.c_proj.weight", false, config.dMlp(), d), param(l + "mlp.c_proj.bias", false, d)));
            }
            Tensor lnfw = param(p + "ln_f.weight", false, d);
            Tensor lnfb = param(p + "ln_f.bias", false, d);
            Tensor unembed = unembed(embed, "lm_head.weight");
            return keep(scope, new Weights(embed, pos, layers, lnfw, lnfb, unembed, null));
        }
    }

    private Weights llama() {
        int d = config.dModel();
        long q = (long) config.nHeads() * config.dHead();
        long kv = (long) config.nKvHeads() * config.dHead();
        int mlp = config.dMlp();
        try (TensorScope scope = TensorScope.open()) {
            Tensor embed = param("model.embed_tokens.weight", false, config.vocabSize(), d);
            List<Weights.Layer> layers = new ArrayList<>();
            for (int i = 0; i < config.nLayers(); i++) {
                String l = "model.layers." + i + ".";
                String a = l + "self_attn.";
                layers.add(new Weights.Layer(
                        param(l + "input_layernorm.weight", false, d), null,
                        param(l + "post_attention_layernorm.weight", false, d), null,
                        param(a + "q_proj.weight", true, q, d), bias(a + "q_proj.bias", config.qkvBias(), q),
                        param(a + "k_proj.weight", true, kv, d), bias(a + "k_proj.bias", config.qkvBias(), kv),
                        param(a + "v_proj.weight", true, kv, d), bias(a + "v_proj.bias", config.qkvBias(), kv),
                        param(a + "o_proj.weight", true, d, q), bias(a + "o_proj.bias", config.outBias(), d),
                        param(l + "mlp.up_proj.weight", true, mlp, d), bias(l + "mlp.up_proj.bias", config.mlpBias(), mlp),
                        param(l + "mlp.gate_proj.weight", true, mlp, d),
                        param(l + "mlp.down_proj.weight", true, d, mlp), bias(l + "mlp.down_proj.bias", config.mlpBias(), d)));
            }
            Tensor lnfw = param("model.norm.weight", false, d);
            Tensor unembed = unembed(embed, "lm_head.weight");
            return keep(scope, new Weights(embed, null, layers, lnfw, null, unembed, null));
        }
    }

    /** The unembedding {@code [d_model, vocab]}: the transposed lm_head, or the embedding when they are tied. */
    private Tensor unembed(Tensor embed, String lmHead) {
        if (!config.tiedEmbeddings() && source.names().contains(lmHead)) {
            return param(lmHead, true, config.vocabSize(), config.dModel());
        }
        if (!config.tiedEmbeddings()) {
            throw new IllegalArgumentException("the checkpoint has no " + lmHead + " but its config says the embeddings"
                    + " are not tied (tie_word_embeddings=false)");
        }
        used.add(lmHead); // a tied checkpoint may still store a copy
        return embed.transpose(0, 1).contiguous();
    }

    private Tensor bias(String name, boolean expected, long size) {
        if (!expected) {
            return null;
        }
        return param(name, false, size);
    }

    /**
     * The tensor {@code name} with the Hugging Face shape {@code shape}, in the model's dtype and device, transposed
     * (for {@code nn.Linear}'s {@code [out, in]}) when asked.
     */
    private Tensor param(String name, boolean transpose, long... shape) {
        if (!source.names().contains(name)) {
            throw new IllegalArgumentException("the checkpoint has no tensor '" + name + "', which a " + config.family()
                    + " model with this config needs" + near(name));
        }
        used.add(name);
        try (Tensor raw = source.load(name)) {
            if (!Arrays.equals(raw.shape(), shape)) {
                throw new IllegalArgumentException("tensor '" + name + "' has shape " + Arrays.toString(raw.shape())
                        + " but the config needs " + Arrays.toString(shape));
            }
            if (!raw.dtype().isFloatingPoint()) {
                throw new IllegalArgumentException("tensor '" + name + "' is " + raw.dtype() + "; weights must be floating point");
            }
            try (Tensor converted = raw.to(dtype, device)) {
                return transpose ? converted.transpose(0, 1).contiguous() : converted.contiguous();
            }
        }
    }

    private String near(String name) {
        String tail = name.substring(name.lastIndexOf('.', name.length() - 8) + 1);
        List<String> similar = source.names().stream().filter(n -> n.endsWith(tail)).limit(3).toList();
        return similar.isEmpty() ? "" : " (the file has e.g. " + String.join(", ", similar) + ")";
    }

    private void checkAllUsed(Weights weights) {
        TreeSet<String> unexpected = new TreeSet<>();
        for (String n : source.names()) {
            if (!used.contains(n) && IGNORABLE_SUFFIXES.stream().noneMatch(n::endsWith)) {
                unexpected.add(n);
            }
        }
        if (!unexpected.isEmpty()) {
            weights.close();
            throw new IllegalArgumentException("the checkpoint has tensors a " + config.family() + " model with this config"
                    + " does not use, e.g. " + String.join(", ", unexpected.stream().limit(5).toList())
                    + " — is config.json for this checkpoint?");
        }
    }

    /** Hands every parameter out of the loading scope. */
    private static Weights keep(TensorScope scope, Weights w) {
        scope.keep(w.embed);
        if (w.posEmbed != null) {
            scope.keep(w.posEmbed);
        }
        w.layers.forEach(l -> l.all().forEach(scope::keep));
        scope.keep(w.lnfw);
        if (w.lnfb != null) {
            scope.keep(w.lnfb);
        }
        scope.keep(w.unembed);
        if (w.unembedBias != null) {
            scope.keep(w.unembedBias);
        }
        return w;
    }
}
