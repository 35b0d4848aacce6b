package io.arrakis.model;

import io.arrakis.torch.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static io.arrakis.model.ReferenceMath.add;
import static io.arrakis.model.ReferenceMath.attention;
import static io.arrakis.model.ReferenceMath.embed;
import static io.arrakis.model.ReferenceMath.layerNorm;
import static io.arrakis.model.ReferenceMath.linear;
import static io.arrakis.model.ReferenceMath.projection;
import static io.arrakis.model.ReferenceMath.rotateHalf;
import static io.arrakis.model.ReferenceMath.silu;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * An OLMo reference model for which no Hugging Face run was at hand: a tiny random checkpoint and the activations of
 * {@code OlmoForCausalLM}'s forward pass as transformers' modeling file defines it, computed here in double precision
 * in plain Java, apart from the library's forward pass ({@link ReferenceMath}): Llama's pre-norm blocks whose norms
 * are {@code OlmoLayerNorm}s, {@code (x - mean) / sqrt(var + 1e-5)} with no weight or bias; the projected queries,
 * keys and values, their biases added ({@code attention_bias}, which the output projection has too), clamped to
 * {@code [-clip_qkv, clip_qkv]} ({@value #CLIP}, which clips a good part of them); the rotary embedding over the whole
 * head in the {@code rotate_half} convention; a causal softmax over grouped key/value heads; a gated SiLU MLP; the
 * embeddings tied, as OLMo-1B's are.
 */
final class OlmoReference {
    static final double CLIP = 1.5;
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = D / HEADS;
    private static final int MLP = 40;
    private static final int LAYERS = 2;
    private static final double EPS = 1e-5; // OlmoLayerNorm's, which no key sets
    private static final double THETA = 1000.0; // not the default, so that rope_theta counts
    private static final int BATCH = 2;
    private static final int POS = 10;

    private OlmoReference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir) throws IOException {
        HookedAutoConfig config = HookedAutoConfig.of("olmo").with(Map.ofEntries(Map.entry("vocab_size", VOCAB),
                Map.entry("hidden_size", D), Map.entry("intermediate_size", MLP),
                Map.entry("num_hidden_layers", LAYERS), Map.entry("num_attention_heads", HEADS),
                Map.entry("num_key_value_heads", KV), Map.entry("initializer_range", 0.2),
                Map.entry("max_position_embeddings", 64), Map.entry("rope_theta", THETA),
                Map.entry("clip_qkv", CLIP), Map.entry("tie_word_embeddings", true),
                Map.entry("attention_bias", true)));
        ReferenceMath.write(config, 31, BATCH, POS, dir, OlmoReference::forward);
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out) {
        int n = BATCH * POS;
        double[] x = embed(w, ids, D);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            out.put("blocks." + layer + ".hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = normalised(x, n);
            out.put("blocks." + layer + ".ln1.hook_normalized", tensor(h, BATCH, POS, D));
            double[] q = clipped(projection(w, p + "self_attn.q_proj", h, n, HEADS * HD, D, true));
            double[] k = clipped(projection(w, p + "self_attn.k_proj", h, n, KV * HD, D, true));
            double[] v = clipped(projection(w, p + "self_attn.v_proj", h, n, KV * HD, D, true));
            out.put("blocks." + layer + ".attn.hook_q", tensor(q, BATCH, POS, HEADS, HD));
            out.put("blocks." + layer + ".attn.hook_v", tensor(v, BATCH, POS, KV, HD));
            rotateHalf(q, BATCH, POS, HEADS, HD, THETA);
            rotateHalf(k, BATCH, POS, KV, HD, THETA);
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, Integer.MAX_VALUE, layer, out);
            add(x, projection(w, p + "self_attn.o_proj", z, n, D, HEADS * HD, true));
            double[] h2 = normalised(x, n);
            double[] gate = linear(h2, n, w.get(p + "mlp.gate_proj.weight"), MLP, D);
            double[] up = linear(h2, n, w.get(p + "mlp.up_proj.weight"), MLP, D);
            add(x, linear(silu(gate, up), n, w.get(p + "mlp.down_proj.weight"), D, MLP));
        }
        double[] last = normalised(x, n);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(linear(last, n, w.get("model.embed_tokens.weight"), VOCAB, D), BATCH, POS, VOCAB));
    }

    /** OlmoLayerNorm: a LayerNorm without weight or bias. */
    private static double[] normalised(double[] x, int n) {
        double[] ones = new double[D];
        Arrays.fill(ones, 1);
        return layerNorm(x, n, D, ones, new double[D], EPS);
    }

    private static double[] clipped(double[] x) {
        for (int i = 0; i < x.length; i++) {
            x[i] = Math.max(-CLIP, Math.min(CLIP, x[i]));
        }
        return x;
    }
}
