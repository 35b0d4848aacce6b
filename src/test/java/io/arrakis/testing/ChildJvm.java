package io.arrakis.testing;

import io.arrakis.torch.LibTorch;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * A fresh JVM started by a test, for what must not run in the test JVM: a possible crash, a first call of the
 * process, another process writing the same files.
 *
 * <p>The child runs this JVM's {@code java} with this class path, native access and a heap cap, and loads the same
 * libtorch: the test JVM's {@code -Darrakis.libtorch}, {@code -Darrakis.threads}, {@code -Darrakis.cache} and
 * {@code -Darrakis.malloc} are passed on, and the environment ({@code ARRAKIS_LIBTORCH}, {@code ARRAKIS_THREADS}) is inherited. A test that needs
 * another libtorch says so with {@link #property} or {@link #withBundledLibTorch}; without that, a run against a
 * PyTorch's {@code torch/lib} would send its children to the Maven jars, which such a run need not have.
 */
public final class ChildJvm {
    /** How long a child may run before it is killed and the test fails. */
    private static final Duration TIMEOUT = Duration.ofMinutes(2);
    /** Children do small work; a cap keeps several of them at once from claiming a quarter of the machine each. */
    private static final String MAX_HEAP = "-Xmx512m";
    /** The test JVM's system properties that choose libtorch and how it runs, passed on to every child. */
    private static final List<String> LIBTORCH_PROPERTIES = List.of(LibTorch.PROPERTY_FOLDER, LibTorch.PROPERTY_THREADS,
            LibTorch.PROPERTY_CACHE, LibTorch.PROPERTY_MALLOC);
    private static final int OUTPUT_TAIL = 8000;
    /** The exit status of a JVM that died of a fatal error (SIGABRT after writing its hs_err file). */
    private static final int JVM_CRASH = 134;
    /** The exit status of a JVM stopped by SIGTERM after its shutdown hooks ran. */
    private static final int SIGTERM_EXIT = 143;

    private final String java;
    private final String classPath;
    private final Map<String, String> properties = new LinkedHashMap<>();
    private final Map<String, String> environment;
    private final List<String> jvmOptions = new ArrayList<>();
    private final List<String> mainAndArguments = new ArrayList<>();
    private Path directory;

    private ChildJvm(Map<String, String> parentProperties, Map<String, String> parentEnvironment, String mainClass,
            List<String> arguments) {
        java = Path.of(parentProperties.get("java.home"), "bin", "java").toString();
        classPath = absolute(parentProperties.get("java.class.path"), Path.of(parentProperties.get("user.dir")));
        for (String key : LIBTORCH_PROPERTIES) {
            if (parentProperties.containsKey(key)) {
                properties.put(key, parentProperties.get(key));
            }
        }
        environment = new HashMap<>(parentEnvironment);
        mainAndArguments.add(mainClass);
        mainAndArguments.addAll(arguments);
    }

    /** The class path with relative entries resolved, so that it holds in another working directory too. */
    private static String absolute(String classPath, Path workingDirectory) {
        return Arrays.stream(classPath.split(File.pathSeparator)).map(entry -> workingDirectory.resolve(entry).toString())
                .collect(Collectors.joining(File.pathSeparator));
    }

    /** A child of this JVM that runs {@code mainClass} with {@code arguments}. */
    public static ChildJvm of(Class<?> mainClass, String... arguments) {
        Map<String, String> properties = new HashMap<>();
        for (String key : System.getProperties().stringPropertyNames()) {
            properties.put(key, System.getProperty(key));
        }
        return of(properties, System.getenv(), mainClass.getName(), arguments);
    }

    /** A child of a JVM with these system properties and this environment, for testing the command itself. */
    static ChildJvm of(Map<String, String> parentProperties, Map<String, String> parentEnvironment, String mainClass,
            String... arguments) {
        return new ChildJvm(parentProperties, parentEnvironment, mainClass, List.of(arguments));
    }

    /** Sets system property {@code key} of the child, replacing the value passed on from this JVM. */
    public ChildJvm property(String key, String value) {
        properties.put(key, value);
        return this;
    }

    /** Sets environment variable {@code key} of the child, replacing the value inherited from this JVM. */
    public ChildJvm environment(String key, String value) {
        environment.put(key, value);
        return this;
    }

    /**
     * The child loads the CPU libtorch bundled in the Maven jars: this JVM's libtorch folder
     * ({@code -Darrakis.libtorch}, {@code ARRAKIS_LIBTORCH}) is not passed on.
     */
    public ChildJvm withBundledLibTorch() {
        properties.remove(LibTorch.PROPERTY_FOLDER);
        environment.remove(LibTorch.ENV_FOLDER);
        return this;
    }

    /** Adds a JVM option such as {@code -XX:ErrorFile=...}; system properties go through {@link #property}. */
    public ChildJvm jvmOption(String option) {
        jvmOptions.add(option);
        return this;
    }

    /** The child's working directory, where a crashing JVM leaves its files (this JVM's when not set). */
    public ChildJvm directory(Path folder) {
        directory = folder;
        return this;
    }

    /** The command line the child is started with. */
    public List<String> command() {
        List<String> command = new ArrayList<>();
        command.add(java);
        command.add("--enable-native-access=ALL-UNNAMED");
        command.add(MAX_HEAP);
        command.addAll(jvmOptions);
        properties.forEach((key, value) -> command.add("-D" + key + "=" + value));
        command.add("-cp");
        command.add(classPath);
        command.addAll(mainAndArguments);
        return command;
    }

    /** The child's environment variables. */
    public Map<String, String> environment() {
        return Map.copyOf(environment);
    }

    /** Starts the child; its output (standard output and error together) is kept for {@link Running#finish}. */
    public Running start() {
        try {
            Path output = Files.createTempFile("arrakis-child", ".out");
            ProcessBuilder builder = new ProcessBuilder(command()).redirectErrorStream(true)
                    .redirectOutput(output.toFile());
            builder.environment().clear();
            builder.environment().putAll(environment);
            if (directory != null) {
                builder.directory(directory.toFile());
            }
            return new Running(builder.start(), output, String.join(" ", mainAndArguments));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Runs the child to its end and returns its output; fails unless it exits with 0 within {@link #TIMEOUT}. */
    public String run() {
        return start().finish();
    }

    /** A started child. */
    public static final class Running {
        private final Process process;
        private final Path output;
        private final String description;

        private Running(Process process, Path output, String description) {
            this.process = process;
            this.output = output;
            this.description = description;
        }

        /** Waits for the child and returns its output; fails unless it exits with 0 within {@link #TIMEOUT}. */
        public String finish() {
            return finish(0);
        }

        /**
         * Waits for the child and returns its output; fails, with that output, unless it exits with
         * {@code expectedExit} within {@link #TIMEOUT}.
         */
        public String finish(int expectedExit) {
            return finish(expectedExit, TIMEOUT);
        }

        /** Stops the child with SIGTERM, as a terminal's kill does, and returns its output once it has exited. */
        public String terminate() {
            process.destroy();
            return finish(SIGTERM_EXIT);
        }

        String finish(int expectedExit, Duration timeout) {
            try {
                boolean exited = process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
                if (!exited) {
                    process.destroyForcibly().waitFor();
                }
                String out = Files.readString(output, StandardCharsets.UTF_8);
                if (!exited) {
                    fail("child JVM " + description + " did not finish within " + timeout.toSeconds() + " s; its output:\n"
                            + tail(out));
                }
                int exit = process.exitValue();
                if (exit != expectedExit) {
                    fail("child JVM " + description + " exited with " + exit + (exit == JVM_CRASH ? " (a JVM crash)" : "")
                            + ", expected " + expectedExit + "; its output:\n" + tail(out));
                }
                return out;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } catch (InterruptedException e) {
                process.destroyForcibly();
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted while waiting for child JVM " + description, e);
            } finally {
                try {
                    Files.deleteIfExists(output);
                } catch (IOException ignored) {
                    // a temporary file; the failure, if any, matters more
                }
            }
        }

        private static String tail(String out) {
            return out.length() > OUTPUT_TAIL ? "..." + out.substring(out.length() - OUTPUT_TAIL) : out;
        }
    }
}
