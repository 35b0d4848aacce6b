package io.arrakis.bench;

import io.arrakis.composer.AttentionComposer;
import io.arrakis.composer.Head;
import io.arrakis.model.Fixtures;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BaseInterpretabilityBenchTest {
    private static HookedAutoModel model;
    private static Path dir;

    /** The seed's way: derive from the bench. */
    static final class MIExperiment extends BaseInterpretabilityBench {
        MIExperiment(HookedAutoModel model) {
            super(model, Path.of("target/test-experiments"));
        }
    }

    record HeadPair(Head head1, Head head2, double alpha) {
    }

    @BeforeAll
    static void load() {
        dir = Fixtures.dir("llama-tiny-gqa");
        model = HookedAutoModel.fromPretrained(dir);
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
    }

    @Test
    void anExperimentReceivesTheComposerAndItsScoresMatchTheReference() {
        try (MIExperiment exp = new MIExperiment(model);
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             TensorScope scope = TensorScope.open()) {
            Experiment<HeadPair, double[]> test = exp.useTools("composer").experiment("composition_of_a_pair",
                    (args, tools) -> {
                        AttentionComposer composer = tools.get("composer", AttentionComposer.class);
                        assertSame(model, composer.model());
                        try (AttentionComposer.HeadComposition hc =
                                     composer.headComposition(args.head1(), args.head2(), args.alpha())) {
                            return new double[] {hc.qComposition(), hc.kComposition(), hc.vComposition()};
                        }
                    });
            assertEquals("composition_of_a_pair", test.name());
            double[] scores = test.run(new HeadPair(Head.of(0, 1), Head.of(1, 2), 0.5));
            // the independent PyTorch reference's [layer, head, layer, head] scores at (0, 1, 1, 2)
            int at = ((0 * 4 + 1) * 2 + 1) * 4 + 2;
            String[] modes = {"Q", "K", "V"};
            for (int m = 0; m < 3; m++) {
                double expected = reference.tensor("composition." + modes[m]).toDoubleArray()[at];
                assertEquals(expected, scores[m], 1e-5, modes[m] + "-composition of L0H1 -> L1H2");
            }
        }
    }

    @Test
    void toolsAreMadeOnceOnFirstUseAndShared() {
        AtomicInteger made = new AtomicInteger();
        try (BaseInterpretabilityBench exp = new BaseInterpretabilityBench(model)) {
            exp.registerTool("counter", m -> {
                made.incrementAndGet();
                return new StringBuilder("tool over " + m.config().family());
            });
            assertEquals(0, made.get(), "not made before it is asked for");
            Experiment<Integer, String> first = exp.useTools("counter", "composer").experiment("a",
                    (n, tools) -> tools.get("counter", StringBuilder.class).toString() + n);
            Experiment<Integer, Object> second = exp.useTools("counter").experiment("b",
                    (n, tools) -> tools.get("counter", StringBuilder.class));
            assertEquals("tool over llama7", first.run(7));
            assertSame(exp.tool("counter", StringBuilder.class), second.run(0));
            assertEquals(1, made.get());
            assertEquals(List.of("composer", "counter"), List.copyOf(exp.toolNames()));
        }
    }

    @Test
    void unknownToolsAndWrongTypesAreRefusedWithTheNamesThatExist() {
        try (BaseInterpretabilityBench exp = new BaseInterpretabilityBench(model)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> exp.useTools("composr"));
            assertTrue(e.getMessage().contains("composr") && e.getMessage().contains("[composer]"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> exp.registerTool("composer", AttentionComposer::new));
            assertThrows(IllegalArgumentException.class, () -> exp.registerTool(" ", m -> "x"));
            exp.registerTool("nothing", m -> null);
            assertThrows(NullPointerException.class, () -> exp.useTools("nothing"));

            Experiment<String, Object> undeclared = exp.useTools("composer").experiment("c",
                    (s, tools) -> tools.get("profiler", Object.class));
            e = assertThrows(IllegalArgumentException.class, () -> undeclared.run(""));
            assertTrue(e.getMessage().contains("profiler") && e.getMessage().contains("[composer]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> exp.tool("composer", String.class));
            assertTrue(e.getMessage().contains(AttentionComposer.class.getName()), e.getMessage());
        }
    }

    @Test
    void closingTheBenchClosesToolsThatHoldResourcesButNotTheModel() {
        AtomicInteger closed = new AtomicInteger();
        BaseInterpretabilityBench exp = new BaseInterpretabilityBench(model);
        exp.registerTool("resource", m -> (AutoCloseable) closed::incrementAndGet);
        exp.tool("resource", AutoCloseable.class);
        exp.registerTool("the model itself", m -> m); // was: closed with the tools
        exp.tool("the model itself", io.arrakis.model.HookedAutoModel.class);
        exp.close();
        assertEquals(1, closed.get());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> exp.tool("resource", AutoCloseable.class));
        assertEquals("this bench is closed, and its tools with it", e.getMessage());
        assertThrows(IllegalStateException.class, () -> exp.registerTool("late", m -> m)); // was: taken, then refused
        assertEquals(java.util.Set.of("composer", "resource", "the model itself"), exp.toolNames());
        assertEquals(2, model.config().nLayers(), "the model is still usable");
        try (var wq = model.W_Q()) {
            assertEquals(4, wq.shape().length);
        }
    }

    /** Was: close returned while another thread's factory ran, and the tool it made stayed open, handed out after. */
    @Test
    void closeWaitsForAToolBeingMadeAndClosesItToo() throws Exception {
        AtomicInteger closed = new AtomicInteger();
        java.util.concurrent.CountDownLatch making = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch finish = new java.util.concurrent.CountDownLatch(1);
        BaseInterpretabilityBench exp = new BaseInterpretabilityBench(model);
        exp.registerTool("slow", m -> {
            making.countDown();
            try {
                finish.await();
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
            return (AutoCloseable) closed::incrementAndGet;
        });
        Thread maker = Thread.ofPlatform().start(() -> exp.tool("slow", AutoCloseable.class));
        making.await();
        Thread closer = Thread.ofPlatform().start(exp::close);
        closer.join(200);
        assertTrue(closer.isAlive(), "close waits for the factory");
        finish.countDown();
        maker.join();
        closer.join();
        assertEquals(1, closed.get(), "the tool made meanwhile is closed");
    }

    @Test
    void aBenchCanStoreLoggedTensorsInFull(@org.junit.jupiter.api.io.TempDir Path saveDir) {
        ExperimentLog.Options options = ExperimentLog.Options.defaults().withSaveTensors(true);
        try (BaseInterpretabilityBench exp = new BaseInterpretabilityBench(model, saveDir, options);
             TensorScope scope = TensorScope.open()) {
            Experiment<Integer, io.arrakis.torch.Tensor> layerWeights = exp.logExperiment(
                    exp.useTools("composer").experiment("w_q", (layer, tools) -> model.W_Q(layer)));
            io.arrakis.torch.Tensor wq = layerWeights.run(1);
            ExperimentRecord run = exp.listVersions("w_q").get(0);
            assertEquals(Map.of("args", 1L), run.arguments());
            TensorSummary summary = run.tensors().get(0);
            assertEquals(List.of(4L, 32L, 8L), summary.shape());
            assertTrue(summary.file() != null && java.nio.file.Files.isRegularFile(saveDir.resolve("w_q").resolve(summary.file())),
                    summary.toString());
            io.arrakis.torch.Tensor back = exp.experimentLog().loadTensor(run, summary.key());
            org.junit.jupiter.api.Assertions.assertArrayEquals(wq.toFloatArray(), back.toFloatArray());
        }
    }

    /** Was: map keys went through String.valueOf, so the arguments 1 and "1" became one, silently. */
    @Test
    void argumentMapsNeedStringKeys(@org.junit.jupiter.api.io.TempDir Path saveDir) {
        try (BaseInterpretabilityBench exp = new BaseInterpretabilityBench(model, saveDir)) {
            Experiment<Map<Object, String>, Integer> sizes = exp.logExperiment(new Experiment<>("sizes", Map::size));
            Map<Object, String> mixed = new java.util.LinkedHashMap<>();
            mixed.put(1, "number key");
            mixed.put("1", "string key");
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> sizes.run(mixed));
            assertTrue(e.getMessage().contains("String keys") && e.getMessage().contains("java.lang.Integer 1"),
                    e.getMessage());
            assertEquals(2, sizes.run(Map.of("a", "x", "b", "y")));
        }
    }

    /**
     * Was: a factory that asks for another tool failed with "Recursive update" when the two names shared a bucket
     * of the bench's map ("paths" and "composer" do), and a null name failed inside the map.
     */
    @Test
    void aToolsFactoryMayUseOtherToolsButNotItself() {
        record Paths(AttentionComposer composer) {
        }
        MIExperiment bench = new MIExperiment(model);
        bench.registerTool("paths", m -> new Paths(bench.tool("composer", AttentionComposer.class)));
        assertSame(bench.tool("composer", AttentionComposer.class), bench.tool("paths", Paths.class).composer());
        bench.registerTool("loop", m -> bench.tool("loop", Object.class));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> bench.tool("loop", Object.class));
        assertTrue(e.getMessage().contains("the factory of tool 'loop' asks for tool 'loop'"), e.getMessage());
        // was: blamed the first factory, 'a', where 'b' asked for it
        bench.registerTool("a", m -> bench.tool("b", Object.class));
        bench.registerTool("b", m -> bench.tool("a", Object.class));
        IllegalStateException cycle = assertThrows(IllegalStateException.class, () -> bench.tool("a", Object.class));
        assertTrue(cycle.getMessage().contains("the factory of tool 'b' asks for tool 'a', which is being made (a asks"
                + " for b asks for a)"), cycle.getMessage());
        NullPointerException n = assertThrows(NullPointerException.class, () -> bench.tool(null, Object.class));
        assertTrue(n.getMessage().contains("tool name"), n.getMessage());
    }
}
