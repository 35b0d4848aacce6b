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
import static io.arrakis.model.ReferenceMath.rmsNorm;
import static io.arrakis.model.ReferenceMath.rotateHalf;
import static io.arrakis.model.ReferenceMath.tensor;

/**
 * A VaultGemma reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights
 * drawn around 1) and the activations of {@code VaultGemmaForCausalLM}'s forward pass as transformers' modeling file
 * defines it, computed here in double precision in plain Java, apart from the library's forward pass
 * ({@link ReferenceMath}): embeddings times {@code sqrt(hidden_size)}; blocks whose only norms are Gemma's
 * {@code x / sqrt(mean(x^2) + eps) * (1 + w)} before attention ({@code input_layernorm}) and before the MLP
 * ({@code pre_feedforward_layernorm}); rotary embeddings in the {@code rotate_half} convention; scores divided by
 * {@code sqrt(query_pre_attn_scalar)} and soft-capped; a sliding window in the first layer and full attention in the
 * second; a gated MLP with the tanh GELU; the final norm, the tied head and the logits soft-capped. The caps and the
 * window are set small enough to change the result.
 */
final class VaultGemmaReference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = 12; // not D / HEADS, so that head_dim counts
    private static final int MLP = 24;
    private static final int LAYERS = 2;
    private static final double EPS = 1e-6;
    private static final double THETA = 1000.0; // not the default, so that rope_theta counts
    private static final double SCALAR = 20; // not head_dim, so that query_pre_attn_scalar counts
    private static final double ATTENTION_CAP = 2.0;
    private static final double LOGIT_CAP = 3.0;
    private static final int WINDOW = 4;
    private static final int BATCH = 2;
    private static final int POS = 10;

    private VaultGemmaReference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir) throws IOException {
        HookedAutoConfig config = HookedAutoConfig.of("vaultgemma").with(Map.ofEntries(
                Map.entry("vocab_size", VOCAB), Map.entry("hidden_size", D), Map.entry("intermediate_size", MLP),
                Map.entry("num_hidden_layers", LAYERS), Map.entry("num_attention_heads", HEADS),
                Map.entry("num_key_value_heads", KV), Map.entry("head_dim", HD), Map.entry("initializer_range", 0.2),
                Map.entry("max_position_embeddings", 64), Map.entry("rope_theta", THETA),
                Map.entry("rms_norm_eps", EPS), Map.entry("query_pre_attn_scalar", SCALAR),
                Map.entry("attn_logit_softcapping", ATTENTION_CAP), Map.entry("final_logit_softcapping", LOGIT_CAP),
                Map.entry("sliding_window", WINDOW),
                Map.entry("layer_types", List.of("sliding_attention", "full_attention"))));
        ReferenceMath.write(config, 37, BATCH, POS, dir, VaultGemmaReference::forward);
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out) {
        int n = BATCH * POS;
        double[] x = embed(w, ids, D);
        for (int i = 0; i < x.length; i++) {
            x[i] *= Math.sqrt(D);
        }
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            out.put("blocks." + layer + ".hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = gemmaNorm(x, n, w.get(p + "input_layernorm.weight"));
            double[] q = linear(h, n, w.get(p + "self_attn.q_proj.weight"), HEADS * HD, D);
            double[] k = linear(h, n, w.get(p + "self_attn.k_proj.weight"), KV * HD, D);
            double[] v = linear(h, n, w.get(p + "self_attn.v_proj.weight"), KV * HD, D);
            rotateHalf(q, BATCH, POS, HEADS, HD, THETA);
            rotateHalf(k, BATCH, POS, KV, HD, THETA);

            int window = layer == 0 ? WINDOW : Integer.MAX_VALUE;
            double[] z = attention(q, k, v, BATCH, POS, HEADS, KV, HD, window, SCALAR, ATTENTION_CAP, layer, out);
            add(x, linear(z, n, w.get(p + "self_attn.o_proj.weight"), D, HEADS * HD));
            double[] h2 = gemmaNorm(x, n, w.get(p + "pre_feedforward_layernorm.weight"));
            double[] gate = linear(h2, n, w.get(p + "mlp.gate_proj.weight"), MLP, D);
            double[] up = linear(h2, n, w.get(p + "mlp.up_proj.weight"), MLP, D);
            for (int i = 0; i < gate.length; i++) {
                double g = gate[i];
                gate[i] = 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (g + 0.044715 * g * g * g))) * up[i];
            }
            add(x, linear(gate, n, w.get(p + "mlp.down_proj.weight"), D, MLP));
        }
        double[] last = gemmaNorm(x, n, w.get("model.norm.weight"));
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        double[] logits = linear(last, n, w.get("model.embed_tokens.weight"), VOCAB, D);
        for (int i = 0; i < logits.length; i++) {
            logits[i] = LOGIT_CAP * Math.tanh(logits[i] / LOGIT_CAP);
        }
        out.put("logits", tensor(logits, BATCH, POS, VOCAB));
    }

    /** Gemma's RMSNorm, whose weight {@code w} scales by {@code 1 + w}. */
    private static double[] gemmaNorm(double[] x, int n, double[] w) {
        double[] plusOne = new double[w.length];
        for (int i = 0; i < w.length; i++) {
            plusOne[i] = 1 + w[i];
        }
        return rmsNorm(x, n, D, plusOne, EPS);
    }
}
