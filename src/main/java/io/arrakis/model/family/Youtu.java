package io.arrakis.model.family;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.boolOrNull;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dblOrNull;
import static io.arrakis.model.family.Key.integer;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.EMBED;
import static io.arrakis.model.family.Slot.LN1_W;
import static io.arrakis.model.family.Slot.LN2_W;
import static io.arrakis.model.family.Slot.LNF_W;
import static io.arrakis.model.family.Slot.W_GATE;
import static io.arrakis.model.family.Slot.W_IN;
import static io.arrakis.model.family.Slot.W_OUT;

/**
 * Tencent's Youtu-LLM ({@code transformers/models/youtu}; Youtu-LLM-2B): Llama's blocks with DeepSeek-V3's multi-head
 * latent attention ({@link DeepseekV3#latentLayout}: queries from their own latent where {@code q_lora_rank} is set,
 * keys and values from a shared latent, the rotated features laid out from adjacent pairs where
 * {@code rope_interleave}) and a dense gated MLP of {@code intermediate_size} on every layer; embeddings tied.
 *
 * <p>Keys: {@code YoutuConfig} of {@code transformers} 5.17, plus the rotary keys 4.x files carry. A null
 * {@code initializer_range} is {@code 2 / sqrt(5 · hidden_size)}, as the class fills it in (it sets the spread of
 * random weights only; {@code embedding_initializer_range} is accepted and not read). Checkpoint: Llama's layout with
 * DeepSeek-V3's attention tensors.
 */
final class Youtu extends ModelFamily {

    Youtu() {
        super("youtu", "youtu", Keys.of(List.of(
                pos("vocab_size", 128256), pos("hidden_size", 2048), pos("intermediate_size", 6144),
                count("num_hidden_layers", 32), pos("num_attention_heads", 16), pos("num_key_value_heads", 16),
                pos("kv_lora_rank", 512), posOrNull("q_lora_rank", 1536), pos("qk_rope_head_dim", 64),
                posOrNull("v_head_dim", 128), integer("qk_nope_head_dim", 128), str("hidden_act", "silu"),
                pos("max_position_embeddings", 131072), dblOrNull("initializer_range", null),
                posDbl("rms_norm_eps", 1e-6), bool("use_cache", true), tok("pad_token_id", null),
                tok("bos_token_id", 128000), tok("eos_token_id", 128001), bool("tie_word_embeddings", true),
                ropeParameters(), boolOrNull("rope_interleave", true), bool("attention_bias", false),
                dblOrNull("attention_dropout", 0.0), dblOrNull("embedding_initializer_range", null),
                posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling")),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        Settings filled = s.get("initializer_range") != null ? s
                : s.with("initializer_range", 2.0 / Math.sqrt(5.0 * s.integer("hidden_size")));
        return DeepseekV3.latentLayout(filled, Boolean.TRUE.equals(s.get("rope_interleave")), "intermediate_size")
                .build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return checkpointOf(a);
    }

    /** Llama's layout with DeepSeek-V3's latent attention tensors and a dense gated MLP on every layer. */
    static Checkpoint checkpointOf(Architecture a) {
        long d = a.dModel();
        long mlp = a.dMlp();
        return Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layer(stored("input_layernorm.weight", LN1_W, d))
                .layer(DeepseekV3.latentAttentionTensors(a).toArray(CheckpointTensor[]::new))
                .layer(stored("post_attention_layernorm.weight", LN2_W, d),
                        linear("mlp.gate_proj.weight", W_GATE, mlp, d), linear("mlp.up_proj.weight", W_IN, mlp, d),
                        linear("mlp.down_proj.weight", W_OUT, d, mlp))
                .global(stored("norm.weight", LNF_W, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}
