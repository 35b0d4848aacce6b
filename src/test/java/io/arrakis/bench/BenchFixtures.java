package io.arrakis.bench;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The tiny models of {@code shared/fixtures}, as {@code io.arrakis.model.Fixtures} finds them (skipped outside CI). */
final class BenchFixtures {
    private BenchFixtures() {
    }

    static Path dir(String name) {
        Path dir = Path.of(System.getProperty("arrakis.fixtures", "../shared/fixtures")).resolve(name);
        if (!Files.isDirectory(dir)) {
            if (System.getenv("CI") != null) {
                fail("fixture " + dir.toAbsolutePath() + " is missing; CI must have shared/ beside the repository");
            }
            assumeTrue(false, "skipped: no fixture at " + dir.toAbsolutePath());
        }
        return dir;
    }
}
