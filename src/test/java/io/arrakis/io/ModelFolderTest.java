package io.arrakis.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelFolderTest {
    @TempDir
    Path tmp;

    private Path hubFolder() throws Exception {
        Path model = Files.createDirectories(tmp.resolve("model"));
        Files.writeString(model.resolve("config.json"), "{\"model_type\": \"gpt2\"}");
        Files.writeString(model.resolve("tokenizer.json"), "{}");
        return HubCacheLayout.build(tmp.resolve("hub"), "org/tiny-model", HubCacheLayout.filesOf(model));
    }

    @Test
    void aHubCacheFolderIsReadFromTheSnapshotRefsMainNames() throws Exception {
        Path folder = hubFolder();
        assertEquals("models--org--tiny-model", folder.getFileName().toString());
        Path snapshot = ModelFolder.resolve(folder);
        assertEquals(folder.resolve("snapshots").resolve(HubCacheLayout.COMMIT), snapshot);
        assertTrue(Files.isSymbolicLink(snapshot.resolve("config.json")));
        assertEquals("{\"model_type\": \"gpt2\"}", Files.readString(snapshot.resolve("config.json")));
        assertEquals(snapshot, ModelFolder.resolve(snapshot), "a snapshot folder is a model folder itself");
        Path plain = tmp.resolve("model");
        assertEquals(plain, ModelFolder.resolve(plain));
        assertEquals(tmp.resolve("nope"), ModelFolder.resolve(tmp.resolve("nope")), "left to the caller to refuse");
    }

    /** A model folder that also holds a snapshots/ folder of its own is still the model folder (was: refused). */
    @Test
    void aModelFolderWithASnapshotsSubfolderIsItself(@org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("config.json"), "{}");
        Files.createDirectories(dir.resolve("snapshots"));
        assertEquals(dir, ModelFolder.resolve(dir));
    }

    @Test
    void aMissingRefOrSnapshotIsNamed() throws Exception {
        Path folder = hubFolder();
        Path ref = folder.resolve("refs").resolve("main");
        Files.writeString(ref, "0000000000000000000000000000000000000000\n");
        String message = refused(folder);
        assertTrue(message.contains("names snapshot 0000000000000000000000000000000000000000")
                && message.contains(HubCacheLayout.COMMIT), message);

        for (String escape : List.of("..", "../../x", "")) {
            Files.writeString(ref, escape);
            assertTrue(refused(folder).contains("should hold a commit hash"), escape);
        }
        Files.write(ref, new byte[] {(byte) 0xFF, 'a'}); // not UTF-8: was an UncheckedIOException
        assertTrue(refused(folder).contains("should hold a commit hash"));
        Files.writeString(ref, "a".repeat(100_000));
        message = refused(folder);
        assertTrue(message.contains("should hold a commit hash") && message.length() < 1000, message);
        Files.delete(ref);
        Files.createDirectories(ref);
        message = refused(folder);
        assertTrue(message.contains("its refs/main is no file"), message);
        Files.delete(ref);
        Files.writeString(ref, "0123abcd");
        Files.writeString(folder.resolve("snapshots").resolve("0123abcd"), "a file");
        message = refused(folder);
        assertTrue(message.contains("names snapshot 0123abcd") && message.contains("is no folder"), message);
        Files.delete(folder.resolve("snapshots").resolve("0123abcd"));

        Files.delete(ref);
        message = refused(folder);
        assertTrue(message.contains("has no refs/main") && message.contains(HubCacheLayout.COMMIT), message);
    }

    @Test
    void aLinkToAMissingBlobIsNamed() throws Exception {
        Path folder = hubFolder();
        Path snapshot = ModelFolder.resolve(folder);
        Path blob = snapshot.resolve("tokenizer.json").toRealPath();
        Files.delete(blob);
        String message = refused(folder);
        assertTrue(message.contains("tokenizer.json is a symbolic link to ../../blobs/" + blob.getFileName())
                && message.contains("does not exist"), message);
        assertEquals(message, refused(snapshot), "a snapshot folder given directly is checked alike");
    }

    private static String refused(Path folder) {
        return assertThrows(IllegalArgumentException.class, () -> ModelFolder.resolve(folder)).getMessage();
    }
}
