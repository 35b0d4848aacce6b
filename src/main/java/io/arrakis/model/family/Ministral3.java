package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

import static io.arrakis.model.family.ConfigValues.asDouble;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.optionalRopeScaling;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * Ministral 3's text model ({@code transformers/models/ministral3}; Ministral 3 3B, 8B and 14B, whose published
 * checkpoints are Mistral 3's multimodal ones, {@code text_config.model_type} {@code ministral3}): Mistral's layers,
 * with Llama 4's attention temperature on the rotated queries ({@link QueryTemperature}: {@code llama_4_scaling_beta}
 * over {@code original_max_position_embeddings} positions, both read from {@code rope_parameters}), and YaRN by
 * default. {@code rope_scaling}, where a file gives it, replaces {@code rope_parameters} as
 * {@code convert_rope_params_to_dict} replaces it; a top-level {@code rope_theta} fills in a missing base.
 * {@code transformers} fails on a configuration without {@code llama_4_scaling_beta}, or without
 * {@code original_max_position_embeddings} for a rope type that does not default it: both are refused.
 *
 * <p>Keys: {@code Ministral3Config} of {@code transformers} 5.17. Checkpoint: Llama's layout.
 */
final class Ministral3 extends ModelFamily {
    /** {@code Ministral3Config.__post_init__}'s rotary settings where the configuration gives none. */
    private static final Map<String, Object> DEFAULT_ROTARY = Map.of("type", "yarn", "rope_theta", 1_000_000.0,
            "factor", 16.0, "original_max_position_embeddings", 16384, "beta_fast", 32.0, "beta_slow", 1.0,
            "mscale_all_dim", 1.0, "mscale", 1.0, "llama_4_scaling_beta", 0.1);
    /** Rope types whose {@code original_max_position_embeddings} defaults to {@code max_position_embeddings}. */
    private static final Set<String> DEFAULTING_ORIGINAL = Set.of("llama3", "yarn", "longrope");

    Ministral3() {
        super("ministral3", "ministral3", Keys.of(List.of(
                pos("vocab_size", 131072), pos("hidden_size", 4096), pos("intermediate_size", 14336),
                count("num_hidden_layers", 34), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", 8),
                posOrNull("head_dim", 128), str("hidden_act", "silu"), pos("max_position_embeddings", 262144),
                dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-5), bool("use_cache", true),
                tok("pad_token_id", 11), tok("bos_token_id", 1), tok("eos_token_id", 2),
                bool("tie_word_embeddings", false), posOrNull("sliding_window", null), dbl("attention_dropout", 0.0),
                posDbl("rope_theta", 10000.0), optionalRopeScaling(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        Llama4Rotary rotary = Llama4Rotary.read(s, DEFAULT_ROTARY, "ministral3", entries -> { });
        return LlamaLayout.standardKeys(rotary.settings()).headDim("head_dim").norm(Norm.RMS_NORM, "rms_norm_eps")
                .rotary("rope_theta", null).slidingWindow(s.integerOrNull("sliding_window"))
                .queryTemperature(rotary.temperature())
                .build();
    }

    /**
     * The rotary settings of a family with Llama 4's attention temperature (ministral3, mistral4), which its
     * {@code rope_parameters} (or {@code rope_scaling}, which replaces it where a file gives it, as
     * {@code convert_rope_params_to_dict} does) carry beside the rope: {@code llama_4_scaling_beta}, read over
     * {@code original_max_position_embeddings} positions, both taken out, with {@code max_position_embeddings} (the
     * configuration's own copy, which no rope type reads); a top-level {@code rope_theta} fills in a missing base.
     *
     * @param settings the settings with the rope object the builder reads
     * @param temperature the query temperature
     */
    record Llama4Rotary(Settings settings, QueryTemperature temperature) {

        /**
         * Reads {@code s}'s rope object, or {@code defaults} where it gives none (as the family's configuration class
         * fills it in); {@code adjust} sees the object before the builder does (to check or take out entries only the
         * family reads).
         */
        static Llama4Rotary read(Settings s, Map<String, Object> defaults, String family,
                                 Consumer<Map<Object, Object>> adjust) {
            Map<?, ?> scaling = s.mapOrNull("rope_scaling");
            scaling = scaling == null || scaling.isEmpty() ? null : scaling; // rope_scaling or rope_parameters
            String key = scaling != null ? "rope_scaling" : "rope_parameters";
            Map<?, ?> given = scaling != null ? scaling : s.mapOrNull("rope_parameters");
            Map<Object, Object> rotary = new LinkedHashMap<>(given != null ? given : defaults);
            rotary.putIfAbsent("rope_theta", s.number("rope_theta"));
            rotary.remove("max_position_embeddings");
            Object beta = rotary.remove("llama_4_scaling_beta");
            if (!(beta instanceof Number)) {
                throw invalid(key + ".llama_4_scaling_beta", beta, "must be a number: " + family + " multiplies its"
                        + " queries by 1 + llama_4_scaling_beta · ln(1 + floor(position /"
                        + " original_max_position_embeddings))");
            }
            Object type = rotary.containsKey("rope_type") ? rotary.get("rope_type")
                    : rotary.getOrDefault("type", "default");
            if (!(type instanceof String)) {
                throw invalid(key + ".rope_type", type, "must be a rope type's name");
            }
            Object original = rotary.get("original_max_position_embeddings");
            if (DEFAULTING_ORIGINAL.contains(type)) {
                // as the rotary scaling reads it: a top-level value wins (standardize_rope_params), then the entry,
                // then max_position_embeddings; the attention reads the same entry
                Object topLevel = s.get("original_max_position_embeddings");
                original = topLevel != null ? topLevel : original != null ? original
                        : s.integer("max_position_embeddings");
            }
            if (!(original instanceof Integer interval) || interval < 1) {
                throw invalid(key + ".original_max_position_embeddings", original, "must be a positive integer: the"
                        + " interval of " + family + "'s query temperature");
            }
            if (!DEFAULTING_ORIGINAL.contains(type)) {
                rotary.remove("original_max_position_embeddings"); // read by the temperature only
            }
            adjust.accept(rotary);
            Settings rotating = scaling != null ? s.with("rope_scaling", rotary).with("rope_parameters", null)
                    : s.with("rope_parameters", rotary);
            return new Llama4Rotary(rotating, new QueryTemperature(asDouble(beta), interval, 0, false, false));
        }
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return LlamaLayout.checkpoint(a);
    }
}
