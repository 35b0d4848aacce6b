package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * nanochat's defaults, {@code NanoChatConfig}'s, its checkpoint layout, the order of its attention hooks and its
 * normalised embeddings. Its forward pass is checked against {@link NanoChatReference} (the reversed rotation, the
 * norms after it, the embedding norm, the soft-capped logits) by {@link ModelParityTest} and every family-generic test.
 */
class NanoChatTest {

    @Test
    void defaultsAreNanoChatConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("nanochat");
        assertEquals(128, c.dHead(), "hidden_size / heads");
        assertEquals(6, c.nKvHeads(), "num_key_value_heads null: every head its own");
        assertEquals(10000.0, c.ropeTheta());
        assertEquals(1e-6, c.normEps());
        assertEquals(2048, c.maxPositions());
        Architecture a = c.architecture();
        assertEquals(Architecture.Norm.RMS_NORM, a.norm());
        assertFalse(a.normParameters());
        assertTrue(a.embeddingNorm() && a.qkNormAfterRotary() && a.rotaryReversed());
        assertEquals(Architecture.QkNorm.PER_HEAD, a.qkNorm());
        assertEquals(15.0, a.logitSoftcap());
        assertEquals(Architecture.Activation.RELU2, a.activationFunction());
        assertFalse(a.gatedMlp() || a.qkvBias() || a.outBias() || a.mlpBias() || a.tiedEmbeddings());
        // untied 50304 x 768 embedding and head; per layer q, k, v and o 768 x 768, fc1 and fc2 768 x 8192; no norm
        // has a parameter
        assertEquals(2L * 50304 * 768 + 12L * (4L * 768 * 768 + 2L * 768 * 8192), c.parameterCount());
        assertEquals(256_573_440L, c.parameterCount());
    }

    @Test
    void theMlpIsFc1AndFc2AndNoNormIsStored() {
        Set<String> names = TinyConfigs.of("nanochat").checkpoint().tensors().keySet();
        assertTrue(names.containsAll(Set.of("model.layers.0.mlp.fc1.weight", "model.layers.0.mlp.fc2.weight",
                "lm_head.weight")), names.toString());
        assertTrue(names.stream().noneMatch(n -> n.contains("norm") || n.endsWith(".bias")), names.toString());
        Set<String> biased = TinyConfigs.of("nanochat").with("attention_bias", true).checkpoint().tensors().keySet();
        assertTrue(biased.containsAll(Set.of("model.layers.0.self_attn.q_proj.bias",
                "model.layers.0.self_attn.o_proj.bias")), "attention_bias biases all four projections: " + biased);
    }

    /** The hooks are listed in the order the pass makes them: rotated, then normalised; the embedding norm's first. */
    @Test
    void theHooksFollowThePass() {
        List<String> names = List.copyOf(HookedAutoModel.hookNamesOf(TinyConfigs.of("nanochat")));
        assertEquals(List.of("hook_embed", "ln_embed.hook_scale", "ln_embed.hook_normalized",
                "blocks.0.hook_resid_pre"), names.subList(0, 4));
        assertTrue(names.indexOf("blocks.0.attn.hook_rot_k") < names.indexOf("blocks.0.attn.hook_q_normed"),
                names.toString());
        List<String> qwen3 = List.copyOf(HookedAutoModel.hookNamesOf(TinyConfigs.of("qwen3")));
        assertTrue(qwen3.indexOf("blocks.0.attn.hook_k_normed") < qwen3.indexOf("blocks.0.attn.hook_rot_q"),
                qwen3.toString());
    }

    /** The first block reads the normalised embedding, and the norm's hooks say what it divided by. */
    @Test
    void theFirstBlockReadsTheNormalisedEmbedding() {
        HookedAutoConfig config = TinyConfigs.of("nanochat");
        try (TensorScope scope = TensorScope.open();
             HookedAutoModel model = HookedAutoModel.create(config, 5, DType.FLOAT32, Device.CPU);
             ModelOutput out = model.forward(Tensor.of(new long[] {3, 9, 27, 17}, 1, 4))) {
            Tensor embed = out.cache().get("hook_embed");
            Tensor scale = out.cache().get("ln_embed.hook_scale");
            Tensor rms = embed.mul(embed).mean(-1, true).add(config.normEps()).sqrt();
            assertTrue(scale.allclose(rms, 1e-6, 1e-7), "the scale is sqrt(mean(x^2) + eps)");
            assertTrue(out.cache().get("blocks.0.hook_resid_pre").allclose(embed.div(rms), 1e-5, 1e-6));
            assertTrue(out.cache().get("ln_embed.hook_normalized")
                    .allclose(out.cache().get("blocks.0.hook_resid_pre"), 0, 0));
        }
    }

    /** The nanochat repository's own config, whose model_type is nanochat too, is refused by its keys. */
    @Test
    void theRepositorysOwnFormatIsRefused() {
        String m = assertThrows(IllegalArgumentException.class, () -> HookedAutoConfig.fromJsonText("""
                {"model_type": "nanochat", "n_embd": 2048, "n_layer": 32, "n_head": 16, "sequence_len": 2048,
                 "vocab_size": 65536}""").architecture()).getMessage();
        assertTrue(m.contains("n_embd") && m.contains("NanoChatForCausalLM"), m);
    }
}
