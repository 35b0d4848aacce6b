package io.arrakis.model;

import io.arrakis.torch.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import static io.arrakis.model.ReferenceMath.add;
import static io.arrakis.model.ReferenceMath.attention;
import static io.arrakis.model.ReferenceMath.embed;
import static io.arrakis.model.ReferenceMath.gatedExpert;
import static io.arrakis.model.ReferenceMath.layerNorm;
import static io.arrakis.model.ReferenceMath.linear;
import static io.arrakis.model.ReferenceMath.rotateInterleaved;
import static io.arrakis.model.ReferenceMath.silu;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * A Cohere2-MoE reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights
 * drawn around 1) and the activations of {@code Cohere2MoeForCausalLM}'s forward pass as transformers' modeling file
 * defines it, computed here in double precision in plain Java, apart from the library's forward pass
 * ({@link ReferenceMath}): parallel blocks, attention and MLP both reading one LayerNorm without bias; layer 0 dense
 * (first_k_dense_replace 1) with full attention that rotates all the same (prefix_dense_sliding_window_pattern 1);
 * then, sliding_window_pattern 2, a sliding layer that rotates (interleaved) and a full one that does not; the
 * experts' top two logits weighted by their softmax ({@link Kind#SOFTMAX_AVERAGED}, averaged with one shared expert)
 * or their sigmoids, divided by their sum or not ({@link Kind#SIGMOID_SUMMED}, {@link Kind#SIGMOID_AS_IS}, added to
 * it); the logits scaled by
 * {@code logit_scale}, the head tied to the embedding.
 */
final class Cohere2MoeReference {
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
    private static final int WINDOW = 4;
    private static final double EPS = 1e-5;
    private static final double THETA = 10000.0;
    private static final double LOGIT_SCALE = 0.5;
    private static final int BATCH = 2;
    private static final int POS = 10;

    /** The two ways of weighting and joining the experts. */
    enum Kind {
        /** {@code expert_selection_fn "softmax"}, the shared expert averaged in: Cohere2MoeConfig's defaults. */
        SOFTMAX_AVERAGED,
        /** {@code "sigmoid"} with {@code norm_topk_prob}, the shared expert summed in. */
        SIGMOID_SUMMED,
        /** {@code "sigmoid"} without {@code norm_topk_prob}, the sigmoids as they are, the shared expert summed in. */
        SIGMOID_AS_IS
    }

    private Cohere2MoeReference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir, Kind kind) throws IOException {
        boolean sigmoid = kind != Kind.SOFTMAX_AVERAGED;
        boolean normalized = kind != Kind.SIGMOID_AS_IS;
        HookedAutoConfig config = HookedAutoConfig.of("cohere2_moe").with(Map.ofEntries(
                Map.entry("vocab_size", VOCAB), Map.entry("hidden_size", D), Map.entry("intermediate_size", EXPERT),
                Map.entry("num_hidden_layers", LAYERS), Map.entry("num_attention_heads", HEADS),
                Map.entry("num_key_value_heads", KV), Map.entry("head_dim", HD), Map.entry("initializer_range", 0.2),
                Map.entry("max_position_embeddings", 64), Map.entry("rope_theta", THETA),
                Map.entry("layer_norm_eps", EPS), Map.entry("logit_scale", LOGIT_SCALE),
                Map.entry("sliding_window", WINDOW), Map.entry("sliding_window_pattern", 2),
                Map.entry("first_k_dense_replace", 1), Map.entry("prefix_dense_intermediate_size", DENSE),
                Map.entry("num_experts", EXPERTS), Map.entry("num_experts_per_tok", TOP_K),
                Map.entry("num_shared_experts", 1), Map.entry("shared_expert_combination_strategy",
                        sigmoid ? "sum" : "average"),
                Map.entry("expert_selection_fn", sigmoid ? "sigmoid" : "softmax"),
                Map.entry("norm_topk_prob", normalized)));
        ReferenceMath.write(config, 61, BATCH, POS, dir, (w, ids, out) -> forward(w, ids, out, sigmoid, normalized));
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out, boolean sigmoid,
                                boolean normalized) {
        int n = BATCH * POS;
        double[] x = embed(w, ids, D);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            String b = "blocks." + layer + ".";
            out.put(b + "hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = layerNorm(x, n, D, w.get(p + "input_layernorm.weight"), new double[D], EPS);
            double[] q = linear(h, n, w.get(p + "self_attn.q_proj.weight"), HEADS * HD, D);
            double[] k = linear(h, n, w.get(p + "self_attn.k_proj.weight"), KV * HD, D);
            double[] v = linear(h, n, w.get(p + "self_attn.v_proj.weight"), KV * HD, D);
            boolean sliding = layer == 1;
            if (layer != 2) { // the sliding layer, and the dense one, which rotates though full
                rotateInterleaved(q, BATCH, POS, HEADS, HD, HD, THETA);
                rotateInterleaved(k, BATCH, POS, KV, HD, HD, THETA);
            }
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, sliding ? WINDOW : Integer.MAX_VALUE, layer,
                    out);
            double[] attn = linear(z, n, w.get(p + "self_attn.o_proj.weight"), D, HEADS * HD);
            double[] mlp;
            if (layer == 0) {
                double[] act = silu(linear(h, n, w.get(p + "mlp.gate_proj.weight"), DENSE, D),
                        linear(h, n, w.get(p + "mlp.up_proj.weight"), DENSE, D));
                mlp = linear(act, n, w.get(p + "mlp.down_proj.weight"), D, DENSE);
            } else {
                mlp = mixture(w, p + "mlp.", h, n, b, sigmoid, normalized, out);
            }
            out.put(b + "hook_mlp_out", tensor(mlp, BATCH, POS, D));
            add(x, attn);
            add(x, mlp);
        }
        double[] last = layerNorm(x, n, D, w.get("model.norm.weight"), new double[D], EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        double[] logits = linear(last, n, w.get("model.embed_tokens.weight"), VOCAB, D);
        for (int i = 0; i < logits.length; i++) {
            logits[i] *= LOGIT_SCALE;
        }
        out.put("logits", tensor(logits, BATCH, POS, VOCAB));
    }

    /** The experts' weighted outputs joined with the shared expert's, recording the router's choices. */
    private static double[] mixture(Map<String, double[]> w, String p, double[] h, int n, String b, boolean sigmoid,
                                    boolean normalized, Map<String, Tensor> out) {
        double[] logits = linear(h, n, w.get(p + "gate.weight"), EXPERTS, D);
        double[] y = new double[n * D];
        double[] chosenOut = new double[n * TOP_K];
        double[] weightsOut = new double[n * TOP_K];
        for (int t = 0; t < n; t++) {
            double[] s = java.util.Arrays.copyOfRange(logits, t * EXPERTS, (t + 1) * EXPERTS);
            int[] chosen = ReferenceMath.topExperts(s, TOP_K, 1, 1, false);
            double[] weight = new double[TOP_K];
            double sum = 0;
            for (int j = 0; j < TOP_K; j++) {
                weight[j] = sigmoid ? 1 / (1 + Math.exp(-s[chosen[j]])) : Math.exp(s[chosen[j]] - s[chosen[0]]);
                sum += weight[j];
            }
            double[] row = java.util.Arrays.copyOfRange(h, t * D, (t + 1) * D);
            for (int j = 0; j < TOP_K; j++) {
                weight[j] /= sigmoid && !normalized ? 1 : sum; // the softmax over the top k, or the sigmoids
                chosenOut[t * TOP_K + j] = chosen[j];
                weightsOut[t * TOP_K + j] = weight[j];
                String expert = p + "experts." + chosen[j] + ".";
                double[] o = gatedExpert(w, expert + "gate_proj.weight", expert + "up_proj.weight",
                        expert + "down_proj.weight", row, D, EXPERT);
                for (int i = 0; i < D; i++) {
                    y[t * D + i] += weight[j] * o[i];
                }
            }
            double[] shared = gatedExpert(w, p + "shared_experts.gate_proj.weight",
                    p + "shared_experts.up_proj.weight", p + "shared_experts.down_proj.weight", row, D, EXPERT);
            for (int i = 0; i < D; i++) {
                y[t * D + i] = sigmoid ? y[t * D + i] + shared[i] : (y[t * D + i] + shared[i]) / 2;
            }
        }
        out.put(b + "mlp.hook_expert_indices", tensor(chosenOut, BATCH, POS, TOP_K));
        out.put(b + "mlp.hook_expert_weights", tensor(weightsOut, BATCH, POS, TOP_K));
        return y;
    }
}
