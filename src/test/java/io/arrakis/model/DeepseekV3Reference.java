package io.arrakis.model;

import io.arrakis.torch.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

import static io.arrakis.model.ReferenceMath.add;
import static io.arrakis.model.ReferenceMath.embed;
import static io.arrakis.model.ReferenceMath.linear;
import static io.arrakis.model.ReferenceMath.projection;
import static io.arrakis.model.ReferenceMath.rmsNorm;
import static io.arrakis.model.ReferenceMath.rotateHalf;
import static io.arrakis.model.ReferenceMath.silu;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * A DeepSeek-V3 reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights
 * drawn around 1, its biases and the experts' correction bias around 0, so that every one counts) and the activations
 * of {@code DeepseekV3ForCausalLM}'s forward pass as transformers' modeling file defines it, computed here in double
 * precision in plain Java, apart from the library's forward pass ({@link ReferenceMath}): RMSNorm blocks (eps
 * {@value #EPS}); multi-head latent attention, the queries {@code q_b_proj(RMSNorm(q_a_proj(x)))} or
 * {@code q_proj(x)}, the keys' and values' latent and the shared rotated key from {@code kv_a_proj_with_mqa(x)}, the
 * latent normalised (eps 1e-6, the norms' default, not the configuration's) and expanded by {@code kv_b_proj} into each
 * head's unrotated key and value ({@value #VALUE} features, fewer than a key's {@value #NOPE} + {@value #ROPE}); the
 * rotary embedding on the last {@value #ROPE} features of each query and key head, laid out from adjacent pairs as
 * halves first where {@code rope_interleave}; a causal softmax scaled by {@code (nope + rope)^-1/2}; a dense gated SiLU
 * MLP in the first layer where {@code first_k_dense_replace} is 1, and {@code DeepseekV3TopkRouter}'s routing after it
 * (sigmoid scores; the correction bias added to choose; the {@value #TOP_GROUPS} of {@value #GROUPS} groups with the
 * highest sum of their two best biased scores; the top {@value #TOP_K} of their experts; their unbiased scores over
 * their sum, times {@value #SCALE}), the chosen experts' outputs so weighted and summed, plus the shared expert's; the
 * final norm and an untied head. GLM-4.7-Flash's ({@code glm4_moe_lite}), DeepSeek-V2's and Mistral 4's differ as
 * {@link Kind} says.
 */
final class DeepseekV3Reference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int Q_RANK = 16;
    private static final int KV_RANK = 12;
    private static final int NOPE = 6;
    private static final int ROPE = 4;
    private static final int QK = NOPE + ROPE;
    private static final int VALUE = 5;
    private static final int DENSE = 40;
    private static final int EXPERT = 16;
    private static final int EXPERTS = 8;
    private static final int TOP_K = 3;
    private static final int GROUPS = 4;
    private static final int TOP_GROUPS = 2;
    private static final double SCALE = 1.7;
    private static final int SHARED = 2 * EXPERT;
    private static final int LAYERS = 3;
    private static final double EPS = 0.05; // far from the latent norms' 1e-6, so that using it there would show
    private static final double LATENT_EPS = 1e-6;
    private static final double THETA = 1000.0;
    private static final int BATCH = 2;
    private static final int POS = 10;
    /** Mistral 4's temperature: {@code llama_4_scaling_beta} and its interval of positions. */
    private static final double BETA = 0.3;
    private static final int INTERVAL = 4;

    private DeepseekV3Reference() {
    }

    /** Which DeepSeek-V3 settings the model has. */
    enum Kind {
        /** queries from their own latent, the rotated features interleaved, attention biases, layer 0 dense */
        LATENT_QUERIES(89),
        /** queries by {@code q_proj}, the rotated features as halves, no biases, every layer sparse */
        DIRECT_QUERIES(97),
        /**
         * GLM-4.7-Flash ({@code glm4_moe_lite}): queries from their latent, interleaved, no biases, its
         * {@code mlp_layer_types} making layer 1 dense between sparse ones
         */
        GLM4_MOE_LITE(101),
        /**
         * DeepSeek-V2 ({@code deepseek_v2}): queries from their latent, the rotated features turned in adjacent pairs
         * and left in that order, layer 0 dense, softmax scores chosen among the experts of the groups with the best
         * single score and weighted unnormalised
         */
        DEEPSEEK_V2(103),
        /**
         * Mistral 4 ({@code mistral4}): queries from their latent, interleaved, attention biases, layer 0 dense,
         * Llama 4's temperature on the rotated queries ({@value #BETA} over {@value #INTERVAL} positions, so that it
         * changes within the input), softmax scores chosen among the experts of the groups whose two best scores sum
         * highest, normalised
         */
        MISTRAL4(107),
        /**
         * Youtu-LLM ({@code youtu}): queries from their latent, interleaved, no biases, every layer's MLP dense, the
         * head tied to the embedding
         */
        YOUTU(109);

        private final long seed;

        Kind(long seed) {
            this.seed = seed;
        }

        boolean latentQueries() {
            return this != DIRECT_QUERIES;
        }

        boolean dense(int layer) {
            return this == LATENT_QUERIES || this == DEEPSEEK_V2 || this == MISTRAL4 ? layer == 0
                    : this == YOUTU || this == GLM4_MOE_LITE && layer == 1;
        }

        String modelType() {
            return switch (this) {
                case GLM4_MOE_LITE -> "glm4_moe_lite";
                case DEEPSEEK_V2 -> "deepseek_v2";
                case MISTRAL4 -> "mistral4";
                case YOUTU -> "youtu";
                default -> "deepseek_v3";
            };
        }

        boolean softmaxScores() {
            return this == DEEPSEEK_V2 || this == MISTRAL4;
        }
    }

    /** Writes config.json, model.safetensors and reference.safetensors of {@code kind}'s model into {@code dir}. */
    static void write(Path dir, Kind kind) throws IOException {
        if (kind == Kind.YOUTU) {
            HookedAutoConfig config = HookedAutoConfig.of("youtu").with(Map.ofEntries(Map.entry("vocab_size", VOCAB),
                    Map.entry("hidden_size", D), Map.entry("num_hidden_layers", LAYERS),
                    Map.entry("num_attention_heads", HEADS), Map.entry("num_key_value_heads", HEADS),
                    Map.entry("kv_lora_rank", KV_RANK), Map.entry("q_lora_rank", Q_RANK),
                    Map.entry("qk_nope_head_dim", NOPE), Map.entry("qk_rope_head_dim", ROPE),
                    Map.entry("v_head_dim", VALUE), Map.entry("intermediate_size", DENSE),
                    Map.entry("rms_norm_eps", EPS), Map.entry("initializer_range", 0.2),
                    Map.entry("max_position_embeddings", 64), Map.entry("rope_theta", THETA),
                    Map.entry("rope_interleave", true)));
            ReferenceMath.write(config, kind.seed, BATCH, POS, dir, (w, ids, out) -> forward(w, ids, kind, out));
            return;
        }
        boolean latent = kind.latentQueries();
        Map<String, Object> values = new LinkedHashMap<>(Map.ofEntries(Map.entry("vocab_size", VOCAB),
                Map.entry("hidden_size", D), Map.entry("num_hidden_layers", LAYERS),
                Map.entry("num_attention_heads", HEADS), Map.entry("num_key_value_heads", HEADS),
                Map.entry("kv_lora_rank", KV_RANK), Map.entry("qk_nope_head_dim", NOPE),
                Map.entry("qk_rope_head_dim", ROPE), Map.entry("v_head_dim", VALUE),
                Map.entry("intermediate_size", DENSE),
                Map.entry("moe_intermediate_size", EXPERT), Map.entry("n_routed_experts", EXPERTS),
                Map.entry("n_shared_experts", SHARED / EXPERT), Map.entry("num_experts_per_tok", TOP_K),
                Map.entry("n_group", GROUPS), Map.entry("topk_group", TOP_GROUPS),
                Map.entry("routed_scaling_factor", SCALE), Map.entry("rms_norm_eps", EPS),
                Map.entry("initializer_range", 0.2), Map.entry("max_position_embeddings", 64),
                Map.entry("rope_theta", THETA)));
        values.put("q_lora_rank", latent ? Q_RANK : null);
        if (kind != Kind.DEEPSEEK_V2) {
            values.put("rope_interleave", latent);
        } else {
            values.putAll(Map.of("topk_method", "group_limited_greedy", "norm_topk_prob", false));
        }
        values.put("attention_bias", kind == Kind.LATENT_QUERIES || kind == Kind.MISTRAL4);
        if (kind == Kind.MISTRAL4) { // YaRN of factor 1 rotates as the plain rope does; the temperature is Llama 4's
            values.put("rope_parameters", Map.ofEntries(Map.entry("rope_type", "yarn"), Map.entry("rope_theta", THETA),
                    Map.entry("factor", 1.0), Map.entry("original_max_position_embeddings", INTERVAL),
                    Map.entry("beta_fast", 32.0), Map.entry("beta_slow", 1.0), Map.entry("mscale", 1.0),
                    Map.entry("mscale_all_dim", 1.0), Map.entry("llama_4_scaling_beta", BETA),
                    Map.entry("partial_rotary_factor", (double) ROPE / QK), Map.entry("max_position_embeddings", 64)));
            values.put("norm_topk_prob", true);
        }
        if (kind == Kind.GLM4_MOE_LITE) {
            values.put("mlp_layer_types", java.util.List.of("sparse", "dense", "sparse"));
        } else {
            values.put("first_k_dense_replace", latent ? 1 : 0);
        }
        HookedAutoConfig config = HookedAutoConfig.of(kind.modelType()).with(values);
        ReferenceMath.write(config, kind.seed, BATCH, POS, dir, (w, ids, out) -> forward(w, ids, kind, out));
    }

    private static void forward(Map<String, double[]> w, long[] ids, Kind kind, Map<String, Tensor> out) {
        int n = BATCH * POS;
        boolean latent = kind.latentQueries();
        boolean biased = kind == Kind.LATENT_QUERIES || kind == Kind.MISTRAL4;
        double[] x = embed(w, ids, D);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            String a = p + "self_attn.";
            out.put("blocks." + layer + ".hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = rmsNorm(x, n, D, w.get(p + "input_layernorm.weight"), EPS);
            double[] q = latent ? linear(rmsNorm(projection(w, a + "q_a_proj", h, n, Q_RANK, D, biased), n, Q_RANK,
                    w.get(a + "q_a_layernorm.weight"), LATENT_EPS), n, w.get(a + "q_b_proj.weight"), HEADS * QK, Q_RANK)
                    : linear(h, n, w.get(a + "q_proj.weight"), HEADS * QK, D);
            double[] compressed = projection(w, a + "kv_a_proj_with_mqa", h, n, KV_RANK + ROPE, D, biased);
            double[] kvLatent = new double[n * KV_RANK];
            double[] sharedKey = new double[n * ROPE];
            for (int t = 0; t < n; t++) {
                System.arraycopy(compressed, t * (KV_RANK + ROPE), kvLatent, t * KV_RANK, KV_RANK);
                System.arraycopy(compressed, t * (KV_RANK + ROPE) + KV_RANK, sharedKey, t * ROPE, ROPE);
            }
            double[] kv = linear(rmsNorm(kvLatent, n, KV_RANK, w.get(a + "kv_a_layernorm.weight"), LATENT_EPS), n,
                    w.get(a + "kv_b_proj.weight"), HEADS * (NOPE + VALUE), KV_RANK);
            double[] k = new double[n * HEADS * QK];
            double[] v = new double[n * HEADS * VALUE];
            for (int t = 0; t < n; t++) {
                for (int head = 0; head < HEADS; head++) {
                    int from = (t * HEADS + head) * (NOPE + VALUE);
                    System.arraycopy(kv, from, k, (t * HEADS + head) * QK, NOPE);
                    System.arraycopy(sharedKey, t * ROPE, k, (t * HEADS + head) * QK + NOPE, ROPE);
                    System.arraycopy(kv, from + NOPE, v, (t * HEADS + head) * VALUE, VALUE);
                }
            }
            out.put("blocks." + layer + ".attn.hook_q", tensor(q, BATCH, POS, HEADS, QK));
            out.put("blocks." + layer + ".attn.hook_k", tensor(k, BATCH, POS, HEADS, QK));
            out.put("blocks." + layer + ".attn.hook_v", tensor(v, BATCH, POS, HEADS, VALUE));
            rotateLast(q, kind);
            rotateLast(k, kind);
            out.put("blocks." + layer + ".attn.hook_rot_q", tensor(q, BATCH, POS, HEADS, QK));
            out.put("blocks." + layer + ".attn.hook_rot_k", tensor(k, BATCH, POS, HEADS, QK));
            double[] z = attention(kind == Kind.MISTRAL4 ? tempered(q) : q, k, v, layer, out);
            out.put("blocks." + layer + ".attn.hook_z", tensor(z, BATCH, POS, HEADS, VALUE));
            add(x, projection(w, a + "o_proj", z, n, D, HEADS * VALUE, biased));
            double[] h2 = rmsNorm(x, n, D, w.get(p + "post_attention_layernorm.weight"), EPS);
            if (kind.dense(layer)) {
                double[] act = silu(projection(w, p + "mlp.gate_proj", h2, n, DENSE, D, false),
                        projection(w, p + "mlp.up_proj", h2, n, DENSE, D, false));
                out.put("blocks." + layer + ".mlp.hook_post", tensor(act, BATCH, POS, DENSE));
                add(x, projection(w, p + "mlp.down_proj", act, n, D, DENSE, false));
            } else {
                add(x, mixture(w, p + "mlp.", h2, n, layer, kind, out));
            }
        }
        double[] last = rmsNorm(x, n, D, w.get("model.norm.weight"), EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        double[] head = w.containsKey("lm_head.weight") ? w.get("lm_head.weight") : w.get("model.embed_tokens.weight");
        out.put("logits", tensor(linear(last, n, head, VOCAB, D), BATCH, POS, VOCAB));
    }

    /**
     * The rotary embedding on the last {@value #ROPE} features of each head of {@code x [batch, pos, heads, qk]}, in
     * place: {@code rotate_half}'s, on features first laid out from adjacent pairs as halves where the kind interleaves
     * (DeepSeek-V3's {@code rope_interleave}); DeepSeek-V2's complex rotation of adjacent pairs, left in that order.
     */
    private static void rotateLast(double[] x, Kind kind) {
        int rows = BATCH * POS * HEADS;
        if (kind == Kind.DEEPSEEK_V2) {
            double[] pairs = new double[rows * ROPE];
            for (int r = 0; r < rows; r++) {
                System.arraycopy(x, r * QK + NOPE, pairs, r * ROPE, ROPE);
            }
            ReferenceMath.rotateInterleaved(pairs, BATCH, POS, HEADS, ROPE, ROPE, THETA);
            for (int r = 0; r < rows; r++) {
                System.arraycopy(pairs, r * ROPE, x, r * QK + NOPE, ROPE);
            }
            return;
        }
        boolean interleaved = kind.latentQueries();
        double[] rotated = new double[rows * ROPE];
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < ROPE; i++) {
                int from = interleaved ? (i < ROPE / 2 ? 2 * i : 2 * (i - ROPE / 2) + 1) : i;
                rotated[r * ROPE + i] = x[r * QK + NOPE + from];
            }
        }
        rotateHalf(rotated, BATCH, POS, HEADS, ROPE, THETA);
        for (int r = 0; r < rows; r++) {
            System.arraycopy(rotated, r * ROPE, x, r * QK + NOPE, ROPE);
        }
    }

    /**
     * Expert {@code e}'s gate, up and down weights in {@code nn.Linear}'s {@code [out, in]} layout, from Mistral 4's
     * fused tensors as written: {@code gate_up_proj [experts, d, 2 · expert]} (gate columns, then up columns) and
     * {@code down_proj [experts, expert, d]}.
     */
    private static Map<String, double[]> fusedExpert(Map<String, double[]> w, String p, int e) {
        double[] gateUp = w.get(p + "experts.gate_up_proj");
        double[] down = w.get(p + "experts.down_proj");
        double[] gate = new double[EXPERT * D];
        double[] up = new double[EXPERT * D];
        double[] out = new double[D * EXPERT];
        for (int i = 0; i < D; i++) {
            for (int o = 0; o < EXPERT; o++) {
                gate[o * D + i] = gateUp[(e * D + i) * 2 * EXPERT + o];
                up[o * D + i] = gateUp[(e * D + i) * 2 * EXPERT + EXPERT + o];
            }
        }
        for (int i = 0; i < EXPERT; i++) {
            for (int o = 0; o < D; o++) {
                out[o * EXPERT + i] = down[(e * EXPERT + i) * D + o];
            }
        }
        return Map.of("gate", gate, "up", up, "down", out);
    }

    /**
     * Mistral 4's queries {@code [batch, pos, heads, qk]} times Llama 4's temperature at their positions,
     * {@code 1 + beta · ln(1 + floor(position / interval))}: a new array.
     */
    private static double[] tempered(double[] q) {
        double[] t = q.clone();
        for (int i = 0; i < t.length; i++) {
            int position = i / (HEADS * QK) % POS;
            t[i] *= 1 + BETA * Math.log(1 + Math.floor((double) position / INTERVAL));
        }
        return t;
    }

    /** Causal attention of queries and keys of {@value #QK} features over values of {@value #VALUE}. */
    private static double[] attention(double[] q, double[] k, double[] v, int layer, Map<String, Tensor> out) {
        double[] pattern = new double[BATCH * HEADS * POS * POS];
        double[] z = new double[BATCH * POS * HEADS * VALUE];
        for (int b = 0; b < BATCH; b++) {
            for (int head = 0; head < HEADS; head++) {
                for (int i = 0; i < POS; i++) {
                    double[] scores = new double[i + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= i; j++) {
                        double dot = 0;
                        for (int e = 0; e < QK; e++) {
                            dot += q[((b * POS + i) * HEADS + head) * QK + e]
                                    * k[((b * POS + j) * HEADS + head) * QK + e];
                        }
                        scores[j] = dot / Math.sqrt(QK);
                        max = Math.max(max, scores[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j <= i; j++) {
                        scores[j] = Math.exp(scores[j] - max);
                        sum += scores[j];
                    }
                    for (int j = 0; j <= i; j++) {
                        double prob = scores[j] / sum;
                        pattern[((b * HEADS + head) * POS + i) * POS + j] = prob;
                        for (int e = 0; e < VALUE; e++) {
                            z[((b * POS + i) * HEADS + head) * VALUE + e] += prob
                                    * v[((b * POS + j) * HEADS + head) * VALUE + e];
                        }
                    }
                }
            }
        }
        out.put("blocks." + layer + ".attn.hook_pattern", tensor(pattern, BATCH, HEADS, POS, POS));
        return z;
    }

    /** The routed experts' weighted outputs plus the shared expert's, recording each token's experts and weights. */
    private static double[] mixture(Map<String, double[]> w, String p, double[] h, int n, int layer, Kind kind,
                                    Map<String, Tensor> out) {
        boolean softmax = kind.softmaxScores();
        double[] logits = linear(h, n, w.get(p + "gate.weight"), EXPERTS, D);
        double[] bias = softmax ? new double[EXPERTS] : w.get(p + "gate.e_score_correction_bias");
        double[] y = linear(silu(linear(h, n, w.get(p + "shared_experts.gate_proj.weight"), SHARED, D),
                linear(h, n, w.get(p + "shared_experts.up_proj.weight"), SHARED, D)), n,
                w.get(p + "shared_experts.down_proj.weight"), D, SHARED);
        double[] chosenOut = new double[n * TOP_K];
        double[] weightsOut = new double[n * TOP_K];
        for (int t = 0; t < n; t++) {
            double[] score = new double[EXPERTS];
            double[] choice = new double[EXPERTS];
            double max = Double.NEGATIVE_INFINITY;
            double total = 0;
            for (int e = 0; e < EXPERTS; e++) {
                max = Math.max(max, logits[t * EXPERTS + e]);
            }
            for (int e = 0; e < EXPERTS; e++) {
                total += Math.exp(logits[t * EXPERTS + e] - max);
            }
            for (int e = 0; e < EXPERTS; e++) {
                score[e] = softmax ? Math.exp(logits[t * EXPERTS + e] - max) / total
                        : 1 / (1 + Math.exp(-logits[t * EXPERTS + e]));
                choice[e] = score[e] + bias[e];
            }
            // DeepSeek-V2 ranks the groups by their best score, the others by the sum of their two best
            int[] chosen = ReferenceMath.topExperts(choice, TOP_K, GROUPS, TOP_GROUPS, kind == Kind.DEEPSEEK_V2);
            double sum = 0;
            for (int e : chosen) {
                sum += score[e];
            }
            double[] row = Arrays.copyOfRange(h, t * D, (t + 1) * D);
            for (int j = 0; j < TOP_K; j++) {
                int e = chosen[j];
                double weight = (kind == Kind.DEEPSEEK_V2 ? score[e] : score[e] / (sum + 1e-20)) * SCALE;
                chosenOut[t * TOP_K + j] = e;
                weightsOut[t * TOP_K + j] = weight;
                String expert = p + "experts." + e + ".";
                double[] o = kind == Kind.MISTRAL4
                        ? ReferenceMath.gatedExpert(fusedExpert(w, p, e), "gate", "up", "down", row, D, EXPERT)
                        : ReferenceMath.gatedExpert(w, expert + "gate_proj.weight", expert + "up_proj.weight",
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
