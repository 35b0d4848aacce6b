package io.arrakis.sweep;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The executor settings a sweep needs join the user's instead of replacing them. */
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
}
