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
import static io.arrakis.model.ReferenceMath.reluSquared;
import static io.arrakis.model.ReferenceMath.rotateHalf;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * A Nemotron reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights and
 * biases drawn around 1 and its other biases around 0, so that every one counts) and the activations of
 * {@code NemotronForCausalLM}'s forward pass as transformers' modeling file defines it, computed here in double
 * precision in plain Java, apart from the library's forward pass ({@link ReferenceMath}): pre-norm blocks whose
 * {@code LayerNorm1P} is {@code (x - mean) / sqrt(var + eps) * (1 + w) + b}, biases on the four attention projections
 * and the MLP's two ({@code attention_bias}, {@code mlp_bias}), the rotary embedding on the first half of each head
 * in the {@code rotate_half} convention ({@code partial_rotary_factor} 0.5), a causal softmax over grouped key/value
 * heads, an MLP without a gate, {@code down(relu(up(x))^2)}, whose activation the reference holds, and an untied head.
 */
final class NemotronReference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = 12; // not D / HEADS, so that head_dim counts
    private static final int ROTARY = HD / 2;
    private static final int MLP = 24;
    private static final int LAYERS = 2;
    private static final double EPS = 1e-5;
    private static final double THETA = 1000.0; // not the default, so that rope_theta counts
    private static final int BATCH = 2;
    private static final int POS = 10;

    private NemotronReference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir) throws IOException {
        HookedAutoConfig config = HookedAutoConfig.of("nemotron").with(Map.ofEntries(Map.entry("vocab_size", VOCAB),
                Map.entry("hidden_size", D), Map.entry("intermediate_size", MLP),
                Map.entry("num_hidden_layers", LAYERS), Map.entry("num_attention_heads", HEADS),
                Map.entry("num_key_value_heads", KV), Map.entry("head_dim", HD), Map.entry("initializer_range", 0.2),
                Map.entry("max_position_embeddings", 64), Map.entry("rope_theta", THETA), Map.entry("norm_eps", EPS),
                Map.entry("attention_bias", true), Map.entry("mlp_bias", true)));
        ReferenceMath.write(config, 41, BATCH, POS, dir, NemotronReference::forward);
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out) {
        int n = BATCH * POS;
        double[] x = embed(w, ids, D);
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            out.put("blocks." + layer + ".hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = layerNorm1P(x, n, w, p + "input_layernorm.");
            double[] q = projection(w, p + "self_attn.q_proj", h, n, HEADS * HD, D, true);
            double[] k = projection(w, p + "self_attn.k_proj", h, n, KV * HD, D, true);
            double[] v = projection(w, p + "self_attn.v_proj", h, n, KV * HD, D, true);
            rotateHalf(q, BATCH, POS, HEADS, HD, ROTARY, THETA);
            rotateHalf(k, BATCH, POS, KV, HD, ROTARY, THETA);
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, Integer.MAX_VALUE, layer, out);
            add(x, projection(w, p + "self_attn.o_proj", z, n, D, HEADS * HD, true));
            double[] h2 = layerNorm1P(x, n, w, p + "post_attention_layernorm.");
            double[] act = projection(w, p + "mlp.up_proj", h2, n, MLP, D, true);
            reluSquared(act);
            out.put("blocks." + layer + ".mlp.hook_post", tensor(act, BATCH, POS, MLP));
            add(x, projection(w, p + "mlp.down_proj", act, n, D, MLP, true));
        }
        double[] last = layerNorm1P(x, n, w, "model.norm.");
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(linear(last, n, w.get("lm_head.weight"), VOCAB, D), BATCH, POS, VOCAB));
    }

    /** Nemotron's {@code LayerNorm1P} under {@code prefix}: a LayerNorm that scales by {@code 1 + weight}. */
    private static double[] layerNorm1P(double[] x, int n, Map<String, double[]> w, String prefix) {
        double[] weight = w.get(prefix + "weight");
        double[] plusOne = new double[weight.length];
        for (int i = 0; i < weight.length; i++) {
            plusOne[i] = 1 + weight[i];
        }
        return layerNorm(x, n, D, plusOne, w.get(prefix + "bias"), EPS);
    }
}
