package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.LibTorch;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * OPT's defaults, {@code OPTConfig}'s (OPT-125M's), its layout, its position table's offset and its refusals. Its
 * forward pass is checked against {@link OptReference} by {@link ModelParityTest} and every family-generic test.
 */
class OptTest {

    @Test
    void defaultsAreOpt125m() {
        HookedAutoConfig c = HookedAutoConfig.of("opt");
        Architecture a = c.architecture();
        assertEquals(Architecture.Norm.LAYER_NORM, a.norm());
        assertEquals(1e-5, c.normEps(), "nn.LayerNorm's default: OPTConfig has no eps");
        assertEquals(Architecture.Activation.RELU, a.activationFunction());
        assertTrue(a.qkvBias() && a.outBias() && a.mlpBias() && a.tiedEmbeddings() && a.scaleAttention());
        assertFalse(c.rotary() || a.gatedMlp() || a.parallelResidual());
        assertEquals(64, c.dHead());
        assertEquals(12, c.nKvHeads());
        assertEquals(3072, c.dMlp());
        assertEquals(2048, c.maxPositions());
        assertEquals(0.02, c.initializerRange(), "init_std");
        assertEquals(1, a.paddingIndex());
        // the tied 50272 x 768 embedding, the 2050 x 768 position table (two rows ahead of position 0); per layer
        // q, k, v and out 768 x 768 with their biases, fc1 and fc2 768 x 3072 with theirs, two LayerNorms; the last
        assertEquals(50272L * 768 + 2050L * 768 + 12L * (4L * 768 * 768 + 4 * 768 + 2L * 768 * 3072 + 3072 + 768
                + 4 * 768) + 2 * 768, c.parameterCount());
        assertEquals(125_239_296L, c.parameterCount(), "OPT-125M's parameters as transformers counts them");
    }

    @Test
    void theLayoutIsOptForCausalLMs() {
        Map<String, ?> tensors = TinyConfigs.of("opt").checkpoint().tensors();
        assertTrue(tensors.keySet().containsAll(Set.of("model.decoder.embed_tokens.weight",
                "model.decoder.embed_positions.weight", "model.decoder.layers.1.self_attn_layer_norm.bias",
                "model.decoder.layers.0.self_attn.out_proj.bias", "model.decoder.layers.0.fc1.bias",
                "model.decoder.layers.0.final_layer_norm.weight", "model.decoder.final_layer_norm.bias")),
                tensors.keySet().toString());
        assertFalse(tensors.containsKey("lm_head.weight"), "tied to the embedding");
        Set<String> unbiased = TinyConfigs.of("opt").with("enable_bias", false).checkpoint().tensors().keySet();
        assertTrue(unbiased.stream().noneMatch(n -> n.endsWith("proj.bias") || n.endsWith("fc1.bias")
                || n.endsWith("fc2.bias")), unbiased.toString());
        assertTrue(unbiased.contains("model.decoder.layers.0.final_layer_norm.bias"), "the LayerNorms keep theirs");
    }

    @Test
    void positionZeroReadsTheTablesThirdRow(@TempDir Path dir) throws Exception {
        HookedAutoConfig config = TinyConfigs.of("opt");
        Fixtures.writeRandomCheckpoint(config, 5, dir);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile file = SafeTensorsFile.open(dir.resolve("model.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
            Tensor table = file.tensor("model.decoder.embed_positions.weight");
            assertArrayEquals(new long[] {16 + 2, 32}, table.shape());
            Tensor positions = model.W_pos();
            assertArrayEquals(new long[] {16, 32}, positions.shape());
            assertArrayEquals(table.narrow(0, 2, 16).toFloatArray(), positions.toFloatArray());
        }
    }

    @Test
    void float16QueriesAreScaledBeforeTheirProductAsOptScalesThem(@TempDir Path dir) throws Exception {
        assertFiniteWithUniformPatterns(dir, Device.CPU);
    }

    /** The same where the fused route runs in float16: on a GPU. */
    @Test
    @Tag("gpu")
    void onAGpuBothRoutesScaleTheQueriesFirst(@TempDir Path dir) throws Exception {
        assumeTrue(LibTorch.cudaAvailable(), "skipped: no GPU (" + LibTorch.load() + ")");
        assertFiniteWithUniformPatterns(dir, Device.cuda(0));
    }

    /**
     * A float16 model whose layer 0 has queries and keys of 100 in every feature (weights 0, biases 100): q·k = 8 ·
     * 100² = 80,000 overflows float16 (65,504), (q · 8^-1/2)·k = 28,284 does not, and every key of a query scores the
     * same. Its logits are finite on both routes, and its patterns uniform.
     */
    private static void assertFiniteWithUniformPatterns(Path dir, Device device) throws Exception {
        HookedAutoConfig config = TinyConfigs.of("opt");
        try (TensorScope scope = TensorScope.open()) {
            HookedAutoModel.RandomSource source = new HookedAutoModel.RandomSource(config, 3, DType.FLOAT32);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (String name : source.names()) {
                Tensor t = source.load(name);
                if (name.matches("model\\.decoder\\.layers\\.0\\.self_attn\\.[qk]_proj\\..*")) {
                    t = Tensor.full(t.shape(), name.endsWith(".bias") ? 100 : 0, DType.FLOAT32, Device.CPU);
                }
                tensors.put(name, t);
            }
            Fixtures.writeCheckpoint(config, tensors, dir);
            Tensor ids = Tensor.of(new long[] {3, 1, 4, 1, 5, 9}, 1, 6);
            try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir, DType.FLOAT16, device)) {
                Tensor onDevice = device.isCpu() ? ids : ids.to(device);
                for (CacheSpec spec : List.of(CacheSpec.none(), CacheSpec.all())) {
                    try (ModelOutput out = model.forward(onDevice, spec)) {
                        for (float logit : out.logits().to(DType.FLOAT32).to(Device.CPU).toFloatArray()) {
                            assertTrue(Float.isFinite(logit), "a logit of " + logit);
                        }
                        if (spec.keeps("blocks.0.attn.hook_pattern")) {
                            float[] p = out.cache().get("blocks.0.attn.hook_pattern").to(DType.FLOAT32)
                                    .to(Device.CPU).toFloatArray();
                            for (int query = 0; query < 6; query++) { // head 0's rows: uniform over the keys it sees
                                assertEquals(1.0 / (query + 1), p[query * 6], 1e-3, "query " + query);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void whatItDoesNotImplementIsRefused() {
        HookedAutoConfig tiny = TinyConfigs.of("opt");
        for (Map.Entry<String, Object> e : Map.<String, Object>of("do_layer_norm_before", false,
                "word_embed_proj_dim", 16, "layer_norm_elementwise_affine", false, "_remove_final_layer_norm", true,
                "num_attention_heads", 5).entrySet()) {
            String m = assertThrows(IllegalArgumentException.class,
                    () -> tiny.with(e.getKey(), e.getValue()).architecture(), e.getKey()).getMessage();
            assertTrue(m.startsWith(e.getKey() + " = "), m);
        }
        assertNull(tiny.raw().get("word_embed_proj_dim"));
        assertEquals(32, tiny.with("word_embed_proj_dim", 32).dModel(), "the width itself is OPT's default");
    }
}
