package io.arrakis.model;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The reference models of {@code shared/fixtures} (beside the repository; {@code -Darrakis.fixtures} overrides).
 * They must be there in CI; elsewhere (e.g. a GPU machine that got only the repository) their tests are skipped.
 */
public final class Fixtures {
    private Fixtures() {
    }

    public static Path dir(String name) {
        return existing(root().resolve(name));
    }

    /**
     * A family's fixture in {@code shared/fixtures-hf-more} by its model_type ({@code -Darrakis.fixturesHfMore}
     * overrides the folder).
     */
    public static Path moreHf(String modelType) {
        return existing(Path.of(System.getProperty("arrakis.fixturesHfMore", "../shared/fixtures-hf-more"))
                .resolve(modelType));
    }

    private static Path root() {
        return Path.of(System.getProperty("arrakis.fixtures", "../shared/fixtures"));
    }

    private static Path existing(Path dir) {
        if (!Files.isDirectory(dir)) {
            if (System.getenv("CI") != null) {
                fail("fixture " + dir.toAbsolutePath() + " is missing; CI must have shared/ beside the repository");
            }
            assumeTrue(false, "skipped: no fixture at " + dir.toAbsolutePath());
        }
        return dir;
    }
}
