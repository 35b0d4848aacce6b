package io.arrakis.model;

import io.arrakis.torch.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import static io.arrakis.model.ReferenceMath.add;
import static io.arrakis.model.ReferenceMath.attention;
import static io.arrakis.model.ReferenceMath.embed;
import static io.arrakis.model.ReferenceMath.linear;
import static io.arrakis.model.ReferenceMath.rmsNorm;
import static io.arrakis.model.ReferenceMath.rotateHalf;
import static io.arrakis.model.ReferenceMath.silu;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * An OLMoE reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights
 * drawn around 1, so that every norm's weight counts) and the activations of {@code OlmoeForCausalLM}'s forward pass
 * as transformers' modeling file defines it, computed here in double precision in plain Java, apart from the
 * library's forward pass ({@link ReferenceMath}): RMSNorm {@code x / sqrt(mean(x^2) + eps) * w}; queries and keys each
 * normalised over all their heads' features together, then turned by {@code rotate_half} rotary embeddings; causal
 * softmax attention with grouped key/value heads; the softmax over the experts' router logits, its {@code k} largest
 * values as they are ({@code norm_topk_prob} false) weighting {@code down(silu(gate x) * up x)}.
 */
final class OlmoeReference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = D / HEADS;
    private static final int MLP = 24;
    private static final int LAYERS = 2;
    private static final int EXPERTS = 4;
    private static final int TOP_K = 2;
    private static final double EPS = 1e-5;
    private static final double THETA = 10000.0;
    private static final int BATCH = 2;
    private static final int POS = 10;

    private OlmoeReference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir) throws IOException {
        HookedAutoConfig config = HookedAutoConfig.of("olmoe").with(Map.ofEntries(Map.entry("vocab_size", VOCAB),
                Map.entry("hidden_size", D), Map.entry("intermediate_size", MLP),
                Map.entry("num_hidden_layers", LAYERS),
                Map.entry("num_attention_heads", HEADS), Map.entry("num_key_value_heads", KV),
                Map.entry("num_experts", EXPERTS), Map.entry("num_experts_per_tok", TOP_K),
                Map.entry("initializer_range", 0.2), Map.entry("max_position_embeddings", 64),
                Map.entry("eos_token_id", 2)));
        ReferenceMath.write(config, 11, BATCH, POS, dir, OlmoeReference::forward);
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out) {
        int n = BATCH * POS;
        double[] x = embed(w, ids, D);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            out.put("blocks." + layer + ".hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = rmsNorm(x, n, D, w.get(p + "input_layernorm.weight"), EPS);
            double[] q = rmsNorm(linear(h, n, w.get(p + "self_attn.q_proj.weight"), HEADS * HD, D), n, HEADS * HD,
                    w.get(p + "self_attn.q_norm.weight"), EPS);
            double[] k = rmsNorm(linear(h, n, w.get(p + "self_attn.k_proj.weight"), KV * HD, D), n, KV * HD,
                    w.get(p + "self_attn.k_norm.weight"), EPS);
            double[] v = linear(h, n, w.get(p + "self_attn.v_proj.weight"), KV * HD, D);
            rotateHalf(q, BATCH, POS, HEADS, HD, THETA);
            rotateHalf(k, BATCH, POS, KV, HD, THETA);
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, Integer.MAX_VALUE, layer, out);
            add(x, linear(z, n, w.get(p + "self_attn.o_proj.weight"), D, HEADS * HD));
            double[] h2 = rmsNorm(x, n, D, w.get(p + "post_attention_layernorm.weight"), EPS);
            double[] router = linear(h2, n, w.get(p + "mlp.gate.weight"), EXPERTS, D);
            double[] mlp = new double[n * D];
            for (int t = 0; t < n; t++) {
                double[] probs = ReferenceMath.softmax(router, t * EXPERTS, EXPERTS);
                boolean[] taken = new boolean[EXPERTS];
                double[] row = java.util.Arrays.copyOfRange(h2, t * D, (t + 1) * D);
                for (int j = 0; j < TOP_K; j++) {
                    int best = -1;
                    for (int e = 0; e < EXPERTS; e++) {
                        best = !taken[e] && (best < 0 || probs[e] > probs[best]) ? e : best;
                    }
                    taken[best] = true;
                    String expert = p + "mlp.experts." + best + ".";
                    double[] act = silu(linear(row, 1, w.get(expert + "gate_proj.weight"), MLP, D),
                            linear(row, 1, w.get(expert + "up_proj.weight"), MLP, D));
                    double[] down = linear(act, 1, w.get(expert + "down_proj.weight"), D, MLP);
                    for (int i = 0; i < D; i++) {
                        mlp[t * D + i] += probs[best] * down[i];
                    }
                }
            }
            add(x, mlp);
        }
        double[] last = rmsNorm(x, n, D, w.get("model.norm.weight"), EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(linear(last, n, w.get("lm_head.weight"), VOCAB, D), BATCH, POS, VOCAB));
    }
}
