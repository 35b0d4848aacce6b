package io.arrakis.model;

import io.arrakis.model.family.Families;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Every activation of reference models against our forward pass on the same input: within 1e-4, absolute, or relative
 * where values exceed 1; -inf where the reference masks. Two sources of references: {@code shared/fixtures} (an
 * independent PyTorch implementation) and Hugging Face {@code transformers} itself, one fixture per registered family
 * ({@link Fixtures#huggingFace}: {@code src/test/resources/fixtures-hf}, made by {@code scripts/make-hf-fixtures.py},
 * or {@code shared/fixtures-hf-more}, made by {@code transformers} 5.17 with fewer hooks), whose checkpoints also
 * check {@link HookedAutoConfig#parameterCount()}, and the variants of {@code shared/fixtures-hf-more} that are no
 * family's own fixture (such as Llama 3.1's rotary scaling).
 */
class ModelParityTest {

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny-gqa"})
    void everyHookMatchesTheSharedReference(String fixture) {
        assertParity(Fixtures.dir(fixture), fixture, 20);
    }

    static List<String> families() {
        return HookedAutoConfig.supportedFamilies();
    }

    /** Every registered family has a Hugging Face fixture. */
    @ParameterizedTest
    @MethodSource("families")
    void everyHookMatchesHuggingFace(String family) {
        assertMatchesHuggingFace(Fixtures.huggingFace(family), family);
    }

    /**
     * The folders of {@code shared/fixtures-hf-more} of a family that has its own fixture in
     * {@code src/test/resources/fixtures-hf}: variants of the family's settings.
     */
    static List<String> variants() {
        return Fixtures.moreHuggingFace().stream()
                .filter(d -> isSupported(Fixtures.modelType(d)))
                .filter(d -> Files.isDirectory(Fixtures.HF.resolve(Families.find(Fixtures.modelType(d), "model_type")
                        .name())))
                .map(d -> d.getFileName().toString()).toList();
    }

    @ParameterizedTest(allowZeroInvocations = true)
    @MethodSource("variants")
    void everyReferenceTensorOfTheVariantsMatches(String folder) {
        assertMatchesHuggingFace(Fixtures.HF_MORE.resolve(folder), folder);
    }

    private static void assertMatchesHuggingFace(Path dir, String name) {
        HookedAutoConfig config = HookedAutoConfig.fromJson(dir.resolve("config.json"));
        // fixtures-hf-more's references: the residual stream before each block, each block's pattern, final norm, logits
        assertParity(dir, name, Fixtures.hasEveryHook(dir) ? 20 : 2 * config.nLayers() + 2);
        assertEquals(checkpointElements(dir), config.parameterCount(),
                name + ": parameterCount() vs the elements of the checkpoint Hugging Face saved");
    }

    private static boolean isSupported(String modelType) {
        try {
            HookedAutoConfig.of(modelType);
            return true;
        } catch (IllegalArgumentException unsupported) {
            return false;
        }
    }

    private static long checkpointElements(Path dir) {
        try (SafeTensorsFile weights = SafeTensorsFile.open(dir.resolve("model.safetensors"))) {
            return weights.names().stream().mapToLong(name -> weights.info(name).numel()).sum();
        }
    }

    static void assertParity(Path dir, String fixture, int minimumCompared) {
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             ModelOutput out = model.forward(reference.tensor("input_ids"))) {
            List<String> problems = new ArrayList<>();
            int compared = 0;
            for (String name : reference.names()) {
                if (name.equals("input_ids") || name.startsWith("composition.") || name.startsWith("bfloat16.")) {
                    continue;
                }
                if (!out.cache().contains(name)) {
                    problems.add(name + ": not produced by the model");
                    continue;
                }
                Tensor expected = reference.tensor(name);
                Tensor actual = out.cache().get(name);
                if (!Arrays.equals(expected.shape(), actual.shape())) {
                    problems.add(name + ": shape " + Arrays.toString(actual.shape()) + ", expected " + Arrays.toString(expected.shape()));
                    continue;
                }
                String mismatch = firstMismatch(expected.toDoubleArray(), actual.toDoubleArray());
                if (mismatch != null) {
                    problems.add(name + ": " + mismatch);
                }
                compared++;
            }
            if (!problems.isEmpty()) {
                fail(fixture + ": " + problems.size() + " hooks differ from the reference:\n  " + String.join("\n  ", problems));
            }
            assertTrue(compared >= minimumCompared, "only " + compared + " hooks compared");
            assertArrayEquals(out.logits().toFloatArray(), out.cache().get("logits").toFloatArray());
        }
    }

    private static String firstMismatch(double[] expected, double[] actual) {
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i];
            double a = actual[i];
            if (Double.isInfinite(e) || Double.isInfinite(a)) {
                if (e != a) {
                    return "element " + i + " is " + a + ", expected " + e;
                }
                continue;
            }
            double tolerance = 1e-4 * Math.max(1.0, Math.abs(e));
            if (!(Math.abs(e - a) <= tolerance)) {
                return "element " + i + " is " + a + ", expected " + e + " (|diff| " + Math.abs(e - a) + ")";
            }
        }
        return null;
    }
}
