package io.arrakis.model.family;

import io.arrakis.model.family.Architecture.Norm;
import io.arrakis.model.family.Architecture.QkNorm;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

import static io.arrakis.model.family.CheckpointTensor.fusedLinear;
import static io.arrakis.model.family.CheckpointTensor.linear;
import static io.arrakis.model.family.CheckpointTensor.part;
import static io.arrakis.model.family.CheckpointTensor.stored;
import static io.arrakis.model.family.ConfigValues.describe;
import static io.arrakis.model.family.ConfigValues.invalid;
import static io.arrakis.model.family.Key.bool;
import static io.arrakis.model.family.Key.count;
import static io.arrakis.model.family.Key.dbl;
import static io.arrakis.model.family.Key.listOrNull;
import static io.arrakis.model.family.Key.mapOrNull;
import static io.arrakis.model.family.Key.pos;
import static io.arrakis.model.family.Key.posDbl;
import static io.arrakis.model.family.Key.ropeParameters;
import static io.arrakis.model.family.Key.str;
import static io.arrakis.model.family.Key.tok;
import static io.arrakis.model.family.Slot.EMBED;
import static io.arrakis.model.family.Slot.LIN_A_LOG;
import static io.arrakis.model.family.Slot.LIN_CONV;
import static io.arrakis.model.family.Slot.LIN_DT_BIAS;
import static io.arrakis.model.family.Slot.LIN_NORM;
import static io.arrakis.model.family.Slot.LIN_W_A;
import static io.arrakis.model.family.Slot.LIN_W_B;
import static io.arrakis.model.family.Slot.LIN_W_OUT;
import static io.arrakis.model.family.Slot.LIN_W_K;
import static io.arrakis.model.family.Slot.LIN_W_Q;
import static io.arrakis.model.family.Slot.LIN_W_V;
import static io.arrakis.model.family.Slot.LIN_W_Z;
import static io.arrakis.model.family.Slot.LN1_W;
import static io.arrakis.model.family.Slot.LN2_W;
import static io.arrakis.model.family.Slot.LNF_W;
import static io.arrakis.model.family.Slot.WK;
import static io.arrakis.model.family.Slot.WO;
import static io.arrakis.model.family.Slot.WQ;
import static io.arrakis.model.family.Slot.WV;
import static io.arrakis.model.family.Slot.W_ATTN_GATE;

/**
 * Qwen3.5's text model ({@code transformers/models/qwen3_5}, {@code model_type} {@code qwen3_5_text}; the language
 * model of Qwen3.5's dense checkpoints): a hybrid of linear attention ({@link LinearAttention}, gated DeltaNet) and
 * softmax attention, as {@code layer_types} says ({@code "linear_attention"}, {@code "full_attention"}; by default
 * every {@code full_attention_interval}-th layer attends by softmax). Its softmax attention is Qwen3's (an RMSNorm on
 * each query and key head, grouped key/value heads, {@code head_dim} of its own) with each head's output gated by
 * the sigmoid of a second half of {@code q_proj}, whose rows interleave each head's queries and gate
 * ({@link Slot#W_ATTN_GATE}, {@code attn.hook_gate}); the rotary embedding turns {@code partial_rotary_factor} of each
 * head (a quarter by default). Its multimodal rotary sections ({@code mrope_section}) give a text token's three
 * positions the same value, which makes them Qwen3's rotary for text. Every RMSNorm but the linear attention's gated
 * one multiplies by {@code 1 + weight}, in float32. MLPs are gated.
 *
 * <p>Keys: {@code Qwen3_5TextConfig} of {@code transformers} 5.17 with the keyword arguments it reads
 * ({@code partial_rotary_factor}, {@code full_attention_interval}) and the rotary keys files carry in place of
 * {@code rope_parameters}. Checkpoint: {@code Qwen3_5ForCausalLM}'s names ({@code self_attn.*} on the softmax layers,
 * {@code linear_attn.*} on the others; the multi-token-prediction layer {@code mtp.*} unread, as transformers leaves
 * it). {@code attention_bias} is refused: the gate's half of the query bias is not implemented, and the published
 * models have none.
 */
