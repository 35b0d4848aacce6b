package io.arrakis.model;

import io.arrakis.json.Json;
import io.arrakis.model.HookedAutoModel.HookSpec;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The norms' hook points ({@code blocks.i.ln1/ln2.hook_scale/hook_normalized}, {@code ln_final.hook_scale}) against
 * references computed here in double precision from each fixture's own residual stream (the reference's, not ours), the
 * norm weights read from the checkpoint and the eps from {@code config.json}: a LayerNorm divides by
 * {@code sqrt(var + eps)}, an RMSNorm by {@code sqrt(mean(x²) + eps)}; the output is
 * {@code (x - mean) / scale · w + b}, {@code x / scale · w}, with {@code 1 + w} in place of {@code w} for gemma's and
 * nemotron's norms and 1 for OLMo's and nanochat's, which have no parameters.
 */
class NormHooksTest {
    private static final Set<String> LAYER_NORM_TYPES = Set.of("gpt2", "gpt_neo", "gpt_neox", "gptj", "phi", "stablelm",
            "starcoder2", "falcon", "cohere", "cohere2", "nemotron", "jais2", "opt", "gpt_bigcode", "olmo", "phimoe",
            "cohere2_moe");
    /** Norms that only normalise: no weight or bias in the checkpoint. */
    private static final Set<String> PARAMETERLESS_TYPES = Set.of("olmo", "nanochat");
    private static final Set<String> PLUS_ONE_TYPES = Set.of("gemma", "gemma2", "gemma3", "gemma3_text", "vaultgemma",
            "nemotron", "qwen3_5_text", "qwen3_5_moe_text", "qwen3_next");

    static List<Path> fixtures() {
        List<Path> dirs = new ArrayList<>(List.of(Fixtures.dir("gpt2-tiny"), Fixtures.dir("llama-tiny-gqa")));
        for (String family : HookedAutoConfig.supportedFamilies()) {
            dirs.add(Fixtures.huggingFace(family));
        }
        return dirs;
    }

    /** One norm of a fixture: its kind, eps, and where its input and parameters are. */
    private record Norm(String modelType, double eps) {
        boolean layerNorm() {
            return LAYER_NORM_TYPES.contains(modelType);
        }

        /** The norm's parameter ({@code weight} or {@code bias}) of layer {@code layer}; null where it has none. */
        float[] parameter(SafeTensorsFile weights, int layer, String[] modules, String kind) {
            return PARAMETERLESS_TYPES.contains(modelType) ? null
                    : NormHooksTest.parameter(weights, layer, modules, kind);
        }

        double[] scale(float[] x, int width) {
            double[] scale = new double[x.length / width];
            for (int row = 0; row < scale.length; row++) {
                double mean = 0;
                for (int j = 0; j < width; j++) {
                    mean += x[row * width + j];
                }
                mean = layerNorm() ? mean / width : 0;
                double squares = 0;
                for (int j = 0; j < width; j++) {
                    double d = x[row * width + j] - mean;
                    squares += d * d;
                }
                scale[row] = Math.sqrt(squares / width + eps);
            }
            return scale;
        }

