package io.arrakis.model.safetensors;

import io.arrakis.json.Json;

import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Model folders: one file, sharded with an index, inconsistent indexes, hostile shard names, pickle-only folders. */
class SafeTensorsDirectoryTest {
    @TempDir
    Path dir;

    private TensorScope scope;

    @BeforeEach
    void openScope() {
        scope = TensorScope.open();
    }

    @AfterEach
    void closeScope() {
        scope.close();
    }

    private void shard(String file, String... names) {
        java.util.Map<String, Tensor> tensors = new java.util.TreeMap<>();
        for (String name : names) {
            tensors.put(name, Tensor.of(new float[] {name.length(), name.charAt(0)}, 2));
        }
        SafeTensorsWriter.write(dir.resolve(file), tensors, Map.of("format", "pt"));
    }

    private void index(String weightMapJson) throws IOException {
        Files.writeString(dir.resolve(SafeTensorsDirectory.INDEX_FILE),
                "{\"metadata\": {\"total_size\": 40, \"note\": \"x\"}, \"weight_map\": " + weightMapJson + "}");
    }

    private SafeTensorsException fails(String expected) {
        SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> SafeTensorsDirectory.open(dir).close());
        assertTrue(e.getMessage().contains(expected), e::getMessage);
        return e;
    }

    @Test
    void singleFileFolder() {
        shard("model.safetensors", "a", "bb");
        try (SafeTensorsDirectory w = SafeTensorsDirectory.open(dir)) {
            assertEquals(Set.of("a", "bb"), w.names());
            assertEquals(List.of(dir.resolve("model.safetensors")), w.files());
            assertEquals(Map.of("format", "pt"), w.metadata());
            assertArrayEquals(new float[] {2, 'b'}, w.tensor("bb").toFloatArray());
        }
    }

    @Test
    void shardedFolderIsOneSetOfTensors() throws IOException {
        shard("model-00001-of-00002.safetensors", "layer.0.w", "layer.0.b");
        shard("model-00002-of-00002.safetensors", "layer.1.w", "extra");
        index("{\"layer.0.w\": \"model-00001-of-00002.safetensors\", \"layer.0.b\": \"model-00001-of-00002.safetensors\","
                + " \"layer.1.w\": \"model-00002-of-00002.safetensors\"}");
        try (SafeTensorsDirectory w = SafeTensorsDirectory.open(dir)) {
            assertEquals(List.of("extra", "layer.0.b", "layer.0.w", "layer.1.w"), List.copyOf(w.names()),
                    "sorted, with the tensor the weight map omits");
            assertEquals(List.of(dir.resolve("model-00001-of-00002.safetensors"), dir.resolve("model-00002-of-00002.safetensors")),
                    w.files());
            assertEquals(Map.of("total_size", "40", "note", "x"), w.metadata());
            assertTrue(w.contains("layer.1.w"));
            assertFalse(w.contains("layer.2.w"));
            assertEquals(dir.resolve("model-00002-of-00002.safetensors"), w.fileOf("layer.1.w").path());
            assertArrayEquals(new long[] {2}, w.info("layer.0.b").shape());
            assertArrayEquals(new float[] {9, 'l'}, w.tensor("layer.0.w").toFloatArray());
            assertArrayEquals(new float[] {5, 'e'}, w.tensor("extra").toFloatArray());
            assertEquals(8, w.data("layer.1.w").byteSize());
            SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> w.tensor("layer.2.w"));
            assertTrue(e.getMessage().contains("no tensor named \"layer.2.w\""), e.getMessage());
        }
    }

    @Test
    void singleFileWinsOverAnIndex() throws IOException {
        shard("model.safetensors", "a");
        index("{\"b\": \"missing.safetensors\"}");
        try (SafeTensorsDirectory w = SafeTensorsDirectory.open(dir)) {
            assertEquals(Set.of("a"), w.names());
        }
    }

    @Test
    void aTensorInTwoShardsIsRejected() throws IOException {
        shard("s1.safetensors", "a", "dup");
        shard("s2.safetensors", "b", "dup");
        index("{\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\"}");
        fails("tensor \"dup\" is in two shards, s1.safetensors and s2.safetensors");
    }

    @Test
    void aWeightMapEntryMissingFromItsShardIsRejected() throws IOException {
        shard("s1.safetensors", "a");
        shard("s2.safetensors", "b");
        index("{\"a\": \"s1.safetensors\", \"b\": \"s1.safetensors\", \"c\": \"s2.safetensors\"}");
        SafeTensorsException e = fails("puts tensor \"b\" in s1.safetensors, which does not hold it (it is in s2.safetensors)");
        assertEquals(dir.resolve(SafeTensorsDirectory.INDEX_FILE), e.file());
    }

    @Test
    void aMissingShardIsRejected() throws IOException {
        shard("s1.safetensors", "a");
        index("{\"a\": \"s1.safetensors\", \"b\": \"s9.safetensors\"}");
        fails("names shard \"s9.safetensors\", which is not a file");
    }

    @Test
    void anInvalidShardIsReportedByItsName() throws IOException {
        Files.write(dir.resolve("s1.safetensors"), new byte[] {1, 2, 3});
        index("{\"a\": \"s1.safetensors\"}");
        SafeTensorsException e = fails("shorter than the 8-byte header length");
        assertEquals(dir.resolve("s1.safetensors"), e.file());
    }

    @ParameterizedTest
    @ValueSource(strings = {"../outside.safetensors", "/tmp/outside.safetensors", "sub/inner.safetensors",
            "sub\\inner.safetensors", "..", ".", "", "./s1.safetensors"})
    void shardNamesThatLeaveTheFolderAreRejected(String shardName) throws IOException {
        // make every such path actually exist, so only the name check can stop it
        Files.createDirectories(dir.resolve("model/sub"));
        shard("outside.safetensors", "a");
        shard("s1.safetensors", "a");
        Path model = dir.resolve("model");
        Files.copy(dir.resolve("outside.safetensors"), model.resolve("sub/inner.safetensors"));
        Files.writeString(model.resolve(SafeTensorsDirectory.INDEX_FILE),
                "{\"weight_map\": {\"a\": " + Json.quote(shardName) + "}}");
        SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> SafeTensorsDirectory.open(model).close());
        assertTrue(e.getMessage().contains("shards must be plain file names in the model folder"), e::getMessage);
    }

    @ParameterizedTest
    @ValueSource(strings = {"pytorch_model.bin", "model.pt", "weights.pth", "pytorch_model-00001-of-00002.bin"})
    void pickleOnlyFoldersAreRefusedWithAnExplanation(String pickle) throws IOException {
        Files.write(dir.resolve(pickle), new byte[] {(byte) 0x80, 2, 'c', 'o', 's', '\n', 's', 'y', 's', 't', 'e', 'm'});
        Files.writeString(dir.resolve("config.json"), "{}");
        SafeTensorsException e = fails(pickle);
        String m = e.getMessage();
        assertTrue(m.contains("pickle"), m);
        assertTrue(m.contains("arbitrary code"), m);
        assertTrue(m.contains("safe_serialization=True"), m);
        assertTrue(m.contains("model.safetensors"), m);
    }

    @Test
    void foldersWithoutWeightsAndNonFolders() throws IOException {
        fails("no model weights here");
        Files.writeString(dir.resolve("adapter.safetensors"), "");
        fails("only [adapter.safetensors]; name the weights file in config.json's transformers_weights");
        assertThrows(SafeTensorsException.class, () -> SafeTensorsDirectory.open(dir.resolve("nope")));
        assertThrows(SafeTensorsException.class, () -> SafeTensorsDirectory.open(dir.resolve("adapter.safetensors")));
    }

    /** Were: "no model weights here", or "open such a file with SafeTensorsFile.open", naming no remedy. */
    @Test
    void foldersOfOtherWeightsSayWhatToDo() throws IOException {
        Files.writeString(dir.resolve("model.gguf"), "");
        assertTrue(fails("only GGUF [model.gguf]").getMessage().contains("gguf_file="));
        Files.writeString(dir.resolve("flax_model.msgpack"), "");
        Files.delete(dir.resolve("model.gguf"));
        assertTrue(fails("only Flax or TensorFlow weights [flax_model.msgpack]").getMessage().contains("from_flax=True"));
        shard("model-00001-of-00002.safetensors", "a");
        fails("without the index that names their tensors: fetch model.safetensors.index.json");
        shard("adapter_model.safetensors", "lora");
        fails("a PEFT adapter [adapter_model.safetensors, model-00001-of-00002.safetensors]");
    }

    /** A config's transformers_weights names the weights, as transformers reads it before the usual names. */
    @Test
    void aNamedWeightsFileIsOpenedBeforeTheUsualNames() throws IOException {
        shard("model.safetensors", "stale");
        shard("model-hf.safetensors", "a", "b");
        try (SafeTensorsDirectory d = SafeTensorsDirectory.open(dir, "model-hf.safetensors")) {
            assertEquals(java.util.Set.of("a", "b"), d.names());
        }
        shard("s1.safetensors", "c");
        Files.writeString(dir.resolve("other.safetensors.index.json"), "{\"weight_map\": {\"c\": \"s1.safetensors\"}}");
        try (SafeTensorsDirectory d = SafeTensorsDirectory.open(dir, "other.safetensors.index.json")) {
            assertEquals(java.util.Set.of("c"), d.names());
        }
        for (String bad : new String[] {"../model.safetensors", "model.bin", "missing.safetensors", ""}) {
            SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> SafeTensorsDirectory.open(dir, bad));
            assertTrue(e.getMessage().contains("transformers_weights"), e.getMessage());
        }
    }

    @Test
    void malformedIndexesAreRejected() throws IOException {
        shard("s1.safetensors", "a");
        Path index = dir.resolve(SafeTensorsDirectory.INDEX_FILE);
        Map<String, String> cases = Map.of(
                "{\"weight_map\": ", "invalid JSON",
                "[]", "must be a JSON object",
                "{\"metadata\": {}}", "\"weight_map\" must be an object",
                "{\"weight_map\": []}", "\"weight_map\" must be an object",
                "{\"weight_map\": {\"a\": 3}}", "maps \"a\" to the number 3",
                "{\"weight_map\": {\"a\": \"s1.safetensors\"}, \"metadata\": 5}", "\"metadata\" must be an object");
        for (Map.Entry<String, String> c : cases.entrySet()) {
            Files.writeString(index, c.getKey());
            SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> SafeTensorsDirectory.open(dir).close(),
                    c.getKey());
            assertTrue(e.getMessage().contains(c.getValue()), () -> c.getKey() + " gave: " + e.getMessage());
            assertTrue(e.getMessage().startsWith(index.toString()), e.getMessage());
        }
        Files.write(index, new byte[] {'{', (byte) 0xff, '}'});
        fails("not valid UTF-8");
        Files.writeString(index, "{\"weight_map\": {}}", StandardCharsets.UTF_8);
        try (SafeTensorsDirectory w = SafeTensorsDirectory.open(dir)) {
            assertTrue(w.names().isEmpty(), "an empty weight map opens no shard");
        }
    }
}
