package io.arrakis.model;

import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * An ERNIE 4.5 reference model for which no Hugging Face run was at hand: a tiny random checkpoint (its norm weights
 * drawn around 1 and its biases around 0, so that every one counts) and the activations of
 * {@code Ernie4_5ForCausalLM}'s forward pass as transformers' modeling file defines it, computed here in double
 * precision in plain Java, apart from the library's forward pass: Llama's pre-norm blocks with RMSNorm
 * {@code x / sqrt(mean(x^2) + eps) * w}, biases on every projection ({@code use_bias}), the rotary embedding over the
 * whole head in the interleaved convention (frequency i turns the pair {@code (2i, 2i + 1)}), a causal softmax over
 * grouped key/value heads, and the head tied to the embedding. The references are named and shaped as those of
 * {@code shared/fixtures-hf-more}.
 */
final class Ernie45Reference {
    private static final int VOCAB = 96;
    private static final int D = 32;
    private static final int HEADS = 4;
    private static final int KV = 2;
    private static final int HD = 12; // not D / HEADS, so that head_dim counts
    private static final int MLP = 24;
    private static final int LAYERS = 2;
    private static final int ROTARY = HD;
    private static final double EPS = 1e-5;
    private static final double THETA = 10000.0;
    private static final int BATCH = 2;
    private static final int POS = 10;

    private Ernie45Reference() {
    }

