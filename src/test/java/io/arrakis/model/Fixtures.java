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
        return existing(Path.of(System.getProperty("arrakis.fixtures", "../shared/fixtures")).resolve(name));
    }

    /**
     * A model of {@code shared/fixtures-hf-more}: one Hugging Face family made by {@code transformers} 5.17, with its
     * reference activations ({@code -Darrakis.fixtures.hfMore} overrides the folder).
     */
    public static Path hfMore(String name) {
        return existing(Path.of(System.getProperty("arrakis.fixtures.hfMore", "../shared/fixtures-hf-more")).resolve(name));
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
