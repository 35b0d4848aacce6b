package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * MiniCPM3: {@code MiniCPM3Config}'s defaults (openbmb/MiniCPM3-4B's shape), the scalings it fills in, its refusal, and
 * the bfloat16 pass against transformers'. Its Hugging Face fixture's residual stream, attention and MLP outputs, final
 * norm and logits are checked by {@link ModelParityTest}.
 */
class MiniCpm3Test {
    private static final Path FIXTURE = Fixtures.huggingFace("minicpm3");

    /**
     * The defaults are MiniCPM3-4B's: its parameters, counted by hand from {@code MiniCPM3ForCausalLM}'s modules (the
     * embedding tied), are the published 4 billion.
     */
    @Test
    void defaultsAreMiniCpm3Configs() {
        HookedAutoConfig c = HookedAutoConfig.of("minicpm3");
        Architecture a = c.architecture();
        assertEquals(List.of(2560, 62, 40, 6400, 73448), List.of(a.dModel(), a.nLayers(), a.nHeads(), a.dMlp(),
                a.vocabSize()));
        assertEquals(List.of(768, 256, 64, 32, 64), List.of(a.latentAttention().queryRank(),
                a.latentAttention().keyValueRank(), a.latentAttention().nopeDim(), a.latentAttention().ropeDim(),
                a.latentAttention().valueDim()), "v_head_dim null: hidden_size / num_attention_heads");
        assertEquals(12.0, a.embeddingScale());
        assertTrue(a.embeddingScaleRounded() && a.tiedEmbeddings() && !a.rotaryInterleaved());
        assertEquals(1.4 / Math.sqrt(62), a.residualMultiplier(), 1e-15);
        assertEquals(10.0, a.headInputDivisor(), "hidden_size / dim_model_base");
        assertEquals(1.0, a.logitScale());
        long d = 2560;
        long attention = d * 768 + 768 + 768L * 40 * 96 + d * (256 + 32) + 256 + 256L * 40 * 128 + 40L * 64 * d;
        long block = attention + 3 * d * 6400 + 2 * d;
        assertEquals(73448 * d + 62 * block + d, c.parameterCount());
    }

    @Test
    void nullScalingsAreTheClassesNoOps() {
        Map<String, Object> none = new HashMap<>();
        none.put("scale_depth", null);
        none.put("dim_model_base", null);
        Architecture a = HookedAutoConfig.of("minicpm3").with(none).architecture();
        assertEquals(1.0, a.residualMultiplier(), 1e-15, "scale_depth sqrt(num_hidden_layers)");
        assertEquals(1.0, a.headInputDivisor(), "dim_model_base hidden_size");
        // a null v_head_dim is hidden_size / num_attention_heads, whatever qk_nope_head_dim is
        Map<String, Object> nope = new HashMap<>();
        nope.put("qk_nope_head_dim", 32);
        assertEquals(64, HookedAutoConfig.of("minicpm3").with(nope).architecture().latentAttention().valueDim());
        String heads = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("minicpm3")
                .with("hidden_size", 2570)).getMessage();
        assertTrue(heads.contains("hidden_size") && heads.contains("num_attention_heads"), heads);
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.of("minicpm3")
                .with("mlp_bias", true)).getMessage();
        assertTrue(m.contains("mlp_bias") && m.contains("not implemented"), m);
    }

    /**
     * In bfloat16 its logits lie on average at most a tenth as far from transformers' as transformers' float32 ones:
     * the fixture's final norm output is divided by 3.2 before the head, which rounds otherwise than the logits times
     * 0.3125, and its scale_emb, 12.3, is rounded to bfloat16.
     */
    @Test
    void theBfloat16PassIsTransformers() {
        double[] d = Fixtures.bfloat16Distances(FIXTURE, "logits");
        assertTrue(d[0] <= d[1] / 10, "mean distance " + d[0] + ", float32's " + d[1]);
    }
}
