package io.arrakis.model.family;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.ConfigValues.refuseUnless;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.integer;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * GLM-4.7-Flash ({@code transformers/models/glm4_moe_lite}): DeepSeek-V3's blocks ({@link DeepseekV3#latentLayout}:
 * multi-head latent attention, GLM-4.5's mixture of experts) with the layers {@code mlp_layer_types} marks
 * {@code "dense"} having a dense gated MLP of {@code intermediate_size}, by default the first only. The multi-token
 * prediction layer stored as the block after the last is not read.
 *
 * <p>Keys: {@code Glm4MoeLiteConfig} of {@code transformers} 5.17, plus the rotary keys 4.x files carry and the
 * published files' {@code first_k_dense_replace} (which the class does not read: refused unless it gives the layers
 * {@code mlp_layer_types} gives), {@code num_nextn_predict_layers} and {@code topk_method} (refused unless
 * {@code "noaux_tc"}). The rotary embedding turns all {@code qk_rope_head_dim} features: a
 * {@code partial_rotary_factor} other than 1, with which transformers' attention fails, is refused.
 */
final class Glm4MoeLite extends ModelFamily {

    Glm4MoeLite() {
        super("glm4-moe-lite", "glm4_moe_lite", Keys.of(List.of(
                pos("vocab_size", 154880), pos("hidden_size", 2048), pos("intermediate_size", 10240),
                pos("moe_intermediate_size", 1536), count("num_hidden_layers", 47), pos("num_attention_heads", 20),
                pos("num_key_value_heads", 20), pos("n_shared_experts", 1), pos("n_routed_experts", 64),
                posDbl("routed_scaling_factor", 1.8), pos("kv_lora_rank", 512), posOrNull("q_lora_rank", 768),
                pos("qk_rope_head_dim", 64), pos("v_head_dim", 256), integer("qk_nope_head_dim", 192),
                pos("n_group", 1), pos("topk_group", 1), pos("num_experts_per_tok", 4), bool("norm_topk_prob", true),
                str("hidden_act", "silu"), pos("max_position_embeddings", 202752), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-5), bool("use_cache", true), tok("pad_token_id", null),
                tok("bos_token_id", 0), tok("eos_token_id", 1), pos("pretraining_tp", 1),
                bool("tie_word_embeddings", false), ropeParameters(), bool("rope_interleave", true),
                listOrNull("mlp_layer_types"), bool("attention_bias", false), dbl("attention_dropout", 0.0),
                posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"),
                integer("first_k_dense_replace", 1).optional(), integer("num_nextn_predict_layers", 1).optional(),
                str("topk_method", "noaux_tc").optional(), posDbl("partial_rotary_factor", 1.0).optional()),
                Map.of("num_local_experts", "n_routed_experts", "head_dim", "qk_rope_head_dim")));
    }

    @Override
    Architecture architecture(Settings s) {
        refuseUnless(s, "topk_method", "noaux_tc", "only DeepSeek-V3's \"noaux_tc\" routing is implemented");
        int layers = s.integer("num_hidden_layers");
        List<Boolean> sparse = Glm4Moe.mlpLayerTypes(s, layers);
        if (sparse == null) { // the class's default: the first layer dense, the others sparse
            sparse = new ArrayList<>(Collections.nCopies(layers, true));
            sparse.set(0, false);
        }
        if (s.has("first_k_dense_replace") && !Glm4Moe.sparseFrom(s, layers).equals(sparse)) {
            throw invalid("first_k_dense_replace", s.get("first_k_dense_replace"), "disagrees with the dense layers"
                    + " of mlp_layer_types, which transformers reads instead: give mlp_layer_types");
        }
        return DeepseekV3.latentLayout(s, s.bool("rope_interleave"))
                .mixtureOfExperts(Glm4Moe.mixture(s).withDenseLayers(sparse, s.integer("intermediate_size"))).build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return DeepseekV3.checkpointOf(a);
    }
}
