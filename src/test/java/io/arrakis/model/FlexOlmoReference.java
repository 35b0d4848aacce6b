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
import static io.arrakis.model.ReferenceMath.rotateHalf;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * A FlexOlmo reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights
 * drawn around 1) and the activations of {@code FlexOlmoForCausalLM}'s forward pass as transformers' modeling file
 * defines it, computed here in double precision in plain Java, apart from the library's forward pass
 * ({@link ReferenceMath}): no input norms; queries and keys each normalised over all their heads' features, then
 * turned by {@code rotate_half} rotary embeddings; causal softmax attention with grouped key/value heads, its output
 * normalised ({@code post_attention_layernorm}) before the residual sum; the router's softmax over all experts, its
 * {@code k} largest values divided by their sum ({@code norm_topk_prob}) weighting {@code down(silu(gate x) * up x)},
 * normalised ({@code post_feedforward_layernorm}) before the residual sum.
 */
final class FlexOlmoReference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = 12; // not D / HEADS, so that head_dim counts
    private static final int MLP = 24;
    private static final int LAYERS = 2;
    private static final int EXPERTS = 5;
    private static final int TOP_K = 2;
    private static final double EPS = 1e-6;
    private static final double THETA = 10000.0;
    private static final int BATCH = 2;
    private static final int POS = 10;

    private FlexOlmoReference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir) throws IOException {
        HookedAutoConfig config = HookedAutoConfig.of("flex_olmo").with(Map.ofEntries(Map.entry("vocab_size", VOCAB),
                Map.entry("hidden_size", D), Map.entry("intermediate_size", MLP),
                Map.entry("num_hidden_layers", LAYERS), Map.entry("num_attention_heads", HEADS),
                Map.entry("num_key_value_heads", KV), Map.entry("head_dim", HD), Map.entry("num_experts", EXPERTS),
                Map.entry("num_experts_per_tok", TOP_K), Map.entry("norm_topk_prob", true),
                Map.entry("initializer_range", 0.2), Map.entry("max_position_embeddings", 64),
                Map.entry("rope_theta", THETA), Map.entry("pad_token_id", 1), Map.entry("eos_token_id", 2)));
        ReferenceMath.write(config, 53, BATCH, POS, dir, FlexOlmoReference::forward);
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out) {
        int n = BATCH * POS;
        double[] x = embed(w, ids, D);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            String b = "blocks." + layer + ".";
            out.put(b + "hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] q = rmsNorm(linear(x, n, w.get(p + "self_attn.q_proj.weight"), HEADS * HD, D), n, HEADS * HD,
                    w.get(p + "self_attn.q_norm.weight"), EPS);
            double[] k = rmsNorm(linear(x, n, w.get(p + "self_attn.k_proj.weight"), KV * HD, D), n, KV * HD,
                    w.get(p + "self_attn.k_norm.weight"), EPS);
            double[] v = linear(x, n, w.get(p + "self_attn.v_proj.weight"), KV * HD, D);
            rotateHalf(q, BATCH, POS, HEADS, HD, THETA);
            rotateHalf(k, BATCH, POS, KV, HD, THETA);
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, Integer.MAX_VALUE, layer, out);
            double[] attn = rmsNorm(linear(z, n, w.get(p + "self_attn.o_proj.weight"), D, HEADS * HD), n, D,
                    w.get(p + "post_attention_layernorm.weight"), EPS);
            out.put(b + "hook_attn_out", tensor(attn, BATCH, POS, D));
            add(x, attn);
            double[] mlp = rmsNorm(mixture(w, p + "mlp.", x, n, b, out), n, D,
                    w.get(p + "post_feedforward_layernorm.weight"), EPS);
            out.put(b + "hook_mlp_out", tensor(mlp, BATCH, POS, D));
            add(x, mlp);
        }
        double[] last = rmsNorm(x, n, D, w.get("model.norm.weight"), EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(linear(last, n, w.get("lm_head.weight"), VOCAB, D), BATCH, POS, VOCAB));
    }

    /** The routed experts' weighted outputs, recording the router's logits and choices. */
    private static double[] mixture(Map<String, double[]> w, String p, double[] h, int n, String b,
                                    Map<String, Tensor> out) {
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
        }
        out.put(b + "mlp.hook_router_logits", tensor(logits, BATCH, POS, EXPERTS));
        out.put(b + "mlp.hook_expert_indices", tensor(chosenOut, BATCH, POS, TOP_K));
        out.put(b + "mlp.hook_expert_weights", tensor(weightsOut, BATCH, POS, TOP_K));
        return y;
    }
}
