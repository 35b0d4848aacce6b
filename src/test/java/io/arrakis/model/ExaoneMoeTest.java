package io.arrakis.model;

import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.MixtureOfExperts;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * EXAONE MoE's defaults, {@code ExaoneMoeConfig}'s, its {@code mlp_layer_types}, what it leaves unread and its
 * refusals. Its forward pass is checked against {@link Glm4MoeReference}'s EXAONE MoE model (a window shorter than the
 * input, a full layer that does not rotate, a dense layer between sparse ones) by {@link ModelParityTest} and every
 * family-generic test.
 */
class ExaoneMoeTest {

    @Test
    void defaultsAreExaoneMoeConfigs() {
        HookedAutoConfig c = HookedAutoConfig.of("exaone_moe");
        Architecture a = c.architecture();
        MixtureOfExperts moe = a.moe();
        assertEquals(new MixtureOfExperts.Grouped(1, 1, true, 2.5), moe.grouped());
        assertEquals(64, moe.experts());
        assertEquals(8, moe.topK());
        assertEquals(1024, moe.sharedWidth());
        assertEquals(16384, moe.denseWidth());
        assertFalse(moe.sparse(0));
        assertTrue(moe.sparse(1) && moe.sparse(31));
        assertEquals(Architecture.QkNorm.PER_HEAD, a.qkNorm());
        assertTrue(a.inputNorms() && !a.outputNorms(), "pre-norm blocks, unlike EXAONE 4's");
        for (int layer = 0; layer < 32; layer++) { // every fourth layer full and not rotating
            boolean full = (layer + 1) % 4 == 0;
            assertEquals(full ? 0 : 4096, a.attentionWindow(layer), "layer " + layer);
            assertEquals(!full, c.rotates(layer), "layer " + layer);
        }
        assertEquals(List.of("mtp."), c.checkpoint().unread());
        long d = 4096;
        long attention = 4 * d * d + 2 * 128;
        long sparse = 64 * 3 * d * 1024 + 3 * d * 1024 + 64 * d + 64;
        assertEquals(2 * 102400 * d + 32 * (attention + 2 * d) + 3 * d * 16384 + 31 * sparse + d, c.parameterCount());
    }

    @Test
    void theCorrectionBiasHasItsPublishedNameAndHeadDimFollowsTheHeads() {
        HookedAutoConfig tiny = TinyConfigs.of("exaone-moe");
        Set<String> names = tiny.checkpoint().tensors().keySet();
        assertTrue(names.contains("model.layers.1.mlp.e_score_correction_bias"), names.toString());
        assertFalse(names.contains("model.layers.1.mlp.gate.e_score_correction_bias"), names.toString());
        assertEquals(16, tiny.with("num_attention_heads", 2).with("num_key_value_heads", 2).dHead(),
                "hidden_size / num_attention_heads where head_dim is absent");
        String m = assertThrows(IllegalArgumentException.class,
                () -> tiny.with("sliding_window", null).architecture()).getMessage();
        assertTrue(m.startsWith("sliding_window"), m);
    }

    @Test
    void mlpLayerTypesChooseTheSparseLayersAndAreChecked() {
        HookedAutoConfig tiny = TinyConfigs.of("exaone-moe");
        MixtureOfExperts moe = tiny.with("mlp_layer_types", List.of("sparse", "dense")).architecture().moe();
        assertTrue(moe.sparse(0));
        assertFalse(moe.sparse(1));
        for (List<String> bad : List.of(List.of("sparse"), List.of("sparse", "moe"))) {
            String m = assertThrows(IllegalArgumentException.class,
                    () -> tiny.with("mlp_layer_types", bad).architecture()).getMessage();
            assertTrue(m.startsWith("mlp_layer_types = "), m);
        }
    }
}
