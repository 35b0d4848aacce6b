package io.arrakis.torch;

import io.arrakis.testing.ChildJvm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class LibTorchTest {

    /**
     * A failed call's message describes its tensors, lists of tensors included, by dtype, shape and device, and never
     * reads their values (on a GPU that would be a device read, which a CUDA graph capture cannot contain).
     */
    @Test
    void aFailureDescribesItsTensorsWithoutTheirValues() {
        try (Tensor a = Tensor.of(new float[] {1.5f, 2.5f}, 2); Tensor b = Tensor.of(new float[] {7.25f}, 1)) {
            String message = Native.failure("aten::cat", List.of(a, b), 3L, null).getMessage();
            assertEquals("aten::cat failed in libtorch for ([float32[2] cpu, float32[1] cpu], 3, null); libtorch's"
                    + " message is on standard error", message);
        }
    }

    @Test
    void loadsTheBundledCpuLibtorch() {
        LibTorch.Info info = LibTorch.load();
        assumeTrue(info.source().equals("maven"), "skipped: libtorch was loaded from " + info.folder());
        assertEquals("2.10.0", info.version());
        assertEquals("2.10", info.abiVersion(), "aoti_torch_abi_version() decoded");
        assertFalse(info.cudaBuild());
        assertTrue(Files.isRegularFile(info.folder().resolve("libtorch_cpu.so")));
        assertEquals(0, LibTorch.cudaDeviceCount());
        assertFalse(LibTorch.cudaAvailable());
        assertTrue(info.toString().contains("2.10.0") && info.toString().contains("CPU build"));
    }

    /** Idle OpenMP and OpenBLAS threads sleep unless the user chose otherwise, as the process's libraries see it. */
    @Test
    void idleThreadsAreToldToSleepUnlessTheUserChose() throws Throwable {
        LibTorch.load();
        MethodHandle getenv = Linker.nativeLinker().downcallHandle(
                Linker.nativeLinker().defaultLookup().find("getenv").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS));
        Function<String, String> seen = name -> {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment value = (MemorySegment) getenv.invokeExact(arena.allocateFrom(name));
                return value.equals(MemorySegment.NULL) ? null : value.reinterpret(64).getString(0);
            } catch (Throwable t) {
                throw new AssertionError(t);
            }
        };
        String policy = System.getenv("OMP_WAIT_POLICY");
        assertEquals(policy != null ? policy : "PASSIVE", seen.apply("OMP_WAIT_POLICY"));
        String timeout = System.getenv("OPENBLAS_THREAD_TIMEOUT");
        String expected = timeout != null ? timeout : System.getenv("GOTO_THREAD_TIMEOUT") != null ? null : "4";
        assertEquals(expected, seen.apply("OPENBLAS_THREAD_TIMEOUT"));
    }

    @Test
    void cudaOnACpuBuildIsAClearError() {
        assumeFalse(LibTorch.load().cudaBuild(), "skipped: a CUDA libtorch is loaded");
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> Tensor.zeros(new long[] {2}, DType.FLOAT32, Device.cuda(0)));
        assertTrue(e.getMessage().contains("CPU build") && e.getMessage().contains(LibTorch.ENV_FOLDER), e.getMessage());
    }

    @Test
    void aMissingFolderIsNamedWithTheRemedy() throws Exception {
        String out = resultOf(probe().property(LibTorch.PROPERTY_FOLDER, "/nonexistent/torch/lib").run());
        assertTrue(out.startsWith("FAILED"), out);
        assertTrue(out.contains("/nonexistent/torch/lib") && out.contains("-Darrakis.libtorch") && out.contains("does not exist"), out);
    }

    @Test
    void aLibtorchWithoutTheStableDispatcherIsRejectedAsTooOld(@TempDir Path dir) throws Exception {
        // Any shared library stands in for an old libtorch_cpu.so: loadable, but without torch_call_dispatcher.
        Path impostor = Stream.of("/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1")
                .map(Path::of).filter(Files::isRegularFile).findFirst().orElseThrow();
        Files.copy(impostor, dir.resolve("libtorch_cpu.so"));
        String out = resultOf(probe().property(LibTorch.PROPERTY_FOLDER, dir.toString()).run());
        assertTrue(out.startsWith("FAILED"), out);
        assertTrue(out.contains("torch_call_dispatcher") && out.contains("older than 2.10") && out.contains(dir.toString()), out);
    }

    /** Was: a second attempt loaded the bundled libtorch over the first attempt's libraries, and the JVM crashed. */
    @Test
    void afterAFailedLoadLeftLibrariesInTheJvmNoOtherIsLoaded(@TempDir Path dir) throws Exception {
        Path impostor = Stream.of("/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1")
                .map(Path::of).filter(Files::isRegularFile).findFirst().orElseThrow();
        Files.copy(impostor, dir.resolve("libtorch_cpu.so"));
        String out = ChildJvm.of(LoadProbe.class, "--retry-bundled").property(LibTorch.PROPERTY_FOLDER, dir.toString())
                .run();
        List<String> lines = out.strip().lines().filter(l -> l.startsWith("FAILED") || l.startsWith("RETRY")).toList();
        assertTrue(lines.get(0).startsWith("FAILED") && lines.get(0).contains("older than 2.10"), out);
        assertTrue(lines.get(1).startsWith("RETRY FAILED") && lines.get(1).contains("older than 2.10")
                && lines.get(1).contains("restart it"), out);
    }

    @Test
    void aThreadCountIsAWholeNumberWithinReason() {
        assertEquals(0, LibTorch.threadCount(LibTorch.Setting.of("p", null, "V", null), 2));
        assertEquals(8, LibTorch.threadCount(LibTorch.Setting.of("p", null, "V", " 8 "), 2));
        assertEquals(3, LibTorch.threadCount(LibTorch.Setting.of("p", "3", "V", "8"), 2), "the property wins");
        assertEquals(8, LibTorch.threadCount(LibTorch.Setting.of("p", "", "V", "8"), 2), "a blank property is none");
        assertEquals(64, LibTorch.threadCount(LibTorch.Setting.of("p", "64", "V", null), 2));
        assertEquals(128, LibTorch.threadCount(LibTorch.Setting.of("p", "128", "V", null), 32));
        for (String bad : List.of("0", "-1", "zero", "65", "10000", "99999999999")) {
            String message = assertThrows(LibTorchException.class,
                    () -> LibTorch.threadCount(LibTorch.Setting.of("p", null, "V", bad), 2)).getMessage();
            assertTrue(message.startsWith("$V must be a number of threads from 1 to 64") && message.contains(bad), message);
        }
        assertThrows(LibTorchException.class, () -> LibTorch.packedWeightsSetting("", "sometimes"),
                "a blank property leaves the variable to decide");
    }

    @Test
    void twoJvmsExtractIntoAnEmptyCacheAtOnceAndTheThirdReusesIt(@TempDir Path cache) throws Exception {
        assumeBundledLibtorch();
        List<ChildJvm.Running> children = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            children.add(bundledProbe(cache).start());
        }
        for (ChildJvm.Running child : children) {
            String out = resultOf(child.finish());
            assertTrue(out.startsWith("LOADED") && out.contains("sum=6.0"), out);
        }
        Path folder;
        try (Stream<Path> entries = Files.list(cache)) {
            List<Path> dirs = entries.filter(Files::isDirectory).toList();
            assertEquals(1, dirs.size(), "one complete folder and no staging leftovers: " + dirs);
            folder = dirs.get(0);
        }
        FileTime extracted = Files.getLastModifiedTime(folder.resolve("libtorch_cpu.so"));
        String out = resultOf(bundledProbe(cache).run());
        assertTrue(out.startsWith("LOADED"), out);
        assertEquals(extracted, Files.getLastModifiedTime(folder.resolve("libtorch_cpu.so")), "not extracted again");
    }

    @Test
    void aDamagedCacheIsRepaired(@TempDir Path cache) throws Exception {
        assumeBundledLibtorch();
        assertTrue(resultOf(bundledProbe(cache).run()).startsWith("LOADED"));
        Path folder;
        try (Stream<Path> entries = Files.list(cache)) {
            folder = entries.filter(Files::isDirectory).findFirst().orElseThrow();
        }
        Files.write(folder.resolve("libtorch.so"), new byte[] {1, 2, 3}); // truncated, as by a crash or a full disk
        String out = resultOf(bundledProbe(cache).run());
        assertTrue(out.startsWith("LOADED"), out);
        assertTrue(Files.size(folder.resolve("libtorch.so")) > 3);
    }

    @Test
    void threadsPerOpCanBeCapped() throws Exception {
        assumeTrue(java.nio.file.Files.isDirectory(Path.of("/proc/self/task")), "skipped: no /proc");
        long one = threadsOf(threadsProbe("1"));
        long two = threadsOf(threadsProbe("2"));
        long four = threadsOf(threadsProbe("4"));
        // each extra thread per op is one more OpenMP worker and one more OpenBLAS worker
        assertTrue(one < two && two < four, "native threads with 1, 2, 4 threads per op: " + one + ", " + two + ", " + four);
        String bad = threadsProbe("zero");
        assertTrue(bad.startsWith("FAILED") && bad.contains("arrakis.threads") && bad.contains("zero"), bad);
    }

    /** The probe on this JVM's libtorch, with its own cap on threads per op. */
    private static String threadsProbe(String threads) {
        return resultOf(probe().property(LibTorch.PROPERTY_THREADS, threads).run());
    }

    /** The probe on the bundled libtorch, extracted into {@code cache}. */
    private static ChildJvm bundledProbe(Path cache) {
        return probe().withBundledLibTorch().property(LibTorch.PROPERTY_CACHE, cache.toString());
    }

    private static long threadsOf(String probeLine) {
        assertTrue(probeLine.startsWith("LOADED"), probeLine);
        return Long.parseLong(probeLine.substring(probeLine.indexOf("native-threads=") + "native-threads=".length()).trim());
    }

    private static void assumeBundledLibtorch() {
        assumeTrue(LibTorch.class.getClassLoader().getResource("org/bytedeco/pytorch/linux-x86_64/libtorch_cpu.so") != null,
                "skipped: the org.bytedeco:pytorch jar is not on the class path");
    }

    /** A child JVM that loads libtorch, on the libtorch of this JVM unless the test says otherwise. */
    private static ChildJvm probe() {
        return ChildJvm.of(LoadProbe.class);
    }

    /** The probe's last LOADED or FAILED line. */
    private static String resultOf(String out) {
        String trimmed = out.strip();
        return trimmed.lines().filter(l -> l.startsWith("LOADED") || l.startsWith("FAILED")).reduce((a, b) -> b)
                .orElse(trimmed);
    }
}
