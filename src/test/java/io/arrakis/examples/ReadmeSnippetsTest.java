package io.arrakis.examples;

import io.arrakis.model.HookedAutoConfig;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The README's Java snippets for the residual stream, the composer and the bench are compiled code: every line of them
 * (but "...") is a line of the example sources the build compiles and the tests run; its list of model families is the
 * registry's.
 */
class ReadmeSnippetsTest {
    private static final List<Path> SOURCES = List.of(
            Path.of("src/cli/java/io/arrakis/examples/SeedExample.java"),
            Path.of("src/test/java/io/arrakis/examples/ReadmeComposerExampleTest.java"),
            Path.of("src/test/java/io/arrakis/examples/ReadmeBenchExampleTest.java"),
            Path.of("src/test/java/io/arrakis/examples/ReadmeResidualStreamExampleTest.java"));

    @Test
    void residualStreamComposerAndBenchSnippetsAreLinesOfTestedSources() throws IOException {
        String readme = Files.readString(Path.of("README.md"));
        String sections = readme.substring(readme.indexOf("### The residual stream"), readme.indexOf("### Text in"))
                + readme.substring(readme.indexOf("### The composer"), readme.indexOf("### Choosing libtorch"));
        List<String> known = new ArrayList<>();
        for (Path source : SOURCES) {
            Files.readAllLines(source).forEach(line -> known.add(normalise(line)));
        }
        Matcher block = Pattern.compile("```java\n(.*?)```", Pattern.DOTALL).matcher(sections);
        int blocks = 0;
        while (block.find()) {
            blocks++;
            for (String line : block.group(1).split("\n")) {
                String l = normalise(line);
                if (l.isEmpty() || l.equals("...")) {
                    continue;
                }
                assertTrue(known.contains(l), "README line not found in the example sources: " + line.strip());
            }
        }
        assertTrue(blocks >= 3, "found " + blocks + " snippets");
    }

    @Test
    void theReadmeNamesEverySupportedFamily() throws IOException {
        String readme = Files.readString(Path.of("README.md"));
        String families = readme.substring(readme.indexOf("`HookedAutoConfig.supportedFamilies()`:"));
        families = families.substring(0, families.indexOf(");"));
        for (String family : HookedAutoConfig.supportedFamilies()) {
            assertTrue(families.contains("`" + family + "`"), "the README's list of families lacks " + family);
        }
    }

    private static String normalise(String line) {
        return line.strip().replaceAll("\\s+", " ");
    }
}
