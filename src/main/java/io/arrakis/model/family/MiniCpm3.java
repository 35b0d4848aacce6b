package io.arrakis.model.family;

import java.util.List;
import java.util.Map;

import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.dblOrNull;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.posOrNull;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;

/**
 * MiniCPM3 ({@code transformers/models/minicpm3}, openbmb's MiniCPM3-4B): Llama's blocks with DeepSeek-V2's multi-head
 * latent attention ({@link DeepseekV3#latentLayout}; its rotated features turned as halves, not pairs), a dense gated
 * MLP, the token embeddings multiplied by {@code scale_emb} (rounded to the model's dtype, as its scaled embedding
 * holds it), each attention and MLP output by {@code scale_depth / sqrt(num_hidden_layers)} before it joins the
 * residual stream, and the final norm's output divided by {@code hidden_size / dim_model_base} before the head.
 *
 * <p>Keys: {@code MiniCPM3Config} of {@code transformers} 5.17 (a {@code LlamaConfig} with its own defaults); a null
 * {@code v_head_dim}, {@code scale_depth} or {@code dim_model_base} is {@code hidden_size / num_attention_heads},
 * {@code sqrt(num_hidden_layers)} and {@code hidden_size}, as the class fills them in. MiniCPM3-4B's {@code longrope}
 * {@code rope_scaling} gives no {@code factor}, which transformers 5.17 fails on: it is read as Phi-3's are,
 * {@code max_position_embeddings / original_max_position_embeddings} (1 there). Refused: {@code mlp_bias} true (not
 * implemented; the published model has none). Checkpoint: Llama's layout with DeepSeek-V3's attention tensors.
 */
final class MiniCpm3 extends ModelFamily {

    MiniCpm3() {
        super("minicpm3", "minicpm3", Keys.of(List.of(
                pos("vocab_size", 73448), pos("hidden_size", 2560), pos("intermediate_size", 6400),
                count("num_hidden_layers", 62), pos("num_attention_heads", 40), posOrNull("num_key_value_heads", 40),
                str("hidden_act", "silu"), pos("max_position_embeddings", 32768), dbl("initializer_range", 0.1),
                posDbl("rms_norm_eps", 1e-5), bool("use_cache", true), tok("pad_token_id", null),
                tok("bos_token_id", 1), tok("eos_token_id", 2), posOrNull("pretraining_tp", 1),
                bool("tie_word_embeddings", true), ropeParameters(), bool("attention_bias", false),
                dblOrNull("attention_dropout", 0.0), bool("mlp_bias", false), posOrNull("head_dim", null),
                pos("kv_lora_rank", 256), posOrNull("q_lora_rank", 768), pos("qk_nope_head_dim", 64),
                pos("qk_rope_head_dim", 32), posOrNull("v_head_dim", null), posDbl("scale_emb", 12),
                dblOrNull("scale_depth", 1.4), posOrNull("dim_model_base", 256), posDbl("rope_theta", 10000.0),
                mapOrNull("rope_scaling")),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings s) {
        if (s.bool("mlp_bias")) {
            throw invalid("mlp_bias", true, "is not implemented: the published MiniCPM3's MLP has no biases");
        }
        LlamaLayout.requireHeadsDivideWidth(s, "MiniCPM3Config");
        int width = s.integer("hidden_size");
        int layers = s.integer("num_hidden_layers");
        Settings filled = s.get("v_head_dim") != null ? s
                : s.with("v_head_dim", width / s.integer("num_attention_heads"));
        double depth = s.get("scale_depth") == null ? Math.sqrt(layers) : s.number("scale_depth");
        int base = s.get("dim_model_base") == null ? width : s.integer("dim_model_base");
        return DeepseekV3.latentLayout(filled, false, "intermediate_size").embeddingScale(s.number("scale_emb"))
                .residualMultiplier(depth / Math.sqrt(layers)).headInputDivisor((double) width / base).build();
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return Youtu.checkpointOf(a);
    }
}
