package io.arrakis.model;

import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.LibTorch;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The libtorch operator calls ({@link LibTorch#opCalls()}) of a forward pass without a cache: on a GPU each is at
 * least one launch from the host, so their number is what bounds a batch-1 forward there. A GPT-2 block is the
 * difference between a two-layer and a one-layer model on the same input.
 */
class ForwardLaunchesTest {
    /**
     * A GPT-2 block on the fused route: ln_1, the Q/K/V product, attention, the output product, the residual sum, ln_2,
     * the MLP's two products and its GELU, and the second residual sum. The views between them (the Q/K/V split, the
     * transposes into and out of attention, the reshape of its output, which libtorch's CPU attention lays out as
     * {@code [batch, pos, head, d_head]}) are made without an operator call.
     */
    static final int GPT2_BLOCK_CALLS = 10;
    /** Where the MLP's first product applies the GELU as it writes (on the CPU, with oneDNN), one call fewer. */
    static final int GPT2_BLOCK_CALLS_FUSED_GELU = 9;

    private static long callsOfAPass(HookedAutoModel model, Tensor ids, CacheSpec spec) {
        model.forward(ids, spec).close(); // tables (masks, rotary) are built on the first pass at a length
        long before = LibTorch.opCalls();
        model.forward(ids, spec).close();
        return LibTorch.opCalls() - before;
    }

    private static HookedAutoModel gpt2(int layers) {
        HookedAutoConfig config = HookedAutoConfig.of("gpt2").with(Map.of("n_layer", layers, "n_embd", 64, "n_head", 4,
                "vocab_size", 100, "n_positions", 32));
        return HookedAutoModel.create(config, 1, DType.FLOAT32, Device.CPU);
    }

    @Test
    void aGpt2BlockWithoutACacheMakesTenCallsOrNineWithOneDnnsGelu() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel one = gpt2(1); HookedAutoModel two = gpt2(2)) {
            Tensor ids = Tensor.of(new long[] {1, 7, 42, 99, 3, 3, 0, 12}, 1, 8);
            long block = callsOfAPass(two, ids, CacheSpec.none()) - callsOfAPass(one, ids, CacheSpec.none());
            assertEquals(LibTorch.oneDnnFloat32Weights() ? GPT2_BLOCK_CALLS_FUSED_GELU : GPT2_BLOCK_CALLS, block,
                    "libtorch calls of one GPT-2 block");
            assertTrue(block <= 20);
        }
    }

    @Test
    void aFullCacheAddsNoCallsBeyondTheExplicitAttention() {
        try (TensorScope scope = TensorScope.open(); HookedAutoModel one = gpt2(1); HookedAutoModel two = gpt2(2)) {
            Tensor ids = Tensor.of(new long[] {1, 7, 42, 99, 3, 3, 0, 12}, 1, 8);
            long block = callsOfAPass(two, ids, CacheSpec.all()) - callsOfAPass(one, ids, CacheSpec.all());
            // the explicit route: scores, their scaling, the mask's choice of -inf, softmax and the pattern's product
            // with the values replace attention; libtorch's einsum leaves that product permuted, so the reshape before
            // the output product copies it; the cache keeps mlp.hook_pre, so the GELU is an op of its own; and the
            // cache keeps each norm's hook_scale, which the norm's own op gives as its inverse, inverted by one more
            assertEquals(GPT2_BLOCK_CALLS + 5 + 2, block, "libtorch calls of one cached GPT-2 block");
        }
    }

    @Test
    void aLlamaBlockReadsGroupedKeysWithoutCopies() {
        HookedAutoConfig config = TinyConfigs.of("llama");
        HookedAutoConfig oneLayer = config.with(Map.of("num_hidden_layers", 1));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel one = HookedAutoModel.create(oneLayer, 1, DType.FLOAT32, Device.CPU);
             HookedAutoModel two = HookedAutoModel.create(config, 1, DType.FLOAT32, Device.CPU)) {
            Tensor ids = Tensor.of(new long[] {1, 7, 42, 9, 3, 3, 0, 12}, 1, 8);
            long block = callsOfAPass(two, ids, CacheSpec.none()) - callsOfAPass(one, ids, CacheSpec.none());
            // two RMSNorms, the Q/K/V product, rotary of queries and keys (4 each), attention, the output product, the
            // residual sums, the MLP (gate/up product, SiLU, product, down product); the views between them are free
            assertEquals(19, block, "libtorch calls of one Llama block (grouped-query attention)");
        }
    }
}
