package io.arrakis.examples;

import io.arrakis.composer.AttentionComposer;
import io.arrakis.composer.CompositionScores;
import io.arrakis.composer.Head;
import io.arrakis.composer.HeadDetectors;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's composer example, line for line, so the README stays true. */
class ReadmeComposerExampleTest {

    @Test
    void theReadmeExampleRuns() {
        try (TensorScope scope = TensorScope.open()) {
            // --- README: composer example ---
            HookedAutoConfig config = HookedAutoConfig.of("llama").with(Map.of(
                    "num_hidden_layers", 2, "hidden_size", 256, "intermediate_size", 688,
                    "num_attention_heads", 8, "num_key_value_heads", 8)); // a small llama; defaults otherwise
            HookedAutoModel model = HookedAutoModel.create(config, 0, DType.FLOAT32, Device.CPU);
            Tensor inputIds = Tensor.randint(new Generator(0), 0, config.vocabSize(), new long[] {1, 50}, Device.CPU);

            AttentionComposer composer = new AttentionComposer(model);
            try (AttentionComposer.HeadComposition hc = composer.headComposition(Head.of(0, 0), Head.of(1, 1), 0.5)) {
                System.out.println(hc);                        // composite head, and Q/K/V composition of L0H0 -> L1H1
            }
            Tensor logits = composer.attentionPathPatching(inputIds, Head.of(0, 0), Head.of(0, 1));
            Tensor kScores = composer.compositionScores(CompositionScores.Mode.K);   // [layer, head, layer, head]
            HeadDetectors.Scores heads = composer.detectHeads(20, 4, 0);             // previous-token, induction, ...
            // --- end of README example ---
            assertArrayEquals(new long[] {1, 50, 32000}, logits.shape());
            assertArrayEquals(new long[] {2, 8, 2, 8}, kScores.shape());
            assertArrayEquals(new long[] {2, 8}, heads.induction().shape());
            assertTrue(kScores.select(0, 1).abs().sum().item() == 0, "no composition from the last layer");
            model.close();
        }
    }
}
