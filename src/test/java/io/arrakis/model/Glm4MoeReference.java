package io.arrakis.model;

import io.arrakis.torch.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
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
 * A GLM-4.5 reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights
 * drawn around 1, its biases and the experts' correction bias around 0, so that every one counts) and the activations
 * of {@code Glm4MoeForCausalLM}'s forward pass as transformers' modeling file defines it, computed here in double
 * precision in plain Java, apart from the library's forward pass ({@link ReferenceMath}): RMSNorm blocks; biased query,
 * key and value projections; per-head query and key RMSNorms; the rotary embedding ({@code rotate_half}) on the first
 * half of each head (head_dim not hidden / heads); a causal softmax over grouped key/value heads; a dense gated SiLU
 * MLP in layer 0 and, after it, {@code Glm4MoeTopkRouter}'s routing (sigmoid scores; the correction bias added to
 * choose; the {@value #TOP_GROUPS} of {@value #GROUPS} groups with the highest sum of their two best biased scores;
 * the top {@value #TOP_K} of their experts; their unbiased scores over their sum, times {@value #SCALE}), the chosen
 * experts' outputs so weighted and summed, plus the shared expert's; the final norm and an untied head. Solar Open's,
 * EXAONE MoE's and dots1's differ as {@link Kind} says.
 */
final class Glm4MoeReference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = 12; // not D / HEADS, so that head_dim counts
    private static final int ROTARY = HD / 2; // partial_rotary_factor 0.5
    private static final int DENSE = 40;
    private static final int EXPERT = 16;
    private static final int EXPERTS = 8;
    private static final int TOP_K = 3;
    private static final int GROUPS = 4;
    private static final int TOP_GROUPS = 2;
    private static final double SCALE = 1.7;
    private static final int SHARED = 2 * EXPERT;
    private static final int LAYERS = 3;
    private static final double EPS = 1e-5;
    private static final double THETA = 1000.0;
    private static final int BATCH = 2;
    private static final int POS = 10;

    private Glm4MoeReference() {
    }

    /** Which of the families that share these experts. */
    enum Kind {
        /** glm4_moe: query/key norms and biases, half of each head rotating, layer 0 dense. */
        GLM4_MOE("glm4_moe", 61),
        /** The same without {@code norm_topk_prob}: the chosen scores as they are, times the scale. */
        GLM4_MOE_AS_IS("glm4_moe", 79),
        /** solar_open: Llama's attention with biases, the whole head rotating, every layer sparse. */
        SOLAR_OPEN("solar_open", 71),
        /**
         * exaone_moe: query/key norms, no biases, layers 0 and 1 sliding in a window of {@value #WINDOW} (shorter
         * than the input) and rotating the whole head, layer 2 full and not rotating; layer 1 dense.
         */
        EXAONE_MOE("exaone_moe", 73),
        /**
         * dots1: query/key norms, biases on all four projections, the whole head rotating, layer 0 dense, the chosen
         * scores as they are ({@code norm_topk_prob} false by default), times the scale.
         */
        DOTS1("dots1", 83),
        /**
         * hy_v3: query/key norms, biases on all four projections, the whole head rotating, layer 0 dense (the
         * default mlp_layer_types), one group of experts, and the router, its bias and the shared experts named
         * {@code mlp.router.gate}, {@code mlp.expert_bias} and {@code mlp.shared_mlp}.
         */
        HY_V3("hy_v3", 89);

        private final String modelType;
        private final long seed;

        Kind(String modelType, long seed) {
            this.modelType = modelType;
            this.seed = seed;
        }

        boolean dense(int layer) {
            return this == GLM4_MOE || this == GLM4_MOE_AS_IS || this == DOTS1 || this == HY_V3 ? layer == 0
                    : this == EXAONE_MOE && layer == 1;
        }
    }

    /** EXAONE MoE's sliding window. */
    static final int WINDOW = 4;

    /** Writes config.json, model.safetensors and reference.safetensors of {@code kind}'s model into {@code dir}. */
    static void write(Path dir, Kind kind) throws IOException {
        Map<String, Object> values = new java.util.LinkedHashMap<>(Map.ofEntries(Map.entry("vocab_size", VOCAB),
                Map.entry("hidden_size", D), Map.entry("num_hidden_layers", LAYERS),
                Map.entry("num_attention_heads", HEADS), Map.entry("num_key_value_heads", KV),
                Map.entry("head_dim", HD), Map.entry("initializer_range", 0.2),
                Map.entry("max_position_embeddings", 64), Map.entry("rope_theta", THETA),
                Map.entry("moe_intermediate_size", EXPERT), Map.entry("num_experts_per_tok", TOP_K),
                Map.entry("n_group", GROUPS), Map.entry("topk_group", TOP_GROUPS),
                Map.entry("routed_scaling_factor", SCALE), Map.entry("rms_norm_eps", EPS)));
        switch (kind) {
            case GLM4_MOE, GLM4_MOE_AS_IS -> values.putAll(Map.of("n_routed_experts", EXPERTS,
                    "n_shared_experts", SHARED / EXPERT, "attention_bias", true, "intermediate_size", DENSE,
                    "first_k_dense_replace", 1, "use_qk_norm", true, "norm_topk_prob", kind != Kind.GLM4_MOE_AS_IS));
            case SOLAR_OPEN -> values.putAll(Map.of("n_routed_experts", EXPERTS, "n_shared_experts", SHARED / EXPERT,
                    "attention_bias", true));
            case EXAONE_MOE -> values.putAll(Map.of("num_experts", EXPERTS, "num_shared_experts", SHARED / EXPERT,
                    "intermediate_size", DENSE, "mlp_layer_types", List.of("sparse", "dense", "sparse"),
                    "layer_types", List.of("sliding_attention", "sliding_attention", "full_attention"),
                    "sliding_window", WINDOW));
            case DOTS1 -> values.putAll(Map.of("n_routed_experts", EXPERTS, "n_shared_experts", SHARED / EXPERT,
                    "attention_bias", true, "intermediate_size", DENSE, "first_k_dense_replace", 1));
            case HY_V3 -> {
                for (String ungrouped : List.of("n_group", "topk_group", "routed_scaling_factor")) {
                    values.remove(ungrouped);
                }
                values.putAll(Map.of("num_experts", EXPERTS, "num_shared_experts", SHARED / EXPERT,
                        "attention_bias", true, "intermediate_size", DENSE, "router_scaling_factor", SCALE));
            }
        }
        HookedAutoConfig config = HookedAutoConfig.of(kind.modelType).with(values);
        ReferenceMath.write(config, kind.seed, BATCH, POS, dir, (w, ids, out) -> forward(w, ids, kind, out));
    }

    private static void forward(Map<String, double[]> w, long[] ids, Kind kind, Map<String, Tensor> out) {
        int n = BATCH * POS;
        boolean biased = kind != Kind.EXAONE_MOE;
        double[] x = embed(w, ids, D);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            out.put("blocks." + layer + ".hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = rmsNorm(x, n, D, w.get(p + "input_layernorm.weight"), EPS);
            double[] q = projection(w, p + "self_attn.q_proj", h, n, HEADS * HD, D, biased);
            double[] k = projection(w, p + "self_attn.k_proj", h, n, KV * HD, D, biased);
            double[] v = projection(w, p + "self_attn.v_proj", h, n, KV * HD, D, biased);
            if (kind != Kind.SOLAR_OPEN) {
                q = rmsNorm(q, n * HEADS, HD, w.get(p + "self_attn.q_norm.weight"), EPS);
                k = rmsNorm(k, n * KV, HD, w.get(p + "self_attn.k_norm.weight"), EPS);
            }
            boolean full = kind == Kind.EXAONE_MOE && layer == 2;
            if (!full) { // EXAONE's full layer does not rotate
                int rotary = kind.modelType.equals("glm4_moe") ? ROTARY : HD;
                rotateHalf(q, BATCH, POS, HEADS, HD, rotary, THETA);
                rotateHalf(k, BATCH, POS, KV, HD, rotary, THETA);
            }
            int window = kind == Kind.EXAONE_MOE && !full ? WINDOW : Integer.MAX_VALUE;
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, window, layer, out);
            add(x, projection(w, p + "self_attn.o_proj", z, n, D, HEADS * HD,
                    kind == Kind.DOTS1 || kind == Kind.HY_V3));
            double[] h2 = rmsNorm(x, n, D, w.get(p + "post_attention_layernorm.weight"), EPS);
            if (kind.dense(layer)) {
                double[] act = silu(projection(w, p + "mlp.gate_proj", h2, n, DENSE, D, false),
                        projection(w, p + "mlp.up_proj", h2, n, DENSE, D, false));
                out.put("blocks." + layer + ".mlp.hook_post", tensor(act, BATCH, POS, DENSE));
                add(x, projection(w, p + "mlp.down_proj", act, n, D, DENSE, false));
            } else {
                // EXAONE's files name the correction bias mlp.e_score_correction_bias, hy_v3's mlp.expert_bias, the
                // others' mlp.gate.*
                String bias = p + switch (kind) {
                    case EXAONE_MOE -> "mlp.e_score_correction_bias";
                    case HY_V3 -> "mlp.expert_bias";
                    default -> "mlp.gate.e_score_correction_bias";
                };
                boolean normalized = kind != Kind.GLM4_MOE_AS_IS && kind != Kind.DOTS1; // dots1's default: false
                add(x, mixture(w, p + "mlp.", h2, n, layer, normalized, w.get(bias), kind, out));
            }
        }
        double[] last = rmsNorm(x, n, D, w.get("model.norm.weight"), EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(linear(last, n, w.get("lm_head.weight"), VOCAB, D), BATCH, POS, VOCAB));
    }

    /** The routed experts' weighted outputs plus the shared expert's, recording each token's experts and weights. */
    private static double[] mixture(Map<String, double[]> w, String p, double[] h, int n, int layer,
                                    boolean normalized, double[] bias, Kind kind, Map<String, Tensor> out) {
        boolean hy = kind == Kind.HY_V3;
        double[] logits = linear(h, n, w.get(p + (hy ? "router.gate.weight" : "gate.weight")), EXPERTS, D);
        String shared = p + (hy ? "shared_mlp." : "shared_experts.");
        double[] y = linear(silu(linear(h, n, w.get(shared + "gate_proj.weight"), SHARED, D),
                linear(h, n, w.get(shared + "up_proj.weight"), SHARED, D)), n,
                w.get(shared + "down_proj.weight"), D, SHARED);
        double[] chosenOut = new double[n * TOP_K];
        double[] weightsOut = new double[n * TOP_K];
        for (int t = 0; t < n; t++) {
            double[] score = new double[EXPERTS];
            double[] choice = new double[EXPERTS];
            for (int e = 0; e < EXPERTS; e++) {
                score[e] = 1 / (1 + Math.exp(-logits[t * EXPERTS + e]));
                choice[e] = score[e] + bias[e];
            }
            int[] chosen = hy ? ReferenceMath.topExperts(choice, TOP_K, 1, 1, false)
                    : ReferenceMath.topExperts(choice, TOP_K, GROUPS, TOP_GROUPS, false);
            double sum = 0;
            for (int e : chosen) {
                sum += score[e];
            }
            double[] row = java.util.Arrays.copyOfRange(h, t * D, (t + 1) * D);
            for (int j = 0; j < TOP_K; j++) {
                int e = chosen[j];
                double weight = (normalized ? score[e] / (sum + 1e-20) : score[e]) * SCALE;
                chosenOut[t * TOP_K + j] = e;
                weightsOut[t * TOP_K + j] = weight;
                String expert = p + "experts." + e + ".";
                double[] o = ReferenceMath.gatedExpert(w, expert + "gate_proj.weight", expert + "up_proj.weight",
                        expert + "down_proj.weight", row, D, EXPERT);
                for (int i = 0; i < D; i++) {
                    y[t * D + i] += weight * o[i];
                }
            }
        }
        out.put("blocks." + layer + ".mlp.hook_expert_indices", tensor(chosenOut, BATCH, POS, TOP_K));
        out.put("blocks." + layer + ".mlp.hook_expert_weights", tensor(weightsOut, BATCH, POS, TOP_K));
        return y;
    }
}
