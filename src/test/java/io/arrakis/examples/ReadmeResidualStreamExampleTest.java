package io.arrakis.examples;

import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.ModelOutput;
import io.arrakis.model.ResidualStream;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The README's residual-stream example, line for line, so the README stays true. */
class ReadmeResidualStreamExampleTest {

    @Test
    void theReadmeExampleRuns() {
        HookedAutoConfig config = HookedAutoConfig.of("gpt2").with(Map.of("n_layer", 2, "n_embd", 64, "n_head", 4));
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 0, DType.FLOAT32, Device.CPU)) {
            Tensor ids = Tensor.of(new long[] {464, 3290, 3332}, 1, 3);
            // --- README: residual stream example ---
            Tensor answers = Tensor.of(new long[] {319}, 1);   // one answer per sequence of ids, at every position
            Tensor wrong = Tensor.of(new long[] {262}, 1);
            try (ModelOutput out = model.forward(ids)) {        // model and ids as in "Hooked models"
                ResidualStream resid = new ResidualStream(model, out.cache());
                ResidualStream.Components parts = resid.decomposeResid(false);          // embed, pos_embed, 0_attn_out, 0_mlp_out, ...
                Tensor attrs = resid.logitAttrs(parts.stack(), answers, wrong);         // [component, batch, pos]: direct logit attribution
                ResidualStream.Components heads = resid.stackHeadResults(true, false);  // L0H0, L0H1, ..., remainder
                Tensor lens = resid.accumulatedResid(false, true).stack().matmul(model.W_U());  // logit lens [layer + 1, batch, pos, vocab]
                // --- end of README example ---
                assertEquals(List.of("embed", "pos_embed", "0_attn_out", "0_mlp_out", "1_attn_out", "1_mlp_out"),
                        parts.labels());
                assertArrayEquals(new long[] {6, 1, 3}, attrs.shape());
                assertEquals(9, heads.labels().size());
                assertArrayEquals(new long[] {3, 1, 3, config.vocabSize()}, lens.shape());
                float[] logits = out.logits().toFloatArray();
                float[] total = attrs.sum(0, false).toFloatArray();
                float[] last = lens.select(0, 2).toFloatArray();
                for (int p = 0; p < 3; p++) {
                    int row = p * config.vocabSize();
                    assertEquals(logits[row + 319] - logits[row + 262], total[p], 1e-4, "position " + p);
                }
                for (int i = 0; i < logits.length; i++) {
                    assertEquals(logits[i], last[i], 1e-4 * Math.max(1, Math.abs(logits[i])), "logit " + i);
                }
            }
        }
    }
}