        double[] output(float[] x, int width, double[] scale, float[] w, float[] b) {
            double[] out = new double[x.length];
            for (int row = 0; row < scale.length; row++) {
                double mean = 0;
                for (int j = 0; j < width; j++) {
                    mean += x[row * width + j];
                }
                mean = layerNorm() ? mean / width : 0;
                for (int j = 0; j < width; j++) {
                    double weight = w == null ? 1.0 : PLUS_ONE_TYPES.contains(modelType) ? 1.0 + w[j] : w[j];
                    out[row * width + j] = (x[row * width + j] - mean) / scale[row] * weight + (b == null ? 0 : b[j]);
                }
            }
            return out;
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fixtures")
    void everyNormsScaleAndOutputMatchTheReferenceComputedFromTheFixturesResidualStream(Path dir) throws IOException {
        String modelType = Fixtures.modelType(dir);
        Norm norm = new Norm(modelType, eps(dir));
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             SafeTensorsFile weights = SafeTensorsFile.open(dir.resolve("model.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             ModelOutput out = model.forward(reference.tensor("input_ids").copy())) {
            int width = (int) model.config().dModel();
            int layers = model.config().nLayers();
            // sublayer outputs only
            boolean inputNorms = !Set.of("olmo2", "olmo3", "flex_olmo", "exaone4").contains(modelType);
            int checked = 0;
            for (int i = 0; i < layers; i++) {
                String b = "blocks." + i + ".";
                assertEquals(inputNorms, model.hookNames().contains(b + "ln1.hook_scale"), b + "ln1.hook_scale");
                if (!inputNorms) {
                    assertFalse(model.hookNames().stream().anyMatch(n -> n.contains(".ln")), model.hookNames().toString());
                    continue;
                }
                float[] residPre = reference.tensor(b + "hook_resid_pre").toFloatArray();
                checked += check(out, b + "ln1.", norm, residPre, width, weights, i, ln1Names(modelType));
                if (!model.hookNames().contains(b + "ln2.hook_scale")) {
                    assertTrue(model.config().parallelResidual(), "a sequential block without ln2 hooks");
                    continue;
                }
                float[] ln2Input = model.config().parallelResidual() ? residPre : residMid(reference, b);
                if (ln2Input != null) {
                    checked += check(out, b + "ln2.", norm, ln2Input, width, weights, i, ln2Names(modelType));
                }
            }
            String last = "blocks." + (layers - 1) + ".hook_resid_post";
            if (reference.contains(last)) {
                float[] x = reference.tensor(last).toFloatArray();
                assertClose(norm.scale(x, width), out.cache().toFloatArray("ln_final.hook_scale"), "ln_final.hook_scale");
                checked++;
            }
            assertArrayEquals(new long[] {out.logits().size(0), out.logits().size(1), 1},
                    out.cache().get("ln_final.hook_scale").shape());
            assertTrue(checked >= (inputNorms ? layers : 0), "norms checked: " + checked);
        }
    }

    @Test
    void phisOneNormFeedsAttentionAndMlpAndHasNoLn2() {
        HookedAutoConfig phi = HookedAutoConfig.fromJson(Fixtures.huggingFace("phi").resolve("config.json"));
        Set<String> names = HookedAutoModel.hookNamesOf(phi);
        assertTrue(names.contains("blocks.1.ln1.hook_normalized"), names.toString());
        assertFalse(names.stream().anyMatch(n -> n.contains("ln2.")), names.toString());
    }

    /**
     * Replacing a scale changes the norm's output as the formula says (here, a scale doubled: a frozen or edited norm),
     * and every later activation with it; a hook that returns the scale unchanged leaves the reference's logits.
     */
    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny-gqa", "gemma", "nemotron"})
    void aReplacedScaleIsWhatTheNormDividesBy(String fixture) throws IOException {
        Path dir = fixture.contains("-tiny") ? Fixtures.dir(fixture) : Fixtures.huggingFace(fixture);
        String modelType = Fixtures.modelType(dir);
        Norm norm = new Norm(modelType, eps(dir));
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             SafeTensorsFile weights = SafeTensorsFile.open(dir.resolve("model.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
            Tensor ids = reference.tensor("input_ids").copy();
            Tensor expected = reference.tensor("logits").copy();
            double largest = Math.max(1, expected.abs().max().item());
            try (ModelOutput unchanged = model.runWithHooks(ids, CacheSpec.none(),
                    HookSpec.matching(n -> n.endsWith("hook_scale"), (scale, name) -> scale))) {
                double diff = unchanged.logits().sub(expected).abs().max().item();
                assertTrue(diff <= 1e-4 * largest, "every scale hooked and left: logits off by " + diff);
            }
            try (ModelOutput doubled = model.runWithHooks(ids, CacheSpec.all(),
                    HookSpec.at("blocks.0.ln1.hook_scale", (scale, name) -> scale.mul(2.0)))) {
                int width = (int) model.config().dModel();
                float[] x = reference.tensor("blocks.0.hook_resid_pre").toFloatArray();
                double[] scale = norm.scale(x, width);
                for (int row = 0; row < scale.length; row++) {
                    scale[row] *= 2;
                }
                assertClose(scale, doubled.cache().toFloatArray("blocks.0.ln1.hook_scale"), "doubled scale");
                String[] names = ln1Names(modelType);
                assertClose(norm.output(x, width, scale, norm.parameter(weights, 0, names, "weight"),
                                norm.parameter(weights, 0, names, "bias")),
                        doubled.cache().toFloatArray("blocks.0.ln1.hook_normalized"), "output of the doubled scale");
                double diff = doubled.logits().sub(expected).abs().max().item();
                assertTrue(diff > 1e-2 * largest, "the doubled scale did not reach the logits: " + diff);
            }
        }
    }

    /**
     * In bfloat16 the scales are float32 (the norms' statistics are), and caching them leaves the pass as it is: the
     * norm that gives its scale is the same computation as the one that does not.
     */
    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama", "gemma", "gpt-oss", "nemotron"})
    void observingTheScalesLeavesABfloat16PassUnchanged(String family) {
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace(family), DType.BFLOAT16,
                     Device.CPU)) {
            Tensor ids = Fixtures.referenceInputIds(Fixtures.huggingFace(family));
            try (ModelOutput plain = model.forward(ids, CacheSpec.none());
                 ModelOutput observed = model.forward(ids, CacheSpec.matching(n -> n.endsWith("hook_scale")))) {
                assertEquals(DType.FLOAT32, observed.cache().get("blocks.1.ln2.hook_scale").dtype());
                assertEquals(DType.FLOAT32, observed.cache().get("ln_final.hook_scale").dtype());
                assertEquals(0.0, plain.logits().to(DType.FLOAT32).sub(observed.logits().to(DType.FLOAT32)).abs().max()
                        .item(), family + ": logits changed by observing the scales");
            }
        }
    }

    private static int check(ModelOutput out, String prefix, Norm norm, float[] x, int width, SafeTensorsFile weights,
                             int layer, String[] names) {
        double[] scale = norm.scale(x, width);
        assertClose(scale, out.cache().toFloatArray(prefix + "hook_scale"), prefix + "hook_scale");
        double[] expected = norm.output(x, width, scale, norm.parameter(weights, layer, names, "weight"),
                norm.parameter(weights, layer, names, "bias"));
        assertClose(expected, out.cache().toFloatArray(prefix + "hook_normalized"), prefix + "hook_normalized");
        return 1;
    }

    /** A sequential block's ln2 input, the residual stream after attention, where the fixture has it. */
    private static float[] residMid(SafeTensorsFile reference, String b) {
        if (reference.contains(b + "hook_resid_mid")) {
            return reference.tensor(b + "hook_resid_mid").toFloatArray();
        }
        if (!reference.contains(b + "hook_attn_out")) {
            return null; // fixtures-hf-more keeps each layer's input only
        }
        float[] pre = reference.tensor(b + "hook_resid_pre").toFloatArray();
        float[] attn = reference.tensor(b + "hook_attn_out").toFloatArray();
        float[] mid = new float[pre.length];
        for (int i = 0; i < mid.length; i++) {
            mid[i] = pre[i] + attn[i];
        }
        return mid;
    }

    private static String[] ln1Names(String modelType) {
        return new String[] {"input_layernorm", "ln_1", "ln_attn", "self_attn_layer_norm", "attention_layernorm",
                "operator_norm"};
    }

    private static String[] ln2Names(String modelType) {
        // gemma2/3's post_attention_layernorm normalises the output; vaultgemma keeps their name without it
        return modelType.startsWith("gemma") && !modelType.equals("gemma") || modelType.equals("vaultgemma")
                ? new String[] {"pre_feedforward_layernorm"}
                : new String[] {"post_attention_layernorm", "ln_2", "ln_mlp", "final_layer_norm",
                        "feedforward_layernorm", "ffn_norm"};
    }

    /** Layer {@code layer}'s norm parameter ({@code weight} or {@code bias}) of one of these module names, or null. */
    private static float[] parameter(SafeTensorsFile weights, int layer, String[] modules, String kind) {
        for (String module : modules) {
            Pattern p = Pattern.compile("(^|\\.)(h|layers)\\." + layer + "\\." + module + "\\." + kind);
            for (String name : weights.names()) {
                if (p.matcher(name).find() && name.endsWith(module + "." + kind)) {
                    return weights.tensor(name).toFloatArray();
                }
            }
        }
        if (kind.equals("bias")) {
            return null;
        }
        return fail("no " + String.join("/", modules) + "." + kind + " of layer " + layer + " in " + weights.names());
    }

    private static double eps(Path dir) throws IOException {
        Map<?, ?> config = (Map<?, ?>) Json.parse(Files.readString(dir.resolve("config.json")));
        if ("opt".equals(config.get("model_type")) || "olmo".equals(config.get("model_type"))) {
            return 1e-5; // neither OPTConfig nor OlmoConfig has an eps: nn.LayerNorm's default, OlmoLayerNorm's own
        }
        for (String key : List.of("rms_norm_eps", "layer_norm_epsilon", "layer_norm_eps", "norm_epsilon", "norm_eps")) {
            if (config.get(key) instanceof Number n) {
                return n.doubleValue();
            }
        }
        return fail("no norm eps in " + dir.resolve("config.json"));
    }

    private static void assertClose(double[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what + ": size");
        double largest = 1;
        for (double e : expected) {
            largest = Math.max(largest, Math.abs(e));
        }
        for (int i = 0; i < expected.length; i++) {
            if (Math.abs(expected[i] - actual[i]) > 1e-4 * largest) {
                fail(what + " at " + i + ": expected " + expected[i] + ", got " + actual[i]);
            }
        }
    }
}
