package io.arrakis.torch;

import io.arrakis.bindings.arrakis_torch_h;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.SymbolLookup;
import java.net.URL;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Finds, provisions and loads libtorch's shared libraries, once per JVM.
 *
 * <p>By default the CPU libtorch 2.10 carried by the {@code org.bytedeco:pytorch} and {@code org.bytedeco:openblas}
 * jars on the class path is extracted once into a per-user cache ({@code $XDG_CACHE_HOME/arrakis-jvm} or
 * {@code ~/.cache/arrakis-jvm}, overridable with {@code -Darrakis.cache}) and loaded from there. A folder of libtorch
 * shared libraries, such as a PyTorch install's {@code torch/lib} (CUDA builds included), takes precedence when named
 * by the environment variable {@code ARRAKIS_LIBTORCH} or the system property {@code arrakis.libtorch}.
 *
 * <p>Every entry point of this library calls {@link #load()} before touching a binding, so users rarely need to.
 * Before loading, idle OpenMP and OpenBLAS threads are told to sleep ({@code OMP_WAIT_POLICY=PASSIVE},
 * {@code OPENBLAS_THREAD_TIMEOUT=4}, unless set), and
 * {@code -Darrakis.threads=N} / {@code ARRAKIS_THREADS=N} caps the threads one op uses (1 suits many concurrent callers),
 * and glibc is told to return large freed tensors to the system rather than keep them in per-thread arenas
 * ({@code -Darrakis.malloc=default} or {@code ARRAKIS_MALLOC=default} keep glibc's own settings);
 * {@code -Darrakis.packedWeights=off} or {@code ARRAKIS_PACKED_WEIGHTS=off} keeps models' CPU weights unpacked.
 */
public final class LibTorch {

    /** The environment variable naming a folder of libtorch shared libraries. */
    public static final String ENV_FOLDER = "ARRAKIS_LIBTORCH";
    /** The system property naming a folder of libtorch shared libraries; wins over {@link #ENV_FOLDER}. */
    public static final String PROPERTY_FOLDER = "arrakis.libtorch";
    /** System property: threads per op ({@code OMP_NUM_THREADS} and {@code OPENBLAS_NUM_THREADS}), see {@link #load()}. */
    public static final String PROPERTY_THREADS = "arrakis.threads";
    /** Environment variable with the same meaning as {@link #PROPERTY_THREADS}. */
    public static final String ENV_THREADS = "ARRAKIS_THREADS";
    /** System property: {@code bounded} (the default: large freed tensors go back to the system) or {@code default}. */
    public static final String PROPERTY_MALLOC = "arrakis.malloc";
    /** Environment variable with the same meaning as {@link #PROPERTY_MALLOC}. */
    public static final String ENV_MALLOC = "ARRAKIS_MALLOC";
    /**
     * System property: {@code on} (the default: CPU products with a model's weights read copies packed in oneDNN's
     * layout, see {@link LinearWeight}) or {@code off} (no copies: less memory, slower products).
     */
    public static final String PROPERTY_PACKED_WEIGHTS = "arrakis.packedWeights";
    /** Environment variable with the same meaning as {@link #PROPERTY_PACKED_WEIGHTS}. */
    public static final String ENV_PACKED_WEIGHTS = "ARRAKIS_PACKED_WEIGHTS";
    /** System property: the folder the bundled CPU build is extracted into, instead of the per-user cache. */
    public static final String PROPERTY_CACHE = "arrakis.cache";

    /** Libraries of the Maven jars, in dependency order, with the jar resource folder that carries each. */
    private static final List<String[]> MAVEN_LIBRARIES = List.of(
            new String[] {"org/bytedeco/openblas/linux-x86_64/", "libquadmath.so.0"},
            new String[] {"org/bytedeco/openblas/linux-x86_64/", "libgfortran.so.5"},
            new String[] {"org/bytedeco/openblas/linux-x86_64/", "libopenblas.so.0"},
            new String[] {"org/bytedeco/pytorch/linux-x86_64/", "libgomp.so.1"},
            new String[] {"org/bytedeco/pytorch/linux-x86_64/", "libc10.so"},
            new String[] {"org/bytedeco/pytorch/linux-x86_64/", "libtorch_cpu.so"},
            new String[] {"org/bytedeco/pytorch/linux-x86_64/", "libtorch.so"});

    /** Libraries of a PyTorch {@code torch/lib} folder, in dependency order; absent ones are skipped. */
    private static final List<String> FOLDER_LIBRARIES = List.of(
            "libtorch_global_deps.so", "libc10.so", "libc10_cuda.so", "libtorch_cpu.so", "libtorch_cuda.so",
            "libtorch.so");

    /** The extension build version we speak to the dispatcher: the 2.10 stable ABI. */
    static final long EXTENSION_BUILD_VERSION = (2L << 56) | (10L << 48);

    private static volatile Info info;
    /** A failed load after which native libraries stayed in the process: no later attempt may load more. */
    private static LibTorchException failed; // guarded by LibTorch.class
    private static boolean librariesLoaded; // guarded by LibTorch.class
    private static volatile boolean packedWeights = true; // set by load()

    private LibTorch() {
    }

    /**
     * What was loaded.
     *
     * @param version libtorch's release version ("2.10.0"), or "unknown" where the folder does not say
     * @param abiVersion the stable ABI version reported by {@code aoti_torch_abi_version()}, as "major.minor"
     * @param folder where the shared libraries were loaded from
     * @param source "maven" for the bundled CPU build, or the variable or property that named the folder
     * @param cudaBuild whether a CUDA libtorch ({@code libtorch_cuda.so}) was loaded
     * @param nativeHeap what was done to the C heap before loading: glibc's malloc arenas bounded, or why not
     */
    public record Info(String version, String abiVersion, Path folder, String source, boolean cudaBuild,
            String nativeHeap) {
        @Override
        public String toString() {
            return "libtorch " + version + " (stable ABI " + abiVersion + ", " + (cudaBuild ? "CUDA" : "CPU")
                    + " build) from " + folder + " [" + source + "]; native heap: " + nativeHeap;
        }
    }

    /**
     * Loads libtorch if it is not loaded yet, and says what was loaded.
     *
     * @throws LibTorchException when no usable libtorch is found, with what was looked for, where, and the remedy
     */
    public static Info load() {
        Info loaded = info;
        if (loaded != null) {
            return loaded;
        }
        synchronized (LibTorch.class) {
            if (info == null) {
                if (failed != null) {
                    throw new LibTorchException(failed.getMessage() + " (the libraries of that attempt stay loaded in"
                            + " this JVM, which cannot load another libtorch beside them: restart it)", failed);
                }
                try {
                    info = loadOnce();
                } catch (LibTorchException e) {
                    if (librariesLoaded) {
                        failed = e; // another attempt would load a second libtorch over the first's symbols
                    }
                    throw e;
                }
            }
            return info;
        }
    }

    /** Whether CUDA tensors can be made: a CUDA libtorch is loaded and at least one GPU answers. */
    public static boolean cudaAvailable() {
        return cudaDeviceCount() > 0;
    }

    /**
     * The libtorch operator calls the current thread has made so far: every call that runs an ATen operator (through
     * the dispatcher or a typed shim) or makes, copies or reads out a tensor; not metadata queries or handle
     * bookkeeping, and not the views {@link Tensor} makes itself, without the dispatcher (a new handle with its own
     * sizes, strides or dtype over the same memory). The difference around a piece of code is the number of launches it issued; on a GPU each is at
     * least one kernel launch or allocation from the host.
     */
    public static long opCalls() {
        return Native.opCalls();
    }

    /**
     * Whether float32 products with a model's weights on the CPU ({@link LinearWeight}) run oneDNN's inner product on
     * packed copies of the weights (where their shapes allow), on libtorch's OpenMP threads: a libtorch with oneDNN (as
     * the bundled one is) on a CPU with AVX2, packed weights on; elsewhere, and for every other float32 product,
     * libtorch's BLAS.
     */
    public static boolean oneDnnFloat32Weights() {
        return OneDnnLinear.float32() && packedWeights();
    }

    /**
     * Whether CPU products with a model's weights ({@link LinearWeight}) may read copies packed in oneDNN's layout:
     * on unless {@code -Darrakis.packedWeights=off} or {@code ARRAKIS_PACKED_WEIGHTS=off}.
     */
    public static boolean packedWeights() {
        load();
        return packedWeights;
    }

    /**
     * Whether bfloat16 products with a model's weights on the CPU ({@link LinearWeight}) run oneDNN's inner product
     * on packed copies of the weights: a libtorch with oneDNN on a CPU with AVX-512, packed weights on; elsewhere they
     * take libtorch's linear.
     */
    public static boolean oneDnnBfloat16Weights() {
        return OneDnnLinear.bfloat16() && packedWeights();
    }

    /**
     * Whether two-operand float32 and float64 einsums and batched matrix products on the CPU run as one batched product
     * of the bundled OpenBLAS (large enough products in layouts BLAS reads in place), rather than libtorch's own.
     */
    public static boolean batchedEinsum() {
        return OpenBlasBatch.available();
    }

    /** The number of CUDA devices libtorch can use (0 with a CPU build). */
    public static int cudaDeviceCount() {
        return Cuda.deviceCount();
    }

    private static Info loadOnce() {
        NativeHeap.Outcome heap = NativeHeap.configure();
        preferSleepingIdleThreads();
        applyThreadCount();
        packedWeights = packedWeightsSetting(System.getProperty(PROPERTY_PACKED_WEIGHTS), System.getenv(ENV_PACKED_WEIGHTS));
        Setting folder = Setting.of(PROPERTY_FOLDER, System.getProperty(PROPERTY_FOLDER), ENV_FOLDER,
                System.getenv(ENV_FOLDER));
        Info loaded = folder.value() == null ? loadMaven(heap)
                : loadFolder(folderPath(folder.value(), folder.source()), folder.source(), heap);
        Cuda.initialise(loaded.cudaBuild());
        return loaded;
    }

    private static Path folderPath(String text, String source) {
        try {
            return Path.of(text);
        } catch (java.nio.file.InvalidPathException e) {
            throw new LibTorchException(source + " = '" + text + "' is not a path here (" + e.getReason() + "; the JVM"
                    + " reads paths in the locale's charset, here " + System.getProperty("sun.jnu.encoding")
                    + "): run under a UTF-8 locale, or name a folder whose path is ASCII", e);
        }
    }

    /** A setting's value and where it came from: the property when set and not blank (it wins), else the variable. */
    record Setting(String value, String source) {
        static Setting of(String property, String propertyValue, String variable, String variableValue) {
            return propertyValue != null && !propertyValue.isBlank() ? new Setting(propertyValue, "-D" + property)
                    : new Setting(variableValue == null || variableValue.isBlank() ? null : variableValue, "$" + variable);
        }
    }

    /**
     * {@code -Darrakis.packedWeights} (wins) or {@code ARRAKIS_PACKED_WEIGHTS}: {@code on} (the default) or
     * {@code off}; any other value is refused.
     */
    static boolean packedWeightsSetting(String property, String env) {
        Setting setting = Setting.of(PROPERTY_PACKED_WEIGHTS, property, ENV_PACKED_WEIGHTS, env);
        if (setting.value() == null) {
            return true;
        }
        return switch (setting.value().trim()) {
            case "on" -> true;
            case "off" -> false;
            default -> throw new LibTorchException(setting.source() + " must be 'on' or 'off', got '" + setting.value()
                    + "'");
        };
    }

    /**
     * libtorch's OpenMP threads, and OpenBLAS's own pool beside them, spin between parallel regions by default. Inside
     * a JVM that also runs Java threads, and on machines with few cores, the spinning steals the cores the next op
     * needs, and OpenBLAS's spinning threads those of the oneDNN products that follow a BLAS one. Unless the user
     * chose, both are told to let idle threads sleep (OpenBLAS's timeout is 2^n cycles, n = 4 its least); each
     * library reads this when it is loaded, so it must happen first.
     */
    private static void preferSleepingIdleThreads() {
        setUnlessSet("OMP_WAIT_POLICY", "PASSIVE");
        if (System.getenv("GOTO_THREAD_TIMEOUT") == null) {
            setUnlessSet("OPENBLAS_THREAD_TIMEOUT", "4");
        }
    }

    private static void setUnlessSet(String variable, String value) {
        if (System.getenv(variable) == null) {
            try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
                arrakis_torch_h.setenv(arena.allocateFrom(variable), arena.allocateFrom(value), 0);
            }
        }
    }

    /**
     * {@code -Darrakis.threads=N} or {@code ARRAKIS_THREADS=N}: how many threads one op may use (libtorch's OpenMP
     * pool and OpenBLAS's), set as {@code OMP_NUM_THREADS} and {@code OPENBLAS_NUM_THREADS} before they load. The
     * default, libtorch's (one per core it finds), suits one caller; a service running small forward passes on many
     * Java threads at once gets more throughput from 1, since every caller would otherwise start a pool as large as
     * the machine.
     */
    private static void applyThreadCount() {
        int threads = threadCount(Setting.of(PROPERTY_THREADS, System.getProperty(PROPERTY_THREADS), ENV_THREADS,
                System.getenv(ENV_THREADS)), Runtime.getRuntime().availableProcessors());
        if (threads == 0) {
            return;
        }
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            for (String variable : new String[] {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"}) {
                arrakis_torch_h.setenv(arena.allocateFrom(variable), arena.allocateFrom(Integer.toString(threads)), 1);
            }
        }
    }

    /**
     * The thread count a setting asks for, 0 where it asks for none; refused unless a whole number from 1 to
     * {@code max(64, 4 cores)} (every thread of a pool takes its own buffers: thousands exhaust the memory).
     */
    static int threadCount(Setting setting, int cores) {
        if (setting.value() == null) {
            return 0;
        }
        int most = Math.max(64, 4 * cores);
        int threads;
        try {
            threads = Integer.parseInt(setting.value().trim());
        } catch (NumberFormatException e) {
            threads = 0;
        }
        if (threads < 1 || threads > most) {
            throw new LibTorchException(setting.source() + " must be a number of threads from 1 to " + most + " (4 per"
                    + " core, at least 64), got '" + setting.value() + "'");
        }
        return threads;
    }

    private static Info loadFolder(Path folder, String source, NativeHeap.Outcome heap) {
        if (!Files.isDirectory(folder)) {
            throw new LibTorchException("libtorch folder " + folder + " (named by " + source
                    + ") does not exist or is not a directory. Point it at a folder holding libtorch_cpu.so,"
                    + " e.g. the torch/lib folder of a PyTorch >= 2.10 install, or unset it to use the bundled CPU build.");
        }
        if (!Files.isRegularFile(folder.resolve("libtorch_cpu.so"))) {
            throw new LibTorchException("no libtorch_cpu.so in " + folder + " (named by " + source
                    + "). Point it at the torch/lib folder of a PyTorch >= 2.10 install.");
        }
        for (String name : FOLDER_LIBRARIES) {
            Path library = folder.resolve(name);
            if (Files.isRegularFile(library)) {
                loadLibrary(library);
            }
        }
        boolean cuda = Files.isRegularFile(folder.resolve("libtorch_cuda.so"));
        return verify(folder, source, folderVersion(folder), cuda, heap);
    }

    private static Info loadMaven(NativeHeap.Outcome heap) {
        String version = mavenVersion();
        Path folder = cacheRoot().resolve("libtorch-" + version + "-linux-x86_64");
        List<Resource> resources = new ArrayList<>();
        for (String[] entry : MAVEN_LIBRARIES) {
            URL url = LibTorch.class.getClassLoader().getResource(entry[0] + entry[1]);
            if (url == null) {
                throw new LibTorchException("libtorch not found: the class path has no " + entry[0] + entry[1]
                        + " (from org.bytedeco:pytorch:2.10.0-1.5.13:linux-x86_64 and"
                        + " org.bytedeco:openblas:0.3.31-1.5.13:linux-x86_64). Add those jars, or set " + ENV_FOLDER
                        + " to a folder of libtorch >= 2.10 shared libraries (e.g. a PyTorch install's torch/lib).");
            }
            resources.add(new Resource(entry[1], url));
        }
        ExtractedCache.ensure(folder, resources);
        for (Resource resource : resources) {
            loadLibrary(folder.resolve(resource.name()));
        }
        return verify(folder, "maven", version.replaceFirst("-.*", ""), false, heap);
    }

    private static void loadLibrary(Path library) {
        librariesLoaded = true; // a failed System.load may still leave the libraries it needed loaded
        try {
            System.load(library.toAbsolutePath().toString());
        } catch (UnsatisfiedLinkError e) {
            throw new LibTorchException("could not load " + library + ": " + e.getMessage(), e);
        }
    }

    private static Info verify(Path folder, String source, String version, boolean cuda, NativeHeap.Outcome heap) {
        if (SymbolLookup.loaderLookup().find("torch_call_dispatcher").isEmpty()) {
            throw new LibTorchException("the libtorch in " + folder + " [" + source + "] has no torch_call_dispatcher:"
                    + " it is older than 2.10 (found version " + version + "). arrakis-jvm needs libtorch >= 2.10;"
                    + " point " + ENV_FOLDER + " at a newer PyTorch's torch/lib, or unset it to use the bundled CPU build.");
        }
        long abi = arrakis_torch_h.aoti_torch_abi_version();
        String abiVersion = ((abi >>> 56) & 0xff) + "." + ((abi >>> 48) & 0xff);
        return new Info(version, abiVersion, folder, source, cuda, heap.reason());
    }

    /** The version of the bundled jar, read from its Maven metadata. */
    private static String mavenVersion() {
        try (InputStream in = LibTorch.class.getClassLoader()
                .getResourceAsStream("META-INF/maven/org.bytedeco/pytorch/pom.properties")) {
            if (in == null) {
                return "2.10.0-1.5.13";
            }
            Properties properties = new Properties();
            properties.load(in);
            return properties.getProperty("version", "2.10.0-1.5.13");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A PyTorch install keeps its version in torch/version.py beside torch/lib. */
    private static String folderVersion(Path folder) {
        Path versionFile = folder.toAbsolutePath().getParent().resolve("version.py");
        try {
            if (Files.isRegularFile(versionFile)) {
                Matcher m = Pattern.compile("__version__\\s*=\\s*['\"]([^'\"]+)['\"]").matcher(Files.readString(versionFile));
                if (m.find()) {
                    return m.group(1);
                }
            }
        } catch (IOException ignored) {
            // the version is informative only
        }
        return "unknown";
    }

    private static Path cacheRoot() {
        String configured = System.getProperty(PROPERTY_CACHE);
        if (configured != null && !configured.isBlank()) {
            return Path.of(configured);
        }
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return base.resolve("arrakis-jvm");
    }

    record Resource(String name, URL url) {
        long size() {
            try {
                return url.openConnection().getContentLengthLong();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    /**
     * The per-user cache of extracted libraries: a folder that is complete (every file present with its jar entry's
     * size) or absent. Extraction happens under an inter-process file lock into a temporary folder that is then
     * renamed into place, so two JVMs starting at once neither clash nor see a half-written library.
     */
    static final class ExtractedCache {
        private ExtractedCache() {
        }

        static void ensure(Path folder, List<Resource> resources) {
            try {
                if (complete(folder, resources)) {
                    return;
                }
                Files.createDirectories(folder.getParent());
                Path lockFile = folder.resolveSibling(folder.getFileName() + ".lock");
                try (FileChannel channel = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                     FileLock ignored = channel.lock()) {
                    if (complete(folder, resources)) {
                        return; // another process finished while we waited
                    }
                    deleteTree(folder);
                    Path staging = Files.createTempDirectory(folder.getParent(), folder.getFileName() + ".tmp");
                    try {
                        for (Resource resource : resources) {
                            try (InputStream in = resource.url().openStream()) {
                                Files.copy(in, staging.resolve(resource.name()), StandardCopyOption.REPLACE_EXISTING);
                            }
                        }
                        Files.move(staging, folder, StandardCopyOption.ATOMIC_MOVE);
                    } finally {
                        deleteTree(staging);
                    }
                }
                if (!complete(folder, resources)) {
                    throw new LibTorchException("extracting libtorch into " + folder + " did not produce the expected files");
                }
            } catch (IOException e) {
                throw new LibTorchException("could not extract libtorch into " + folder + ": " + e
                        + ". Set -Darrakis.cache to a writable folder, or " + ENV_FOLDER + " to an existing libtorch.", e);
            }
        }

        static boolean complete(Path folder, List<Resource> resources) throws IOException {
            for (Resource resource : resources) {
                Path file = folder.resolve(resource.name());
                if (!Files.isRegularFile(file) || Files.size(file) != resource.size()) {
                    return false;
                }
            }
            return true;
        }

        private static void deleteTree(Path path) throws IOException {
            if (!Files.exists(path)) {
                return;
            }
            try (Stream<Path> walk = Files.walk(path)) {
                for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }
}
