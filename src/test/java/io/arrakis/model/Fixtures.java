package io.arrakis.model;

import io.arrakis.json.Json;
import io.arrakis.model.family.Families;
import io.arrakis.model.family.ModelFamily;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The reference models beside the repository: {@code shared/fixtures} ({@code -Darrakis.fixtures} overrides) and
 * {@code shared/fixtures-hf-more} ({@code -Darrakis.fixturesHfMore} overrides), and the Hugging Face fixtures of
 * {@code src/test/resources/fixtures-hf}. Those of {@code shared/} must be there in CI; elsewhere (e.g. a GPU machine
 * that got only the repository) their tests are skipped.
 */
public final class Fixtures {
    /** One folder per family, named as the family, with every hook of a block as reference. */
    static final Path HF = Path.of("src/test/resources/fixtures-hf");
    /**
     * One folder per family whose attention has no per-head projections to record from outside (MiniCPM3's latent
     * attention), named as the family; as references each block's input, output, attention and MLP outputs, the final
     * norm and the logits.
     */
    static final Path HF_RESIDUAL = Path.of("src/test/resources/fixtures-hf-residual");
    /**
     * One folder per vision-language model type whose language model runs text here, saved by transformers; as
     * reference the whole model's logits for text ids ({@code scripts/make-hf-multimodal-fixtures.py}).
     */
    static final Path HF_MULTIMODAL = Path.of("src/test/resources/fixtures-hf-multimodal");
    /**
     * One folder per later family, and variants of earlier ones; as references each block's {@code hook_resid_pre}
     * and {@code attn.hook_pattern}, {@code ln_final.hook_normalized} and {@code logits}.
     */
    public static final Path HF_MORE = Path.of(System.getProperty("arrakis.fixturesHfMore", "../shared/fixtures-hf-more"));
    /** {@code shared/fixtures}: reference models of an independent PyTorch implementation. */
    public static final Path SHARED = Path.of(System.getProperty("arrakis.fixtures", "../shared/fixtures"));

    private Fixtures() {
    }

    /**
     * Writes into {@code dir} a float32 checkpoint in the family's Hugging Face names and layout ({@code config.json},
     * {@code model.safetensors}) holding the random tensors {@code HookedAutoModel.create} draws with {@code seed};
     * they stay open in the caller's scope.
     */
    static void writeRandomCheckpoint(HookedAutoConfig config, long seed, Path dir) throws IOException {
        writeRandomCheckpoint(config, seed, dir, DType.FLOAT32);
    }

    /**
     * The same, each value first rounded to {@code precision} (a float32 checkpoint still), so that the checkpoint
     * loads without rounding in that dtype and in any wider one.
     */
    static void writeRandomCheckpoint(HookedAutoConfig config, long seed, Path dir, DType precision) throws IOException {
        HookedAutoModel.RandomSource source = new HookedAutoModel.RandomSource(config, seed, DType.FLOAT32);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (String name : source.names()) {
            Tensor t = source.load(name);
            tensors.put(name, precision == DType.FLOAT32 ? t : t.to(precision).to(DType.FLOAT32));
        }
        writeCheckpoint(config, tensors, dir);
    }

    /**
     * Copies the model folder {@code fixture} into {@code dir} with every tensor whose name ends with {@code suffix}
     * set to NaN: a model whose attention (or whatever that weight feeds) gives NaN.
     */
    public static void writeWithNaN(Path fixture, String suffix, Path dir) throws IOException {
        writeEdited(fixture, dir, (name, t) -> name.endsWith(suffix)
                ? Tensor.full(t.shape(), Double.NaN, t.dtype(), t.device()) : t);
    }

    /** Copies the model folder {@code fixture} into {@code dir} with each tensor as {@code edit} gives it back. */
    public static void writeEdited(Path fixture, Path dir, java.util.function.BiFunction<String, Tensor, Tensor> edit)
            throws IOException {
        Files.createDirectories(dir);
        Files.copy(fixture.resolve("config.json"), dir.resolve("config.json"));
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try (io.arrakis.torch.TensorScope scope = io.arrakis.torch.TensorScope.open();
             SafeTensorsFile file = SafeTensorsFile.open(fixture.resolve("model.safetensors"))) {
            for (String name : file.names()) {
                tensors.put(name, edit.apply(name, file.tensor(name)));
            }
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        }
    }

    /** Writes {@code tensors} and {@code config} into {@code dir} as a model folder, creating it where needed. */
    public static void writeCheckpoint(HookedAutoConfig config, Map<String, Tensor> tensors, Path dir)
            throws IOException {
        Files.createDirectories(dir);
        SafeTensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        Files.writeString(dir.resolve("config.json"), config.toJson());
    }

    /** A model of {@code shared/fixtures}: required in CI, else its test is skipped where the folder is missing. */
    public static Path dir(String name) {
        return existing(SHARED.resolve(name));
    }

