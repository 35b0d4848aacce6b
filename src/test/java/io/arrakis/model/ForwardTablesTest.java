package io.arrakis.model;

import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ForwardTablesTest {

    @Test
    void builtOnceAndHandedOutAsTheCallersHandles() {
        AtomicInteger builds = new AtomicInteger();
        try (ForwardTables tables = new ForwardTables(() -> false)) {
            Tensor first;
            try (TensorScope scope = TensorScope.open()) {
                first = tables.get("k", () -> build(builds)).getFirst();
                assertEquals(3.0, tables.get("k", () -> build(builds)).getFirst().sum().item(), 0);
            }
            assertTrue(first.isClosed(), "the caller's handle closes with its scope");
            try (TensorScope scope = TensorScope.open()) {
                assertEquals(3.0, tables.get("k", () -> build(builds)).getFirst().sum().item(), 0, "the entry outlives it");
            }
            assertEquals(1, builds.get());
            assertEquals(1, tables.size());
        }
    }

    /** A table built while a CUDA graph is captured is empty until a replay: later passes must not find it. */
    @Test
    void whileCapturingAMissingTableServesOnlyThatPass() {
        AtomicInteger builds = new AtomicInteger();
        AtomicBoolean capturing = new AtomicBoolean(true);
        try (ForwardTables tables = new ForwardTables(capturing::get)) {
            Tensor duringCapture;
            try (TensorScope scope = TensorScope.open()) {
                duringCapture = tables.get("k", () -> build(builds)).getFirst();
                assertFalse(duringCapture.isClosed());
            }
            assertTrue(duringCapture.isClosed(), "owned by the capturing pass's scope");
            assertEquals(0, tables.size(), "not kept for other passes");
            capturing.set(false);
            try (TensorScope scope = TensorScope.open()) {
                tables.get("k", () -> build(builds));
            }
            assertEquals(2, builds.get(), "built again once the capture is over");
            capturing.set(true);
            try (TensorScope scope = TensorScope.open()) {
                tables.get("k", () -> build(builds));
            }
            assertEquals(2, builds.get(), "a table built outside a capture is filled and serves captures too");
        }
    }

    /**
     * During a capture a pass builds a missing mask for itself, but a missing rotary table is refused by name: it is
     * copied from the host, which a CUDA graph capture cannot contain (the capture would fail with the driver's code).
     */
    @Test
    void whileCapturingAMissingRotaryTableIsRefusedByName() {
        Tensor ids = Tensor.of(new long[] {1, 2, 3, 4}, 1, 4);
        for (String family : List.of("gpt2", "llama")) {
            try (TensorScope scope = TensorScope.open();
                 HookedAutoModel model = HookedAutoModel.create(TinyConfigs.of(family), 1, DType.FLOAT32, Device.CPU);
                 ForwardTables capturing = new ForwardTables(() -> true);
                 ActivationCache cache = new ActivationCache(2)) {
                Forward pass = new Forward(model.config(), model.weights(), capturing,
                        new HookedAutoModel.Pass(scope, CacheSpec.none(), List.of(), cache));
                if (family.equals("gpt2")) {
                    assertArrayEquals(model.runWithHooks(ids).toFloatArray(), pass.run(ids).toFloatArray());
                } else {
                    IllegalStateException e = assertThrows(IllegalStateException.class, () -> pass.run(ids));
                    assertTrue(e.getMessage().contains("rotary tables for 4 positions"), e.getMessage());
                }
            }
        }
    }

    private static List<Tensor> build(AtomicInteger builds) {
        builds.incrementAndGet();
        return List.of(Tensor.ones(new long[] {3}, DType.FLOAT32, Device.CPU));
    }
}
