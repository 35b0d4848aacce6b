package io.arrakis.model;

import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.LibTorch;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@link HookedAutoModel#capture}: what it refuses, everywhere, before any GPU work; and on a GPU, replays against the
 * eager pass bit for bit, across many replays interleaved with other work.
 */
class CapturedForwardTest {
    private static HookedAutoModel tiny(String family, Device device) {
        return HookedAutoModel.create(TinyConfigs.of(family), 0, DType.FLOAT32, device);
    }

    @Nested
    class Refusals {
        @Test
        void aModelOnTheCpuIsRefusedNamingTheDevice() {
            try (HookedAutoModel model = tiny("gpt2", Device.CPU)) {
                IllegalStateException e = assertThrows(IllegalStateException.class,
                        () -> model.capture(1, 8, CacheSpec.none()));
                assertTrue(e.getMessage().contains("GPU work") && e.getMessage().contains("cpu"), e.getMessage());
            }
        }

        @Test
        void shapesTheModelCannotTakeAreRefused() {
            try (HookedAutoModel model = tiny("gpt2", Device.CPU)) {
                int max = model.config().maxPositions();
                for (int[] shape : new int[][] {{0, 8}, {1, 0}, {1, max + 1}, {-1, 4}}) {
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                            () -> model.capture(shape[0], shape[1], CacheSpec.none()));
                    assertTrue(e.getMessage().contains("[" + shape[0] + ", " + shape[1] + "]"), e.getMessage());
                }
            }
        }

