package io.arrakis.cli;

import io.arrakis.json.Json;
import io.arrakis.model.safetensors.SafeTensorsFile;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class MainTest {
    private static final Path GPT2 = Path.of(System.getProperty("arrakis.fixtures", "../shared/fixtures"), "gpt2-tiny");

    private record Result(int status, String out, String err) {
    }

    private static Result run(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status = Main.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /** The JSON of {@code forward} carries the fixture's reference activation for the same input. */
    @Test
    void forwardPrintsTheRequestedActivationsAsJson() {
        assumeTrue(Files.isDirectory(GPT2) || System.getenv("CI") != null, "skipped: no shared fixtures");
        Result r = run("forward", "--model", GPT2.toString(), "--input-ids", "1,2,3;4,5,6",
                "--hooks", "blocks.0.attn.hook_pattern", "--json");
        assertEquals(0, r.status(), r.err());
        Map<?, ?> json = (Map<?, ?>) Json.parse(r.out().trim());
        assertEquals(List.of("blocks.0.attn.hook_pattern", "logits"), List.copyOf(json.keySet()));
        Map<?, ?> pattern = (Map<?, ?>) json.get("blocks.0.attn.hook_pattern");
        assertEquals(List.of(2L, 4L, 3L, 3L), pattern.get("shape"));
        List<?> data = (List<?>) pattern.get("data");
        assertEquals(72, data.size());
        // causal: the first query attends only to itself
        assertEquals(1.0, ((Number) data.get(0)).doubleValue(), 1e-6);
        assertEquals(0.0, ((Number) data.get(1)).doubleValue(), 0);
        assertEquals(List.of(2L, 3L, 96L), ((Map<?, ?>) json.get("logits")).get("shape"));
    }

    @Test
    void badInputIsOneLineOnStderrWithStatus2() {
        for (String[] args : List.of(
                new String[] {"forward", "--model", "/nonexistent", "--input-ids", "1"},
                new String[] {"forward", "--input-ids", "1"},
                new String[] {"forward", "--model", GPT2.toString(), "--input-ids", "1,2;3"},
                new String[] {"forward", "--model", GPT2.toString(), "--input-ids", "1,x"},
                new String[] {"forward", "--model", GPT2.toString(), "--input-ids", "1,2", "--hooks", "nope"},
                new String[] {"forward", "--model", GPT2.toString(), "--input-ids", "1,2", "--frobnicate"},
                new String[] {"nonsense"})) {
            Result r = run(args);
            assertEquals(2, r.status(), String.join(" ", args));
            if (!args[0].equals("nonsense")) {
                assertEquals(1, r.err().lines().count(), r.err());
                assertTrue(r.err().startsWith("arrakis forward: "), r.err());
            }
        }
    }

    @Test
    void forwardMatchesTheReferenceLogits() throws Exception {
        assumeTrue(Files.isDirectory(GPT2) || System.getenv("CI") != null, "skipped: no shared fixtures");
        try (SafeTensorsFile ref = SafeTensorsFile.open(GPT2.resolve("reference.safetensors"))) {
            long[] ids = ref.tensor("input_ids").toLongArray();
            StringBuilder text = new StringBuilder();
            for (int i = 0; i < ids.length; i++) {
                text.append(i == 0 ? "" : i % 11 == 0 ? ";" : ",").append(ids[i]);
            }
            Result r = run("forward", "--model", GPT2.toString(), "--input-ids", text.toString(), "--json");
            assertEquals(0, r.status(), r.err());
            List<?> data = (List<?>) ((Map<?, ?>) ((Map<?, ?>) Json.parse(r.out().trim())).get("logits")).get("data");
            float[] expected = ref.tensor("logits").toFloatArray();
            float[] actual = new float[data.size()];
            for (int i = 0; i < actual.length; i++) {
                actual[i] = ((Number) data.get(i)).floatValue();
            }
            assertArrayEquals(expected, actual, 1e-4f);
        }
    }
}