    /** The {@code input_ids} of a Hugging Face fixture's {@code reference.safetensors}; the caller owns the tensor. */
    public static Tensor referenceInputIds(Path fixture) {
        try (SafeTensorsFile reference = SafeTensorsFile.open(fixture.resolve("reference.safetensors"))) {
            return reference.tensor("input_ids").copy();
        }
    }

    /** A tokenizer of {@code shared/fixtures-hf-more/tokenizers}: {@code tokenizer.json} and {@code expected.json}. */
    public static Path tokenizer(String kind) {
        return existing(HF_MORE.resolve("tokenizers").resolve(kind));
    }

    /**
     * A registered family's Hugging Face reference model: {@code src/test/resources/fixtures-hf/<family>} (or
     * {@code fixtures-hf-residual/<family>}), or, for a family without one there, the folder of
     * {@code shared/fixtures-hf-more} whose {@code config.json} has the family's {@code model_type}, or else the one
     * {@link DerivedFixtures} derives.
     *
     * @param family the family's name or {@code model_type}
     */
    public static Path huggingFace(String family) {
        ModelFamily f = Families.find(family, "family");
        Path own = HF.resolve(f.name());
        if (Files.isDirectory(own)) {
            return own;
        }
        if (Files.isDirectory(HF_RESIDUAL.resolve(f.name()))) {
            return HF_RESIDUAL.resolve(f.name());
        }
        Path more = existing(HF_MORE);
        return moreFolders().filter(d -> f.modelType().equals(modelType(d))).findFirst()
                .or(() -> DerivedFixtures.of(f.name()))
                .orElseGet(() -> fail("the " + f.name() + " family has no Hugging Face fixture: neither " + own
                        + " nor a folder of " + more + " with model_type " + f.modelType()));
    }

    /**
     * How far transformers' bfloat16 pass of a fixture ({@code bfloat16.logits} of its reference, the saved model
     * loaded in bfloat16) lies from our bfloat16 pass of the same model and from the reference tensor {@code other}
     * (the float32 {@code logits}, say): the mean absolute distances of the logits, {@code {ours, other's}}.
     */
    static double[] bfloat16Distances(Path fixture, String other) {
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile reference = SafeTensorsFile.open(fixture.resolve("reference.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(fixture, DType.BFLOAT16, Device.CPU)) {
            double[] expected = reference.tensor("bfloat16.logits").toDoubleArray();
            double[] theirs = reference.tensor(other).toDoubleArray();
            double[] ours = model.runWithHooks(reference.tensor("input_ids")).to(DType.FLOAT64).toDoubleArray();
            double fromOurs = 0;
            double fromTheirs = 0;
            for (int i = 0; i < expected.length; i++) {
                fromOurs += Math.abs(ours[i] - expected[i]);
                fromTheirs += Math.abs(theirs[i] - expected[i]);
            }
            return new double[] {fromOurs / expected.length, fromTheirs / expected.length};
        }
    }

    /** Whether a fixture of {@link #huggingFace} holds every hook of a block (those of fixtures-hf do). */
    public static boolean hasEveryHook(Path fixture) {
        return fixture.startsWith(HF);
    }

    /** The model folders of {@code shared/fixtures-hf-more}; none when it is missing outside CI. */
    static List<Path> moreHuggingFace() {
        if (!Files.isDirectory(HF_MORE)) {
            if (System.getenv("CI") != null) {
                throw new IllegalStateException(HF_MORE.toAbsolutePath() + " is missing; CI must have shared/");
            }
            return List.of();
        }
        return moreFolders().sorted().toList();
    }

    private static Stream<Path> moreFolders() {
        try (Stream<Path> dirs = Files.list(HF_MORE)) {
            return dirs.filter(d -> Files.isRegularFile(d.resolve("reference.safetensors"))).toList().stream();
        } catch (IOException e) {
            throw new IllegalStateException("unreadable " + HF_MORE + ": " + e.getMessage(), e);
        }
    }

    /** The {@code model_type} of a fixture's {@code config.json}. */
    static String modelType(Path fixture) {
        try {
            return String.valueOf(((Map<?, ?>) Json.parse(Files.readString(fixture.resolve("config.json"))))
                    .get("model_type"));
        } catch (IOException | Json.ParseException e) {
            throw new IllegalStateException("unreadable " + fixture.resolve("config.json") + ": " + e.getMessage(), e);
        }
    }

    private static Path existing(Path dir) {
        if (!Files.isDirectory(dir)) {
            if (System.getenv("CI") != null) {
                fail("fixture " + dir.toAbsolutePath() + " is missing; CI must have shared/ beside the repository");
            }
            assumeTrue(false, "skipped: no fixture at " + dir.toAbsolutePath());
        }
        return dir;
    }
}
