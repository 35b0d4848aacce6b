package io.arrakis.model;

import io.arrakis.model.safetensors.SafeTensorsDirectory;
import io.arrakis.model.safetensors.SafeTensorsException;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Checkpoints and configs that disagree, or files that changed under us: refused with a message that names the
 * problem, never loaded as a model that differs from Hugging Face's.
 */
class CheckpointMismatchTest {

    /** The tensors of a random tiny checkpoint of {@code config}, by name, in a map the caller may change. */
    private static Map<String, Tensor> tensors(HookedAutoConfig config) {
        HookedAutoModel.RandomSource source = new HookedAutoModel.RandomSource(config, 3, DType.FLOAT32);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (String name : source.names()) {
            tensors.put(name, source.load(name));
        }
        return tensors;
    }

    /** The tensors of a random tiny checkpoint of {@code config}, with {@code extra} added; written with its config. */
    private static void writeWith(HookedAutoConfig config, Map<String, Tensor> extra, Path dir) throws IOException {
        Map<String, Tensor> all = tensors(config);
        all.putAll(extra);
        Fixtures.writeCheckpoint(config, all, dir);
    }

    private static String refusal(Path dir) {
        return assertThrows(IllegalArgumentException.class, () -> HookedAutoModel.fromPretrained(dir)).getMessage();
    }

    @Test
    void aStoredUnembeddingOfTiedEmbeddingsWithAnotherShapeIsRefused(@TempDir Path dir) throws IOException {
        HookedAutoConfig config = TinyConfigs.of("gpt2"); // ties its embeddings
        try (TensorScope scope = TensorScope.open()) {
            writeWith(config, Map.of("lm_head.weight", Tensor.zeros(7, 3)), dir);
            String m = refusal(dir);
            assertTrue(m.contains("lm_head.weight") && m.contains("[7, 3]") && m.contains("tie_word_embeddings"), m);
        }
    }

    /**
     * transformers 5 ties a stored unembedding to the embedding only where the two are equal; a copy with other values
     * (a fine-tune that trained its head, its config still saying tie_word_embeddings) stays untied.
     */
    @Test
    void aStoredUnembeddingOfTiedEmbeddingsIsKeptWhereItDiffers(@TempDir Path dir) throws IOException {
        HookedAutoConfig config = TinyConfigs.of("gpt2"); // ties its embeddings
        Path plain = dir.resolve("plain");
        Path same = dir.resolve("same");
        Path negated = dir.resolve("negated");
        try (TensorScope scope = TensorScope.open()) {
            Map<String, Tensor> tensors = tensors(config);
            Fixtures.writeCheckpoint(config, tensors, plain);
            Tensor embedding = tensors.get("transformer.wte.weight");
            tensors.put("lm_head.weight", embedding.copy());
            Fixtures.writeCheckpoint(config, tensors, same);
            tensors.put("lm_head.weight", embedding.neg());
            Fixtures.writeCheckpoint(config, tensors, negated);
            Tensor ids = Tensor.of(new long[] {1, 2, 3}, 1, 3);
            try (HookedAutoModel a = HookedAutoModel.fromPretrained(plain);
                 HookedAutoModel b = HookedAutoModel.fromPretrained(same);
                 HookedAutoModel c = HookedAutoModel.fromPretrained(negated)) {
                Tensor logits = a.runWithHooks(ids);
                assertEquals(0.0, b.runWithHooks(ids).sub(logits).abs().max().item());
                assertEquals(0.0, c.runWithHooks(ids).add(logits).abs().max().item(), "the stored head, negated");
                assertEquals(0.0, c.W_U().add(a.W_U()).abs().max().item());
            }
        }
    }

    /**
     * safetensors' {@code save_model} keeps one name of tied tensors, the first in order: a gpt2 saved so holds
     * {@code lm_head.weight} and no {@code transformer.wte.weight}, and transformers fills the embedding from it. Was:
     * refused as missing the embedding.
     */
    @Test
    void tiedEmbeddingsStoredOnlyAsTheUnembeddingLoadFromIt(@TempDir Path dir) throws IOException {
        HookedAutoConfig config = TinyConfigs.of("gpt2");
        Path both = dir.resolve("both");
        Path onlyHead = dir.resolve("only-head");
        try (TensorScope scope = TensorScope.open()) {
            Map<String, Tensor> tensors = tensors(config);
            Fixtures.writeCheckpoint(config, tensors, both);
            tensors.put("lm_head.weight", tensors.remove("transformer.wte.weight"));
            Fixtures.writeCheckpoint(config, tensors, onlyHead);
            Tensor ids = Tensor.of(new long[] {1, 2, 3}, 1, 3);
            try (HookedAutoModel a = HookedAutoModel.fromPretrained(both);
                 HookedAutoModel b = HookedAutoModel.fromPretrained(onlyHead)) {
                assertEquals(0.0, a.runWithHooks(ids).sub(b.runWithHooks(ids)).abs().max().item());
            }
        }
    }

