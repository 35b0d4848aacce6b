package io.arrakis.model;

import io.arrakis.model.family.Families;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The reference models of {@code shared/fixtures} (beside the repository; {@code -Darrakis.fixtures} overrides).
 * They must be there in CI; elsewhere (e.g. a GPU machine that got only the repository) their tests are skipped.
 */
public final class Fixtures {
    private static final Path HF = Path.of("src/test/resources/fixtures-hf");

    private Fixtures() {
    }

    public static Path dir(String name) {
        return existing(root().resolve(name));
    }

    /** A Hugging Face reference model of {@code shared/fixtures-hf-more}, the folder beside {@code shared/fixtures}. */
    public static Path more(String name) {
        return existing(root().resolveSibling("fixtures-hf-more").resolve(name));
    }

    /**
     * A registered family's Hugging Face reference model: {@code src/test/resources/fixtures-hf/<family>} (every hook of
     * a block), or, for a family without one there, {@code shared/fixtures-hf-more/<model_type>} (each block's
     * {@code hook_resid_pre} and {@code attn.hook_pattern}, {@code ln_final.hook_normalized}, {@code logits}).
     */
    public static Path huggingFace(String family) {
        Path own = HF.resolve(family);
        if (Files.isDirectory(own)) {
            return own;
        }
        String modelType = Families.find(family, "family").modelType();
        Path more = root().resolveSibling("fixtures-hf-more");
        if (Files.isDirectory(more) && !Files.isDirectory(more.resolve(modelType))) {
            fail("the " + family + " family has no Hugging Face fixture: neither " + own + " nor "
                    + more.resolve(modelType));
        }
        return more(modelType);
    }

    /** Whether {@link #huggingFace} found the family's fixture in {@code src/test/resources/fixtures-hf}. */
    public static boolean hasEveryHook(Path fixture) {
        return fixture.startsWith(HF);
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
