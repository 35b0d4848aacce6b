package io.arrakis.examples;

import io.arrakis.model.Fixtures;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SeedExampleTest {
    private static final long GIB = 1L << 30;

    @Test
    void theLlamaDefaultsRunInFloat32WhenTheyFit() {
        SeedExample.ModelChoice choice = SeedExample.chooseModel(Map.of(), 64 * GIB);
        assertEquals(DType.FLOAT32, choice.dtype());
        assertEquals(32, choice.config().nLayers());
        assertEquals(4096, choice.config().dModel());
    }

    @Test
    void onThisKindOfMachineTheDefaultsRunInBfloat16AndSaySo() {
        // Llama-2-7B's 6,738,415,616 parameters: 26.96 GB in float32, 13.48 GB in bfloat16
        SeedExample.ModelChoice choice = SeedExample.chooseModel(Map.of(), 22 * GIB);
        assertEquals(DType.BFLOAT16, choice.dtype());
        assertEquals(32, choice.config().nLayers());
        assertEquals(6_738_415_616L, choice.config().parameterCount());
        assertTrue(choice.note().contains("bfloat16") && choice.note().contains("float32 needs 25.1 GiB"), choice.note());
    }

    @Test
    void withLessMemoryOnlyTheLayerCountShrinks() {
        // per layer 4*4096^2 + 3*4096*11008 + 2*4096 = 202,383,360 parameters (404,766,720 bytes in bfloat16);
        // embeddings, lm_head and the final norm 2*32000*4096 + 4096 (524,296,192 bytes); 3 GiB of headroom:
        // (8 GiB - 3 GiB - 524,296,192) / 404,766,720 = 11.97 -> 11 layers
        SeedExample.ModelChoice choice = SeedExample.chooseModel(Map.of(), 8 * GIB);
        assertEquals(DType.BFLOAT16, choice.dtype());
        assertEquals(11, choice.config().nLayers());
        assertEquals(4096, choice.config().dModel());
        assertTrue(choice.note().contains("num_hidden_layers=11"), choice.note());
    }

    @Test
    void idsAreTheSeedsShapeAndBelowTheVocabulary() {
        HookedAutoConfig small = HookedAutoConfig.of("llama").with("vocab_size", 100);
        try (Tensor ids = SeedExample.inputIds(small, 3); Tensor again = SeedExample.inputIds(small, 3)) {
            assertEquals(List.of(1L, 50L), Arrays.stream(ids.shape()).boxed().toList());
            long[] v = ids.toLongArray();
            assertTrue(Arrays.stream(v).allMatch(x -> x >= 0 && x < 100));
            assertTrue(Arrays.stream(v).distinct().count() > 20, "spread over the vocabulary");
            assertTrue(Arrays.equals(v, again.toLongArray()), "seeded");
        }
    }

    @Test
    void theExperimentOnAReferenceModelReportsBothResults() {
        Path dir = Fixtures.dir("llama-tiny-gqa");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
             SafeTensorsFile weights = SafeTensorsFile.open(dir.resolve("model.safetensors"))) {
            Tensor ids = reference.tensor("input_ids").narrow(0, 0, 1); // [1, 11]
            Map<String, Object> result = SeedExample.run(model, ids);
            assertEquals(List.of("head_composition", "attention_path_patching"), List.copyOf(result.keySet()));

            @SuppressWarnings("unchecked")
            Map<String, Object> hc = (Map<String, Object>) result.get("head_composition");
            assertEquals(0.0, (Double) hc.get("q_composition"), 0.0, "heads of one layer do not compose");
            // the composite W_Q is the mean of heads 0 and 1: rows 0..15 of q_proj.weight [32, 32] (d_head 8), transposed
            float[] q = weights.tensor("model.layers.0.self_attn.q_proj.weight").toFloatArray();
            double sumSq = 0;
            for (int r = 0; r < 8; r++) {
                for (int col = 0; col < 32; col++) {
                    double mean = (q[r * 32 + col] + q[(r + 8) * 32 + col]) / 2.0;
                    sumSq += mean * mean;
                }
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> wq = (Map<String, Object>) hc.get("W_Q");
            assertEquals(List.of(32L, 8L), wq.get("shape"));
            assertEquals(Math.sqrt(sumSq), (Double) wq.get("frobenius_norm"), 1e-5);

            @SuppressWarnings("unchecked")
            Map<String, Object> app = (Map<String, Object>) result.get("attention_path_patching");
            assertEquals(List.of(1L, 11L, 96L), app.get("shape"));
            // the unpatched top tokens are those of the reference logits at the last position
            float[] logits = reference.tensor("logits").select(0, 0).select(0, 10).toFloatArray();
            List<Long> top5 = IntStream.range(0, logits.length).boxed()
                    .sorted((a, b) -> Float.compare(logits[b], logits[a])).limit(5).map(Long::valueOf).toList();
            assertEquals(top5, app.get("top5_last_position_clean"));
            assertTrue((Double) app.get("max_abs_change_vs_clean") > 0, "L0H1 computed with L0H0's weights changes the logits");
        }
    }
}