    @Test
    void aQuantizationConfigIsRefusedNotIgnored(@TempDir Path dir) throws IOException {
        HookedAutoConfig config = TinyConfigs.of("llama");
        try (TensorScope scope = TensorScope.open()) {
            writeWith(config, Map.of(), dir);
        }
        withQuantization(dir, "{\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": true}");
        String m = refusal(dir);
        assertTrue(m.contains("quantization_config") && m.contains("bitsandbytes") && m.contains("not implemented"), m);
    }

    /** Adds {@code "quantization_config": json} to the folder's config.json. */
    private static void withQuantization(Path dir, String json) throws IOException {
        String config = Files.readString(dir.resolve("config.json"));
        int open = config.indexOf('{') + 1;
        Files.writeString(dir.resolve("config.json"),
                config.substring(0, open) + "\"quantization_config\": " + json + ", " + config.substring(open));
    }

    @Test
    void gptOssMxfp4IsToldToDequantizeAndADequantizedCheckpointLoads(@TempDir Path dir) throws IOException {
        HookedAutoConfig config = TinyConfigs.of("llama");
        try (TensorScope scope = TensorScope.open()) {
            writeWith(config, Map.of(), dir);
        }
        String plain = Files.readString(dir.resolve("config.json"));
        withQuantization(dir, "{\"quant_method\": \"mxfp4\"}");
        String m = refusal(dir);
        assertTrue(m.contains("Mxfp4Config(dequantize=True)"), m);
        // a checkpoint saved after dequantizing may keep the setting: its weights are floating point
        Files.writeString(dir.resolve("config.json"), plain);
        withQuantization(dir, "{\"quant_method\": \"mxfp4\", \"dequantize\": true}");
        try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
            assertEquals(config.nLayers(), model.config().nLayers());
        }
    }

    @Test
    void aTopLevelPartialRotaryFactorOfAFamilyThatRotatesWholeHeadsIsRefused() {
        String json = TinyConfigs.of("llama").toJson();
        int open = json.indexOf('{') + 1;
        String half = json.substring(0, open) + "\"partial_rotary_factor\": 0.5, " + json.substring(open);
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.fromJsonText(half)).getMessage();
        assertTrue(m.contains("partial_rotary_factor") && m.contains("whole head"), m);
        String whole = json.substring(0, open) + "\"partial_rotary_factor\": 1.0, " + json.substring(open);
        assertEquals(TinyConfigs.of("llama").architecture(), HookedAutoConfig.fromJsonText(whole).architecture());
    }

    @Test
    void aSizeOutOfIntsRangeIsCalledThatNotANonInteger() {
        String m = assertThrows(IllegalArgumentException.class,
                () -> TinyConfigs.of("gpt2").with(Map.of("n_embd", 2147483648L))).getMessage();
        assertTrue(m.contains("n_embd") && m.contains("out of range") && !m.contains("must be an integer"), m);
    }

    @Test
    void aConfigThatIsNotUtf8IsCalledThat(@TempDir Path dir) throws IOException {
        Files.write(dir.resolve("config.json"), new byte[] {'{', '"', (byte) 0xC3, (byte) 0x28, '"', ':', '1', '}'});
        String m = assertThrows(IllegalArgumentException.class,
                () -> HookedAutoConfig.fromJson(dir.resolve("config.json"))).getMessage();
        assertTrue(m.contains("not UTF-8"), m);
    }

    /** Was: read whole, so a file of gigabytes ran the heap out. */
    @Test
    void aConfigTooLargeToBeOneIsRefusedUnread(@TempDir Path dir) throws IOException {
        Path config = dir.resolve("config.json");
        try (RandomAccessFile sparse = new RandomAccessFile(config.toFile(), "rw")) {
            sparse.setLength(HookedAutoConfig.MAX_CONFIG_BYTES + 1);
        }
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.fromJson(config)).getMessage();
        assertTrue(m.contains(config.toString()) && m.contains((HookedAutoConfig.MAX_CONFIG_BYTES + 1) + " bytes"), m);
    }

    /** Was: a name from the file whole in the message, however long. */
    @Test
    void anUnusedTensorsLongNameIsShortenedInTheRefusal(@TempDir Path dir) throws IOException {
        HookedAutoConfig config = TinyConfigs.of("gpt2");
        try (TensorScope scope = TensorScope.open()) {
            writeWith(config, Map.of("x".repeat(100_000), Tensor.zeros(2)), dir);
            String m = refusal(dir);
            assertTrue(m.contains("does not use") && m.contains("x".repeat(99) + "…") && m.length() < 1000, m);
        }
    }

    @Test
    void aFileTruncatedWhileOpenIsNamedWhenRead(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("model.safetensors");
        try (TensorScope scope = TensorScope.open()) {
            SafeTensorsWriter.write(file, Map.of("a", Tensor.zeros(1024, 1024)), Map.of());
        }
        try (SafeTensorsFile open = SafeTensorsFile.open(file)) {
            try (RandomAccessFile shorten = new RandomAccessFile(file.toFile(), "rw")) {
                shorten.setLength(4096);
            }
            SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> open.tensor("a"));
            assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("shorter"), e.getMessage());
        }
    }

    /** Was: a tensor of another shape was read in full (from a hostile file, gigabytes) before its shape was compared. */
    @Test
    void aTensorOfAnotherShapeIsRefusedFromItsHeaderUnread() {
        HookedAutoConfig config = TinyConfigs.of("gpt2");
        HookedAutoModel.RandomSource random = new HookedAutoModel.RandomSource(config, 1, DType.FLOAT32);
        String name = "transformer.wte.weight";
        HfWeights.Source wide = new HfWeights.Source() {
            public java.util.Set<String> names() {
                return random.names();
            }

            public long[] shape(String n) {
                return n.equals(name) ? new long[] {config.vocabSize(), 1L << 40} : random.shape(n);
            }

            public Tensor load(String n) {
                if (n.equals(name)) {
                    throw new AssertionError("read " + n);
                }
                return random.load(n);
            }
        };
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> HfWeights.load(config, wide, DType.FLOAT32, io.arrakis.torch.Device.CPU));
        assertTrue(e.getMessage().contains("tensor '" + name + "' has shape [" + config.vocabSize() + ", 1099511627776]"
                + " but the config needs"), e.getMessage());
    }

    /**
     * Was: an FP8 checkpoint's weight (with its block scales beside it) was refused as a dtype the reader cannot load,
     * advising to read its raw bytes; an empty checkpoint was refused for its first missing tensor.
     */
    @Test
    void fp8AndEmptyCheckpointsAreRefusedSayingSo() {
        HookedAutoConfig config = TinyConfigs.of("llama");
        HookedAutoModel.RandomSource random = new HookedAutoModel.RandomSource(config, 1, DType.FLOAT32);
        String quantized = "model.layers.0.mlp.down_proj.weight";
        java.util.Set<String> names = new java.util.HashSet<>(random.names());
        names.add(quantized + "_scale_inv");
        HfWeights.Source fp8 = new HfWeights.Source() {
            public java.util.Set<String> names() {
                return names;
            }

            public long[] shape(String n) {
                return random.shape(n);
            }

            public Tensor load(String n) {
                return random.load(n);
            }
        };
        String m = assertThrows(IllegalArgumentException.class,
                () -> HfWeights.load(config, fp8, DType.FLOAT32, io.arrakis.torch.Device.CPU)).getMessage();
        assertTrue(m.contains("'" + quantized + "' is stored quantized") && m.contains("FP8"), m);
        HfWeights.Source empty = new HfWeights.Source() {
            public java.util.Set<String> names() {
                return java.util.Set.of();
            }

            public long[] shape(String n) {
                throw new AssertionError(n);
            }

            public Tensor load(String n) {
                throw new AssertionError(n);
            }
        };
        m = assertThrows(IllegalArgumentException.class,
                () -> HfWeights.load(config, empty, DType.FLOAT32, io.arrakis.torch.Device.CPU)).getMessage();
        assertTrue(m.contains("the checkpoint holds no tensor at all"), m);
    }

    /** Was: refused as "shorter than when it was opened", as the size was read from the file now at the path. */
    @Test
    void aFileReplacedAtItsPathWhileOpenStillReadsWhatWasMapped(@TempDir Path dir) {
        Path file = dir.resolve("model.safetensors");
        try (TensorScope scope = TensorScope.open()) {
            SafeTensorsWriter.write(file, Map.of("a", Tensor.zeros(1000), "b", Tensor.of(new float[] {1, 2, 3}, 3)),
                    Map.of());
            try (SafeTensorsFile open = SafeTensorsFile.open(file)) {
                SafeTensorsWriter.write(file, Map.of("c", Tensor.of(new float[] {9}, 1)), Map.of()); // renamed in
                assertArrayEquals(new float[] {1, 2, 3}, open.tensor("b").toFloatArray());
            }
        }
    }

    @Test
    void aWeightsFileThatIsABrokenLinkIsCalledThat(@TempDir Path dir) throws IOException {
        Files.createSymbolicLink(dir.resolve("model.safetensors"), dir.resolve("missing-blob"));
        SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> SafeTensorsDirectory.open(dir));
        assertTrue(e.getMessage().contains("model.safetensors") && e.getMessage().contains("does not exist"),
                e.getMessage());
    }
}
