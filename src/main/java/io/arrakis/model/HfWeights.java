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

    /**
     * Buffers checkpoints carry that are not parameters: gpt2's {@code attn.bias}/{@code attn.masked_bias}, the same
     * causal masks under gpt-neo's {@code attn.attention.} and gpt-neox's {@code attention.}, rotary frequencies.
     */
    private static final List<String> IGNORABLE_SUFFIXES = List.of(".attn.bias", ".attn.masked_bias",
            ".attention.bias", ".attention.masked_bias", "rotary_emb.inv_freq");

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
        checkSupported(config);
        HfWeights reader = new HfWeights(config, source, dtype, device);
        Weights weights = switch (config.family()) {
            case "gpt2" -> reader.gpt2();
            case "gpt-neo" -> reader.gptNeo();
            case "gpt-neox" -> reader.gptNeox();
            case "llama", "mistral", "qwen2", "gemma", "stable-lm" -> reader.llama();
            case "phi3" -> reader.phi3();
            default -> throw new UnsupportedOperationException("loading " + config.family() + " checkpoints is not implemented");
        };
        reader.checkAllUsed(weights);
        return weights;
    }

    /** Throws for configurations whose checkpoints parse but whose forward pass is not implemented. */
    static void checkSupported(HookedAutoConfig config) {
        if (config.family().equals("stable-lm") && Boolean.TRUE.equals(config.raw().get("qk_layernorm"))) {
            throw new UnsupportedOperationException("stable-lm with qk_layernorm=true (per-head LayerNorms on queries and"
                    + " keys) is not supported");
        }
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
                        null, null,
                        param(l + "mlp.c_proj.weight", false, config.dMlp(), d), param(l + "mlp.c_proj.bias", false, d)));
            }
            Tensor lnfw = param(p + "ln_f.weight", false, d);
            Tensor lnfb = param(p + "ln_f.bias", false, d);
            Tensor unembed = unembed(embed, "lm_head.weight");
            return keep(scope, new Weights(embed, pos, layers, lnfw, lnfb, unembed, null));
        }
    }

    /** GPT-Neo: gpt2's layout with {@code nn.Linear} ({@code [out, in]}) projections and separate q/k/v. */
    private Weights gptNeo() {
        String p = source.names().contains("transformer.wte.weight") ? "transformer." : "";
        int d = config.dModel();
        int mlp = config.dMlp();
        try (TensorScope scope = TensorScope.open()) {
            Tensor embed = param(p + "wte.weight", false, config.vocabSize(), d);
            Tensor pos = param(p + "wpe.weight", false, config.maxPositions(), d);
            List<Weights.Layer> layers = new ArrayList<>();
            for (int i = 0; i < config.nLayers(); i++) {
                String l = p + "h." + i + ".";
                String a = l + "attn.attention.";
                layers.add(new Weights.Layer(
                        param(l + "ln_1.weight", false, d), param(l + "ln_1.bias", false, d),
                        param(l + "ln_2.weight", false, d), param(l + "ln_2.bias", false, d),
                        param(a + "q_proj.weight", true, d, d), null,
                        param(a + "k_proj.weight", true, d, d), null,
                        param(a + "v_proj.weight", true, d, d), null,
                        param(a + "out_proj.weight", true, d, d), param(a + "out_proj.bias", false, d),
                        param(l + "mlp.c_fc.weight", true, mlp, d), param(l + "mlp.c_fc.bias", false, mlp),
                        null, null,
                        param(l + "mlp.c_proj.weight", true, d, mlp), param(l + "mlp.c_proj.bias", false, d)));
            }
            Tensor lnfw = param(p + "ln_f.weight", false, d);
            Tensor lnfb = param(p + "ln_f.bias", false, d);
            Tensor unembed = unembed(embed, "lm_head.weight");
            return keep(scope, new Weights(embed, pos, layers, lnfw, lnfb, unembed, null));
        }
    }

    /**
     * GPT-NeoX: {@code query_key_value} is fused per head, its output viewed as {@code [.., heads, 3 * d_head]} and
     * chunked into q, k, v; split here into the flat {@code [q | k | v]} projections.
     */
    private Weights gptNeox() {
        String p = source.names().contains("gpt_neox.embed_in.weight") ? "gpt_neox." : "";
        int d = config.dModel();
        int mlp = config.dMlp();
        int heads = config.nHeads();
        int dHead = config.dHead();
        long qkvOut = 3L * heads * dHead;
        try (TensorScope scope = TensorScope.open()) {
            Tensor embed = param(p + "embed_in.weight", false, config.vocabSize(), d);
            List<Weights.Layer> layers = new ArrayList<>();
            for (int i = 0; i < config.nLayers(); i++) {
                String l = p + "layers." + i + ".";
                String a = l + "attention.";
                // rows of [3·H·d_head, d] in the order (head, q|k|v, d_head); column j of the transposed weight
                Tensor qkv = param(a + "query_key_value.weight", true, qkvOut, d).view(d, heads, 3, dHead);
                Tensor qkvBias = config.qkvBias() ? param(a + "query_key_value.bias", false, qkvOut).view(heads, 3, dHead) : null;
                Tensor[] w = new Tensor[3];
                Tensor[] bias = new Tensor[3];
                for (int j = 0; j < 3; j++) {
                    w[j] = qkv.select(2, j).reshape(d, (long) heads * dHead).contiguous();
                    bias[j] = qkvBias == null ? null : qkvBias.select(1, j).reshape((long) heads * dHead).contiguous();
                }
                layers.add(new Weights.Layer(
                        param(l + "input_layernorm.weight", false, d), param(l + "input_layernorm.bias", false, d),
                        param(l + "post_attention_layernorm.weight", false, d), param(l + "post_attention_layernorm.bias", false, d),
                        w[0], bias[0], w[1], bias[1], w[2], bias[2],
                        param(a + "dense.weight", true, d, (long) heads * dHead), bias(a + "dense.bias", config.outBias(), d),
                        param(l + "mlp.dense_h_to_4h.weight", true, mlp, d), param(l + "mlp.dense_h_to_4h.bias", false, mlp),
                        null, null,
                        param(l + "mlp.dense_4h_to_h.weight", true, d, mlp), param(l + "mlp.dense_4h_to_h.bias", false, d)));
            }
            Tensor lnfw = param(p + "final_layer_norm.weight", false, d);
            Tensor lnfb = param(p + "final_layer_norm.bias", false, d);
            Tensor unembed = unembed(embed, "embed_out.weight");
            return keep(scope, new Weights(embed, null, layers, lnfw, lnfb, unembed, null));
        }
    }

    /**
     * The {@code model.layers.i.self_attn/mlp} layout of llama, mistral, qwen2, gemma and stable-lm: RMSNorm weights,
     * or LayerNorm weights and biases (stable-lm, which has no post-attention norm with a parallel residual).
     */
    private Weights llama() {
        int d = config.dModel();
        long q = (long) config.nHeads() * config.dHead();
        long kv = (long) config.nKvHeads() * config.dHead();
        int mlp = config.dMlp();
        boolean normBias = !config.rmsNorm();
        boolean postAttentionNorm = !(config.parallelResidual() && config.family().equals("stable-lm"));
        try (TensorScope scope = TensorScope.open()) {
            Tensor embed = param("model.embed_tokens.weight", false, config.vocabSize(), d);
            List<Weights.Layer> layers = new ArrayList<>();
            for (int i = 0; i < config.nLayers(); i++) {
                String l = "model.layers." + i + ".";
                String a = l + "self_attn.";
                layers.add(new Weights.Layer(
                        param(l + "input_layernorm.weight", false, d), bias(l + "input_layernorm.bias", normBias, d),
                        postAttentionNorm ? param(l + "post_attention_layernorm.weight", false, d) : null,
                        bias(l + "post_attention_layernorm.bias", normBias && postAttentionNorm, d),
                        param(a + "q_proj.weight", true, q, d), bias(a + "q_proj.bias", config.qkvBias(), q),
                        param(a + "k_proj.weight", true, kv, d), bias(a + "k_proj.bias", config.qkvBias(), kv),
                        param(a + "v_proj.weight", true, kv, d), bias(a + "v_proj.bias", config.qkvBias(), kv),
                        param(a + "o_proj.weight", true, d, q), bias(a + "o_proj.bias", config.outBias(), d),
                        param(l + "mlp.up_proj.weight", true, mlp, d), bias(l + "mlp.up_proj.bias", config.mlpBias(), mlp),
                        param(l + "mlp.gate_proj.weight", true, mlp, d), bias(l + "mlp.gate_proj.bias", config.mlpBias(), mlp),
                        param(l + "mlp.down_proj.weight", true, d, mlp), bias(l + "mlp.down_proj.bias", config.mlpBias(), d)));
            }
            Tensor lnfw = param("model.norm.weight", false, d);
            Tensor lnfb = bias("model.norm.bias", normBias, d);
            Tensor unembed = unembed(embed, "lm_head.weight");
            return keep(scope, new Weights(embed, null, layers, lnfw, lnfb, unembed, null));
        }
    }

    /** Phi-3: llama with a fused {@code qkv_proj} ({@code [q | k | v]} rows) and {@code gate_up_proj} ({@code [gate | up]}). */
    private Weights phi3() {
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
                Tensor qkv = param(a + "qkv_proj.weight", true, q + 2 * kv, d);
                Tensor gateUp = param(l + "mlp.gate_up_proj.weight", true, 2L * mlp, d);
                layers.add(new Weights.Layer(
                        param(l + "input_layernorm.weight", false, d), null,
                        param(l + "post_attention_layernorm.weight", false, d), null,
                        qkv.narrow(1, 0, q).contiguous(), null,
                        qkv.narrow(1, q, kv).contiguous(), null,
                        qkv.narrow(1, q + kv, kv).contiguous(), null,
                        param(a + "o_proj.weight", true, d, q), null,
                        gateUp.narrow(1, mlp, mlp).contiguous(), null,
                        gateUp.narrow(1, 0, mlp).contiguous(), null,
                        param(l + "mlp.down_proj.weight", true, d, mlp), null));
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
            if (transpose && raw.dtype() == dtype && device.isCpu()) { // the transposing copy is the only one needed
                try (Tensor t = raw.transpose(0, 1)) {
                    return t.isContiguous() ? t.copy() : t.contiguous();
                }
            }
            try (Tensor converted = raw.to(dtype, device)) {
                if (!transpose) {
                    return converted.contiguous();
                }
                try (Tensor t = converted.transpose(0, 1)) {
                    return t.contiguous();
                }
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
