package io.arrakis.model;

import io.arrakis.json.Json;
import io.arrakis.model.family.Families;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Every activation of reference models against our forward pass on the same input: within 1e-4, absolute, or relative
 * where values exceed 1; -inf where the reference masks. Two sources of references: {@code shared/fixtures} (an
 * independent PyTorch implementation) and {@code src/test/resources/fixtures-hf} (Hugging Face {@code transformers}
 * itself, made by {@code scripts/make-hf-fixtures.py}, one per registered family, whose checkpoints also check
 * {@link HookedAutoConfig#parameterCount()}), and {@code shared/fixtures-hf-more} (Hugging Face too, fewer hooks).
 */
class ModelParityTest {
    private static final Path HF_FIXTURES = Path.of("src/test/resources/fixtures-hf");
    /** {@code shared/fixtures-hf-more} beside the repository ({@code -Darrakis.fixturesHfMore} overrides). */
    private static final Path HF_MORE_FIXTURES = Path.of(System.getProperty("arrakis.fixturesHfMore",
            "../shared/fixtures-hf-more"));

    @ParameterizedTest
    @ValueSource(strings = {"gpt2-tiny", "llama-tiny-gqa"})
    void everyHookMatchesTheSharedReference(String fixture) {
        assertParity(Fixtures.dir(fixture), fixture, 20);
    }

    static List<String> families() {
        return HookedAutoConfig.supportedFamilies();
    }

    /**
     * Every registered family has a Hugging Face fixture: here, named as the family, or in
     * {@code shared/fixtures-hf-more}, named as its model_type (checked by the next test).
     */
    @ParameterizedTest
    @MethodSource("families")
    void everyHookMatchesHuggingFace(String family) {
        Path dir = HF_FIXTURES.resolve(family);
        if (!Files.isDirectory(dir)) {
            Path more = Fixtures.moreHf(Families.find(family, "family").modelType());
            assertTrue(Files.isRegularFile(more.resolve("reference.safetensors")), "no reference in " + more);
            return;
        }
        assertParity(dir, family, 20);
        assertEquals(checkpointElements(dir), HookedAutoConfig.fromJson(dir.resolve("config.json")).parameterCount(),
                family + ": parameterCount() vs the elements of the checkpoint Hugging Face saved");
    }

    /**
     * The folders of {@code shared/fixtures-hf-more} whose {@code model_type} is a supported family (the others
     * await theirs): variants such as Llama 3.1's rotary scaling, and each family's own once it is registered. They
     * must be there in CI; elsewhere, without them, there is nothing to run.
     */
    static List<String> moreHuggingFaceFixtures() throws IOException {
        if (!Files.isDirectory(HF_MORE_FIXTURES)) {
            if (System.getenv("CI") != null) {
                throw new IllegalStateException(HF_MORE_FIXTURES.toAbsolutePath() + " is missing; CI must have shared/");
            }
            return List.of();
        }
        try (Stream<Path> dirs = Files.list(HF_MORE_FIXTURES)) {
            return dirs.filter(d -> Files.isRegularFile(d.resolve("reference.safetensors")))
                    .filter(d -> isSupported(modelType(d)))
                    .map(d -> d.getFileName().toString()).sorted().toList();
        }
    }

    @ParameterizedTest(allowZeroInvocations = true)
    @MethodSource("moreHuggingFaceFixtures")
    void everyReferenceTensorOfTheOtherHuggingFaceFixturesMatches(String folder) {
        Path dir = HF_MORE_FIXTURES.resolve(folder);
        HookedAutoConfig config = HookedAutoConfig.fromJson(dir.resolve("config.json"));
        // these references hold the residual stream before each block, each block's pattern, the final norm, logits
        assertParity(dir, folder, 2 * config.nLayers() + 2);
        assertEquals(checkpointElements(dir), config.parameterCount(),
                folder + ": parameterCount() vs the elements of the checkpoint Hugging Face saved");
    }

    private static String modelType(Path fixture) {
        try {
            return String.valueOf(((Map<?, ?>) Json.parse(Files.readString(fixture.resolve("config.json")))).get("model_type"));
        } catch (IOException | Json.ParseException e) {
            throw new IllegalStateException("unreadable " + fixture.resolve("config.json") + ": " + e.getMessage(), e);
        }
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

    private static void assertParity(Path dir, String fixture, int minimumCompared) {
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             ModelOutput out = model.forward(reference.tensor("input_ids"))) {
            List<String> problems = new ArrayList<>();
            int compared = 0;
            for (String name : reference.names()) {
                if (name.equals("input_ids") || name.startsWith("composition.")) {
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
