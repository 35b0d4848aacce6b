package io.arrakis.plot;

import io.arrakis.testing.ChildJvm;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

class HeatmapTest {
    /** Was: an image of the largest allowed sides failed with an OutOfMemoryError in a JVM of the default heap. */
    @Test
    void anImageTheHeapCannotHoldIsRefusedBeforeItIsDrawn() {
        String out = ChildJvm.of(Large.class).jvmOption("-Xmx64m").run();
        assertTrue(out.contains("refused: a 8192 × 8192 image needs about 512 MB of the JVM's heap to draw and encode,"
                + " and the JVM's whole heap is"), out);
    }

    /** Asks a JVM of a 64 MB heap for an 8192 × 8192 heatmap; prints the refusal. */
    public static final class Large {
        public static void main(String[] args) throws Exception {
            Heatmap map = new Heatmap("t", "rows", "columns", new String[] {"a"}, new String[] {"b"},
                    new double[][] {{1}}, "v", 0, 1, 10);
            Path file = Files.createTempDirectory("heatmap").resolve("large.png");
            try {
                map.writePng(file, 8192, 8192);
                System.out.println("drawn");
            } catch (IllegalArgumentException e) {
                System.out.println("refused: " + e.getMessage());
            }
        }
    }
}
