package io.arrakis.model.family;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.asDouble;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.boolOrNull;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.dblOrNull;
import static io.arrakis.model.family.Key.integer;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * Mistral 4's text model ({@code transformers/models/mistral4}; Mistral Small 4): DeepSeek-V3's blocks
 * ({@link DeepseekV3#latentLayout}: multi-head latent attention, the scores' YaRN factor, RMSNorms, the first
 * {@code first_k_dense_replace} layers dense) with Llama 4's attention temperature on the rotated queries
 * ({@link Ministral3.Llama4Rotary}, YaRN by default), and a mixture routed as
 * {@link MixtureOfExperts.Routing#SOFTMAX_GROUPED_IN_MODEL_DTYPE} (softmax scores in the model's dtype, the groups
 * whose two best scores sum highest, {@code norm_topk_prob}, {@code routed_scaling_factor}) beside a shared expert of
 * {@code n_shared_experts × moe_intermediate_size}. Its rope object's {@code partial_rotary_factor} (where
 * {@code rope_parameters} lack one, {@code qk_rope_head_dim / (qk_nope_head_dim + qk_rope_head_dim)}, as the class
 * fills it in; for an older {@code rope_scaling} object, the top-level key) must make {@code qk_rope_head_dim} of the
 * query and key heads rotate, and its type must not be {@code "default"} where heads have unrotated features:
 * transformers' rotary embedding then makes tables of the whole head, on which its attention fails.
 *
 * <p>Keys: {@code Mistral4Config} of {@code transformers} 5.17, plus the rotary keys 4.x files carry
 * ({@code rope_interleave} and {@code norm_topk_prob} null read as false). Checkpoint: DeepSeek-V3's layout without
 * the experts' correction bias or a prediction layer, its experts fused as {@code transformers} stores them
 * ({@link LlamaLayout#fusedExperts}).
 */
final class Mistral4 extends ModelFamily {

    Mistral4() {
        super("mistral4", "mistral4", Keys.of(List.of(
                pos("vocab_size", 131072), pos("hidden_size", 4096), pos("intermediate_size", 12288),
                pos("moe_intermediate_size", 2048), count("num_hidden_layers", 36), pos("num_attention_heads", 32),
                posOrNull("num_key_value_heads", 32), pos("n_shared_experts", 1), pos("n_routed_experts", 128),
                posDbl("routed_scaling_factor", 1.0), pos("kv_lora_rank", 256), posOrNull("q_lora_rank", 1024),
                pos("qk_rope_head_dim", 64), posOrNull("v_head_dim", 128), integer("qk_nope_head_dim", 64),
                posOrNull("n_group", 1), posOrNull("topk_group", 1), posOrNull("num_experts_per_tok", 4),
                integer("first_k_dense_replace", 0), boolOrNull("norm_topk_prob", true), str("hidden_act", "silu"),
                pos("max_position_embeddings", 1048576), dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-6),
                bool("use_cache", true), tok("pad_token_id", 11), tok("bos_token_id", 1), tok("eos_token_id", 2),
                posOrNull("pretraining_tp", 1), bool("tie_word_embeddings", false), ropeParameters(),
                boolOrNull("rope_interleave", true), bool("attention_bias", false), dblOrNull("attention_dropout", 0.0),
                posDbl("rope_theta", 10000.0), optionalRopeScaling()),
                Map.of("num_local_experts", "n_routed_experts")));
    }

    @Override
    Architecture architecture(Settings s) {
        int rope = s.integer("qk_rope_head_dim");
        int head = s.integer("qk_nope_head_dim") + rope;
        Map<String, Object> defaults = Map.ofEntries(Map.entry("type", "yarn"), Map.entry("rope_theta", 10000.0),
                Map.entry("factor", 128.0), Map.entry("original_max_position_embeddings", 8192),
                Map.entry("beta_fast", 32.0), Map.entry("beta_slow", 1.0), Map.entry("mscale_all_dim", 1.0),
                Map.entry("mscale", 1.0), Map.entry("llama_4_scaling_beta", 0.1),
                Map.entry("partial_rotary_factor", (double) rope / head));
        // Mistral4Config gives its rope_parameters the rotating share where they lack one; an older rope_scaling
        // object, which replaces them, takes a top-level partial_rotary_factor instead
        boolean fromScaling = s.get("rope_scaling") instanceof Map<?, ?> m && !m.isEmpty();
        Object topLevel = s.get("partial_rotary_factor");
        Ministral3.Llama4Rotary rotary = Ministral3.Llama4Rotary.read(s, defaults, "mistral4", entries -> {
            Object partial = entries.remove("partial_rotary_factor");
            if (partial == null) {
                partial = fromScaling ? topLevel : (Object) ((double) rope / head);
            }
            double factor = partial == null ? 1.0 : asDouble(partial);
            if ((int) (head * factor) != rope) { // the rotary embedding's width, as transformers derives it
                throw invalid("rope_parameters.partial_rotary_factor", partial, "must make qk_rope_head_dim = "
                        + rope + " of the " + head + " features of a query head rotate, as the attention rotates");
            }
        });
        Settings r = rotary.settings().with("partial_rotary_factor", null); // read above, for the rope only
        ConfigValues.requireSet(r, "the router needs it", "n_group", "topk_group", "num_experts_per_tok");
        int layers = r.integer("num_hidden_layers");
        Architecture a = DeepseekV3.latentLayout(r, Boolean.TRUE.equals(r.get("rope_interleave")))
                .queryTemperature(rotary.temperature())
                .mixtureOfExperts(MixtureOfExperts.softmaxGroupedInModelDtype(r.integer("n_routed_experts"),
                        r.integer("num_experts_per_tok"), Glm4Moe.grouped(r, "n_routed_experts"))
                        .withUngatedSharedExpert(r.integer("n_shared_experts") * r.integer("moe_intermediate_size"))
                        .withDenseLayers(Glm4Moe.sparseFrom(r, layers), r.integer("intermediate_size")))
                .build();
        if (a.rope().scaling() instanceof Rope.Unscaled && head != rope) {
            throw invalid("rope_parameters.rope_type", "default", "makes transformers' rotary tables of the whole head"
                    + " (" + head + " features) for the " + rope + " that rotate, on which its attention fails; give a"
                    + " scaled rope type");
        }
        return a;
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return Glm4Moe.layout(a, null, null, DeepseekV3.latentAttentionTensors(a),
                LlamaLayout.fusedExperts(a, "mlp.experts.")).build();
    }
}