final class Qwen35 extends ModelFamily {
    /** transformers' older names of layer types, which it maps before reading them. */
    private static final Map<String, String> LEGACY_TYPES = Map.of("mamba", "linear_attention", "conv",
            "linear_attention", "attention", "full_attention");

    Qwen35() {
        super("qwen3-5", "qwen3_5_text", Keys.of(hybridKeys(pos("vocab_size", 248320), pos("hidden_size", 4096),
                pos("intermediate_size", 12288), count("num_hidden_layers", 32), pos("num_attention_heads", 16),
                pos("num_key_value_heads", 4)), Map.of()));
    }

    /**
     * {@code keys} and the keys, with their defaults, that the configuration classes of Qwen3.5's blocks share
     * ({@code Qwen3_5TextConfig}, {@code Qwen3_5MoeTextConfig}, {@code Qwen3NextConfig}).
     */
    static List<Key> hybridKeys(Key... keys) {
        return Stream.concat(java.util.Arrays.stream(keys), Stream.of(
                str("hidden_act", "silu"), pos("max_position_embeddings", 32768), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-6), bool("use_cache", true), bool("tie_word_embeddings", false),
                ropeParameters(), posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"),
                posDbl("partial_rotary_factor", 0.25), bool("attention_bias", false), dbl("attention_dropout", 0.0),
                pos("head_dim", 256), pos("linear_conv_kernel_dim", 4), pos("linear_key_head_dim", 128),
                pos("linear_value_head_dim", 128), pos("linear_num_key_heads", 16), pos("linear_num_value_heads", 32),
                listOrNull("layer_types"), pos("full_attention_interval", 4), tok("pad_token_id", null),
                tok("bos_token_id", null), tok("eos_token_id", null))).toList();
    }

    @Override
    Architecture architecture(Settings s) {
        return hybrid(s, "intermediate_size").build();
    }

    /**
     * Qwen3.5's blocks, their gated MLP as wide as {@code mlpWidthKey} says: what its mixture of experts shares
     * ({@link Qwen35Moe}).
     */
    static ArchitectureBuilder hybrid(Settings settings, String mlpWidthKey) {
        Settings s = MultimodalRotary.withoutSections(settings);
        if (s.bool("attention_bias")) {
            throw invalid("attention_bias", true, "is not implemented for qwen3_5_text: q_proj's bias would hold the"
                    + " output gate's half too");
        }
        int layers = s.integer("num_hidden_layers");
        List<Boolean> linear = linearLayers(s, layers);
        int keyHeads = s.integer("linear_num_key_heads");
        int valueHeads = s.integer("linear_num_value_heads");
        if (valueHeads % keyHeads != 0) {
            throw invalid("linear_num_value_heads", valueHeads, "is not a multiple of linear_num_key_heads = "
                    + keyHeads + ": each value head reads one key head");
        }
        List<Boolean> rotates = linear.stream().map(l -> !l).toList();
        LinearAttention deltaNet = new LinearAttention(keyHeads, valueHeads, s.integer("linear_key_head_dim"),
                s.integer("linear_value_head_dim"), s.integer("linear_conv_kernel_dim"), linear);
        return new ArchitectureBuilder(s).width("hidden_size").layers("num_hidden_layers").heads("num_attention_heads")
                .keyValueHeads("num_key_value_heads").mlpWidth(mlpWidthKey).gatedMlp()
                .positions("max_position_embeddings").activation("hidden_act").paddingToken("pad_token_id")
                .headDim("head_dim").norm(Norm.RMS_NORM_PLUS_ONE, "rms_norm_eps")
                .rotary("rope_theta", "partial_rotary_factor").rotatingLayers(rotates).qkNorm(QkNorm.PER_HEAD)
                .attentionOutputGate().linearAttention(deltaNet);
    }

    /**
     * Per layer, whether {@code layer_types} makes it a linear-attention layer; where it is null, every
     * {@code full_attention_interval}-th layer attends by softmax, as Qwen3_5TextConfig fills the types in.
     */
    private static List<Boolean> linearLayers(Settings s, int layers) {
        List<?> types = s.listOrNull("layer_types");
        List<Boolean> linear = new ArrayList<>(layers);
        if (types == null) {
            int interval = s.integer("full_attention_interval");
            for (int i = 0; i < layers; i++) {
                linear.add((i + 1) % interval != 0);
            }
            return linear;
        }
        if (types.size() != layers) {
            throw invalid("layer_types", types, "has " + types.size() + " entries but num_hidden_layers = " + layers);
        }
        for (Object t : types) {
            Object type = t instanceof String name ? LEGACY_TYPES.getOrDefault(name, name) : t;
            if (!"linear_attention".equals(type) && !"full_attention".equals(type)) {
                throw invalid("layer_types", types, "entries must be \"linear_attention\" or \"full_attention\", got "
                        + describe(t));
            }
            linear.add("linear_attention".equals(type));
        }
        return linear;
    }

    @Override
    public Checkpoint checkpoint(Architecture a) {
        return layout(a, inputProjections(a), b -> b.layer(LlamaLayout.denseMlp(a.dMlp(), a.dModel())));
    }

    /**
     * A linear-attention layer's input projections as Qwen3.5 stores them: {@code in_proj_qkv} (queries, keys and
     * values, in that order), {@code in_proj_z}, {@code in_proj_b}, {@code in_proj_a}.
     */
    static CheckpointTensor[] inputProjections(Architecture a) {
        LinearAttention m = a.linearAttention();
        long d = a.dModel();
        long keys = (long) m.keyHeads() * m.keyDim();
        long values = (long) m.valueHeads() * m.valueDim();
        return new CheckpointTensor[] {fusedLinear("linear_attn.in_proj_qkv.weight", d, 1, part(LIN_W_Q, keys),
                part(LIN_W_K, keys), part(LIN_W_V, values)),
                linear("linear_attn.in_proj_z.weight", LIN_W_Z, values, d),
                linear("linear_attn.in_proj_b.weight", LIN_W_B, m.valueHeads(), d),
                linear("linear_attn.in_proj_a.weight", LIN_W_A, m.valueHeads(), d)};
    }

    /**
     * The checkpoint of Qwen3.5's blocks with {@code inputs} as a linear-attention layer's input projections, and
     * the MLP tensors {@code mlp} adds after {@code post_attention_layernorm}.
     */
    static Checkpoint layout(Architecture a, CheckpointTensor[] inputs, UnaryOperator<Checkpoint.Builder> mlp) {
        LinearAttention m = a.linearAttention();
        long d = a.dModel();
        long q = (long) a.nHeads() * a.dHead();
        long kv = (long) a.nKvHeads() * a.dHead();
        long values = (long) m.valueHeads() * m.valueDim();
        Checkpoint.Builder blocks = Checkpoint.builder("model.", "layers.%d.", a.nLayers())
                .global(stored("embed_tokens.weight", EMBED, a.vocabSize(), d))
                .layer(stored("input_layernorm.weight", LN1_W, d))
                .layerWhere(l -> !m.at(l), fusedLinear("self_attn.q_proj.weight", d, a.nHeads(), part(WQ, a.dHead()),
                                part(W_ATTN_GATE, a.dHead())),
                        linear("self_attn.k_proj.weight", WK, kv, d), linear("self_attn.v_proj.weight", WV, kv, d))
                .layerWhere(l -> !m.at(l), LlamaLayout.qkNorms(a))
                .layerWhere(l -> !m.at(l), linear("self_attn.o_proj.weight", WO, d, q))
                .layerWhere(m::at, inputs)
                .layerWhere(m::at, stored("linear_attn.conv1d.weight", LIN_CONV, m.convChannels(), 1, m.convKernel()),
                        stored("linear_attn.dt_bias", LIN_DT_BIAS, m.valueHeads()),
                        stored("linear_attn.A_log", LIN_A_LOG, m.valueHeads()),
                        stored("linear_attn.norm.weight", LIN_NORM, m.valueDim()),
                        linear("linear_attn.out_proj.weight", LIN_W_OUT, d, values))
                .layer(stored("post_attention_layernorm.weight", LN2_W, d));
        return mlp.apply(blocks)
                .global(stored("norm.weight", LNF_W, d))
                .unread("mtp.") // the multi-token-prediction layer, which transformers' causal model leaves unread
                .unembedding("lm_head.weight", a)
                .build();
    }
}
