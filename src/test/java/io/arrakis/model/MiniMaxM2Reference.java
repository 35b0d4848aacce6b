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
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * A MiniMax-M2 reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights
 * drawn around 1 and the experts' correction bias around 0, so that every one counts) and the activations of
 * {@code MiniMaxM2ForCausalLM}'s forward pass as transformers' modeling file defines it, computed here in double
 * precision in plain Java, apart from the library's forward pass ({@link ReferenceMath}): RMSNorm blocks; query, key
 * and value projections without biases; one RMSNorm over each position's whole query projection
 * ({@code [heads·d_head]}) and one over its whole key projection; the rotary embedding ({@code rotate_half}) on the
 * first {@value #ROTARY} of each head's {@value #HD} features, as the published files' {@code rotary_dim} says; a
 * causal softmax over grouped key/value heads; {@code MiniMaxM2TopKRouter}'s routing (sigmoid scores; the correction
 * bias added to choose the top {@value #TOP_K}; their unbiased scores over their sum) and the chosen experts' outputs
 * so weighted and summed; the final norm and an untied head.
 */
final class MiniMaxM2Reference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = 12; // not D / HEADS, so that head_dim counts
    private static final int ROTARY = 4; // neither the whole head nor half of it, so that rotary_dim counts
    private static final int EXPERT = 16;
    private static final int EXPERTS = 8;
    private static final int TOP_K = 3;
    private static final int LAYERS = 2;
    private static final double EPS = 1e-6;
    private static final double THETA = 1000.0;
    private static final int BATCH = 2;
    private static final int POS = 10;

    private MiniMaxM2Reference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir) throws IOException {
        HookedAutoConfig config = HookedAutoConfig.of("minimax_m2").with(Map.ofEntries(Map.entry("vocab_size", VOCAB),
                Map.entry("hidden_size", D), Map.entry("num_hidden_layers", LAYERS),
                Map.entry("num_attention_heads", HEADS), Map.entry("num_key_value_heads", KV),
                Map.entry("head_dim", HD), Map.entry("rotary_dim", ROTARY), Map.entry("intermediate_size", EXPERT),
                Map.entry("num_local_experts", EXPERTS), Map.entry("num_experts_per_tok", TOP_K),
                Map.entry("initializer_range", 0.2), Map.entry("max_position_embeddings", 64),
                Map.entry("rope_theta", THETA)));
        ReferenceMath.write(config, 83, BATCH, POS, dir, MiniMaxM2Reference::forward);
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out) {
        int n = BATCH * POS;
        double[] x = embed(w, ids, D);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            out.put("blocks." + layer + ".hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = rmsNorm(x, n, D, w.get(p + "input_layernorm.weight"), EPS);
            double[] q = projection(w, p + "self_attn.q_proj", h, n, HEADS * HD, D, false);
            double[] k = projection(w, p + "self_attn.k_proj", h, n, KV * HD, D, false);
            double[] v = projection(w, p + "self_attn.v_proj", h, n, KV * HD, D, false);
            q = rmsNorm(q, n, HEADS * HD, w.get(p + "self_attn.q_norm.weight"), EPS);
            k = rmsNorm(k, n, KV * HD, w.get(p + "self_attn.k_norm.weight"), EPS);
            out.put("blocks." + layer + ".attn.hook_q_normed", tensor(q, BATCH, POS, HEADS, HD));
            out.put("blocks." + layer + ".attn.hook_k_normed", tensor(k, BATCH, POS, KV, HD));
            rotateHalf(q, BATCH, POS, HEADS, HD, ROTARY, THETA);
            rotateHalf(k, BATCH, POS, KV, HD, ROTARY, THETA);
            out.put("blocks." + layer + ".attn.hook_rot_q", tensor(q, BATCH, POS, HEADS, HD));
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, Integer.MAX_VALUE, layer, out);
            add(x, projection(w, p + "self_attn.o_proj", z, n, D, HEADS * HD, false));
            double[] h2 = rmsNorm(x, n, D, w.get(p + "post_attention_layernorm.weight"), EPS);
            add(x, mixture(w, p + "block_sparse_moe.", h2, n, layer, out));
        }
        double[] last = rmsNorm(x, n, D, w.get("model.norm.weight"), EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(linear(last, n, w.get("lm_head.weight"), VOCAB, D), BATCH, POS, VOCAB));
    }

    /** The chosen experts' weighted outputs, recording each token's experts and weights. */
    private static double[] mixture(Map<String, double[]> w, String p, double[] h, int n, int layer,
                                    Map<String, Tensor> out) {
        double[] logits = linear(h, n, w.get(p + "gate.weight"), EXPERTS, D);
        double[] bias = w.get(p + "e_score_correction_bias");
        double[] y = new double[n * D];
        double[] chosenOut = new double[n * TOP_K];
        double[] weightsOut = new double[n * TOP_K];
        for (int t = 0; t < n; t++) {
            double[] score = new double[EXPERTS];
            double[] choice = new double[EXPERTS];
            for (int e = 0; e < EXPERTS; e++) {
                score[e] = 1 / (1 + Math.exp(-logits[t * EXPERTS + e]));
                choice[e] = score[e] + bias[e];
            }
            int[] chosen = ReferenceMath.topExperts(choice, TOP_K, 1, 1, false);
            double sum = 0;
            for (int e : chosen) {
                sum += score[e];
            }
            double[] row = java.util.Arrays.copyOfRange(h, t * D, (t + 1) * D);
            for (int j = 0; j < TOP_K; j++) {
                int e = chosen[j];
                double weight = score[e] / sum;
                chosenOut[t * TOP_K + j] = e;
                weightsOut[t * TOP_K + j] = weight;
                String expert = p + "experts." + e + ".";
                double[] o = ReferenceMath.gatedExpert(w, expert + "w1.weight", expert + "w3.weight",
                        expert + "w2.weight", row, D, EXPERT);
                for (int i = 0; i < D; i++) {
                    y[t * D + i] += weight * o[i];
                }
            }
        }
        out.put("blocks." + layer + ".mlp.hook_router_logits", tensor(logits, BATCH, POS, EXPERTS));
        out.put("blocks." + layer + ".mlp.hook_expert_indices", tensor(chosenOut, BATCH, POS, TOP_K));
        out.put("blocks." + layer + ".mlp.hook_expert_weights", tensor(weightsOut, BATCH, POS, TOP_K));
        return y;
    }
}
