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
import static io.arrakis.model.ReferenceMath.linear;
import static io.arrakis.model.ReferenceMath.projection;
import static io.arrakis.model.ReferenceMath.rmsNorm;
import static io.arrakis.model.ReferenceMath.rotateHalf;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * A HunYuan mixture-of-experts reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its
 * norm weights drawn around 1) and the activations of {@code HunYuanMoEV1ForCausalLM}'s forward pass as transformers'
 * modeling file defines it, computed here in double precision in plain Java, apart from the library's forward pass
 * ({@link ReferenceMath}): HunYuan dense's attention (biased projections, {@code rotate_half} rotation with the base
 * {@code rope_theta · alpha^(head_dim / (head_dim - 2))}, then the per-head {@code query_layernorm} and
 * {@code key_layernorm}); for the MLP the router {@code mlp.gate.wg}'s softmax over all experts, its {@code moe_topk}
 * largest values divided by their sum weighting {@code down(silu(gate x) * up x)} of those experts, plus the shared
 * {@code mlp.shared_mlp}'s output, unweighted.
 */
final class HunYuanMoeReference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = 12; // not D / HEADS, so that head_dim counts
    private static final int MLP = 24;
    private static final int LAYERS = 2;
    private static final int EXPERTS = 6;
    private static final int TOP_K = 2;
    private static final double EPS = 1e-5;
    private static final double THETA = 1000.0;
    private static final double ALPHA = 50.0;
    private static final int BATCH = 2;
    private static final int POS = 10;

    private HunYuanMoeReference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir) throws IOException {
        Map<String, Object> rope = Map.of("rope_type", "dynamic", "rope_theta", THETA, "alpha", ALPHA, "factor", 1.0);
        HookedAutoConfig config = HookedAutoConfig.of("hunyuan_v1_moe").with(Map.ofEntries(
                Map.entry("vocab_size", VOCAB), Map.entry("hidden_size", D), Map.entry("intermediate_size", MLP),
                Map.entry("num_hidden_layers", LAYERS), Map.entry("num_attention_heads", HEADS),
                Map.entry("num_key_value_heads", KV), Map.entry("head_dim", HD), Map.entry("initializer_range", 0.2),
                Map.entry("max_position_embeddings", 64), Map.entry("rope_parameters", rope),
                Map.entry("rms_norm_eps", EPS), Map.entry("attention_bias", true), Map.entry("num_experts", EXPERTS),
                Map.entry("moe_topk", List.of(TOP_K, TOP_K)))); // one per layer, as the class allows
        ReferenceMath.write(config, 43, BATCH, POS, dir, HunYuanMoeReference::forward);
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out) {
        int n = BATCH * POS;
        double base = THETA * Math.pow(ALPHA, (double) HD / (HD - 2));
        double[] x = embed(w, ids, D);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            String b = "blocks." + layer + ".";
            out.put(b + "hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = rmsNorm(x, n, D, w.get(p + "input_layernorm.weight"), EPS);
            double[] q = projection(w, p + "self_attn.q_proj", h, n, HEADS * HD, D, true);
            double[] k = projection(w, p + "self_attn.k_proj", h, n, KV * HD, D, true);
            double[] v = projection(w, p + "self_attn.v_proj", h, n, KV * HD, D, true);
            rotateHalf(q, BATCH, POS, HEADS, HD, base);
            rotateHalf(k, BATCH, POS, KV, HD, base);
            q = rmsNorm(q, n * HEADS, HD, w.get(p + "self_attn.query_layernorm.weight"), EPS);
            k = rmsNorm(k, n * KV, HD, w.get(p + "self_attn.key_layernorm.weight"), EPS);
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, Integer.MAX_VALUE, layer, out);
            add(x, projection(w, p + "self_attn.o_proj", z, n, D, HEADS * HD, true));
            double[] h2 = rmsNorm(x, n, D, w.get(p + "post_attention_layernorm.weight"), EPS);
            double[] mlp = mixture(w, p + "mlp.", h2, n, b, out);
            out.put(b + "hook_mlp_out", tensor(mlp, BATCH, POS, D));
            add(x, mlp);
        }
        double[] last = rmsNorm(x, n, D, w.get("model.norm.weight"), EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(linear(last, n, w.get("lm_head.weight"), VOCAB, D), BATCH, POS, VOCAB));
    }

    /** The routed experts' weighted outputs plus the shared MLP's, recording the router's logits and choices. */
    private static double[] mixture(Map<String, double[]> w, String p, double[] h, int n, String b,
                                    Map<String, Tensor> out) {
        double[] logits = linear(h, n, w.get(p + "gate.wg.weight"), EXPERTS, D);
        double[] y = new double[n * D];
        double[] chosenOut = new double[n * TOP_K];
        double[] weightsOut = new double[n * TOP_K];
        for (int t = 0; t < n; t++) {
            double[] probs = ReferenceMath.softmax(logits, t * EXPERTS, EXPERTS);
            int[] chosen = ReferenceMath.topExperts(probs, TOP_K, 1, 1, false);
            double sum = 0;
            for (int e : chosen) {
                sum += probs[e];
            }
            double[] row = java.util.Arrays.copyOfRange(h, t * D, (t + 1) * D);
            double[] shared = gatedExpert(w, p + "shared_mlp.gate_proj.weight", p + "shared_mlp.up_proj.weight",
                    p + "shared_mlp.down_proj.weight", row, D, MLP);
            for (int j = 0; j < TOP_K; j++) {
                int e = chosen[j];
                double weight = probs[e] / sum;
                chosenOut[t * TOP_K + j] = e;
                weightsOut[t * TOP_K + j] = weight;
                String expert = p + "experts." + e + ".";
                double[] o = gatedExpert(w, expert + "gate_proj.weight", expert + "up_proj.weight",
                        expert + "down_proj.weight", row, D, MLP);
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