        @Test
        void aCacheEntryTheModelLacksIsRefused() {
            try (HookedAutoModel model = tiny("gpt2", Device.CPU)) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> model.capture(1, 8, CacheSpec.only("blocks.9.attn.hook_pattern")));
                assertTrue(e.getMessage().contains("blocks.9.attn.hook_pattern"), e.getMessage());
            }
        }

        @Test
        void hooksAreRefusedBecauseAGraphCannotRunJava() {
            try (HookedAutoModel model = tiny("gpt2", Device.CPU);
                 HookedAutoModel.HookHandle h = model.addHook(HookedAutoModel.HookSpec.at("blocks.0.hook_attn_out",
                         (a, name) -> a))) {
                IllegalStateException e = assertThrows(IllegalStateException.class,
                        () -> model.capture(1, 8, CacheSpec.none()));
                assertTrue(e.getMessage().contains("cannot run hooks") && e.getMessage().contains("blocks.0.hook_attn_out"),
                        e.getMessage());
            }
        }

        @Test
        void mixtureOfExpertsIsRefusedBecauseRoutingReadsBackToTheHost() {
            for (String family : List.of("mixtral", "gpt-oss", "qwen3-moe", "qwen2-moe")) {
                try (HookedAutoModel model = tiny(family, Device.CPU)) {
                    UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                            () -> model.capture(1, 8, CacheSpec.none()));
                    assertTrue(e.getMessage().contains("router"), e.getMessage());
                }
            }
        }

        @Test
        void aClosedModelIsRefused() {
            HookedAutoModel model = tiny("gpt2", Device.CPU);
            model.close();
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> model.capture(1, 8, CacheSpec.none()));
            assertTrue(e.getMessage().contains("closed"), e.getMessage());
        }
    }

    /** Runs where a CUDA libtorch and a GPU are present; skipped elsewhere. */
    @Nested
    @Tag("gpu")
    class OnTheGpu {
        private static final Device GPU = Device.cuda(0);

        static List<String> denseFamilies() {
            return HookedAutoConfig.supportedFamilies().stream()
                    .filter(f -> HookedAutoConfig.of(f).architecture().moe() == null).toList();
        }

        @ParameterizedTest
        @MethodSource("denseFamilies")
        void aReplayEqualsTheEagerPassBitForBit(String family) {
            assumeTrue(LibTorch.cudaAvailable(), "skipped: no GPU (" + LibTorch.load() + ")");
            Path dir = Fixtures.huggingFace(family);
            try (TensorScope scope = TensorScope.open();
                 HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.FLOAT32, GPU)) {
                Tensor ids = Fixtures.referenceInputIds(dir);
                long[] shape = ids.dim() == 1 ? new long[] {1, ids.size(0)} : ids.shape();
                CacheSpec spec = CacheSpec.only("blocks.0.hook_resid_post", "ln_final.hook_normalized");
                ModelOutput eager = model.forward(ids, spec);
                try (CapturedForward captured = model.capture((int) shape[0], (int) shape[1], spec);
                     ModelOutput replayed = captured.run(ids)) {
                    assertTrue(captured.graphNodes() > 0);
                    assertTrue(replayed.logits().allclose(eager.logits(), 0, 0), family + ": logits differ from eager");
                    for (String name : spec.explicitNames()) {
                        assertTrue(replayed.cache().get(name).allclose(eager.cache().get(name), 0, 0),
                                family + ": " + name + " differs from eager");
                    }
                }
                eager.close();
            }
        }

        @Test
        void aThousandReplaysAmongOtherWorkStayEqualToEager() {
            assumeTrue(LibTorch.cudaAvailable(), "skipped: no GPU (" + LibTorch.load() + ")");
            Generator g = new Generator(7);
            try (TensorScope scope = TensorScope.open();
                 HookedAutoModel model = HookedAutoModel.fromPretrained(Fixtures.huggingFace("gpt2"), DType.FLOAT32, GPU);
                 HookedAutoModel other = HookedAutoModel.fromPretrained(Fixtures.huggingFace("llama"), DType.FLOAT32, GPU)) {
                int vocab = model.config().vocabSize();
                List<Tensor> inputs = new ArrayList<>();
                List<Tensor> expected = new ArrayList<>();
                for (int i = 0; i < 4; i++) {
                    Tensor ids = Tensor.randint(g, 0, vocab, new long[] {2, 16}, Device.CPU);
                    inputs.add(ids);
                    expected.add(model.runWithHooks(ids));
                }
                try (CapturedForward captured = model.capture(2, 16, CacheSpec.none())) {
                    for (int i = 0; i < 1000; i++) {
                        try (TensorScope step = TensorScope.open()) {
                            Tensor garbage = Tensor.randn(g, new long[] {1 + i % 7, 4096}, DType.FLOAT32, GPU).mul(3.0);
                            ModelOutput out = captured.run(inputs.get(i % 4));
                            other.runWithHooks(Tensor.randint(g, 0, other.config().vocabSize(), new long[] {1, 9}, Device.CPU));
                            garbage.close();
                            assertTrue(out.logits().allclose(expected.get(i % 4), 0, 0), "replay " + i + " differs");
                            out.close();
                        }
                    }
                }
            }
        }

        @Test
        void hooksAddedAfterCaptureMakeARunFail() {
            assumeTrue(LibTorch.cudaAvailable(), "skipped: no GPU (" + LibTorch.load() + ")");
            try (HookedAutoModel model = tiny("gpt2", GPU);
                 CapturedForward captured = model.capture(1, 8, CacheSpec.none())) {
                try (HookedAutoModel.HookHandle h = model.addHook(HookedAutoModel.HookSpec.at("hook_embed", (a, n) -> a))) {
                    assertThrows(IllegalStateException.class, () -> captured.run(Tensor.zeros(new long[] {1, 8}, DType.INT64, Device.CPU)));
                }
                captured.run(Tensor.zeros(new long[] {1, 8}, DType.INT64, Device.CPU)).close();
            }
        }

        @Test
        void aRunChecksItsIdsAndClosingTheModelClosesItsCaptures() {
            assumeTrue(LibTorch.cudaAvailable(), "skipped: no GPU (" + LibTorch.load() + ")");
            HookedAutoModel model = tiny("gpt2", GPU);
            CapturedForward captured = model.capture(1, 8, CacheSpec.none());
            assertThrows(IllegalArgumentException.class, () -> captured.run(Tensor.zeros(new long[] {1, 9}, DType.INT64, Device.CPU)));
            Tensor outOfRange = Tensor.full(new long[] {1, 8}, model.config().vocabSize(), DType.INT64, Device.CPU);
            assertThrows(IllegalArgumentException.class, () -> captured.run(outOfRange));
            model.close();
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> captured.run(Tensor.zeros(new long[] {1, 8}, DType.INT64, Device.CPU)));
            assertTrue(e.getMessage().contains("closed"), e.getMessage());
        }
    }
}
