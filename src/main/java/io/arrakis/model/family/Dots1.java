package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.LayerAttention;
import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.QkNorm;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.boolOrNull;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.dblOrNull;
import static io.arrakis.model.family.Key.integer;
import static io.arrakis.model.family.Key.integerOrNull;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.optionalHeadDim;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * rednote's dots.llm1 ({@code transformers/models/dots1}): Qwen3's attention (per-head query and key RMSNorms before
 * the rotary embedding, biases on all four projections as {@code attention_bias} says, sliding layers from
 * {@code max_window_layers} on where {@code sliding_window} is set, or as {@code layer_types} says) and DeepSeek-V3's
 * mixture as GLM-4.5's blocks have it ({@link Glm4Moe#mixture}: sigmoid scores, the correction bias choosing within
 * the best {@code topk_group} of {@code n_group} groups, {@code norm_topk_prob}, {@code routed_scaling_factor}, a
 * shared expert of {@code n_shared_experts × moe_intermediate_size}), after {@code first_k_dense_replace} dense layers
 * of {@code intermediate_size}.
 *
 * <p>Keys: {@code Dots1Config} of {@code transformers} 5.17, plus {@code head_dim} and the rotary keys 4.x files carry,
 * except that {@code n_routed_experts}, {@code n_shared_experts} and {@code num_experts_per_tok}, which the class
 * leaves null (its mixture then fails), default to dots.llm1's 128, 2 and 6; a file that sets one null is refused.
 * Checkpoint: GLM-4.5's layout ({@link Glm4Moe#checkpointOf}), the experts one tensor each.
 */
final class Dots1 extends ModelFamily {

    Dots1() {
        super("dots1", "dots1", Keys.of(List.of(
                pos("vocab_size", 152064), pos("hidden_size", 4608), pos("intermediate_size", 10944),
                pos("moe_intermediate_size", 1408), count("num_hidden_layers", 62), pos("num_attention_heads", 32),
                posOrNull("num_key_value_heads", 32), posOrNull("n_shared_experts", 2),
                posOrNull("n_routed_experts", 128), posOrNull("n_group", 1), posOrNull("topk_group", 1),
                posOrNull("num_experts_per_tok", 6), integer("first_k_dense_replace", 0),
                boolOrNull("norm_topk_prob", false), str("hidden_act", "silu"), pos("max_position_embeddings", 2048),
                dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-6), bool("use_cache", true),
                bool("tie_word_embeddings", false), ropeParameters(), bool("attention_bias", false),
                dblOrNull("attention_dropout", 0.0), posDbl("routed_scaling_factor", 1.0),
                posOrNull("sliding_window", 4096), integerOrNull("max_window_layers", 62), listOrNull("layer_types"),
                tok("pad_token_id", null), tok("bos_token_id", null), tok("eos_token_id", null), optionalHeadDim(),
                posDbl("rope_theta", 10000.0), optionalRopeScaling()),
                Map.of("num_local_experts", "n_routed_experts")));
    }

    @Override
    Architecture architecture(Settings s) {
        ConfigValues.requireSet(s, "the mixture of experts needs it", "n_routed_experts", "n_shared_experts",
                "num_experts_per_tok", "n_group", "topk_group");
        int layers = s.integer("num_hidden_layers");
        Integer window = s.integerOrNull("sliding_window");
        List<LayerAttention> perLayer = Qwen2.slidingLayers(s, layers, window != null);
        boolean bias = s.bool("attention_bias");
        return LlamaLayout.standardKeys(s).mlpWidth("moe_intermediate_size").headDim("head_dim")
                .norm(Norm.RMS_NORM, "rms_norm_eps").rotary("rope_theta", null).biases(bias, bias, false)
                .qkNorm(QkNorm.PER_HEAD).slidingWindow(window).layerAttention(perLayer)
                .mixtureOfExperts(Glm4Moe.mixture(s).withDenseLayers(Glm4Moe.sparseFrom(s, layers),
                        s.integer("intermediate_size")))
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return Glm4Moe.checkpointOf(a, null, "mlp.gate.e_score_correction_bias");
    }
}