    /** Writes config.json, model.safetensors and reference.safetensors into {@code dir}. */
    static void write(Path dir) throws IOException {
        HookedAutoConfig config = HookedAutoConfig.of("ernie4_5").with(Map.ofEntries(Map.entry("vocab_size", VOCAB),
                Map.entry("hidden_size", D), Map.entry("intermediate_size", MLP),
                Map.entry("num_hidden_layers", LAYERS), Map.entry("num_attention_heads", HEADS),
                Map.entry("num_key_value_heads", KV), Map.entry("head_dim", HD), Map.entry("initializer_range", 0.2),
                Map.entry("max_position_embeddings", 64), Map.entry("rope_theta", THETA),
                Map.entry("rms_norm_eps", EPS), Map.entry("use_bias", true)));
        Random random = new Random(19);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        Map<String, double[]> w = new LinkedHashMap<>();
        try (TensorScope scope = TensorScope.open()) {
            HookedAutoModel.RandomSource source = new HookedAutoModel.RandomSource(config, 19, DType.FLOAT32);
            for (String name : source.names()) {
                Tensor t = source.load(name);
                float[] values = t.toFloatArray();
                if (name.contains("norm") || name.endsWith(".bias")) {
                    for (int i = 0; i < values.length; i++) {
                        values[i] = (float) ((name.contains("norm") ? 1 : 0) + 0.2 * random.nextGaussian());
                    }
                }
                tensors.put(name, Tensor.of(values, t.shape()));
                double[] asDouble = new double[values.length];
                for (int i = 0; i < values.length; i++) {
                    asDouble[i] = values[i];
                }
                w.put(name, asDouble);
            }
            Fixtures.writeCheckpoint(config, tensors, dir);
            long[] ids = new long[BATCH * POS];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = random.nextInt(VOCAB);
            }
            Map<String, Tensor> reference = new LinkedHashMap<>();
            reference.put("input_ids", Tensor.of(ids, BATCH, POS));
            forward(w, ids, reference);
            SafeTensorsWriter.write(dir.resolve("reference.safetensors"), reference, Map.of("format", "pt"));
        }
    }

    private static void forward(Map<String, double[]> w, long[] ids, Map<String, Tensor> out) {
        int n = BATCH * POS;
        double[] x = new double[n * D];
        for (int t = 0; t < n; t++) {
            System.arraycopy(w.get("model.embed_tokens.weight"), (int) ids[t] * D, x, t * D, D);
        }
        for (int layer = 0; layer < LAYERS; layer++) {
            String p = "model.layers." + layer + ".";
            out.put("blocks." + layer + ".hook_resid_pre", tensor(x, BATCH, POS, D));
            double[] h = rmsNorm(x, n, D, w.get(p + "input_layernorm.weight"));
            double[] q = plus(linear(h, n, w.get(p + "self_attn.q_proj.weight"), HEADS * HD, D),
                    w.get(p + "self_attn.q_proj.bias"));
            double[] k = plus(linear(h, n, w.get(p + "self_attn.k_proj.weight"), KV * HD, D),
                    w.get(p + "self_attn.k_proj.bias"));
            double[] v = plus(linear(h, n, w.get(p + "self_attn.v_proj.weight"), KV * HD, D),
                    w.get(p + "self_attn.v_proj.bias"));
            rotate(q, HEADS);
            rotate(k, KV);
            double[] pattern = new double[BATCH * HEADS * POS * POS];
            double[] z = new double[n * HEADS * HD];
            for (int b = 0; b < BATCH; b++) {
                for (int head = 0; head < HEADS; head++) {
                    int kvHead = head / (HEADS / KV);
                    for (int i = 0; i < POS; i++) {
                        double[] scores = new double[i + 1];
                        double max = Double.NEGATIVE_INFINITY;
                        int qAt = ((b * POS + i) * HEADS + head) * HD;
                        for (int j = 0; j <= i; j++) {
                            int kAt = ((b * POS + j) * KV + kvHead) * HD;
                            double dot = 0;
                            for (int e = 0; e < HD; e++) {
                                dot += q[qAt + e] * k[kAt + e];
                            }
                            scores[j] = dot / Math.sqrt(HD);
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
                            int vAt = ((b * POS + j) * KV + kvHead) * HD;
                            for (int e = 0; e < HD; e++) {
                                z[qAt + e] += prob * v[vAt + e];
                            }
                        }
                    }
                }
            }
            out.put("blocks." + layer + ".attn.hook_pattern", tensor(pattern, BATCH, HEADS, POS, POS));
            add(x, plus(linear(z, n, w.get(p + "self_attn.o_proj.weight"), D, HEADS * HD),
                    w.get(p + "self_attn.o_proj.bias")));
            double[] h2 = rmsNorm(x, n, D, w.get(p + "post_attention_layernorm.weight"));
            double[] gate = plus(linear(h2, n, w.get(p + "mlp.gate_proj.weight"), MLP, D),
                    w.get(p + "mlp.gate_proj.bias"));
            double[] up = plus(linear(h2, n, w.get(p + "mlp.up_proj.weight"), MLP, D), w.get(p + "mlp.up_proj.bias"));
            for (int i = 0; i < gate.length; i++) {
                gate[i] = gate[i] / (1 + Math.exp(-gate[i])) * up[i];
            }
            add(x, plus(linear(gate, n, w.get(p + "mlp.down_proj.weight"), D, MLP), w.get(p + "mlp.down_proj.bias")));
        }
        double[] last = rmsNorm(x, n, D, w.get("model.norm.weight"));
        out.put("ln_final.hook_normalized", tensor(last, BATCH, POS, D));
        out.put("logits", tensor(linear(last, n, w.get("model.embed_tokens.weight"), VOCAB, D), BATCH, POS, VOCAB));
    }

    /** {@code x [n, width]} plus {@code bias [width]} on each row. */
    private static double[] plus(double[] x, double[] bias) {
        double[] y = x.clone();
        for (int i = 0; i < y.length; i++) {
            y[i] += bias[i % bias.length];
        }
        return y;
    }

    /** {@code x [n, in] · w[out, in]ᵀ}. */
    private static double[] linear(double[] x, int n, double[] w, int out, int in) {
        double[] y = new double[n * out];
        for (int r = 0; r < n; r++) {
            for (int o = 0; o < out; o++) {
                double s = 0;
                for (int i = 0; i < in; i++) {
                    s += x[r * in + i] * w[o * in + i];
                }
                y[r * out + o] = s;
            }
        }
        return y;
    }

    /** RMSNorm of each of the {@code n} rows of {@code width} features. */
    private static double[] rmsNorm(double[] x, int n, int width, double[] weight) {
        double[] y = new double[x.length];
        for (int r = 0; r < n; r++) {
            double squares = 0;
            for (int i = 0; i < width; i++) {
                squares += x[r * width + i] * x[r * width + i];
            }
            double scale = 1 / Math.sqrt(squares / width + EPS);
            for (int i = 0; i < width; i++) {
                y[r * width + i] = x[r * width + i] * scale * weight[i];
            }
        }
        return y;
    }

    /**
     * Interleaved rotary embeddings on every feature of each head of {@code x [batch, pos, heads, HD]} in place, at
     * positions 0..: frequency i turns the pair (2i, 2i + 1).
     */
    private static void rotate(double[] x, int heads) {
        for (int b = 0; b < BATCH; b++) {
            for (int pos = 0; pos < POS; pos++) {
                for (int head = 0; head < heads; head++) {
                    int at = ((b * POS + pos) * heads + head) * HD;
                    for (int i = 0; i < ROTARY / 2; i++) {
                        double angle = pos / Math.pow(THETA, 2.0 * i / ROTARY);
                        double first = x[at + 2 * i];
                        double second = x[at + 2 * i + 1];
                        x[at + 2 * i] = first * Math.cos(angle) - second * Math.sin(angle);
                        x[at + 2 * i + 1] = second * Math.cos(angle) + first * Math.sin(angle);
                    }
                }
            }
        }
    }

    private static void add(double[] x, double[] y) {
        for (int i = 0; i < x.length; i++) {
            x[i] += y[i];
        }
    }

    private static Tensor tensor(double[] values, long... shape) {
        float[] f = new float[values.length];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) values[i];
        }
        return Tensor.of(f, shape);
    }
}
