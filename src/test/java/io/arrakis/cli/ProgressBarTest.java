package io.arrakis.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ProgressBarTest {
    private static String drawn(long total, long... steps) {
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        ProgressBar bar = new ProgressBar(new PrintStream(buffer, true, StandardCharsets.UTF_8), "composition K");
        for (long done : steps) {
            bar.advanced(done, total);
        }
        return buffer.toString(StandardCharsets.UTF_8);
    }

    @Test
    void aLongComputationGetsOneLineRedrawnInPlace() {
        String text = drawn(4000, 0, 1000, 1010, 4000);
        assertTrue(text.contains("composition K [#######                       ] 25% (1000/4000 head pairs"), text);
        assertTrue(text.contains("100% (4000/4000 head pairs"), text);
        assertEquals(3, text.split("\r", -1).length - 1, "one redraw per new percentage: " + text);
        assertEquals(1, text.split("\n", -1).length - 1, "one line: " + text);
    }

    @Test
    void aShortComputationDrawsNothing() {
        assertEquals("", drawn(ProgressBar.MIN_PAIRS, 0, ProgressBar.MIN_PAIRS));
    }
}
