package io.arrakis.model;

import io.arrakis.bench.BaseInterpretabilityBench;
import io.arrakis.io.HubCacheLayout;
import io.arrakis.json.Json;
import io.arrakis.text.Tokenizer;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link HookedAutoModel#fromPretrained} on a hub cache folder, and with the folder's tokenizer. */
class PretrainedFoldersTest {
    @TempDir
    Path tmp;

    /** The hub cache folder holds the same files behind symbolic links: the same logits, bit for bit. */
    @Test
    void aHubCacheFolderLoadsAsThePlainFolder() throws Exception {
        Path plain = Fixtures.dir("gpt2-tiny");
        Path hub = HubCacheLayout.build(tmp, "arrakis/gpt2-tiny", HubCacheLayout.filesOf(plain));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel a = HookedAutoModel.fromPretrained(plain);
             HookedAutoModel b = HookedAutoModel.fromPretrained(hub)) {
            Tensor ids = Tensor.of(new long[] {5, 17, 3, 88, 42, 0}, 2, 3);
            float[] expected = a.runWithHooks(ids).toFloatArray();
            assertArrayEquals(expected, b.runWithHooks(ids).toFloatArray());
            assertEquals(a.config(), b.config());
        }
    }

    /** The config alone, from a plain or a hub cache folder, with no weights there to read. */
    @Test
    void theConfigOfAFolderReadsNoWeights() throws Exception {
        Path plain = Fixtures.dir("gpt2-tiny");
        Path configOnly = Files.createDirectories(tmp.resolve("config-only"));
        Files.copy(plain.resolve("config.json"), configOnly.resolve("config.json"));
        Path hub = HubCacheLayout.build(tmp, "arrakis/config-only", List.of(configOnly.resolve("config.json")));
        try (HookedAutoModel model = HookedAutoModel.fromPretrained(plain)) {
            assertEquals(model.config(), HookedAutoConfig.fromPretrained(configOnly));
            assertEquals(model.config(), HookedAutoConfig.fromPretrained(hub));
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> HookedAutoConfig.fromPretrained(tmp.resolve("no-such-folder")));
        assertTrue(e.getMessage().contains("no model directory"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.fromPretrained(tmp));
        assertTrue(e.getMessage().contains("has no config.json"), e.getMessage());
    }

    @Test
    void aHubCacheFolderWithAMissingBlobIsRefused() throws Exception {
        Path hub = HubCacheLayout.build(tmp, "arrakis/gpt2-tiny", HubCacheLayout.filesOf(Fixtures.dir("gpt2-tiny")));
        Path weights = hub.resolve("snapshots").resolve(HubCacheLayout.COMMIT).resolve("model.safetensors");
        Files.delete(weights.toRealPath());
        RuntimeException e = assertThrows(RuntimeException.class, () -> HookedAutoModel.fromPretrained(hub));
        assertTrue(e.getMessage().contains("model.safetensors: a symbolic link to a file that does not exist"),
                e.getMessage());
    }

    /**
     * Was: any link to nothing refused the folder, though transformers reads only its files: a blob deleted to save
     * room (a pickle checkpoint beside the safetensors one) stopped a model from loading.
     */
    @Test
    void aLinkToNothingAmongFilesNotReadDoesNotMatter() throws Exception {
        Path hub = HubCacheLayout.build(tmp, "arrakis/gpt2-tiny", HubCacheLayout.filesOf(Fixtures.dir("gpt2-tiny")));
        Path snapshot = hub.resolve("snapshots").resolve(HubCacheLayout.COMMIT);
        Files.createSymbolicLink(snapshot.resolve("pytorch_model.bin"), Path.of("..", "..", "blobs", "deleted"));
        try (HookedAutoModel model = HookedAutoModel.fromPretrained(hub)) {
            assertEquals(2, model.config().nLayers());
        }
    }

    /**
     * Was: config.json's transformers_weights was ignored, and the model loaded from a stale model.safetensors beside
     * the file it names, which transformers reads first.
     */
    @Test
    void theWeightsFileTheConfigNamesIsTheOneLoaded() throws Exception {
        Path fixture = Fixtures.dir("gpt2-tiny");
        Path dir = Files.createDirectories(tmp.resolve("named"));
        writeConfig(fixture, dir, c -> c.put("transformers_weights", "model-hf.safetensors"));
        Files.copy(fixture.resolve("model.safetensors"), dir.resolve("model-hf.safetensors"));
        Fixtures.writeWithNaN(fixture, "ln_f.weight", tmp.resolve("stale"));
        Files.copy(tmp.resolve("stale").resolve("model.safetensors"), dir.resolve("model.safetensors"));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel plain = HookedAutoModel.fromPretrained(fixture);
             HookedAutoModel named = HookedAutoModel.fromPretrained(dir)) {
            Tensor ids = Tensor.of(new long[] {5, 17, 3, 88}, 1, 4);
            assertArrayEquals(plain.runWithHooks(ids).toFloatArray(), named.runWithHooks(ids).toFloatArray());
        }
        writeConfig(dir, dir, c -> c.put("transformers_weights", 3));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HookedAutoModel.fromPretrained(dir));
        assertTrue(e.getMessage().contains("transformers_weights must be a file name"), e.getMessage());
    }

    /** Was: "no lm_head.weight but its config says the embeddings are not tied", pointing at the wrong setting. */
    @Test
    void aClassificationCheckpointIsRefusedForWhatItIs() throws Exception {
        Path fixture = Fixtures.dir("llama-tiny-gqa");
        Path dir = Files.createDirectories(tmp.resolve("classifier"));
        writeConfig(fixture, dir, c -> {
            c.put("architectures", List.of("LlamaForSequenceClassification"));
            c.put("tie_word_embeddings", false);
        });
        Map<String, Tensor> tensors = new java.util.LinkedHashMap<>();
        try (TensorScope scope = TensorScope.open();
             io.arrakis.model.safetensors.SafeTensorsFile file = io.arrakis.model.safetensors.SafeTensorsFile.open(
                     fixture.resolve("model.safetensors"))) {
            for (String name : file.names()) {
                if (!name.equals("lm_head.weight")) {
                    tensors.put(name, file.tensor(name));
                }
            }
            tensors.put("score.weight", Tensor.zeros(2, 32));
            io.arrakis.model.safetensors.SafeTensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HookedAutoModel.fromPretrained(dir));
        assertTrue(e.getMessage().contains("a classification head [score.weight]")
                && e.getMessage().contains("LlamaForSequenceClassification"), e.getMessage());
    }

    /** The folder's tokenizer.json gives the ids Hugging Face gives (expected.json), as TransformerLens's to_tokens. */
    @Test
    void theFoldersTokenizerTurnsTextIntoInput() throws Exception {
        Path tokenizers = Fixtures.tokenizer("unigram");
        Path folder = gpt2TinyWithUnigram("with-tokenizer");
        Map<?, ?> hello = ((List<?>) ((Map<?, ?>) Json.parse(Files.readString(tokenizers.resolve("expected.json"))))
                .get("cases")).stream().map(c -> (Map<?, ?>) c).filter(c -> c.get("text").equals("Hello world"))
                .findFirst().orElseThrow();
        long[] expected = ((List<?>) hello.get("ids")).stream().mapToLong(v -> (Long) v).toArray();

        Tokenizer tokenizer;
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            tokenizer = model.tokenizer().orElseThrow();
            assertEquals("HfTokenizer[" + folder.resolve("tokenizer.json") + "]", tokenizer.toString());
            assertFalse(tokenizer instanceof AutoCloseable, "the model closes its tokenizer, its users cannot");
            Tensor tokens = model.toTokens("Hello world");
            assertArrayEquals(new long[] {1, expected.length}, tokens.shape());
            assertArrayEquals(expected, tokens.toLongArray());
            assertEquals("Hello world", model.tokenizer().orElseThrow().decode(expected));
            assertArrayEquals(model.runWithHooks(Tensor.of(expected, 1, expected.length)).toFloatArray(),
                    model.runWithHooks(tokens).toFloatArray());
            try (BaseInterpretabilityBench bench = new BaseInterpretabilityBench(model, tmp.resolve("bench"))) {
                assertEquals(tokenizer, bench.tokenizer().orElseThrow(), "the bench uses the model's own tokenizer");
                assertArrayEquals(expected, bench.encode("Hello world").toLongArray());
            }
        }
        assertThrows(IllegalStateException.class, () -> tokenizer.encode("a"), "closed with the model");
        HookedAutoModel closed = HookedAutoModel.fromPretrained(folder);
        closed.close();
        IllegalStateException afterClose = assertThrows(IllegalStateException.class, closed::tokenizer);
        assertTrue(afterClose.getMessage().contains("closed"), afterClose.getMessage());

        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.dir("gpt2-tiny"))) {
            assertTrue(model.tokenizer().isEmpty());
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> model.toTokens("Hello"));
            assertTrue(e.getMessage().contains("no tokenizer.json"), e.getMessage());
        }
    }

    /** A copy of gpt2-tiny's folder under {@code name} with the unigram fixture's tokenizer.json. */
    private Path gpt2TinyWithUnigram(String name) throws IOException {
        Path folder = Files.createDirectories(tmp.resolve(name));
        for (Path file : HubCacheLayout.filesOf(Fixtures.dir("gpt2-tiny"))) {
            Files.copy(file, folder.resolve(file.getFileName()));
        }
        Files.copy(Fixtures.tokenizer("unigram").resolve("tokenizer.json"), folder.resolve("tokenizer.json"));
        return folder;
    }

    /** TransformerLens's to_tokens(text, prepend_bos): the config's bos_token_id, which the unigram tokenizer never adds. */
    @Test
    void toTokensPrependsTheConfigsBeginningOfSequenceWhenAsked() throws Exception {
        Path folder = gpt2TinyWithUnigram("with-bos");
        long[] hello = {3, 78, 8, 83, 10, 3, 40, 34, 23, 24}; // "Hello world" in its expected.json
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            assertArrayEquals(hello, model.toTokens("Hello world").toLongArray());
            String m = assertThrows(IllegalArgumentException.class, () -> model.toTokens("Hello world", true))
                    .getMessage();
            assertTrue(m.contains("id 50256 is not one of this tokenizer's ids"), "GPT2Config's default BOS: " + m);
        }
        writeConfig(folder, folder, c -> c.put("bos_token_id", null));
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            String m = assertThrows(IllegalStateException.class, () -> model.toTokens("Hello world", false))
                    .getMessage();
            assertTrue(m.contains("names no bos_token_id"), m);
        }
        writeConfig(folder, folder, c -> c.put("bos_token_id", 2L));
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            assertArrayEquals(new long[] {2, 3, 78, 8, 83, 10, 3, 40, 34, 23, 24},
                    model.toTokens("Hello world", true).toLongArray());
            assertArrayEquals(hello, model.toTokens("Hello world", false).toLongArray());
            // ids of the tokenizer that gpt2-tiny's 96 embeddings lack: named as such, not left to fail in the pass
            for (boolean prependBos : new boolean[] {false, true}) {
                String m = assertThrows(IllegalArgumentException.class,
                        () -> model.toTokens("The cat sat on the mat.", prependBos)).getMessage();
                assertTrue(m.contains("gives id 185, which this gpt2 model's vocabulary of 96 tokens does not have"), m);
            }
            assertThrows(IllegalArgumentException.class, () -> model.toTokens("The cat sat on the mat."));
        }
        writeConfig(folder, folder, c -> c.put("bos_token_id", List.of(1L, 2L)));
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            String m = assertThrows(IllegalStateException.class, () -> model.toTokens("Hello world", true))
                    .getMessage();
            assertTrue(m.contains("names no single bos_token_id (it is [1, 2])"), m);
        }
    }

    /**
     * A tokenizer that puts a BOS of its own before every text, other than the configuration's bos_token_id: its own
     * is the one used, as by Hugging Face's tokenizer and TransformerLens (it was prepended before it, two BOS).
     */
    @Test
    void theTokenizersOwnBeginningOfSequenceWinsOverTheConfigs() throws Exception {
        Path folder = gpt2TinyWithUnigram("own-bos");
        Map<String, Object> json = new java.util.LinkedHashMap<>();
        ((Map<?, ?>) Json.parse(Files.readString(folder.resolve("tokenizer.json"))))
                .forEach((k, v) -> json.put((String) k, v));
        json.put("post_processor", Map.of("type", "TemplateProcessing",
                "single", List.of(Map.of("SpecialToken", Map.of("id", "</s>", "type_id", 0L)),
                        Map.of("Sequence", Map.of("id", "A", "type_id", 0L))),
                "pair", List.of(Map.of("Sequence", Map.of("id", "A", "type_id", 0L))),
                "special_tokens", Map.of("</s>", Map.of("id", "</s>", "ids", List.of(1L), "tokens", List.of("</s>")))));
        Files.writeString(folder.resolve("tokenizer.json"), Json.write(json));
        writeConfig(folder, folder, c -> c.put("bos_token_id", 2L));
        long[] hello = {3, 78, 8, 83, 10, 3, 40, 34, 23, 24};
        long[] withOwn = new long[hello.length + 1];
        withOwn[0] = 1;
        System.arraycopy(hello, 0, withOwn, 1, hello.length);
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            assertEquals(java.util.OptionalLong.of(1), model.bosTokenId());
            assertArrayEquals(withOwn, model.toTokens("Hello world").toLongArray());
            assertArrayEquals(withOwn, model.toTokens("Hello world", true).toLongArray());
            assertArrayEquals(hello, model.toTokens("Hello world", false).toLongArray());
        }
        writeConfig(folder, folder, c -> c.put("bos_token_id", null));
        try (TensorScope scope = TensorScope.open(); HookedAutoModel model = HookedAutoModel.fromPretrained(folder)) {
            assertArrayEquals(hello, model.toTokens("Hello world", false).toLongArray(), "no config BOS needed");
        }
    }

    /** Writes {@code source}'s config.json, edited, into {@code dir}. */
    private static void writeConfig(Path source, Path dir, java.util.function.Consumer<Map<String, Object>> edit)
            throws IOException {
        Map<String, Object> config = new java.util.LinkedHashMap<>();
        ((Map<?, ?>) Json.parse(Files.readString(source.resolve("config.json")))).forEach((k, v) -> config.put((String) k, v));
        edit.accept(config);
        Files.writeString(dir.resolve("config.json"), Json.write(config));
    }
}
