package io.arrakis.sweep;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Prompt files: read as written, every mistake reported with its line. */
class PromptFileTest {
    private static final String GOOD = "{\"clean\": [1, 2, 3], \"corrupted\": [1, 2, 4], \"answer\": 5, \"wrong\": 6}";

    @TempDir
    Path dir;

    private Path file(String... lines) throws IOException {
        return Files.write(dir.resolve("prompts.jsonl"), List.of(lines));
    }

    @Test
    void readsEachLineAsAPromptPairSkippingBlankLines() throws IOException {
        List<PromptPair> prompts = PromptFile.read(file(GOOD, "", "{\"clean\": [7], \"corrupted\": [8], \"answer\": 0, \"wrong\": 9}"),
                null, 10, 8);
        assertEquals(2, prompts.size());
        assertEquals(0, prompts.get(0).id());
        assertArrayEquals(new long[] {1, 2, 4}, prompts.get(0).corrupted());
        assertEquals(1, prompts.get(1).id());
        assertEquals(9, prompts.get(1).wrong());
    }

    /** Were: a byte-order mark refused as invalid JSON, bytes that are not UTF-8 without a line, a missing file as its path. */
    @Test
    void theFilesEncodingIsCheckedByLine() throws IOException {
        Path bom = Files.write(dir.resolve("bom.jsonl"), ("\uFEFF" + GOOD + "\r\n" + GOOD).getBytes(java.nio.charset.StandardCharsets.UTF_8));
        assertEquals(2, PromptFile.read(bom, null, 10, 8).size());
        // lines ended by a lone CR, as classic Mac editors write them (was: "unexpected { after the JSON value")
        Path cr = Files.write(dir.resolve("cr.jsonl"), (GOOD + "\r" + GOOD + "\r\r{\"clean\": [1]}\r")
                .getBytes(java.nio.charset.StandardCharsets.UTF_8));
        IllegalArgumentException third = assertThrows(IllegalArgumentException.class, () -> PromptFile.read(cr, null, 10, 8));
        assertTrue(third.getMessage().startsWith(cr + " line 4: "), third.getMessage());
        Path mixed = Files.write(dir.resolve("mixed.jsonl"), (GOOD + "\r" + GOOD + "\r\n" + GOOD + "\n")
                .getBytes(java.nio.charset.StandardCharsets.UTF_8));
        assertEquals(3, PromptFile.read(mixed, null, 10, 8).size());
        byte[] good = (GOOD + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8);
        byte[] bad = new byte[good.length + 2];
        System.arraycopy(good, 0, bad, 0, good.length);
        bad[good.length] = (byte) 0xC3; // a lead byte without its continuation
        bad[good.length + 1] = '(';
        Path latin = Files.write(dir.resolve("bad.jsonl"), bad);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PromptFile.read(latin, null, 10, 8));
        assertTrue(e.getMessage().equals(latin + " line 2: not UTF-8 text"), e.getMessage());
        java.io.UncheckedIOException missing = assertThrows(java.io.UncheckedIOException.class,
                () -> PromptFile.read(dir.resolve("none.jsonl"), null, 10, 8));
        assertTrue(missing.getMessage().contains("no such file"), missing.getMessage());
    }

    @ParameterizedTest(name = "[{index}] {1}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', value = {
            "`{\"clean\": [1, 2], \"corrupted\": [1], \"answer\": 5, \"wrong\": 6}` | the same length",
            "`{\"clean\": [1, 2], \"corrupted\": [1, 99], \"answer\": 5, \"wrong\": 6}` | \"corrupted\"[1] = 99 is not a token id",
            "`{\"clean\": [1, 2], \"corrupted\": [1, 2], \"answer\": 5, \"wrong\": 5}` | both 5",
            "`{\"clean\": [1, 2], \"corrupted\": [1, 2], \"answer\": 5}` | \"wrong\" must be a token id",
            "`{\"clean\": [1, 2], \"corrupted\": [1, 2], \"answer\": 5, \"wrong\": 6, \"note\": 1}` | unknown key \"note\"",
            "`{\"clean\": [1, 2.5], \"corrupted\": [1, 2], \"answer\": 5, \"wrong\": 6}` | not an integer token id",
            "`{\"clean\": [\"1\", 2], \"corrupted\": [1, 2], \"answer\": 5, \"wrong\": 6}` | \"clean\"[0] is the string \"1\", not",
            "`{\"clean\": [1, 99999999999999999999], \"corrupted\": [1, 2], \"answer\": 5, \"wrong\": 6}` | [1] is an integer out of range",
            "`{\"clean\": [], \"corrupted\": [], \"answer\": 5, \"wrong\": 6}` | non-empty array",
            "`{\"clean\": [1], \"clean_text\": \"a\", \"corrupted\": [1], \"answer\": 5, \"wrong\": 6}` | exactly one of",
            "`{\"clean_text\": \"a\", \"corrupted_text\": \"b\", \"answer\": 5, \"wrong\": 6}` | needs a tokenizer",
            "`{\"clean\": [1, 1, 1, 1, 1, 1, 1, 1, 1], \"corrupted\": [1, 1, 1, 1, 1, 1, 1, 1, 1], \"answer\": 5, \"wrong\": 6}` | at most 8",
            "`[1, 2]` | expected a JSON object",
            "`{\"clean\": [1, 2]` | invalid JSON",
            "`{\"clean\": [1, 2], \"corrupted\": [1, 2], \"answer\": \"5\", \"wrong\": 6}` | got the string \"5\"",
            "`{\"clean\": [1, 2], \"corrupted\": [1, 2], \"answer\": 5, \"wrong\": 6}` | every effect would be 0",
    })
    void aMistakeNamesTheFileItsLineAndTheProblem(String bad, String problem) throws IOException {
        Path f = file(GOOD, bad);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PromptFile.read(f, null, 10, 8));
        assertTrue(e.getMessage().startsWith(f + " line 2: "), e.getMessage());
        assertTrue(e.getMessage().contains(problem), e.getMessage());
    }

    @Test
    void textFormsGoThroughTheTokenizer() throws IOException {
        io.arrakis.text.Tokenizer letters = new io.arrakis.text.Tokenizer() {
            public int vocabSize() {
                return 26;
            }

            public java.util.OptionalLong addedBos() {
                return java.util.OptionalLong.empty();
            }

            public long[] encode(String text) {
                return text.chars().mapToLong(c -> c - 'a').toArray();
            }

            public String decode(long[] ids) {
                throw new UnsupportedOperationException();
            }

            public List<String> tokenStrings(long[] ids) {
                throw new UnsupportedOperationException();
            }
        };
        List<PromptPair> prompts = PromptFile.read(file("{\"clean_text\": \"cab\", \"corrupted\": [3, 0, 1], \"answer\": 4,"
                + " \"wrong\": 5}"), letters, 26, 8);
        assertArrayEquals(new long[] {2, 0, 1}, prompts.get(0).clean());
        assertArrayEquals(new long[] {3, 0, 1}, prompts.get(0).corrupted());
        // was: reported as "clean"[0], a key the line does not have
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PromptFile.read(
                file("{\"clean_text\": \"zab\", \"corrupted\": [3, 0, 1], \"answer\": 4, \"wrong\": 5}"), letters, 20, 8));
        assertTrue(e.getMessage().contains("\"clean_text\" gives token 0 the id 25, which is not a token id of this model"
                + " (0 to 19): is the tokenizer this model's?"), e.getMessage());
    }

    @Test
    void aFolderOfCheckpointsIsItsModelFoldersByName() throws IOException {
        for (String name : List.of("step-200", "step-100")) {
            Files.createDirectories(dir.resolve(name));
            Files.writeString(dir.resolve(name).resolve("config.json"), "{}");
        }
        Files.createDirectories(dir.resolve("notes"));
        assertEquals(List.of(dir.resolve("step-100").toString(), dir.resolve("step-200").toString()),
                CompositionSweep.checkpoints(List.of(dir.toString())));
        assertEquals(List.of(dir.resolve("step-200").toString()), CompositionSweep.checkpoints(List.of(dir.resolve("step-200").toString())));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> CompositionSweep.checkpoints(List.of(dir.resolve("notes").toString())))
                .getMessage().contains("no config.json"));
    }

    /** Was: a hub cache folder, which every other command takes as a model folder, had "no config.json". */
    @Test
    void aHubCacheFolderIsTheModelFolderItHolds() throws IOException {
        Path hub = dir.resolve("hub");
        for (String name : List.of("models--org--a", "models--org--b")) {
            Path snapshot = hub.resolve(name).resolve("snapshots").resolve("abc123");
            Files.createDirectories(snapshot);
            Files.writeString(snapshot.resolve("config.json"), "{}");
            Files.createDirectories(hub.resolve(name).resolve("refs"));
            Files.writeString(hub.resolve(name).resolve("refs").resolve("main"), "abc123");
        }
        // pinned to the snapshot refs/main names when the sweep starts: the executors read that one
        String a = hub.resolve("models--org--a").toString();
        String aSnapshot = hub.resolve("models--org--a").resolve("snapshots").resolve("abc123").toString();
        String bSnapshot = hub.resolve("models--org--b").resolve("snapshots").resolve("abc123").toString();
        assertEquals(List.of(aSnapshot), CompositionSweep.checkpoints(List.of(a)));
        assertEquals(List.of(aSnapshot, bSnapshot), CompositionSweep.checkpoints(List.of(hub.toString())));
    }

    /** Was: a model folder named twice (or reached through its parent too) was scored, and its rows written, twice. */
    @Test
    void aModelFolderReachedTwiceIsRefused() throws IOException {
        Files.createDirectories(dir.resolve("step-1"));
        Files.writeString(dir.resolve("step-1").resolve("config.json"), "{}");
        String step = dir.resolve("step-1").toString();
        for (List<String> twice : List.of(List.of(step, step), List.of(dir.toString(), step),
                List.of(step, dir.resolve("step-1").resolve(".").toString()))) {
            String message = assertThrows(IllegalArgumentException.class, () -> CompositionSweep.checkpoints(twice))
                    .getMessage();
            assertTrue(message.contains("are the same model folder"), message);
        }
    }

    @Test
    void aFileWithoutPromptsIsRefused() throws IOException {
        Path f = file("", "  ");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> PromptFile.read(f, null, 10, 8)).getMessage()
                .contains("no prompts"));
    }
}
