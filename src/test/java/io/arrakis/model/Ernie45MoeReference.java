package io.arrakis.model;

import io.arrakis.torch.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import static io.arrakis.model.ReferenceMath.add;
import static io.arrakis.model.ReferenceMath.attention;
import static io.arrakis.model.ReferenceMath.embed;
import static io.arrakis.model.ReferenceMath.gatedExpert;
import static io.arrakis.model.ReferenceMath.linear;
import static io.arrakis.model.ReferenceMath.rmsNorm;
import static io.arrakis.model.ReferenceMath.rotateInterleaved;
import static io.arrakis.model.ReferenceMath.silu;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * An ERNIE 4.5 mixture-of-experts reference model for which no Hugging Face run was at hand: a tiny random checkpoint
 * (its norm weights drawn around 1 and its correction biases around 0) and the activations of
 * {@code Ernie4_5_MoeForCausalLM}'s forward pass as transformers' modeling file defines it, computed here in double
 * precision in plain Java, apart from the library's forward pass ({@link ReferenceMath}): ERNIE 4.5's attention (the
 * rotary embedding in the interleaved convention); a dense gated MLP on the layers outside
 * {@code moe_layer_start_index..moe_layer_end_index}; on the others the router's softmax over all experts, the
 * {@code moe_k} experts with the largest softmax plus correction bias ({@code moe_statics}), weighted by their softmax
 * without the bias divided by its sum or by {@code moe_norm_min} where the sum is smaller, plus the shared experts'
 * output; the head tied to the embedding.
 */
final class Ernie45MoeReference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = 12; // not D / HEADS, so that head_dim counts
    private static final int DENSE = 40;
    private static final int EXPERT = 16;
    private static final int SHARED = 2 * EXPERT;
    private static final int LAYERS = 4;
    private static final int EXPERTS = 6;
    private static final int TOP_K = 2;
    /** Above many tokens' sums of two of six softmax values, so that both divisions are checked. */
    private static final double NORM_MIN = 0.4;
    private static final double EPS = 1e-5;
    private static final double THETA = 10000.0;
    private static final int BATCH = 2;
    private static final int POS = 10;

    private Ernie45MoeReference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir) throws IOException {
        HookedAutoConfig config = HookedAutoConfig.of("ernie4_5_moe").with(Map.ofEntries(
                Map.entry("vocab_size", VOCAB), Map.entry("hidden_size", D), Map.entry("intermediate_size", DENSE),
                Map.entry("num_hidden_layers", LAYERS), Map.entry("num_attention_heads", HEADS),
                Map.entry("num_key_value_heads", KV), Map.entry("head_dim", HD), Map.entry("initializer_range", 0.2),
                Map.entry("max_position_embeddings", 64), Map.entry("rope_theta", THETA),
                Map.entry("rms_norm_eps", EPS), Map.entry("moe_intermediate_size", EXPERT),
                Map.entry("moe_num_experts", EXPERTS), Map.entry("moe_k", TOP_K),
                Map.entry("moe_num_shared_experts", SHARED / EXPERT), Map.entry("moe_layer_start_index", 1),
                Map.entry("moe_layer_end_index", 2), Map.entry("moe_norm_min", NORM_MIN)));
        ReferenceMath.write(config, 47, BATCH, POS, dir, Ernie45MoeReference::forward);
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out) {
        int n = BATCH * POS;
        double[] x = embed(w, ids, D);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            String b = "blocks." + layer + ".";
            out.put(b + "hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = rmsNorm(x, n, D, w.get(p + "input_layernorm.weight"), EPS);
            double[] q = linear(h, n, w.get(p + "self_attn.q_proj.weight"), HEADS * HD, D);
            double[] k = linear(h, n, w.get(p + "self_attn.k_proj.weight"), KV * HD, D);
            double[] v = linear(h, n, w.get(p + "self_attn.v_proj.weight"), KV * HD, D);
            rotateInterleaved(q, BATCH, POS, HEADS, HD, HD, THETA);
            rotateInterleaved(k, BATCH, POS, KV, HD, HD, THETA);
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, Integer.MAX_VALUE, layer, out);
            add(x, linear(z, n, w.get(p + "self_attn.o_proj.weight"), D, HEADS * HD));
            double[] h2 = rmsNorm(x, n, D, w.get(p + "post_attention_layernorm.weight"), EPS);
            double[] mlp;
            if (layer == 1 || layer == 2) { // moe_layer_start_index 1 to moe_layer_end_index 2, interval 1
                mlp = mixture(w, p + "mlp.", h2, n, b, out);
            } else {
                double[] act = silu(linear(h2, n, w.get(p + "mlp.gate_proj.weight"), DENSE, D),
                        linear(h2, n, w.get(p + "mlp.up_proj.weight"), DENSE, D));
                mlp = linear(act, n, w.get(p + "mlp.down_proj.weight"), D, DENSE);
            }
            out.put(b + "hook_mlp_out", tensor(mlp, BATCH, POS, D));
            add(x, mlp);
        }
        double[] last = rmsNorm(x, n, D, w.get("model.norm.weight"), EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(linear(last, n, w.get("model.embed_tokens.weight"), VOCAB, D), BATCH, POS, VOCAB));
    }

    /** The routed experts' weighted outputs plus the shared experts', recording the router's logits and choices. */
    private static double[] mixture(Map<String, double[]> w, String p, double[] h, int n, String b,
                                    Map<String, Tensor> out) {
        double[] logits = linear(h, n, w.get(p + "gate.weight"), EXPERTS, D);
        double[] bias = w.get(p + "moe_statics.e_score_correction_bias"); // [1, experts]
        double[] y = new double[n * D];
        double[] chosenOut = new double[n * TOP_K];
        double[] weightsOut = new double[n * TOP_K];
        for (int t = 0; t < n; t++) {
            double[] probs = ReferenceMath.softmax(logits, t * EXPERTS, EXPERTS);
            double[] choice = new double[EXPERTS];
            for (int e = 0; e < EXPERTS; e++) {
                choice[e] = probs[e] + bias[e];
            }
            int[] chosen = ReferenceMath.topExperts(choice, TOP_K, 1, 1, false);
            double sum = 0;
            for (int e : chosen) {
                sum += probs[e];
            }
            double[] row = java.util.Arrays.copyOfRange(h, t * D, (t + 1) * D);
            double[] shared = gatedExpert(w, p + "shared_experts.gate_proj.weight",
                    p + "shared_experts.up_proj.weight", p + "shared_experts.down_proj.weight", row, D, SHARED);
            for (int j = 0; j < TOP_K; j++) {
                int e = chosen[j];
                double weight = probs[e] / Math.max(sum, NORM_MIN);
                chosenOut[t * TOP_K + j] = e;
                weightsOut[t * TOP_K + j] = weight;
                String expert = p + "experts." + e + ".";
                double[] o = gatedExpert(w, expert + "gate_proj.weight", expert + "up_proj.weight",
                        expert + "down_proj.weight", row, D, EXPERT);
                for (int i = 0; i < D; i++) {
                    y[t * D + i] += weight * o[i];
                }
            }
            for (int i = 0; i < D; i++) {
                y[t * D + i] += shared[i];
            }
        }
        out.put(b + "mlp.hook_router_logits", tensor(logits, BATCH, POS, EXPERTS));
        out.put(b + "mlp.hook_expert_indices", tensor(chosenOut, BATCH, POS, TOP_K));
        out.put(b + "mlp.hook_expert_weights", tensor(weightsOut, BATCH, POS, TOP_K));
        return y;
    }
}
