package io.arrakis.model;

import io.arrakis.torch.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.ReferenceMath.add;
import static io.arrakis.model.ReferenceMath.attention;
import static io.arrakis.model.ReferenceMath.embed;
import static io.arrakis.model.ReferenceMath.gatedExpert;
import static io.arrakis.model.ReferenceMath.layerNorm;
import static io.arrakis.model.ReferenceMath.linear;
import static io.arrakis.model.ReferenceMath.projection;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * A PhiMoE reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights drawn
 * around 1 and its biases around 0) and the activations of {@code PhimoeForCausalLM}'s forward pass as transformers'
 * modeling file defines it, computed here in double precision in plain Java, apart from the library's forward pass
 * ({@link ReferenceMath}): LayerNorms with weight and bias; biased query, key, value and output projections; the
 * {@code rotate_half} rotation of its longrope as {@code PhimoeRotaryEmbedding} computes it, the short factors'
 * frequencies {@code 1 / (short_i · theta^(2i / d))} for a pass longer than the original context too, cos and sin
 * scaled by {@code long_mscale} there; causal softmax attention within a sliding window over grouped key/value heads;
 * the sparsemixer's two experts (the best logit, weighted by its share of the softmax over the logits within
 * {@code 2 · router_jitter_noise} of it relative to the larger of their magnitudes, then the best of the others
 * likewise), {@code w2(silu(w1 x) * w3 x)}; the unembedding's bias.
 */
