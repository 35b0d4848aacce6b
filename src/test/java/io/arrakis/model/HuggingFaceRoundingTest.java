package io.arrakis.model;

import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.testing.Bfloat16;
import io.arrakis.testing.Erf;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.IntToDoubleFunction;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * In bfloat16 each family rounds where its {@code transformers} model rounds. The references are worked out here in
 * Java float arithmetic, rounding to bfloat16 after each step the model's Python code takes; the values of {@code exp},
 * {@code tanh} and a row's sum may differ from libtorch's by a float32 unit, which rarely moves a bfloat16 rounding, so
 * a few mismatches are allowed. Each reference is checked to differ from the one-rounding alternative the pass used
 * before, so the comparison tells them apart.
 */
class HuggingFaceRoundingTest {
    private static final int POS = 6;

    /** Llama's RMSNorm: normalised in float32, rounded to bfloat16, then multiplied by the weight and rounded again. */
    @Test
    void llamaRmsNormRoundsBeforeItsWeight(@TempDir Path dir) throws Exception {
        HookedAutoConfig config = TinyConfigs.of("llama").with("hidden_size", 64);
        // norm weights as training leaves them, not the ones they start at (which round alike either way)
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        HookedAutoModel.RandomSource source = new HookedAutoModel.RandomSource(config, 7, DType.FLOAT32);
        try (TensorScope scope = TensorScope.open()) {
            for (String name : source.names()) {
                Tensor t = source.load(name);
                tensors.put(name, name.endsWith("norm.weight")
                        ? Tensor.randn(new Generator(name.hashCode()), t.shape(), DType.FLOAT32, Device.CPU).mul(0.7).add(1.0)
                        : t);
            }
            Fixtures.writeCheckpoint(config, tensors, dir);
        }
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, Device.CPU)) {
            int d = config.dModel();
            float[] w = model.normWeights().select(0, 0).toFloatArray();
            Tensor x = Tensor.randn(new Generator(3), new long[] {1, POS, d}, DType.FLOAT32, Device.CPU).mul(3.0)
                    .to(DType.BFLOAT16);
            float[] xs = x.toFloatArray();
            float[] got = model.normalize(0, x).toFloatArray();
            float eps = (float) config.normEps();
            float[] twoRoundings = new float[xs.length];
            float[] oneRounding = new float[xs.length];
            for (int p = 0; p < POS; p++) {
                float sum = 0;
                for (int i = 0; i < d; i++) {
                    sum += xs[p * d + i] * xs[p * d + i];
                }
                float inv = (float) (1 / Math.sqrt(sum / d + eps));
                for (int i = 0; i < d; i++) {
                    float h = xs[p * d + i] * inv;
                    twoRoundings[p * d + i] = Bfloat16.round(w[i] * Bfloat16.round(h));
                    oneRounding[p * d + i] = Bfloat16.round(w[i] * h);
                }
            }
            assertAgree(twoRoundings, got, oneRounding);
        }
    }

    /** GPT-2's {@code gelu_new}: {@code 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))}, each op rounding. */
    @Test
    void gpt2GeluNewRoundsAfterEachOp() {
        HookedAutoConfig config = TinyConfigs.of("gpt2");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 5, DType.BFLOAT16, Device.CPU);
             ModelOutput out = model.forward(ids(config), CacheSpec.only("blocks.0.mlp.hook_pre", "blocks.0.mlp.hook_post"))) {
            float[] pre = out.cache().get("blocks.0.mlp.hook_pre").toFloatArray();
            float[] got = out.cache().get("blocks.0.mlp.hook_post").toFloatArray();
            float[] asWritten = new float[pre.length];
            float[] oneOp = new float[pre.length];
            float c = (float) Math.sqrt(2 / Math.PI);
            for (int i = 0; i < pre.length; i++) {
                float x = pre[i];
                float inner = Bfloat16.round(c * Bfloat16.round(x + Bfloat16.round(0.044715f * Bfloat16.round(x * x * x))));
                asWritten[i] = Bfloat16.round(Bfloat16.round(0.5f * x) * Bfloat16.round(1 + Bfloat16.round((float) Math.tanh(inner))));
                oneOp[i] = Bfloat16.round((float) (0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)))));
            }
            assertAgree(asWritten, got, oneOp);
        }
    }

    /** {@code gelu_python}: {@code x * 0.5 * (1 + erf(x / sqrt(2)))}, each op rounding. */
    @Test
    void geluPythonRoundsAfterEachOp() {
        HookedAutoConfig config = TinyConfigs.of("gpt2").with("activation_function", "gelu_python");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 5, DType.BFLOAT16, Device.CPU);
             ModelOutput out = model.forward(ids(config), CacheSpec.only("blocks.0.mlp.hook_pre",
                     "blocks.0.mlp.hook_post"))) {
            float[] pre = out.cache().get("blocks.0.mlp.hook_pre").toFloatArray();
            float[] got = out.cache().get("blocks.0.mlp.hook_post").toFloatArray();
            float[] asWritten = new float[pre.length];
            float[] oneOp = new float[pre.length];
            for (int i = 0; i < pre.length; i++) {
                float x = pre[i];
                float erf = Bfloat16.round((float) Erf.erf(Bfloat16.round(x / (float) Math.sqrt(2.0))));
                asWritten[i] = Bfloat16.round(Bfloat16.round(x * 0.5f) * Bfloat16.round(1 + erf));
                oneOp[i] = Bfloat16.round((float) (x * 0.5 * (1 + Erf.erf(x / Math.sqrt(2.0)))));
            }
            assertAgree(asWritten, got, oneOp);
        }
    }

    /**
     * EXAONE 4 normalises each query head by Llama's RMSNorm (rounded before its weight, then after), then rotates it
     * in bfloat16 with cos and sin rounded to bfloat16, as its rotary embedding returns them (OLMo 2's, whose blocks
     * it shares, keeps both in float32).
     */
    @Test
    void exaone4NormalisesEachHeadThenRotatesInBfloat16() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace("exaone4"), DType.BFLOAT16,
                     Device.CPU);
             ModelOutput out = model.forward(ids(model.config()), CacheSpec.only("blocks.0.attn.hook_q",
                     "blocks.0.attn.hook_q_normed", "blocks.0.attn.hook_rot_q"))) {
            float[] normed = out.cache().get("blocks.0.attn.hook_q_normed").toFloatArray();
            assertNormRoundsAsLlamas(out.cache().get("blocks.0.attn.hook_q").toFloatArray(), model.config().dHead(),
                    model.weights().layers.get(0).qNorm().toFloatArray(), model.config().normEps(), normed);

            Rotations expected = Rotations.of(model, normed, false);
            assertAgree(expected.inBfloat16(), out.cache().get("blocks.0.attn.hook_rot_q").toFloatArray(),
                    expected.inFloat32());
        }
    }

    /**
     * GLM-4 normalises by Llama's RMSNorm (rounded before its weight, then after) and turns the adjacent pairs of the
     * first half of each bfloat16 query head in bfloat16, with cos and sin rounded to bfloat16 as its rotary embedding
     * returns them.
     */
    @Test
    void glm4NormalisesAsLlamaAndRotatesInterleavedPairsInBfloat16() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace("glm4"), DType.BFLOAT16,
                     Device.CPU);
             ModelOutput out = model.forward(ids(model.config()), CacheSpec.only("blocks.0.hook_resid_pre",
                     "blocks.0.ln1.hook_normalized", "blocks.0.attn.hook_q", "blocks.0.attn.hook_rot_q"))) {
            assertFirstNormRoundsAsLlamas(model, out);
            Rotations expected = Rotations.of(model, out.cache().get("blocks.0.attn.hook_q").toFloatArray(), true);
            assertAgree(expected.inBfloat16(), out.cache().get("blocks.0.attn.hook_rot_q").toFloatArray(),
                    expected.inFloat32());
        }
    }

    /**
     * Seed-OSS and Arcee compute as Llama does in bfloat16: the norm rounded before its weight, then after, and the
     * {@code rotate_half} rotation with cos and sin rounded to bfloat16, each product and sum rounded.
     */
    @ParameterizedTest
    @ValueSource(strings = {"seed-oss", "arcee"})
    void llamasBlocksRoundAsLlamasInBfloat16(String family) {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace(family), DType.BFLOAT16,
                     Device.CPU);
             ModelOutput out = model.forward(ids(model.config()), CacheSpec.only("blocks.0.hook_resid_pre",
                     "blocks.0.ln1.hook_normalized", "blocks.0.attn.hook_q", "blocks.0.attn.hook_rot_q"))) {
            assertFirstNormRoundsAsLlamas(model, out);
            Rotations expected = Rotations.of(model, out.cache().get("blocks.0.attn.hook_q").toFloatArray(), false);
            assertAgree(expected.inBfloat16(), out.cache().get("blocks.0.attn.hook_rot_q").toFloatArray(),
                    expected.inFloat32());
        }
    }

    /**
     * Nemotron's {@code LayerNorm1P} forms {@code 1 + w} from the bfloat16 weight in bfloat16, rounding it, before
     * libtorch's LayerNorm computes {@code (x - mean) / sqrt(var + eps) * (1 + w) + b} in float32 and rounds once.
     */
    @Test
    void nemotronFormsOnePlusItsNormWeightInBfloat16() {
        Path dir = Fixtures.huggingFace("nemotron");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.BFLOAT16, Device.CPU);
             SafeTensorsFile weights = SafeTensorsFile.open(dir.resolve("model.safetensors"));
             ModelOutput out = model.forward(ids(model.config()), CacheSpec.only("blocks.0.hook_resid_pre",
                     "blocks.0.ln1.hook_normalized"))) {
            float[] x = out.cache().get("blocks.0.hook_resid_pre").toFloatArray();
            float[] w = weights.tensor("model.layers.0.input_layernorm.weight").toFloatArray();
            float[] b = weights.tensor("model.layers.0.input_layernorm.bias").toFloatArray();
            int width = w.length;
            float[] inBfloat16 = new float[x.length];
            float[] inFloat32 = new float[x.length];
            for (int row = 0; row < x.length / width; row++) {
                float mean = 0;
                for (int i = 0; i < width; i++) {
                    mean += x[row * width + i];
                }
                mean /= width;
                float variance = 0;
                for (int i = 0; i < width; i++) {
                    float centred = x[row * width + i] - mean;
                    variance += centred * centred;
                }
                float rstd = (float) (1 / Math.sqrt(variance / width + (float) model.config().normEps()));
                for (int i = 0; i < width; i++) {
                    float weight = Bfloat16.round(w[i]);
                    float normed = (x[row * width + i] - mean) * rstd;
                    inBfloat16[row * width + i] = Bfloat16.round(normed * Bfloat16.round(1 + weight)
                            + Bfloat16.round(b[i]));
                    inFloat32[row * width + i] = Bfloat16.round(normed * (1 + weight) + Bfloat16.round(b[i]));
                }
            }
            assertAgree(inBfloat16, out.cache().get("blocks.0.ln1.hook_normalized").toFloatArray(), inFloat32);
        }
    }

    /**
     * Block 0's rotation of bfloat16 queries {@code [1, POS, heads, d_head]} worked out both ways transformers rounds
     * it: {@code inBfloat16} with cos and sin rounded to bfloat16 and each product and sum rounded,
     * {@code inFloat32} with float32 cos, sin and arithmetic, rounded once. Frequency i turns the pair
     * {@code (i, i + rotary / 2)}, or {@code (2i, 2i + 1)} where {@code interleaved}, among the first
     * {@code rotaryDim} features; the others pass through. {@code reversed}: the pair turns the other way, as
     * nanochat's {@code rotate_half} ({@code cat(x2, -x1)}) turns it.
     */
    record Rotations(float[] inBfloat16, float[] inFloat32) {
        static Rotations of(HookedAutoModel model, float[] q, boolean interleaved) {
            return of(model, q, interleaved, false);
        }

        static Rotations of(HookedAutoModel model, float[] q, boolean interleaved, boolean reversed) {
            int d = model.config().dHead();
            int heads = model.config().nHeads();
            int rotary = model.config().rotaryDim();
            float[] invFreq = model.config().architecture().rope(0).inverseFrequencies();
            float[] inBfloat16 = q.clone();
            float[] inFloat32 = q.clone();
            for (int p = 0; p < q.length / (heads * d); p++) {
                for (int h = 0; h < heads; h++) {
                    for (int i = 0; i < rotary / 2; i++) {
                        float angle = (float) p * invFreq[i];
                        float c = (float) Math.cos(angle);
                        float sn = reversed ? -(float) Math.sin(angle) : (float) Math.sin(angle);
                        float cb = Bfloat16.round(c);
                        float sb = Bfloat16.round(sn);
                        int first = (p * heads + h) * d + (interleaved ? 2 * i : i);
                        int second = interleaved ? first + 1 : first + rotary / 2;
                        float a = q[first];
                        float b = q[second];
                        inBfloat16[first] = Bfloat16.round(Bfloat16.round(a * cb) + Bfloat16.round(-b * sb));
                        inBfloat16[second] = Bfloat16.round(Bfloat16.round(b * cb) + Bfloat16.round(a * sb));
                        inFloat32[first] = Bfloat16.round(a * c + -b * sn);
                        inFloat32[second] = Bfloat16.round(b * c + a * sn);
                    }
                }
            }
            return new Rotations(inBfloat16, inFloat32);
        }
    }

    /** Block 0's input norm as Llama's RMSNorm rounds in bfloat16; {@code out} caches its input and output. */
    private static void assertFirstNormRoundsAsLlamas(HookedAutoModel model, ModelOutput out) {
        assertNormRoundsAsLlamas(out.cache().get("blocks.0.hook_resid_pre").toFloatArray(), model.config().dModel(),
                model.normWeights().select(0, 0).toFloatArray(), model.config().normEps(),
                out.cache().get("blocks.0.ln1.hook_normalized").toFloatArray());
    }

    /**
     * {@code got}, the bfloat16 RMSNorm of each row of {@code width} features of {@code x}, as Llama's rounds it:
     * normalised in float32, rounded, then multiplied by the weight {@code w} and rounded again.
     */
    private static void assertNormRoundsAsLlamas(float[] x, int width, float[] w, double eps, float[] got) {
        NormRoundings expected = NormRoundings.of(x, width, w, eps);
        assertAgree(expected.twice(), got, expected.once());
    }

    /**
     * The bfloat16 RMSNorm of each row of {@code width} features of {@code x} worked out both ways transformers rounds
     * it: {@code twice} normalised in float32, rounded, then multiplied by the weight {@code w} and rounded again (as
     * Llama's); {@code once} multiplied by the weight in float32 and rounded once.
     */
    record NormRoundings(float[] twice, float[] once) {
        static NormRoundings of(float[] x, int width, float[] w, double eps) {
            float[] twice = new float[x.length];
            float[] once = new float[x.length];
            for (int row = 0; row < x.length / width; row++) {
                float sum = 0;
                for (int i = 0; i < width; i++) {
                    sum += x[row * width + i] * x[row * width + i];
                }
                float inv = (float) (1 / Math.sqrt(sum / width + (float) eps));
                for (int i = 0; i < width; i++) {
                    float h = x[row * width + i] * inv;
                    twice[row * width + i] = Bfloat16.round(w[i] * Bfloat16.round(h));
                    once[row * width + i] = Bfloat16.round(w[i] * h);
                }
            }
            return new NormRoundings(twice, once);
        }
    }

    /**
     * Helium multiplies its norm's weight in float32 and rounds once, and turns the adjacent pairs of each bfloat16
     * query head in bfloat16, with cos and sin rounded to bfloat16, as Llama's rotary embedding returns them.
     */
    @Test
    void heliumRoundsItsNormOnceAndRotatesInterleavedPairsInBfloat16() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace("helium"), DType.BFLOAT16,
                     Device.CPU);
             ModelOutput out = model.forward(ids(model.config()), CacheSpec.only("blocks.0.hook_resid_pre",
                     "blocks.0.ln1.hook_normalized", "blocks.0.attn.hook_q", "blocks.0.attn.hook_rot_q"))) {
            NormRoundings norm = NormRoundings.of(out.cache().get("blocks.0.hook_resid_pre").toFloatArray(),
                    model.config().dModel(), model.normWeights().select(0, 0).toFloatArray(),
                    model.config().normEps());
            assertAgree(norm.once(), out.cache().get("blocks.0.ln1.hook_normalized").toFloatArray(), norm.twice());
            Rotations expected = Rotations.of(model, out.cache().get("blocks.0.attn.hook_q").toFloatArray(), true);
            assertAgree(expected.inBfloat16(), out.cache().get("blocks.0.attn.hook_rot_q").toFloatArray(),
                    expected.inFloat32());
        }
    }

    /**
     * ERNIE 4.5 normalises as Llama does and turns each adjacent pair {@code (a, b)} of a bfloat16 query in float32,
     * with float32 cos and sin, and rounds once: {@code Bfloat16.round(a·c − b·s)}; Llama's bfloat16 tables and
     * arithmetic round otherwise.
     */
    @Test
    void ernie45RotatesInterleavedPairsInFloat32() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace("ernie4_5"), DType.BFLOAT16,
                     Device.CPU);
             ModelOutput out = model.forward(ids(model.config()), CacheSpec.only("blocks.0.hook_resid_pre",
                     "blocks.0.ln1.hook_normalized", "blocks.0.attn.hook_q", "blocks.0.attn.hook_rot_q"))) {
            assertFirstNormRoundsAsLlamas(model, out);
            Rotations expected = Rotations.of(model, out.cache().get("blocks.0.attn.hook_q").toFloatArray(), true);
            assertAgree(expected.inFloat32(), out.cache().get("blocks.0.attn.hook_rot_q").toFloatArray(),
                    expected.inBfloat16());
        }
    }

    /**
     * OLMo normalises without a weight in float32 and rounds once, and rotates a bfloat16 query in float32 with float32
     * cos and sin, rounding once (its rotary embedding returns float32 tables, which promote the products).
     */
    @Test
    void olmoRotatesInFloat32() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace("olmo"), DType.BFLOAT16,
                     Device.CPU);
             ModelOutput out = model.forward(ids(model.config()), CacheSpec.only("blocks.0.attn.hook_q",
                     "blocks.0.attn.hook_rot_q"))) {
            Rotations expected = Rotations.of(model, out.cache().get("blocks.0.attn.hook_q").toFloatArray(), false);
            assertAgree(expected.inFloat32(), out.cache().get("blocks.0.attn.hook_rot_q").toFloatArray(),
                    expected.inBfloat16());
        }
    }

    /**
     * The logit soft-cap in bfloat16 rounds after each of its three ops, as {@code logits / cap}, {@code tanh} and
     * {@code * cap} do in transformers (gemma2, gemma3, nanochat); the raw logits come from the same model without the
     * cap. A cap of 15, unlike a power of two, rounds in its division and product.
     */
    @Test
    void theLogitSoftcapRoundsAfterEachOpInBfloat16() {
        // weights wide enough for logits that the cap bends (the final norm leaves the stream at unit scale)
        HookedAutoConfig capped = TinyConfigs.of("nanochat").with("final_logit_softcapping", 15.0)
                .with("initializer_range", 2.0);
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(capped, 7, DType.BFLOAT16, Device.CPU);
             HookedAutoModel raw = HookedAutoModel.create(capped.with("final_logit_softcapping", null), 7,
                     DType.BFLOAT16, Device.CPU);
             ModelOutput out = model.forward(ids(capped), CacheSpec.none());
             ModelOutput rawOut = raw.forward(ids(capped), CacheSpec.none())) {
            float[] logits = rawOut.logits().toFloatArray();
            float[] got = out.logits().toFloatArray();
            float[] stepwise = new float[logits.length];
            float[] once = new float[logits.length];
            for (int i = 0; i < logits.length; i++) {
                stepwise[i] = Bfloat16.round(Bfloat16.round((float) Math.tanh(Bfloat16.round(logits[i] / 15f))) * 15f);
                once[i] = Bfloat16.round((float) (15 * Math.tanh(logits[i] / 15.0)));
            }
            assertAgree(stepwise, got, once);
        }
    }

    /** nanochat turns each bfloat16 query pair the other way, with bfloat16 cos and sin, each step rounded. */
    @Test
    void nanochatRotatesTheOtherWayInBfloat16() {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace("nanochat"),
                     DType.BFLOAT16, Device.CPU);
             ModelOutput out = model.forward(ids(model.config()), CacheSpec.only("blocks.0.attn.hook_q",
                     "blocks.0.attn.hook_rot_q"))) {
            float[] q = out.cache().get("blocks.0.attn.hook_q").toFloatArray();
            Rotations expected = Rotations.of(model, q, false, true);
            assertAgree(expected.inBfloat16(), out.cache().get("blocks.0.attn.hook_rot_q").toFloatArray(),
                    Rotations.of(model, q, false).inBfloat16());
        }
    }

    /**
     * Granite multiplies its embeddings by {@code embedding_multiplier}, a Python float: in float32, rounded once.
     * Gemma's normalizer is a tensor in the model's dtype, rounded first (its test is the fixtures' parity). Was:
     * granite's multiplier rounded first too (12.3 as 12.3125).
     */
    @Test
    void graniteMultipliesItsEmbeddingsByTheNumberItself() {
        HookedAutoConfig config = TinyConfigs.of("granite").with(Map.of("embedding_multiplier", 12.3));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 5, DType.BFLOAT16, Device.CPU);
             ModelOutput out = model.forward(ids(config), CacheSpec.only("hook_embed", "blocks.0.hook_resid_pre"))) {
            float[] embed = out.cache().get("hook_embed").toFloatArray();
            float[] got = out.cache().get("blocks.0.hook_resid_pre").toFloatArray();
            float[] once = new float[embed.length];
            float[] roundedFirst = new float[embed.length];
            for (int i = 0; i < embed.length; i++) {
                once[i] = Bfloat16.round(embed[i] * 12.3f);
                roundedFirst[i] = Bfloat16.round(embed[i] * Bfloat16.round(12.3f));
            }
            assertAgree(once, got, roundedFirst);
        }
    }

    /** gpt-oss subtracts each row's maximum in bfloat16 before its softmax over the scores and the sink. */
    @Test
    void gptOssSinkSoftmaxSubtractsTheMaximumInBfloat16() {
        HookedAutoConfig config = TinyConfigs.of("gpt-oss");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 9, DType.BFLOAT16, Device.CPU);
             // scores of a trained model's size: the subtraction rounds at their magnitude
             ModelOutput out = model.runWithHooks(ids(config), CacheSpec.only("blocks.1.attn.hook_attn_scores",
                     "blocks.1.attn.hook_pattern"), HookedAutoModel.HookSpec.at("blocks.1.attn.hook_attn_scores",
                     (scores, name) -> scores.mul(37.0)))) {
            float[] sinks = model.attentionSinks(1).toFloatArray();
            Tensor scores = out.cache().get("blocks.1.attn.hook_attn_scores");
            float[] s = scores.toFloatArray();
            float[] got = out.cache().get("blocks.1.attn.hook_pattern").toFloatArray();
            int heads = (int) scores.size(1);
            float[] shifted = new float[s.length];
            float[] unshifted = new float[s.length];
            for (int h = 0; h < heads; h++) {
                for (int q = 0; q < POS; q++) {
                    int row = (h * POS + q) * POS;
                    float max = sinks[h];
                    for (int k = 0; k < POS; k++) {
                        max = Math.max(max, s[row + k]);
                    }
                    float m = max;
                    softmaxRow(k -> Bfloat16.round(s[row + k] - m), Bfloat16.round(sinks[h] - m), shifted, row);
                    softmaxRow(k -> s[row + k], sinks[h], unshifted, row);
                }
            }
            assertAgree(shifted, got, unshifted);
        }
    }

    /** GPT-NeoX's parallel block sums the attention and MLP outputs, then adds the residual stream. */
    @Test
    void gptNeoxAddsTheResidualLast() {
        HookedAutoConfig config = TinyConfigs.of("gpt-neox");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 11, DType.BFLOAT16, Device.CPU);
             ModelOutput out = model.forward(ids(config), CacheSpec.matching(name -> name.startsWith("blocks.0.hook_")))) {
            float[] resid = out.cache().get("blocks.0.hook_resid_pre").toFloatArray();
            float[] attn = out.cache().get("blocks.0.hook_attn_out").toFloatArray();
            float[] mlp = out.cache().get("blocks.0.hook_mlp_out").toFloatArray();
            float[] got = out.cache().get("blocks.0.hook_resid_post").toFloatArray();
            float[] outputsFirst = new float[got.length];
            float[] residualFirst = new float[got.length];
            for (int i = 0; i < got.length; i++) {
                outputsFirst[i] = Bfloat16.round(Bfloat16.round(attn[i] + mlp[i]) + resid[i]);
                residualFirst[i] = Bfloat16.round(Bfloat16.round(resid[i] + attn[i]) + mlp[i]);
            }
            assertArrayEquals(outputsFirst, got, 0f);
            assertTrue(mismatches(residualFirst, outputsFirst) > 0, "the two orders round alike on this input");
        }
    }

    /**
     * The scores are the products, rounded to bfloat16, times {@code d_head^-0.5} in float32, rounded again. With
     * d_head 80 that scale is not a bfloat16 number, and libtorch's CPU add with a scale rounds it to one first, which
     * moves few scores (of the products 1 to 256, only 135's). Integer entries make the float32 products exact, so
     * every score is known.
     */
    @Test
    void scoresAreScaledInFloat32() {
        int pos = 16;
        HookedAutoConfig config = TinyConfigs.of("llama").with(Map.of("hidden_size", 320, "num_attention_heads", 4,
                "num_key_value_heads", 4));
        int dHead = config.dHead();
        assertEquals(80, dHead);
        float[] q = new float[pos * 4 * dHead];
        float[] k = new float[pos * 4 * dHead];
        for (int i = 0; i < q.length; i++) {
            q[i] = (i * 7 + 3) % 7 - 3;
            k[i] = (i * 5 + 1) % 11 - 5;
        }
        // query 0 and key 0 of head 0: a product of 135, the one integer up to 256 whose score the rounded scale moves
        for (int d = 0; d < dHead; d++) {
            q[d] = 1;
            k[d] = d == 0 ? 56 : 1;
        }
        float scale = (float) Math.pow(dHead, -0.5);
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 13, DType.BFLOAT16, Device.CPU)) {
            float[] got = model.attentionScores(0, Tensor.of(q, 1, pos, 4, dHead).to(DType.BFLOAT16),
                    Tensor.of(k, 1, pos, 4, dHead).to(DType.BFLOAT16)).toFloatArray();
            float[] expected = new float[got.length];
            float[] roundedScale = new float[got.length];
            for (int h = 0; h < 4; h++) {
                for (int i = 0; i < pos; i++) {
                    for (int j = 0; j < pos; j++) {
                        float dot = 0;
                        for (int d = 0; d < dHead; d++) {
                            dot += q[(i * 4 + h) * dHead + d] * k[(j * 4 + h) * dHead + d];
                        }
                        int at = (h * pos + i) * pos + j;
                        expected[at] = j > i ? Float.NEGATIVE_INFINITY : Bfloat16.round(Bfloat16.round(dot) * scale);
                        roundedScale[at] = j > i ? Float.NEGATIVE_INFINITY : Bfloat16.round(Bfloat16.round(dot) * Bfloat16.round(scale));
                    }
                }
            }
            assertArrayEquals(expected, got, 0f);
            assertTrue(mismatches(roundedScale, expected) > 0, "the rounded scale gives the same scores here");
        }
    }

    private static Tensor ids(HookedAutoConfig config) {
        long[] ids = new long[POS];
        for (int i = 0; i < POS; i++) {
            ids[i] = (7L * i + 3) % config.vocabSize();
        }
        return Tensor.of(ids, 1, POS);
    }

    /** softmax over the row's keys and the sink, in float32, each probability rounded once; the sink's is dropped. */
    private static void softmaxRow(IntToDoubleFunction logit, float sink, float[] into, int row) {
        float max = sink;
        for (int k = 0; k < POS; k++) {
            max = Math.max(max, (float) logit.applyAsDouble(k));
        }
        float sum = (float) Math.exp(sink - max);
        float[] e = new float[POS];
        for (int k = 0; k < POS; k++) {
            e[k] = (float) logit.applyAsDouble(k) == Float.NEGATIVE_INFINITY ? 0
                    : (float) Math.exp((float) logit.applyAsDouble(k) - max);
            sum += e[k];
        }
        for (int k = 0; k < POS; k++) {
            into[row + k] = Bfloat16.round(e[k] / sum);
        }
    }

    /** {@code reference} matches {@code got} but for a few values, and {@code before} does not. */
    private static void assertAgree(float[] reference, float[] got, float[] before) {
        assertEquals(reference.length, got.length);
        int off = mismatches(reference, got);
        assertTrue(off <= got.length / 50, off + " of " + got.length + " values round otherwise than the model's code");
        assertTrue(mismatches(before, reference) >= got.length / 20, "the old rounding is not told apart: only "
                + mismatches(before, reference) + " of " + got.length + " values differ");
    }

    private static int mismatches(float[] a, float[] b) {
        int n = 0;
        for (int i = 0; i < a.length; i++) {
            if (Float.floatToIntBits(a[i]) != Float.floatToIntBits(b[i])) {
                n++;
            }
        }
        return n;
    }
}
