package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.QkNorm;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.describe;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.optionalHeadDim;
import static io.arrakis.model.family.Key.optionalPos;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.CONV_B_IN;
import static io.arrakis.model.family.Slot.CONV_B_OUT;
import static io.arrakis.model.family.Slot.CONV_KERNEL;
import static io.arrakis.model.family.Slot.CONV_KERNEL_BIAS;
import static io.arrakis.model.family.Slot.CONV_W_IN;
import static io.arrakis.model.family.Slot.CONV_W_OUT;
import static io.arrakis.model.family.Slot.EMBED;
import static io.arrakis.model.family.Slot.K_NORM;
import static io.arrakis.model.family.Slot.LN1_W;
import static io.arrakis.model.family.Slot.LN2_W;
import static io.arrakis.model.family.Slot.LNF_W;
import static io.arrakis.model.family.Slot.Q_NORM;
import static io.arrakis.model.family.Slot.WK;
import static io.arrakis.model.family.Slot.WO;
import static io.arrakis.model.family.Slot.WQ;
import static io.arrakis.model.family.Slot.WV;
import static io.arrakis.model.family.Slot.W_GATE;
import static io.arrakis.model.family.Slot.W_IN;
import static io.arrakis.model.family.Slot.W_OUT;

/**
 * Liquid AI's LFM2 ({@code transformers/models/lfm2}): a hybrid of short convolutions ({@link ShortConvolution}, the
 * {@code "conv"} layers) and grouped-query softmax attention ({@code "full_attention"}, the layers
 * {@code layer_types} or {@code full_attn_idxs} name), each block pre-norm with RMSNorms ({@code operator_norm},
 * {@code ffn_norm}) and a SiLU-gated MLP whose width {@code block_auto_adjust_ff_dim} makes two thirds of
 * {@code intermediate_size}, times {@code block_ffn_dim_multiplier}, rounded up to {@code block_multiple_of}. Its
 * attention normalises each query and key head ({@code q_layernorm}, {@code k_layernorm}) before the rotary embedding;
 * the final norm is called {@code embedding_norm}.
 *
 * <p>Keys: {@code Lfm2Config} of {@code transformers} 5.17, with the keyword arguments it reads in place of two of them
 * ({@code block_ff_dim} for {@code intermediate_size}, {@code tie_embedding} for {@code tie_word_embeddings}) and
 * {@code rope_theta}, which files carry in place of {@code rope_parameters}, and {@code head_dim}, which its attention
 * reads where a file sets it. Other keys of the published files
 * ({@code block_dim}, {@code conv_dim}, {@code block_use_swiglu}, ...) are not read by transformers either.
 * Checkpoint: {@code Lfm2ForCausalLM}'s names.
 */
final class Lfm2 extends ModelFamily {

    Lfm2() {
        super("lfm2", "lfm2", Keys.of(List.of(
                pos("vocab_size", 65536), pos("hidden_size", 2560), pos("intermediate_size", 12288),
                count("num_hidden_layers", 32), pos("num_attention_heads", 32), pos("num_key_value_heads", 8),
                pos("max_position_embeddings", 128_000), dbl("initializer_range", 0.02), posDbl("norm_eps", 1e-5),
                bool("use_cache", true), tok("pad_token_id", 0), tok("bos_token_id", 1), tok("eos_token_id", 2),
                bool("tie_word_embeddings", true), ropeParameters(), posDbl("rope_theta", 1_000_000.0),
                mapOrNull("rope_scaling"), bool("conv_bias", false), pos("conv_L_cache", 3),
                pos("block_multiple_of", 256), dbl("block_ffn_dim_multiplier", 1.0),
                bool("block_auto_adjust_ff_dim", true), listOrNull("full_attn_idxs"), listOrNull("layer_types"),
                optionalPos("block_ff_dim"), bool("tie_embedding", true).optional(), optionalHeadDim()),
                Map.of()));
    }

    @Override
    Architecture architecture(Settings settings) {
        Settings s = withTiedEmbedding(settings);
        return blocks(s, convLayers(s, s.integer("num_hidden_layers"))).computedMlpWidth(mlpWidth(s)).build();
    }

    /** {@code s} with {@code tie_embedding}, where a file gives it, as {@code tie_word_embeddings}. */
    static Settings withTiedEmbedding(Settings s) {
        return s.has("tie_embedding") ? s.with("tie_word_embeddings", s.bool("tie_embedding")) : s;
    }

    /** LFM2's blocks, their layers {@code conv} convolutions, the others attending; the MLP's width left to set. */
    static ArchitectureBuilder blocks(Settings s, List<Boolean> conv) {
        return new ArchitectureBuilder(s).width("hidden_size").layers("num_hidden_layers").heads("num_attention_heads")
                .keyValueHeads("num_key_value_heads").headDim("head_dim").gatedMlp()
                .positions("max_position_embeddings").fixedActivation("silu").paddingToken("pad_token_id")
                .norm(Norm.RMS_NORM, "norm_eps").rotary("rope_theta", null)
                .rotatingLayers(conv.stream().map(c -> !c).toList()).qkNorm(QkNorm.PER_HEAD)
                .shortConvolution(new ShortConvolution(s.integer("conv_L_cache"), s.bool("conv_bias"), conv));
    }

