package io.arrakis.testing;

import io.arrakis.torch.LibTorch;
import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ChildJvmTest {
    private static final Map<String, String> SELECTING_PARENT = Map.of(
            "java.home", "/opt/jdk",
            "java.class.path", "classes:/app/lib/a.jar",
            "user.dir", "/work",
            "arrakis.fixtures", "/fixtures",
            "arrakis.libtorch", "/venv/torch/lib",
            "arrakis.threads", "3",
            "arrakis.cache", "/scratch/cache");
    private static final Map<String, String> SELECTING_ENVIRONMENT = Map.of(
            "PATH", "/usr/bin",
            "ARRAKIS_LIBTORCH", "/env/torch/lib",
            "ARRAKIS_THREADS", "5");

    @Test
    void theCommandCarriesTheParentsLibtorchSelection() {
        ChildJvm child = ChildJvm.of(SELECTING_PARENT, SELECTING_ENVIRONMENT, "some.Main", "x", "y z");
        assertEquals(List.of("/opt/jdk/bin/java", "--enable-native-access=ALL-UNNAMED", "-Xmx512m",
                "-Darrakis.libtorch=/venv/torch/lib", "-Darrakis.threads=3", "-Darrakis.cache=/scratch/cache",
                "-cp", "/work/classes:/app/lib/a.jar", "some.Main", "x", "y z"), child.command(),
                "relative class path entries resolved against the parent's working directory");
        assertEquals(SELECTING_ENVIRONMENT, child.environment());
    }

    @Test
    void aParentWithoutSelectionPassesNoneOn() {
        Map<String, String> environment = Map.of("PATH", "/usr/bin");
        ChildJvm child = ChildJvm.of(Map.of("java.home", "/opt/jdk", "java.class.path", "/app/classes", "user.dir", "/work"),
                environment, "some.Main");
        assertEquals(List.of("/opt/jdk/bin/java", "--enable-native-access=ALL-UNNAMED", "-Xmx512m", "-cp",
                "/app/classes", "some.Main"), child.command());
        assertEquals(environment, child.environment());
    }

    @Test
    void aPropertyOfTheTestReplacesTheParentsValue() {
        List<String> command = ChildJvm.of(SELECTING_PARENT, SELECTING_ENVIRONMENT, "some.Main")
                .property(LibTorch.PROPERTY_THREADS, "1").property("other", "v").jvmOption("-XX:ErrorFile=/tmp/hs_err")
                .command();
        assertEquals(1, command.stream().filter(a -> a.startsWith("-Darrakis.threads=")).count(), command::toString);
        assertTrue(command.contains("-Darrakis.threads=1") && command.contains("-Dother=v"), command::toString);
        assertTrue(command.contains("-Darrakis.libtorch=/venv/torch/lib"), "the folder stays: " + command);
        int classPath = command.indexOf("-cp");
        assertTrue(command.indexOf("-XX:ErrorFile=/tmp/hs_err") < classPath && command.indexOf("-Dother=v") < classPath,
                "JVM options before the main class: " + command);
    }

    @Test
    void theBundledLibtorchDropsOnlyTheFolder() {
        ChildJvm child = ChildJvm.of(SELECTING_PARENT, SELECTING_ENVIRONMENT, "some.Main").withBundledLibTorch();
        List<String> command = child.command();
        assertFalse(command.stream().anyMatch(a -> a.startsWith("-Darrakis.libtorch")), command::toString);
        assertTrue(command.contains("-Darrakis.threads=3") && command.contains("-Darrakis.cache=/scratch/cache"),
                command::toString);
        assertEquals(Map.of("PATH", "/usr/bin", "ARRAKIS_THREADS", "5"), child.environment());
    }

    @Test
    void aChildLoadsTheLibtorchOfItsParent() {
        String out = ChildJvm.of(SelectionProbe.class).run();
        assertTrue(out.lines().anyMatch(SelectionProbe.selection()::equals),
                "parent: " + SelectionProbe.selection() + "\nchild:\n" + out);
    }

    @Test
    void aSelectionByPropertyReachesTheChildsOwnChildren() {
        String folder = LibTorch.load().folder().toString();
        String out = ChildJvm.of(SelectionProbe.class, "and-its-child").property(LibTorch.PROPERTY_FOLDER, folder)
                .property(LibTorch.PROPERTY_THREADS, "2").run();
        String child = out.lines().filter(l -> l.startsWith("SELECTION ")).findFirst().orElseThrow(() ->
                new AssertionFailedError("no SELECTION line:\n" + out));
        assertTrue(child.contains(" from " + folder + " [-D" + LibTorch.PROPERTY_FOLDER + "]")
                && child.contains(" threads=2 "), child);
        assertTrue(out.lines().anyMatch(("GRANDCHILD " + child)::equals), out);
    }

    @Test
    void anExitOtherThanTheExpectedFailsWithTheChildsOutput() {
        AssertionFailedError e = assertThrows(AssertionFailedError.class, () -> ChildJvm.of(Exit.class, "7").run());
        assertTrue(e.getMessage().contains("exited with 7, expected 0") && e.getMessage().contains("exiting with 7"),
                e.getMessage());
        assertTrue(ChildJvm.of(Exit.class, "7").start().finish(7).contains("exiting with 7"));
    }

    @Test
    void aChildPastTheTimeoutIsKilledAndFails() {
        ChildJvm.Running running = ChildJvm.of(Exit.class, "hang").start();
        AssertionFailedError e = assertThrows(AssertionFailedError.class, () -> running.finish(0, Duration.ofSeconds(2)));
        assertTrue(e.getMessage().contains("did not finish within 2 s") && e.getMessage().contains("hanging"),
                e.getMessage());
    }

    /** Prints the libtorch it loaded and what chose it; with an argument, also what a child of its own printed. */
    public static final class SelectionProbe {
        static String selection() {
            return "SELECTION " + LibTorch.load() + " threads=" + System.getProperty(LibTorch.PROPERTY_THREADS) + " $"
                    + LibTorch.ENV_FOLDER + "=" + System.getenv(LibTorch.ENV_FOLDER) + " $" + LibTorch.ENV_THREADS + "="
                    + System.getenv(LibTorch.ENV_THREADS);
        }

        public static void main(String[] args) {
            System.out.println(selection());
            if (args.length > 0) {
                ChildJvm.of(SelectionProbe.class).run().lines().filter(l -> l.startsWith("SELECTION "))
                        .forEach(l -> System.out.println("GRANDCHILD " + l));
            }
        }
    }

    /** Exits with the status given, or prints and waits for ever. */
    public static final class Exit {
        public static void main(String[] args) throws InterruptedException {
            if (args[0].equals("hang")) {
                System.out.println("hanging");
                Thread.sleep(Long.MAX_VALUE);
            }
            System.out.println("exiting with " + args[0]);
            System.exit(Integer.parseInt(args[0]));
        }
    }
}
