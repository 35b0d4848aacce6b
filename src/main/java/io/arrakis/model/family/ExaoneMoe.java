package io.arrakis.model.family;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.integer;
import static io.arrakis.model.family.Key.intOrStringOrNull;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.optionalHeadDim;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * EXAONE MoE ({@code transformers/models/exaone_moe}; K-EXAONE): {@link Exaone4 EXAONE 4}'s attention (per-head query
 * and key norms, sliding layers that rotate and, with a window, full layers that do not) in pre-norm blocks, as
 * OLMoE's, and {@link Glm4Moe GLM-4.5}'s mixture of experts ({@code num_experts}, a shared expert of
 * {@code num_shared_experts × moe_intermediate_size}) on the layers {@code mlp_layer_types} marks {@code "sparse"}, by
 * default all but the first {@code first_k_dense_replace}; the others have a dense gated MLP of
 * {@code intermediate_size}. The experts' correction bias is stored as {@code mlp.e_score_correction_bias}, as the
 * published files and transformers' {@code save_pretrained} name it; the multi-token prediction weights
 * ({@code mtp.*}) are not read. {@code sliding_window} may not be null, as {@code ExaoneMoeConfig} requires.
 *
 * <p>Keys: {@code ExaoneMoeConfig} of {@code transformers} 5.17, plus the rotary keys 4.x files carry. Checkpoint:
 * GLM-4.5's layout.
 */
final class ExaoneMoe extends ModelFamily {

    ExaoneMoe() {
        super("exaone-moe", "exaone_moe", Keys.of(List.of(
                pos("vocab_size", 102400), pos("hidden_size", 4096), pos("intermediate_size", 16384),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), pos("num_key_value_heads", 32),
                str("hidden_act", "silu"), pos("max_position_embeddings", 2048), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-5), bool("use_cache", true), tok("bos_token_id", 1), tok("eos_token_id", 53),
                tok("pad_token_id", 0), bool("tie_word_embeddings", false), ropeParameters(),
                dbl("attention_dropout", 0.0), pos("sliding_window", 4096),
                intOrStringOrNull("sliding_window_pattern", 4), listOrNull("layer_types"),
                listOrNull("mlp_layer_types"), integer("first_k_dense_replace", 1), pos("moe_intermediate_size", 1024),
                pos("num_experts", 64), pos("num_experts_per_tok", 8), pos("num_shared_experts", 1),
                bool("norm_topk_prob", true), posDbl("routed_scaling_factor", 2.5), pos("n_group", 1),
                pos("topk_group", 1), posDbl("rope_theta", 10000.0), optionalRopeScaling(), optionalHeadDim()),
                Map.of("num_local_experts", "num_experts")));
    }

    @Override
    Architecture architecture(Settings s) {
        int layers = s.integer("num_hidden_layers");
        return Exaone4.attention(s, layers).mlpWidth("moe_intermediate_size")
                .mixtureOfExperts(Glm4Moe.mixture(s, "num_experts", "num_shared_experts")
                        .withDenseLayers(sparseLayers(s, layers), s.integer("intermediate_size")))
                .build();
    }

    /** {@code mlp_layer_types}, or every layer from {@code first_k_dense_replace} on sparse. */
    private static List<Boolean> sparseLayers(Settings s, int layers) {
        List<Boolean> types = Glm4Moe.mlpLayerTypes(s, layers);
        return types != null ? types : Glm4Moe.sparseFrom(s, layers);
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return Glm4Moe.checkpointOf(a, "mtp.", "mlp.e_score_correction_bias");
    }
}