    /**
     * The MLP's width as {@code Lfm2MLP} makes it: {@code intermediate_size} (or {@code block_ff_dim}), and with
     * {@code block_auto_adjust_ff_dim} two thirds of it, times {@code block_ffn_dim_multiplier}, rounded up to a
     * multiple of {@code block_multiple_of}, each product truncated as Python's {@code int()} does.
     */
    static int mlpWidth(Settings s) {
        int width = s.integer(s.has("block_ff_dim") ? "block_ff_dim" : "intermediate_size");
        if (!s.bool("block_auto_adjust_ff_dim")) {
            return width;
        }
        double multiplier = s.number("block_ffn_dim_multiplier");
        if (!(multiplier > 0)) {
            throw invalid("block_ffn_dim_multiplier", multiplier, "must be positive");
        }
        long multiple = s.integer("block_multiple_of");
        long adjusted = multiple * (((long) (multiplier * (long) (2.0 * width / 3)) + multiple - 1) / multiple);
        if (adjusted < 1 || adjusted > Integer.MAX_VALUE) {
            throw invalid("intermediate_size", width, "gives an MLP of " + adjusted + " features once adjusted");
        }
        return (int) adjusted;
    }

    /**
     * Per layer, whether it is a convolution layer: as {@code layer_types} says ({@code "conv"} or
     * {@code "full_attention"}), else every layer but those {@code full_attn_idxs} lists (where it is null too, every
     * layer attends), as {@code Lfm2Config} fills the types in.
     */
    private static List<Boolean> convLayers(Settings s, int layers) {
        List<?> types = s.listOrNull("layer_types");
        List<Boolean> conv = new ArrayList<>(layers);
        if (types == null) {
            List<?> attention = s.listOrNull("full_attn_idxs");
            for (int i = 0; i < layers; i++) {
                conv.add(attention != null && !attention.contains(i));
            }
            if (attention != null) {
                for (Object index : attention) {
                    if (!(index instanceof Integer i) || i < 0 || i >= layers) {
                        throw invalid("full_attn_idxs", attention, "entries must be layer indices 0 to "
                                + (layers - 1) + ", got " + describe(index));
                    }
                }
            }
            return conv;
        }
        return convLayers(types, layers);
    }

    /** Per layer, whether {@code layer_types} ({@code "conv"} or {@code "full_attention"}) makes it a convolution. */
    static List<Boolean> convLayers(List<?> types, int layers) {
        if (types.size() != layers) {
            throw invalid("layer_types", types, "has " + types.size() + " entries but num_hidden_layers = " + layers);
        }
        List<Boolean> conv = new ArrayList<>(layers);
        for (Object type : types) {
            if (!"conv".equals(type) && !"full_attention".equals(type)) {
                throw invalid("layer_types", types, "entries must be \"conv\" or \"full_attention\", got "
                        + describe(type));
            }
            conv.add("conv".equals(type));
        }
        return conv;
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        long d = a.dModel();
        long mlp = a.dMlp();
        return layout(a, b -> b.layer(linear("feed_forward.w1.weight", W_GATE, mlp, d),
                linear("feed_forward.w3.weight", W_IN, mlp, d), linear("feed_forward.w2.weight", W_OUT, d, mlp)));
    }

    /** LFM2's checkpoint, with the feed-forward tensors {@code feedForward} adds after each block's ffn_norm. */
    static Checkpoint layout(Architecture a, UnaryOperator<Checkpoint.Builder> feedForward) {
        ShortConvolution m = a.shortConvolution();
        long d = a.dModel();
        long q = (long) a.nHeads() * a.dHead();
        long kv = (long) a.nKvHeads() * a.dHead();
        Checkpoint.Builder blocks = Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layer(stored("operator_norm.weight", LN1_W, d))
                .layerWhere(l -> !m.at(l), linear("self_attn.q_proj.weight", WQ, q, d),
                        linear("self_attn.k_proj.weight", WK, kv, d), linear("self_attn.v_proj.weight", WV, kv, d),
                        stored("self_attn.q_layernorm.weight", Q_NORM, a.dHead()),
                        stored("self_attn.k_layernorm.weight", K_NORM, a.dHead()),
                        linear("self_attn.out_proj.weight", WO, d, q))
                .layerWhere(m::at, linear("conv.in_proj.weight", CONV_W_IN, 3 * d, d),
                        stored("conv.conv.weight", CONV_KERNEL, d, 1, m.kernel()),
                        linear("conv.out_proj.weight", CONV_W_OUT, d, d))
                .layerWhere(l -> m.at(l) && m.bias(), stored("conv.in_proj.bias", CONV_B_IN, 3 * d),
                        stored("conv.conv.bias", CONV_KERNEL_BIAS, d), stored("conv.out_proj.bias", CONV_B_OUT, d))
                .layer(stored("ffn_norm.weight", LN2_W, d));
        return feedForward.apply(blocks)
                .global(stored("embedding_norm.weight", LNF_W, d))
                .unembedding("lm_head.weight", a)
                .build();
    }
}
