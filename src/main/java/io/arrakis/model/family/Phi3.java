package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.fusedLinear;
import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.part;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.optionalHeadDim;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.*;

/**
 * Phi-3 ({@code transformers/models/phi3}): Llama without biases, rotary embeddings on
 * {@code int(d_head * partial_rotary_factor)} dimensions, {@code sliding_window} on every layer when not null, and
 * fused projections: {@code qkv_proj} ({@code [q | k | v]} rows) and {@code gate_up_proj} ({@code [gate | up]}).
 * Its rotary embedding is unscaled or {@code longrope} (the long-context models': Phi-3-mini-128k, Phi-3.5-mini,
 * Phi-4-mini), which transformers' configuration class also makes of {@code su} and {@code yarn}, and whose
 * pretraining context is the top-level {@code original_max_position_embeddings}; it takes no other type.
 */
final class Phi3 extends ModelFamily {

    Phi3() {
        super("phi3", "phi3", Keys.of(List.of(
                pos("vocab_size", 32064), pos("hidden_size", 3072), pos("intermediate_size", 8192),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", null),
                dbl("resid_pdrop", 0.0), dbl("embd_pdrop", 0.0), dbl("attention_dropout", 0.0),
                str("hidden_act", "silu"), pos("max_position_embeddings", 4096),
                pos("original_max_position_embeddings", 4096), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-5), bool("use_cache", true), bool("tie_word_embeddings", false),
                posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"), posDbl("partial_rotary_factor", 1.0),
                tok("bos_token_id", 1), tok("eos_token_id", 32000), tok("pad_token_id", 32000),
                posOrNull("sliding_window", null), optionalHeadDim(), ropeParameters()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        Architecture a = LlamaLayout.standardKeys(suAndYarnAsLongRope(s)).headDim("head_dim")
                .norm(Norm.RMS_NORM, "rms_norm_eps").rotary("rope_theta", "partial_rotary_factor")
                .slidingWindow(s.integerOrNull("sliding_window"))
                .build();
        if (!(a.rope().scaling() instanceof Rope.Unscaled || a.rope().scaling() instanceof Rope.LongRope)) {
            String key = s.get("rope_scaling") instanceof Map<?, ?> m && !m.isEmpty() ? "rope_scaling" : "rope_parameters";
            Map<?, ?> object = (Map<?, ?>) s.get(key);
            throw invalid(key + ".rope_type", object.containsKey("rope_type") ? object.get("rope_type") : object.get("type"),
                    "is not a rope type of Phi-3: transformers' Phi3Config takes \"default\" and \"longrope\" (it reads"
                    + " \"yarn\" and \"su\" as \"longrope\")");
        }
        return a;
    }

    /**
     * The settings with a rotary object of type {@code "su"} or {@code "yarn"} read as {@code "longrope"}, as
     * Phi3Config reads it. It renames the type after moving the top-level {@code original_max_position_embeddings}
     * into the object, which it does for {@code "yarn"} but not {@code "su"}, and then requires the key there: an
     * {@code "su"} object without it is refused, as transformers refuses it.
     */
    private static Settings suAndYarnAsLongRope(Settings s) {
        Settings read = s;
        for (String key : List.of("rope_scaling", "rope_parameters")) {
            if (s.get(key) instanceof Map<?, ?> object) {
                Map<Object, Object> renamed = new LinkedHashMap<>(object);
                for (String typeKey : List.of("rope_type", "type")) {
                    Object type = object.get(typeKey);
                    if ("su".equals(type) && !object.containsKey("original_max_position_embeddings")) {
                        throw invalid(key + "." + typeKey, type, "needs original_max_position_embeddings in the"
                                + " object itself: Phi3Config reads \"su\" as \"longrope\", which requires it there,"
                                + " but moves a top-level one there only for \"longrope\" and \"yarn\"");
                    }
                    if ("su".equals(type) || "yarn".equals(type)) {
                        renamed.put(typeKey, "longrope");
                    }
                }
                read = read.with(key, renamed);
            }
        }
        return read;
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long q = (long) a.nHeads() * a.dHead();
        long kv = (long) a.nKvHeads() * a.dHead();
        long mlp = a.dMlp();
        return Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layer(stored("input_layernorm.weight", LN1_W, d),
                        fusedLinear("self_attn.qkv_proj.weight", d, 1, part(WQ, q), part(WK, kv), part(WV, kv)),
                        linear("self_attn.o_proj.weight", WO, d, q),
                        stored("post_attention_layernorm.weight", LN2_W, d),
                        fusedLinear("mlp.gate_up_proj.weight", d, 1, part(W_GATE, mlp), part(W_IN, mlp)),
                        linear("mlp.down_proj.weight", W_OUT, d, mlp))
                .global(stored("norm.weight", LNF_W, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}