final class PhimoeReference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = D / HEADS;
    private static final int MLP = 24;
    private static final int LAYERS = 2;
    private static final int EXPERTS = 5;
    private static final double EPS = 1e-5;
    private static final double THETA = 10000.0;
    /** Wide enough that the softmaxes often hold more than the chosen logit. */
    private static final double JITTER = 0.25;
    private static final int WINDOW = 6;
    /** Shorter than the pass, so that the long side's mscale applies, with the short factors. */
    private static final int ORIGINAL = 8;
    private static final List<Double> SHORT = List.of(1.0, 1.5, 2.5, 4.0);
    private static final List<Double> LONG = List.of(3.0, 7.0, 11.0, 13.0);
    private static final double SHORT_MSCALE = 1.1;
    private static final double LONG_MSCALE = 1.3;
    private static final int BATCH = 2;
    private static final int POS = 10;

    private PhimoeReference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir) throws IOException {
        Map<String, Object> rope = Map.of("rope_type", "longrope", "rope_theta", THETA, "short_factor", SHORT,
                "long_factor", LONG, "short_mscale", SHORT_MSCALE, "long_mscale", LONG_MSCALE,
                "original_max_position_embeddings", ORIGINAL);
        HookedAutoConfig config = HookedAutoConfig.of("phimoe").with(Map.ofEntries(Map.entry("vocab_size", VOCAB),
                Map.entry("hidden_size", D), Map.entry("intermediate_size", MLP),
                Map.entry("num_hidden_layers", LAYERS), Map.entry("num_attention_heads", HEADS),
                Map.entry("num_key_value_heads", KV), Map.entry("num_local_experts", EXPERTS),
                Map.entry("router_jitter_noise", JITTER), Map.entry("initializer_range", 0.2),
                Map.entry("max_position_embeddings", 64), Map.entry("rope_parameters", rope),
                Map.entry("rms_norm_eps", EPS), Map.entry("attention_bias", true), Map.entry("lm_head_bias", true),
                Map.entry("sliding_window", WINDOW)));
        ReferenceMath.write(config, 59, BATCH, POS, dir, PhimoeReference::forward);
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out) {
        int n = BATCH * POS;
        double[] x = embed(w, ids, D);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            String b = "blocks." + layer + ".";
            out.put(b + "hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = layerNorm(x, n, D, w.get(p + "input_layernorm.weight"), w.get(p + "input_layernorm.bias"),
                    EPS);
            double[] q = projection(w, p + "self_attn.q_proj", h, n, HEADS * HD, D, true);
            double[] k = projection(w, p + "self_attn.k_proj", h, n, KV * HD, D, true);
            double[] v = projection(w, p + "self_attn.v_proj", h, n, KV * HD, D, true);
            rotate(q, HEADS);
            rotate(k, KV);
            out.put(b + "attn.hook_rot_q", tensor(q, BATCH, POS, HEADS, HD));
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, WINDOW, layer, out);
            add(x, projection(w, p + "self_attn.o_proj", z, n, D, HEADS * HD, true));
            double[] h2 = layerNorm(x, n, D, w.get(p + "post_attention_layernorm.weight"),
                    w.get(p + "post_attention_layernorm.bias"), EPS);
            double[] mlp = mixture(w, p + "block_sparse_moe.", h2, n, b, out);
            out.put(b + "hook_mlp_out", tensor(mlp, BATCH, POS, D));
            add(x, mlp);
        }
        double[] last = layerNorm(x, n, D, w.get("model.norm.weight"), w.get("model.norm.bias"), EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(projection(w, "lm_head", last, n, VOCAB, D, true), BATCH, POS, VOCAB));
    }

    /** {@code rotate_half} by the short factors' angles, cos and sin times the long mscale (the pass is longer). */
    private static void rotate(double[] x, int heads) {
        double scale = POS > ORIGINAL ? LONG_MSCALE : SHORT_MSCALE;
        int half = HD / 2;
        for (int t = 0; t < BATCH * POS; t++) {
            int position = t % POS;
            for (int head = 0; head < heads; head++) {
                int at = (t * heads + head) * HD;
                for (int i = 0; i < half; i++) {
                    double angle = position / (SHORT.get(i) * Math.pow(THETA, 2.0 * i / HD));
                    double cos = Math.cos(angle) * scale;
                    double sin = Math.sin(angle) * scale;
                    double first = x[at + i];
                    double second = x[at + i + half];
                    x[at + i] = first * cos - second * sin;
                    x[at + i + half] = second * cos + first * sin;
                }
            }
        }
    }

    /** The sparsemixer's two experts' weighted outputs, recording the router's logits and choices. */
    private static double[] mixture(Map<String, double[]> w, String p, double[] h, int n, String b,
                                    Map<String, Tensor> out) {
        double[] logits = linear(h, n, w.get(p + "gate.weight"), EXPERTS, D);
        double[] y = new double[n * D];
        double[] chosenOut = new double[n * 2];
        double[] weightsOut = new double[n * 2];
        for (int t = 0; t < n; t++) {
            double[] s = java.util.Arrays.copyOfRange(logits, t * EXPERTS, (t + 1) * EXPERTS);
            int first = best(s, -1);
            int second = best(s, first);
            double[] row = java.util.Arrays.copyOfRange(h, t * D, (t + 1) * D);
            int[] chosen = {first, second};
            for (int j = 0; j < 2; j++) {
                int e = chosen[j];
                double weight = share(s, e, j == 0 ? -1 : first);
                chosenOut[t * 2 + j] = e;
                weightsOut[t * 2 + j] = weight;
                String expert = p + "experts." + e + ".";
                double[] o = gatedExpert(w, expert + "w1.weight", expert + "w3.weight", expert + "w2.weight", row, D,
                        MLP);
                for (int i = 0; i < D; i++) {
                    y[t * D + i] += weight * o[i];
                }
            }
        }
        out.put(b + "mlp.hook_router_logits", tensor(logits, BATCH, POS, EXPERTS));
        out.put(b + "mlp.hook_expert_indices", tensor(chosenOut, BATCH, POS, 2));
        out.put(b + "mlp.hook_expert_weights", tensor(weightsOut, BATCH, POS, 2));
        return y;
    }

    /** The expert with the largest logit, {@code excluded} left out. */
    private static int best(double[] s, int excluded) {
        int best = -1;
        for (int e = 0; e < s.length; e++) {
            best = e != excluded && (best < 0 || s[e] > s[best]) ? e : best;
        }
        return best;
    }

    /**
     * Expert {@code e}'s share of the softmax over the logits {@code s} within {@code 2 · JITTER} of its own,
     * relative to the larger of their magnitude and its logit, {@code excluded} left out.
     */
    private static double share(double[] s, int e, int excluded) {
        double sum = 0;
        for (int f = 0; f < s.length; f++) {
            if (f != excluded && (s[e] - s[f]) / Math.max(Math.abs(s[f]), s[e]) <= 2 * JITTER) {
                sum += Math.exp(s[f] - s[e]);
            }
        }
        return 1 / sum;
    }
}
