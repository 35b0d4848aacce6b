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
 * A Mellum reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights drawn
 * around 1, its biases around 0) and the activations of {@code MellumForCausalLM}'s forward pass as transformers'
 * modeling file defines it, computed here in double precision in plain Java, apart from the library's forward pass
 * ({@link ReferenceMath}): pre-norm blocks; queries and keys each normalised per head (RMSNorm over {@code head_dim})
 * and then turned by {@code rotate_half} rotary embeddings of their layer type's base (sliding layers 0 and 2 in a
 * window of {@value #WINDOW}, base {@value #SLIDING_THETA}; full layer 1, base {@value #FULL_THETA}); a dense gated
 * MLP on layer 0 ({@code mlp_layer_types}) and experts on the others, each token's top two of the softmax over the
 * router's logits, divided by their sum ({@link Kind#DEFAULTS}) or as they are ({@link Kind#AS_IS_WITH_BIASES},
 * which also gives every attention projection a bias).
 */
final class MellumReference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = 12; // not D / HEADS, so that head_dim counts
    private static final int EXPERT = 16;
    private static final int DENSE = 40;
    private static final int LAYERS = 3;
    private static final int EXPERTS = 5;
    private static final int TOP_K = 2;
    static final int WINDOW = 4;
    static final double FULL_THETA = 1000.0;
    static final double SLIDING_THETA = 50.0;
    private static final double EPS = 1e-5;
    private static final int BATCH = 2;
    private static final int POS = 10;

    /** The two configurations the reference is written in. */
    enum Kind {
        /** {@code norm_topk_prob} true and no attention biases, as MellumConfig's defaults. */
        DEFAULTS,
        /** {@code norm_topk_prob} false and {@code attention_bias} true. */
        AS_IS_WITH_BIASES
    }

    private MellumReference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir, Kind kind) throws IOException {
        boolean defaults = kind == Kind.DEFAULTS;
        HookedAutoConfig config = HookedAutoConfig.of("mellum").with(Map.ofEntries(
                Map.entry("vocab_size", VOCAB), Map.entry("hidden_size", D), Map.entry("intermediate_size", DENSE),
                Map.entry("num_hidden_layers", LAYERS), Map.entry("num_attention_heads", HEADS),
                Map.entry("num_key_value_heads", KV), Map.entry("head_dim", HD), Map.entry("initializer_range", 0.2),
                Map.entry("max_position_embeddings", 64), Map.entry("rms_norm_eps", EPS),
                Map.entry("sliding_window", WINDOW),
                Map.entry("layer_types", List.of("sliding_attention", "full_attention", "sliding_attention")),
                Map.entry("mlp_layer_types", List.of("dense", "sparse", "sparse")),
                Map.entry("rope_parameters", Map.of(
                        "full_attention", Map.of("rope_type", "default", "rope_theta", FULL_THETA),
                        "sliding_attention", Map.of("rope_type", "default", "rope_theta", SLIDING_THETA))),
                Map.entry("moe_intermediate_size", EXPERT), Map.entry("num_experts", EXPERTS),
                Map.entry("num_experts_per_tok", TOP_K), Map.entry("norm_topk_prob", defaults),
                Map.entry("attention_bias", !defaults)));
        ReferenceMath.write(config, 67, BATCH, POS, dir, (w, ids, out) -> forward(w, ids, out, defaults, !defaults));
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out, boolean normalized,
                                boolean biased) {
        int n = BATCH * POS;
        double[] x = embed(w, ids, D);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            String b = "blocks." + layer + ".";
            out.put(b + "hook_resid_pre", tensor(x, BATCH, POS, D));
            boolean sliding = layer != 1;
            double[] h = rmsNorm(x, n, D, w.get(p + "input_layernorm.weight"), EPS);
            double[] q = rmsNorm(projection(w, p + "self_attn.q_proj", h, n, HEADS * HD, D, biased), n * HEADS, HD,
                    w.get(p + "self_attn.q_norm.weight"), EPS);
            double[] k = rmsNorm(projection(w, p + "self_attn.k_proj", h, n, KV * HD, D, biased), n * KV, HD,
                    w.get(p + "self_attn.k_norm.weight"), EPS);
            double[] v = projection(w, p + "self_attn.v_proj", h, n, KV * HD, D, biased);
            double theta = sliding ? SLIDING_THETA : FULL_THETA;
            rotateHalf(q, BATCH, POS, HEADS, HD, theta);
            rotateHalf(k, BATCH, POS, KV, HD, theta);
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, sliding ? WINDOW : Integer.MAX_VALUE, layer,
                    out);
            add(x, projection(w, p + "self_attn.o_proj", z, n, D, HEADS * HD, biased));
            double[] h2 = rmsNorm(x, n, D, w.get(p + "post_attention_layernorm.weight"), EPS);
            double[] mlp = layer == 0 ? dense(w, p + "mlp.", h2, n) : mixture(w, p + "mlp.", h2, n, b, normalized, out);
            out.put(b + "hook_mlp_out", tensor(mlp, BATCH, POS, D));
            add(x, mlp);
        }
        double[] last = rmsNorm(x, n, D, w.get("model.norm.weight"), EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(linear(last, n, w.get("lm_head.weight"), VOCAB, D), BATCH, POS, VOCAB));
    }

    /** The dense layer's gated MLP on every row. */
    private static double[] dense(Map<String, double[]> w, String p, double[] h, int n) {
        double[] y = new double[n * D];
        for (int t = 0; t < n; t++) {
            double[] o = gatedExpert(w, p + "gate_proj.weight", p + "up_proj.weight", p + "down_proj.weight",
                    java.util.Arrays.copyOfRange(h, t * D, (t + 1) * D), D, DENSE);
            System.arraycopy(o, 0, y, t * D, D);
        }
        return y;
    }

    /** The experts' outputs weighted by the router's softmax over all experts, recording its choices. */
    private static double[] mixture(Map<String, double[]> w, String p, double[] h, int n, String b,
                                    boolean normalized, Map<String, Tensor> out) {
        double[] logits = linear(h, n, w.get(p + "gate.weight"), EXPERTS, D);
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
            for (int j = 0; j < TOP_K; j++) {
                double weight = probs[chosen[j]] / (normalized ? sum : 1);
                chosenOut[t * TOP_K + j] = chosen[j];
                weightsOut[t * TOP_K + j] = weight;
                String expert = p + "experts." + chosen[j] + ".";
                double[] o = gatedExpert(w, expert + "gate_proj.weight", expert + "up_proj.weight",
                        expert + "down_proj.weight", row, D, EXPERT);
                for (int i = 0; i < D; i++) {
                    y[t * D + i] += weight * o[i];
                }
            }
        }
        out.put(b + "mlp.hook_expert_indices", tensor(chosenOut, BATCH, POS, TOP_K));
        out.put(b + "mlp.hook_expert_weights", tensor(weightsOut, BATCH, POS, TOP_K));
        return y;
    }
}
