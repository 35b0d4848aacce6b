package io.arrakis.sweep;

import io.arrakis.testing.ChildJvm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The executor settings a sweep needs join the user's instead of replacing them; what a stopped sweep leaves. */
class SweepsTest {
    private static final String KEY = "spark.executor.extraJavaOptions";

    /** Was: a user's {@code --conf spark.executor.extraJavaOptions=-Xss16m} was replaced without a word. */
    @Test
    void theUsersExecutorOptionsAreKeptAndOursAdded() {
        String ours = "--enable-native-access=ALL-UNNAMED";
        assertEquals(ours, Sweeps.withUsers(KEY, Map.of(), ours, " "));
        assertEquals("-Xss16m " + ours, Sweeps.withUsers(KEY, Map.of(KEY, "-Xss16m"), ours, " "));
        String before = System.getProperty(KEY);
        System.setProperty(KEY, "-Xmx3g"); // as spark-submit passes --conf to the driver
        try {
            assertEquals("-Xmx3g " + ours, Sweeps.withUsers(KEY, Map.of(), ours, " "));
            assertEquals("-Xss16m " + ours, Sweeps.withUsers(KEY, Map.of(KEY, "-Xss16m"), ours, " "), "extra wins");
        } finally {
            if (before == null) {
                System.clearProperty(KEY);
            } else {
                System.setProperty(KEY, before);
            }
        }
        assertEquals("a.jar:" + "b.jar", Sweeps.withUsers("spark.executor.extraClassPath",
                Map.of("spark.executor.extraClassPath", "a.jar"), "b.jar", ":"));
    }

    /** Was: a sweep stopped by SIGTERM or Ctrl-C while writing left its hidden {@code .<out>.tmp-<uuid>} folder. */
    @Test
    void aSweepStoppedByASignalWhileWritingLeavesNothingBehind(@TempDir Path dir) throws Exception {
        Path out = Files.createDirectory(dir.resolve("out"));
        Path blocked = dir.resolve("blocked");
        ChildJvm.Running child = ChildJvm.of(BlockedWrite.class, out.resolve("stopped.csv").toString(),
                blocked.toString()).start();
        long deadline = System.nanoTime() + 90_000_000_000L;
        while (!Files.exists(blocked)) {
            assertTrue(System.nanoTime() < deadline, "the child's task never began");
            Thread.sleep(50);
        }
        List<String> writing = entries(out);
        assertTrue(writing.size() == 1 && writing.getFirst().startsWith(".stopped.csv.tmp-"), writing.toString());
        child.terminate();
        assertEquals(List.of(), entries(out));
    }

    /** Was: every sweep began with Hadoop's warning that its native library is missing, which nothing needs. */
    @Test
    void quietLogsLeaveOutHadoopsMissingNativeLibrary() {
        assertEquals("hadoop's classes loaded\n", ChildJvm.of(HadoopAfterQuietLogs.class).run());
    }

    /** A child JVM that loads Hadoop's native code loader (which warns where its library is missing) after quietLogs. */
    public static final class HadoopAfterQuietLogs {
        public static void main(String[] args) throws ClassNotFoundException {
            Sweeps.quietLogs();
            Class.forName(Sweeps.HADOOP_NATIVE_CODE_LOADER);
            System.out.println("hadoop's classes loaded");
        }
    }

    private static List<String> entries(Path dir) throws java.io.IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(p -> p.getFileName().toString()).toList();
        }
    }
}
