package io.arrakis.model;

import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.function.BiConsumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * W_E, W_pos and the MLP's weights and biases in TransformerLens's layout ({@code [in, out]}) against the tensors of
 * the fixtures' files as Hugging Face stores them: Conv1D {@code [in, out]} (gpt2), {@code nn.Linear}
 * {@code [out, in]} (llama), gate and up fused in one tensor (phi3), experts stored one by one (mixtral).
 */
class EmbeddingAndMlpWeightsTest {

    /** Runs {@code check} on a fixture's model and its stored tensors. */
    private static void withStored(Path dir, BiConsumer<SafeTensorsFile, HookedAutoModel> check) {
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile file = SafeTensorsFile.open(dir.resolve("model.safetensors"));
             HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
            check.accept(file, model);
        }
    }

    private static void assertValuesEqual(Tensor expected, Tensor actual, String what) {
        assertArrayEquals(expected.shape(), actual.shape(), what);
        assertEquals(0.0, expected.sub(actual).abs().max().item(), what);
    }

    @Test
    void gpt2sAreItsConv1DTensorsAsStored() {
        withStored(Fixtures.dir("gpt2-tiny"), (file, model) -> {
            assertValuesEqual(file.tensor("transformer.wte.weight"), model.W_E(), "W_E");
            assertValuesEqual(file.tensor("transformer.wpe.weight"), model.W_pos(), "W_pos");
            for (int l = 0; l < model.config().nLayers(); l++) {
                String mlp = "transformer.h." + l + ".mlp.";
                assertValuesEqual(file.tensor(mlp + "c_fc.weight"), model.W_in(l), "W_in " + l);
                assertValuesEqual(file.tensor(mlp + "c_fc.bias"), model.b_in(l), "b_in " + l);
                assertValuesEqual(file.tensor(mlp + "c_proj.weight"), model.W_out(l), "W_out " + l);
                assertValuesEqual(file.tensor(mlp + "c_proj.bias"), model.b_out(l), "b_out " + l);
                assertValuesEqual(model.W_in().select(0, l), model.W_in(l), "stacked W_in " + l);
                assertValuesEqual(model.b_out().select(0, l), model.b_out(l), "stacked b_out " + l);
            }
            assertNull(model.W_gate());
            assertNull(model.W_gate(0));
            assertNull(model.b_gate(0));
            assertNull(model.b_gate());
            // a layer the model lacks is refused before the gate is found missing, as in every other accessor
            for (int layer : new int[] {-1, model.config().nLayers()}) {
                assertTrue(assertThrows(IllegalArgumentException.class, () -> model.W_gate(layer)).getMessage()
                        .contains("is not in this model"));
                assertTrue(assertThrows(IllegalArgumentException.class, () -> model.b_gate(layer)).getMessage()
                        .contains("is not in this model"));
            }
            Tensor copy = model.W_in(0);
            copy.copyFrom(Tensor.zeros(copy.shape()));
            assertValuesEqual(file.tensor("transformer.h.0.mlp.c_fc.weight"), model.W_in(0), "a copy, not the model's memory");
        });
    }

    @Test
    void llamasAreItsLinearWeightsTransposedWithZeroBiases() {
        withStored(Fixtures.dir("llama-tiny-gqa"), (file, model) -> {
            HookedAutoConfig c = model.config();
            assertValuesEqual(file.tensor("model.embed_tokens.weight"), model.W_E(), "W_E");
            assertNull(model.W_pos(), "rotary: no learned positions");
            for (int l = 0; l < c.nLayers(); l++) {
                String mlp = "model.layers." + l + ".mlp.";
                assertValuesEqual(file.tensor(mlp + "up_proj.weight").transpose(0, 1), model.W_in(l), "W_in " + l);
                assertValuesEqual(file.tensor(mlp + "gate_proj.weight").transpose(0, 1), model.W_gate(l), "W_gate " + l);
                assertValuesEqual(file.tensor(mlp + "down_proj.weight").transpose(0, 1), model.W_out(l), "W_out " + l);
                assertValuesEqual(model.W_gate().select(0, l), model.W_gate(l), "stacked W_gate " + l);
            }
            assertValuesEqual(Tensor.zeros(c.nLayers(), c.dMlp()), model.b_in(), "b_in");
            assertValuesEqual(Tensor.zeros(c.dMlp()), model.b_gate(0), "b_gate");
            assertValuesEqual(Tensor.zeros(c.nLayers(), c.dMlp()), model.b_gate(), "stacked b_gate");
            assertValuesEqual(Tensor.zeros(c.nLayers(), c.dModel()), model.b_out(), "b_out");
        });
    }

    @Test
    void phi3sFusedGateAndUpAreSplitGateFirst() {
        withStored(Fixtures.huggingFace("phi3"), (file, model) -> {
            long mlp = model.config().dMlp();
            Tensor gateUp = file.tensor("model.layers.0.mlp.gate_up_proj.weight"); // [2 * d_mlp, d_model]
            assertValuesEqual(gateUp.narrow(0, 0, mlp).transpose(0, 1), model.W_gate(0), "W_gate");
            assertValuesEqual(gateUp.narrow(0, mlp, mlp).transpose(0, 1), model.W_in(0), "W_in");
        });
    }

    @Test
    void mixtralsExpertsStackAfterTheLayer() {
        withStored(Fixtures.huggingFace("mixtral"), (file, model) -> {
            HookedAutoConfig c = model.config();
            int experts = (int) model.W_in(0).size(0);
            assertArrayEquals(new long[] {c.nLayers(), experts, c.dModel(), c.dMlp()}, model.W_in().shape());
            for (int e = 0; e < experts; e++) {
                String expert = "model.layers.1.block_sparse_moe.experts." + e + ".";
                assertValuesEqual(file.tensor(expert + "w3.weight").transpose(0, 1), model.W_in(1).select(0, e), "W_in " + e);
                assertValuesEqual(file.tensor(expert + "w1.weight").transpose(0, 1), model.W_gate(1).select(0, e), "W_gate " + e);
                assertValuesEqual(file.tensor(expert + "w2.weight").transpose(0, 1), model.W_out(1).select(0, e), "W_out " + e);
            }
            assertValuesEqual(Tensor.zeros(experts, c.dModel()), model.b_out(1), "b_out");
        });
    }
}
