package io.arrakis.model;

import io.arrakis.torch.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

import static io.arrakis.model.ReferenceMath.add;
import static io.arrakis.model.ReferenceMath.attention;
import static io.arrakis.model.ReferenceMath.embed;
import static io.arrakis.model.ReferenceMath.layerNorm;
import static io.arrakis.model.ReferenceMath.linear;
import static io.arrakis.model.ReferenceMath.projection;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * A GPT-BigCode reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights
 * and biases drawn around 1 and its other biases around 0, so that every one counts) and the activations of
 * {@code GPTBigCodeForCausalLM}'s forward pass as transformers' modeling file defines it, computed here in double
 * precision in plain Java, apart from the library's forward pass ({@link ReferenceMath}): token embeddings plus learned
 * positions; pre-norm blocks with LayerNorm {@code (x - mean) / sqrt(var + eps) * w + b}; {@code c_attn} split as
 * {@code GPTBigCodeAttention.forward} splits it (multi-query: the first {@code d_model} outputs the queries, then one
 * head's key and one head's value; otherwise each head's query, key and value in turn); a causal softmax of the scores,
 * scaled by {@code head_dim^-1/2} where {@code scale_attn_weights}; an MLP {@code c_proj(act(c_fc(x)))}; the final
 * LayerNorm and a head tied to the token embeddings or its own ({@link Variant}).
 */
final class GptBigCodeReference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int HD = D / HEADS;
    private static final int MLP = 40;
    private static final int LAYERS = 2;
    private static final double EPS = 1e-4; // not the default, so that layer_norm_epsilon counts
    private static final int BATCH = 2;
    private static final int POS = 10;

    /**
     * Which model: multi-query attention or a key and value head per query head; scores scaled by
     * {@code head_dim^-1/2} ({@code scale_attn_weights}) or not; the tanh GELU ({@code gelu_pytorch_tanh}) or ReLU;
     * a head tied to the token embeddings or its own {@code lm_head}.
     */
    record Variant(boolean multiQuery, boolean scaled, boolean relu, boolean tied, long seed) {
        /** {@code GPTBigCodeConfig}'s defaults: the family's derived fixture. */
        static final Variant DEFAULTS = new Variant(true, true, false, true, 53);
        /** A key and value head per query head. */
        static final Variant EVERY_HEAD = new Variant(false, true, false, true, 59);
        /** Unscaled scores, ReLU and an untied head, with multi-query attention. */
        static final Variant UNSCALED_RELU_UNTIED = new Variant(true, false, true, false, 67);
    }

    private GptBigCodeReference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors of {@code v} into {@code dir}. */
    static void write(Path dir, Variant v) throws IOException {
        HookedAutoConfig config = HookedAutoConfig.of("gpt-bigcode").with(Map.ofEntries(
                Map.entry("vocab_size", VOCAB), Map.entry("n_embd", D), Map.entry("n_inner", MLP),
                Map.entry("n_layer", LAYERS), Map.entry("n_head", HEADS), Map.entry("initializer_range", 0.2),
                Map.entry("n_positions", 16), Map.entry("layer_norm_epsilon", EPS),
                Map.entry("multi_query", v.multiQuery()), Map.entry("scale_attn_weights", v.scaled()),
                Map.entry("activation_function", v.relu() ? "relu" : "gelu_pytorch_tanh"),
                Map.entry("tie_word_embeddings", v.tied())));
        ReferenceMath.write(config, v.seed(), BATCH, POS, dir, (w, ids, out) -> forward(w, ids, v, out));
    }

    private static void forward(Map<String, double[]> w, long[] ids, Variant variant, Map<String, Tensor> out) {
        int kv = variant.multiQuery() ? 1 : HEADS;
        int n = BATCH * POS;
        double[] x = embed(w.get("transformer.wte.weight"), ids, D);
        long[] positions = new long[n];
        for (int t = 0; t < n; t++) {
            positions[t] = t % POS;
        }
        add(x, embed(w.get("transformer.wpe.weight"), positions, D));
        int width = D + 2 * kv * HD;
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "transformer.h." + layer + ".";
            out.put("blocks." + layer + ".hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = layerNorm(x, n, D, w.get(p + "ln_1.weight"), w.get(p + "ln_1.bias"), EPS);
            double[] qkv = projection(w, p + "attn.c_attn", h, n, width, D, true);
            double[] q = new double[n * HEADS * HD];
            double[] k = new double[n * kv * HD];
            double[] v = new double[n * kv * HD];
            for (int t = 0; t < n; t++) {
                if (kv == 1) { // [q | k | v]
                    System.arraycopy(qkv, t * width, q, t * D, D);
                    System.arraycopy(qkv, t * width + D, k, t * HD, HD);
                    System.arraycopy(qkv, t * width + D + HD, v, t * HD, HD);
                } else { // [head, q | k | v]
                    for (int head = 0; head < HEADS; head++) {
                        int from = t * width + head * 3 * HD;
                        int to = (t * HEADS + head) * HD;
                        System.arraycopy(qkv, from, q, to, HD);
                        System.arraycopy(qkv, from + HD, k, to, HD);
                        System.arraycopy(qkv, from + 2 * HD, v, to, HD);
                    }
                }
            }
            double[] z = attention(q, k, v, BATCH, POS, HEADS, kv, HD, Integer.MAX_VALUE, variant.scaled() ? HD : 1, 0,
                    layer, out);
            add(x, projection(w, p + "attn.c_proj", z, n, D, D, true));
            double[] h2 = layerNorm(x, n, D, w.get(p + "ln_2.weight"), w.get(p + "ln_2.bias"), EPS);
            double[] act = projection(w, p + "mlp.c_fc", h2, n, MLP, D, true);
            for (int i = 0; i < act.length; i++) {
                double a = act[i];
                act[i] = variant.relu() ? Math.max(0, a)
                        : 0.5 * a * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (a + 0.044715 * a * a * a)));
            }
            out.put("blocks." + layer + ".mlp.hook_post", tensor(act, BATCH, POS, MLP));
            add(x, projection(w, p + "mlp.c_proj", act, n, D, MLP, true));
        }
        double[] last = layerNorm(x, n, D, w.get("transformer.ln_f.weight"), w.get("transformer.ln_f.bias"), EPS);
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        double[] head = w.get(variant.tied() ? "transformer.wte.weight" : "lm_head.weight");
        out.put("logits", tensor(linear(last, n, head, VOCAB, D), BATCH, POS, VOCAB));
    }
}
