package io.arrakis;

import org.junit.jupiter.api.Test;

import java.lang.module.ModuleDescriptor;
import java.lang.module.ModuleFinder;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The library's module descriptor, read from the built classes: every API package exported, the bindings not. */
class ModuleBoundaryTest {
    private static ModuleDescriptor descriptor() throws URISyntaxException {
        Path classes = Path.of(Version.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        return ModuleFinder.of(classes).find("io.arrakis").orElseThrow(() -> new AssertionError(
                "no module io.arrakis in " + classes)).descriptor();
    }

    @Test
    void theBindingsStayInsideAndEveryOtherPackageIsExported() throws URISyntaxException {
        ModuleDescriptor module = descriptor();
        Set<String> exported = module.exports().stream().filter(e -> !e.isQualified()).map(ModuleDescriptor.Exports::source)
                .collect(Collectors.toCollection(TreeSet::new));
        assertTrue(module.packages().contains("io.arrakis.bindings"), "the bindings are part of the module");
        assertFalse(exported.contains("io.arrakis.bindings"), "the generated bindings must not be exported");
        Set<String> api = new TreeSet<>(module.packages());
        api.remove("io.arrakis.bindings");
        assertEquals(api, exported, "every other package is the library's API");
    }

    @Test
    void nothingIsOpenAndTheCommandLineIsNotPartOfTheLibrary() throws URISyntaxException {
        ModuleDescriptor module = descriptor();
        assertFalse(module.isOpen());
        assertEquals(Set.of(), module.opens());
        assertFalse(module.packages().contains("io.arrakis.cli"), "the command line ships in its own jar");
        assertFalse(module.packages().contains("io.arrakis.examples"), "the examples ship with the command line");
        assertTrue(module.requires().stream().noneMatch(r -> r.name().equals("info.picocli")),
                "the library does not need picocli");
    }
}
