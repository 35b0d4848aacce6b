package io.arrakis.model;

import io.arrakis.torch.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import static io.arrakis.model.ReferenceMath.add;
import static io.arrakis.model.ReferenceMath.attention;
import static io.arrakis.model.ReferenceMath.embed;
import static io.arrakis.model.ReferenceMath.linear;
import static io.arrakis.model.ReferenceMath.projection;
import static io.arrakis.model.ReferenceMath.rmsNorm;
import static io.arrakis.model.ReferenceMath.rotateHalf;
import static io.arrakis.model.ReferenceMath.silu;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * A Seed-OSS reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights
 * drawn around 1 and its biases around 0, so that every one counts) and the activations of
 * {@code SeedOssForCausalLM}'s forward pass as transformers' modeling file defines it, computed here in double
 * precision in plain Java, apart from the library's forward pass ({@link ReferenceMath}): Llama's pre-norm blocks with
 * RMSNorm {@code x / sqrt(mean(x^2) + eps) * w}, biases on the query, key and value projections
 * ({@code attention_bias}) and none on the output projection ({@code attention_out_bias}), as the published models
 * have them, the rotary embedding over the whole head in the {@code rotate_half} convention (frequency i turns the pair
 * {@code (i, i + head_dim / 2)}), a causal softmax over grouped key/value heads, and an untied head.
 */
final class SeedOssReference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = 12; // not D / HEADS, so that head_dim counts
    private static final int MLP = 24;
    private static final int LAYERS = 2;
    private static final double EPS = 1e-6;
    private static final double THETA = 1000.0; // not the default, so that rope_theta counts
    private static final int BATCH = 2;
    private static final int POS = 10;

    private SeedOssReference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir) throws IOException {
        HookedAutoConfig config = HookedAutoConfig.of("seed-oss").with(Map.ofEntries(Map.entry("vocab_size", VOCAB),
                Map.entry("hidden_size", D), Map.entry("intermediate_size", MLP),
                Map.entry("num_hidden_layers", LAYERS), Map.entry("num_attention_heads", HEADS),
                Map.entry("num_key_value_heads", KV), Map.entry("head_dim", HD), Map.entry("initializer_range", 0.2),
                Map.entry("max_position_embeddings", 64), Map.entry("rope_theta", THETA),
                Map.entry("rms_norm_eps", EPS)));
        ReferenceMath.write(config, 23, BATCH, POS, dir, SeedOssReference::forward);
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out) {
        int n = BATCH * POS;
        double[] x = embed(w, ids, D);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            out.put("blocks." + layer + ".hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = rmsNorm(x, n, D, w.get(p + "input_layernorm.weight"), EPS);
            double[] q = projection(w, p + "self_attn.q_proj", h, n, HEADS * HD, D, true);
            double[] k = projection(w, p + "self_attn.k_proj", h, n, KV * HD, D, true);
            double[] v = projection(w, p + "self_attn.v_proj", h, n, KV * HD, D, true);
            rotateHalf(q, BATCH, POS, HEADS, HD, THETA);
            rotateHalf(k, BATCH, POS, KV, HD, THETA);
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, Integer.MAX_VALUE, layer, out);
            add(x, linear(z, n, w.get(p + "self_attn.o_proj.weight"), D, HEADS * HD));
            double[] h2 = rmsNorm(x, n, D, w.get(p + "post_attention_layernorm.weight"), EPS);
            double[] act = silu(linear(h2, n, w.get(p + "mlp.gate_proj.weight"), MLP, D),
                    linear(h2, n, w.get(p + "mlp.up_proj.weight"), MLP, D));
            add(x, linear(act, n, w.get(p + "mlp.down_proj.weight"), D, MLP));
        }
        double[] last = rmsNorm(x, n, D, w.get("model.norm.weight"), EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(linear(last, n, w.get("lm_head.weight"), VOCAB, D), BATCH, POS, VOCAB));
    }
}
