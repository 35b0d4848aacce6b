package io.arrakis.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

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

    @Test
    void aBarNotShownWritesNothing() {
        assertEquals("", drawn(false));
    }

    @Test
    void jsonOutputAndAnOutputThatIsNoTerminalAreNotWatched() {
        assertFalse(TerminalProgress.watched(true));
        assertFalse(TerminalProgress.watched(false), "the tests' output is not a terminal");
    }
}
