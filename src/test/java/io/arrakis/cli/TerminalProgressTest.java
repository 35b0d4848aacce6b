package io.arrakis.cli;

import io.arrakis.model.Fixtures;
import io.arrakis.testing.ChildJvm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The command line's progress bars: drawn for a person at a terminal, silent for programs. */
class TerminalProgressTest {
    private static String drawn(boolean shown) {
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        try (TerminalProgress bar = new TerminalProgress("K-composition", "pairs", new PrintStream(buffer, true,
                StandardCharsets.UTF_8), shown)) {
            for (long done = 0; done <= 3000; done += 1000) {
                bar.advanced(done, 4000);
            }
        }
        return buffer.toString(StandardCharsets.UTF_8);
    }

    @Test
    void aShownBarNamesTheTaskAndHowFarItCame() {
        String text = drawn(true);
        assertTrue(text.contains("K-composition"), text);
        assertTrue(text.contains("3000/4000"), text);
        assertTrue(text.contains("75%"), text);
    }

    /** Was: the seed example's note on the model it built was printed while the bar still drew, which drew over it. */
    @Test
    void linesPrintedWhileABarIsDrawnComeAfterItsLastFrame() {
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        PrintStream stream = new PrintStream(buffer, true, StandardCharsets.UTF_8);
        try (TerminalProgress bar = new TerminalProgress("random weights", "weights", stream, true)) {
            java.util.function.Consumer<String> notes = bar.printer(stream);
            notes.accept("model: tiny");
            bar.advanced(1, 2);
            notes.accept("built");
            bar.advanced(2, 2);
            bar.close();
            int closed = buffer.size();
            bar.advanced(2, 3); // a report after the close, from a hook still registered, say
            assertEquals(closed, buffer.size(), "nothing drawn after the close");
        }
        String text = buffer.toString(StandardCharsets.UTF_8);
        assertTrue(text.startsWith("model: tiny"), text);
        assertTrue(text.contains("2/2") && text.endsWith("built" + System.lineSeparator()), text);
    }

    @Test
    void aBarNotShownWritesNothing() {
        assertEquals("", drawn(false));
    }

    /** {@code scripts/arrakis} run with a terminal as its standard output (script(1) gives it one); what it shows. */
    private static String atATerminal(String... args) throws Exception {
        return atATerminal(null, args);
    }

    /** The same with standard error sent to {@code errors} unless null. */
    private static String atATerminal(Path errors, String... args) throws Exception {
        ChildJvm child = ChildJvm.of(Main.class, args);
        String command = child.command().stream().map(TerminalProgressTest::quoted).collect(Collectors.joining(" "))
                + (errors == null ? "" : " 2>" + quoted(errors.toString()));
        ProcessBuilder builder = new ProcessBuilder("script", "-qec", command, "/dev/null").redirectErrorStream(true);
        builder.environment().putAll(child.environment());
        Process process = builder.start();
        process.getOutputStream().close();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(process.waitFor(2, TimeUnit.MINUTES), "finished");
        assertEquals(0, process.exitValue(), output);
        return output;
    }

    @Test
    void aCommandAtATerminalDrawsItsBarButNotWithJson() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/script")), "skipped: no script(1) to give a command a terminal");
        String model = Fixtures.huggingFace("gpt2").toAbsolutePath().toString();
        String shown = atATerminal("heads", "--model", model);
        assertTrue(shown.contains("head detectors") && shown.contains("2/2"), shown);
        assertTrue(shown.contains("induction"), "and the table: " + shown);
        String json = atATerminal("heads", "--model", model, "--json");
        assertFalse(json.contains("head detectors"), json);
        assertTrue(json.strip().endsWith("}"), json);
    }

    private static String quoted(String argument) {
        return "'" + argument.replace("'", "'\\''") + "'";
    }

    /** Was: a terminal's standard output was enough, and the bar's frames went to the file. */
    @Test
    void standardErrorSentToAFileGetsNoBar(@TempDir Path dir) throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/script")), "skipped: no script(1) to give a command a terminal");
        String model = Fixtures.huggingFace("gpt2").toAbsolutePath().toString();
        Path errors = dir.resolve("errors.log");
        String shown = atATerminal(errors, "heads", "--model", model);
        assertTrue(shown.contains("induction"), "the table: " + shown);
        String written = Files.readString(errors);
        assertFalse(written.contains("head detectors"), written);
    }

    /** Was: the bar's last frames were drawn after (and on) the result's line. */
    @Test
    void theBarIsDoneBeforeTheResultIsPrinted(@TempDir Path dir) throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/script")), "skipped: no script(1) to give a command a terminal");
        String model = Fixtures.huggingFace("gpt2").toAbsolutePath().toString();
        String view = atATerminal("view", "--model", model, "--input-ids", "1,2,3,4,5,6", "--corrupted-input-ids",
                "1,2,9,4,5,6", "--answer", "3", "--wrong", "9", "--out", dir.resolve("v.html").toString());
        assertTrue(view.contains(" steps") && view.lastIndexOf(" steps") < view.indexOf("wrote "), view);
        String forward = atATerminal("forward", "--model", model, "--input-ids", "1,2,3,4,5,6");
        assertTrue(forward.contains(" layers") && forward.lastIndexOf(" layers") < forward.indexOf("logits "), forward);
    }

    @Test
    void jsonOutputAndAnOutputThatIsNoTerminalAreNotWatched() {
        assertFalse(TerminalProgress.watched(true));
        assertFalse(TerminalProgress.watched(false), "the tests' output is not a terminal");
    }
}
