package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.RotaryPrecision;
import io.arrakis.model.family.MixtureOfExperts.Grouped;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.ConfigValues.refuseUnless;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.boolOrNull;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.dblOrNull;
import static io.arrakis.model.family.Key.integer;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.strOrNull;
import static io.arrakis.model.family.Key.tok;

/**
 * DeepSeek-V2 ({@code transformers/models/deepseek_v2}; DeepSeek-V2, V2-Lite, V2.5, DeepSeek-Coder-V2): DeepSeek-V3's
 * multi-head latent attention ({@link DeepseekV3#latentLayout}) with its rotated features turned in adjacent pairs as
 * complex numbers, in float32, and left in that order; RMSNorm blocks whose first {@code first_k_dense_replace} layers
 * have a dense gated MLP and the others {@code n_routed_experts} experts of {@code moe_intermediate_size} routed as
 * {@link MixtureOfExperts.Routing#SOFTMAX_GROUPED} ({@code topk_method} {@code "greedy"}, or
 * {@code "group_limited_greedy"} over {@code n_group} groups of which {@code topk_group}; the chosen softmax scores
 * times {@code routed_scaling_factor}) beside a shared expert of {@code n_shared_experts × moe_intermediate_size}.
 *
 * <p>Keys: {@code DeepseekV2Config} of {@code transformers} 5.17, plus the rotary keys 4.x files carry and the
 * published files' {@code scoring_func} and {@code moe_layer_freq} (refused unless {@code "softmax"} and 1), except
 * that {@code num_experts_per_tok}, which the class leaves null (its router then fails), defaults to DeepSeek-V2-Lite's
 * 6. Refused: {@code norm_topk_prob} true (transformers never normalises the chosen scores, DeepSeek's own code does:
 * the published models set false), another {@code topk_method}, {@code mlp_bias} true (biases on the dense and shared
 * MLPs, which no published model has), the latent attention's refusals, and {@code hidden_size} not a multiple of the
 * heads, as the class validates.
 */
final class DeepseekV2 extends ModelFamily {

    DeepseekV2() {
        super("deepseek-v2", "deepseek_v2", Keys.of(List.of(
                pos("vocab_size", 102400), pos("hidden_size", 4096), pos("intermediate_size", 11008),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", null),
                str("hidden_act", "silu"), pos("max_position_embeddings", 2048), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-6), bool("use_cache", true), tok("pad_token_id", null),
                tok("bos_token_id", 1), tok("eos_token_id", 2), posOrNull("pretraining_tp", 1),
                bool("tie_word_embeddings", false), ropeParameters(), bool("attention_bias", false),
                dblOrNull("attention_dropout", 0.0), bool("mlp_bias", false), posOrNull("head_dim", null),
                integer("first_k_dense_replace", 0), pos("kv_lora_rank", 512), posOrNull("q_lora_rank", 1536),
                posOrNull("n_group", null), pos("n_routed_experts", 64), pos("n_shared_experts", 2),
                integer("qk_nope_head_dim", 128), pos("qk_rope_head_dim", 64), posDbl("routed_scaling_factor", 1.0),
                posOrNull("topk_group", null), strOrNull("topk_method", "greedy"), boolOrNull("norm_topk_prob", false),
                pos("v_head_dim", 128), posOrNull("num_experts_per_tok", 6), pos("moe_intermediate_size", 1407),
                posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"), str("scoring_func", "softmax").optional(),
                integer("moe_layer_freq", 1).optional()),
                Map.of("num_experts", "n_routed_experts")));
    }

    @Override
    Architecture architecture(Settings s) {
        refuseUnless(s, "scoring_func", "softmax", "only DeepSeek-V2's softmax scores are implemented");
        refuseUnless(s, "moe_layer_freq", 1, "every layer from first_k_dense_replace on is sparse in transformers");
        if (Boolean.TRUE.equals(s.get("norm_topk_prob"))) {
            throw invalid("norm_topk_prob", true, "is not implemented: transformers' DeepSeek-V2 does not normalise"
                    + " the chosen scores, DeepSeek's own code does; the published models set false");
        }
        if (s.bool("mlp_bias")) {
            throw invalid("mlp_bias", true, "is not implemented: it would bias the dense and shared MLPs beside"
                    + " experts that have none, which no published DeepSeek-V2 does");
        }
        LlamaLayout.requireHeadsDivideWidth(s, "DeepseekV2Config");
        int layers = s.integer("num_hidden_layers");
        // its attention reads no rope_interleave: a file's is left unread (SGLang's, which reads it, turns pairs too)
        return DeepseekV3.latentLayout(s, false).rotaryInterleaved().rotaryPrecision(RotaryPrecision.FLOAT32)
                .mixtureOfExperts(mixture(s).withDenseLayers(Glm4Moe.sparseFrom(s, layers),
                        s.integer("intermediate_size")))
                .build();
    }

    /** The experts {@code topk_method} routes, with the shared expert. */
    private static MixtureOfExperts mixture(Settings s) {
        int experts = s.integer("n_routed_experts");
        Integer topK = s.integerOrNull("num_experts_per_tok");
        if (topK == null) {
            throw invalid("num_experts_per_tok", null, "must be set: it is how many experts each token goes to");
        }
        String method = s.stringOrNull("topk_method");
        int groups = 1;
        int topGroups = 1;
        if ("group_limited_greedy".equals(method)) {
            Integer n = s.integerOrNull("n_group");
            Integer top = s.integerOrNull("topk_group");
            if (n == null || top == null) {
                throw invalid(n == null ? "n_group" : "topk_group", null, "must be set for group_limited_greedy");
            }
            if (experts % n != 0) {
                throw invalid("n_group", n, "must divide n_routed_experts = " + experts);
            }
            if (top > n) {
                throw invalid("topk_group", top, "exceeds n_group = " + n);
            }
            groups = n;
            topGroups = top;
        } else if (!"greedy".equals(method)) {
            throw invalid("topk_method", method, "must be \"greedy\" or \"group_limited_greedy\", the routings"
                    + " transformers' DeepSeek-V2 computes");
        }
        if (topK > topGroups * (experts / groups)) {
            throw invalid("num_experts_per_tok", topK, "exceeds the " + topGroups * (experts / groups)
                    + " experts a token may choose from");
        }
        return MixtureOfExperts.softmaxGrouped(experts, topK, new Grouped(groups, topGroups, false,
                        s.number("routed_scaling_factor")))
                .withUngatedSharedExpert(s.integer("n_shared_experts") * s.integer("moe_intermediate_size"));
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return DeepseekV3.checkpointOf(a, null, null);
    }
}
