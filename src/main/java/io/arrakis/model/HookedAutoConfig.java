package io.arrakis.model;

import io.arrakis.json.Json;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.Set;
import java.util.StringJoiner;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A transformer configuration for one of nine model families, with the Hugging Face {@code config.json} key names:
 * the Java form of Arrakis's {@code HookedAutoConfig(name="llama")}.
 *
 * <p>A config holds the family and a map of Hugging Face keys to values ({@link #raw()}), starting from the defaults
 * of the family's {@code transformers} configuration class and changed by {@link #with(String, Object)} or read from
 * a {@code config.json} ({@link #fromJson(Path)}). From it a normalised view is derived once ({@link #dModel()},
 * {@link #nHeads()}, {@link #rotaryDim()}, {@link #parameterCount()}, ...) that the model code uses without knowing
 * each family's key names.
 *
 * <pre>{@code
 * HookedAutoConfig llama = HookedAutoConfig.of("llama");                  // LlamaConfig() defaults: the 7B shape
 * HookedAutoConfig small = llama.with(Map.of("hidden_size", 512, "num_hidden_layers", 4,
 *                                            "num_attention_heads", 8, "num_key_value_heads", 2));
 * HookedAutoConfig gpt2  = HookedAutoConfig.fromJson(Path.of("gpt2/config.json"));
 * gpt2.parameterCount();                                                  // 124439808 for openai-community/gpt2
 * }</pre>
 *
 * <h2>Keys and values</h2>
 * <ul>
 *   <li>Values are {@code Integer}, {@code Long}, {@code Double}, {@code Boolean}, {@code String}, {@code null},
 *       unmodifiable {@code List}s and unmodifiable {@code Map}s (JSON objects such as {@code rope_scaling}) of
 *       these. Integer-valued keys hold {@code Integer}; floating-point keys hold {@code Double}, so
 *       {@code "rope_theta": 10000} reads as {@code 10000.0}; a {@code Long} that fits an {@code int} becomes an
 *       {@code Integer}, a {@code Float} the {@code Double} of its decimal form.</li>
 *   <li>Aliases: where the configuration class has an {@code attribute_map}, its standard names are accepted by
 *       {@link #with(String, Object)} and {@link #fromJson(Path)} and stored under the family's real key: for
 *       {@code gpt2} {@code hidden_size -> n_embd}, {@code num_hidden_layers -> n_layer},
 *       {@code num_attention_heads -> n_head}, {@code max_position_embeddings -> n_positions}; for {@code gpt-neo}
 *       {@code num_hidden_layers -> num_layers}, {@code num_attention_heads -> num_heads}. For {@code gpt-neox},
 *       {@code partial_rotary_factor -> rotary_pct} and {@code rope_theta -> rotary_emb_base} (GPTNeoXConfig
 *       mirrors these attributes, so files saved by recent {@code transformers} carry both). An alias and its real
 *       key given together with different values are an error.</li>
 *   <li>Keys the family does not define are kept in {@link #raw()} when they come from a {@code config.json}
 *       ({@code architectures}, {@code torch_dtype}, {@code transformers_version}, ...) and are otherwise ignored;
 *       {@link #with(String, Object)} rejects a key that is neither a family key nor already present.</li>
 *   <li>Optional keys, recognised (type-checked, honoured) but absent from the defaults because the configuration
 *       class has no such argument: {@code head_dim} for {@code qwen2} and {@code phi3} (their modeling code reads
 *       {@code getattr(config, "head_dim", hidden_size // num_attention_heads)}), and, for every rotary family,
 *       {@code rope_parameters} (the {@code transformers} 5 form: its {@code rope_theta} and
 *       {@code partial_rotary_factor} entries take precedence over the top-level keys). Setting an optional key to
 *       {@code null} removes it.</li>
 * </ul>
 *
 * <h2>Validation</h2>
 * Every factory and {@code with} validates before anything is allocated and throws {@link IllegalArgumentException}
 * naming the key and the value: an unknown key, a value of the wrong type (a string for {@code hidden_size}),
 * {@code null} for a key that may not be null, a non-positive size, a hidden size not divisible by the number of
 * heads (unless the family takes an explicit {@code head_dim} and it is set), heads not a multiple of key/value heads,
 * a rotary factor outside (0, 1] or a rotary dimension that is not a positive even number, a non-positive epsilon or
 * rope base, an activation name unknown to {@code transformers.activations.ACT2FN}, {@code attention_types} that do
 * not expand to {@code num_layers} entries of {@code "global"}/{@code "local"} ({@code gpt-neo}), {@code layer_types}
 * of the wrong length ({@code qwen2}), a sliding window switched on without a size.
 *
 * <h2>Defaults and sources</h2>
 * The defaults are the keyword defaults of each configuration class's {@code __init__} in Hugging Face
 * {@code transformers} <b>v4.57.6</b> (the last 4.x release, whose files still use the {@code config.json} key names
 * found on the Hub), plus {@code tie_word_embeddings} where the class inherits it from {@code PretrainedConfig}
 * ({@code True}). Paths are under {@code src/transformers/models/}; the semantics of the normalised view were read
 * from the {@code modeling_*.py} file next to each.
 * <table class="striped">
 *   <caption>Per-family defaults (Hugging Face key = default)</caption>
 *   <thead><tr><th>family ({@code model_type})</th><th>source</th><th>defaults</th></tr></thead>
 *   <tbody>
 *   <tr><td>{@code gpt2} ({@code gpt2})</td><td>{@code gpt2/configuration_gpt2.py}, {@code GPT2Config}</td>
 *     <td>vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12, n_inner=null (4*n_embd),
 *     activation_function="gelu_new", resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1, layer_norm_epsilon=1e-5,
 *     initializer_range=0.02, summary_type="cls_index", summary_use_proj=true, summary_activation=null,
 *     summary_proj_to_labels=true, summary_first_dropout=0.1, scale_attn_weights=true, use_cache=true,
 *     bos_token_id=50256, eos_token_id=50256, scale_attn_by_inverse_layer_idx=false, reorder_and_upcast_attn=false,
 *     tie_word_embeddings=true</td></tr>
 *   <tr><td>{@code gpt-neo} ({@code gpt_neo})</td><td>{@code gpt_neo/configuration_gpt_neo.py},
 *     {@code GPTNeoConfig}</td>
 *     <td>vocab_size=50257, max_position_embeddings=2048, hidden_size=2048, num_layers=24,
 *     attention_types=[[["global","local"],12]], num_heads=16, intermediate_size=null (4*hidden_size),
 *     window_size=256, activation_function="gelu_new", resid_dropout=0.0, embed_dropout=0.0,
 *     attention_dropout=0.0, classifier_dropout=0.1, layer_norm_epsilon=1e-5, initializer_range=0.02,
 *     use_cache=true, bos_token_id=50256, eos_token_id=50256, tie_word_embeddings=true</td></tr>
 *   <tr><td>{@code gpt-neox} ({@code gpt_neox})</td><td>{@code gpt_neox/configuration_gpt_neox.py},
 *     {@code GPTNeoXConfig}</td>
 *     <td>vocab_size=50432, hidden_size=6144, num_hidden_layers=44, num_attention_heads=64,
 *     intermediate_size=24576, hidden_act="gelu", rotary_pct=0.25, rotary_emb_base=10000, attention_dropout=0.0,
 *     hidden_dropout=0.0, classifier_dropout=0.1, max_position_embeddings=2048, initializer_range=0.02,
 *     layer_norm_eps=1e-5, use_cache=true, bos_token_id=0, eos_token_id=2, tie_word_embeddings=false,
 *     use_parallel_residual=true, rope_scaling=null, attention_bias=true</td></tr>
 *   <tr><td>{@code llama} ({@code llama})</td><td>{@code llama/configuration_llama.py}, {@code LlamaConfig}</td>
 *     <td>vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
 *     num_attention_heads=32, num_key_value_heads=null (= num_attention_heads), hidden_act="silu",
 *     max_position_embeddings=2048, initializer_range=0.02, rms_norm_eps=1e-6, use_cache=true, pad_token_id=null,
 *     bos_token_id=1, eos_token_id=2, pretraining_tp=1, tie_word_embeddings=false, rope_theta=10000.0,
 *     rope_scaling=null, attention_bias=false, attention_dropout=0.0, mlp_bias=false,
 *     head_dim=null (hidden_size / num_attention_heads)</td></tr>
 *   <tr><td>{@code gemma} ({@code gemma})</td><td>{@code gemma/configuration_gemma.py}, {@code GemmaConfig}</td>
 *     <td>vocab_size=256000, hidden_size=3072, intermediate_size=24576, num_hidden_layers=28,
 *     num_attention_heads=16, num_key_value_heads=16, head_dim=256, hidden_act="gelu_pytorch_tanh",
 *     hidden_activation=null, max_position_embeddings=8192, initializer_range=0.02, rms_norm_eps=1e-6,
 *     use_cache=true, pad_token_id=0, eos_token_id=1, bos_token_id=2, tie_word_embeddings=true,
 *     rope_theta=10000.0, attention_bias=false, attention_dropout=0.0</td></tr>
 *   <tr><td>{@code phi3} ({@code phi3})</td><td>{@code phi3/configuration_phi3.py}, {@code Phi3Config}</td>
 *     <td>vocab_size=32064, hidden_size=3072, intermediate_size=8192, num_hidden_layers=32,
 *     num_attention_heads=32, num_key_value_heads=null (= num_attention_heads), resid_pdrop=0.0, embd_pdrop=0.0,
 *     attention_dropout=0.0, hidden_act="silu", max_position_embeddings=4096,
 *     original_max_position_embeddings=4096, initializer_range=0.02, rms_norm_eps=1e-5, use_cache=true,
 *     tie_word_embeddings=false, rope_theta=10000.0, rope_scaling=null, partial_rotary_factor=1.0,
 *     bos_token_id=1, eos_token_id=32000, pad_token_id=32000, sliding_window=null</td></tr>
 *   <tr><td>{@code qwen2} ({@code qwen2})</td><td>{@code qwen2/configuration_qwen2.py}, {@code Qwen2Config}</td>
 *     <td>vocab_size=151936, hidden_size=4096, intermediate_size=22016, num_hidden_layers=32,
 *     num_attention_heads=32, num_key_value_heads=32, hidden_act="silu", max_position_embeddings=32768,
 *     initializer_range=0.02, rms_norm_eps=1e-6, use_cache=true, tie_word_embeddings=false, rope_theta=10000.0,
 *     rope_scaling=null, use_sliding_window=false, sliding_window=4096, max_window_layers=28, layer_types=null,
 *     attention_dropout=0.0</td></tr>
 *   <tr><td>{@code mistral} ({@code mistral})</td><td>{@code mistral/configuration_mistral.py},
 *     {@code MistralConfig}</td>
 *     <td>vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
 *     num_attention_heads=32, num_key_value_heads=8, head_dim=null (hidden_size / num_attention_heads),
 *     hidden_act="silu", max_position_embeddings=131072 (4096*32), initializer_range=0.02, rms_norm_eps=1e-6,
 *     use_cache=true, pad_token_id=null, bos_token_id=1, eos_token_id=2, tie_word_embeddings=false,
 *     rope_theta=10000.0, sliding_window=4096, attention_dropout=0.0</td></tr>
 *   <tr><td>{@code stable-lm} ({@code stablelm})</td><td>{@code stablelm/configuration_stablelm.py},
 *     {@code StableLmConfig}</td>
 *     <td>vocab_size=50304, intermediate_size=6912, hidden_size=2560, num_hidden_layers=32,
 *     num_attention_heads=32, num_key_value_heads=32, hidden_act="silu", max_position_embeddings=4096,
 *     initializer_range=0.02, layer_norm_eps=1e-5, use_cache=true, tie_word_embeddings=false, rope_theta=10000,
 *     rope_scaling=null, use_qkv_bias=false, qk_layernorm=false, use_parallel_residual=false, hidden_dropout=0.0,
 *     attention_dropout=0.0, partial_rotary_factor=0.25, bos_token_id=0, eos_token_id=0</td></tr>
 *   </tbody>
 * </table>
 *
 * <h2>Semantics of the normalised view (from the modeling files)</h2>
 * <table class="striped">
 *   <caption>Per-family structure</caption>
 *   <thead><tr><th>family</th><th>norm</th><th>MLP</th><th>positions</th><th>biases (q/k/v, out, MLP)</th>
 *   <th>other</th></tr></thead>
 *   <tbody>
 *   <tr><td>gpt2</td><td>LayerNorm</td><td>c_fc, c_proj</td><td>learned wpe</td><td>all</td>
 *     <td>attention scaled iff {@code scale_attn_weights}</td></tr>
 *   <tr><td>gpt-neo</td><td>LayerNorm</td><td>c_fc, c_proj</td><td>learned wpe</td><td>none, out_proj, all</td>
 *     <td>no 1/sqrt(d_head) scaling; local layers see the last {@code window_size} positions (self included)</td></tr>
 *   <tr><td>gpt-neox</td><td>LayerNorm</td><td>dense_h_to_4h, dense_4h_to_h</td>
 *     <td>rotary on int(d_head * rotary_pct) dims</td><td>attention_bias, attention_bias, yes</td>
 *     <td>{@code use_parallel_residual}; untied {@code embed_out}</td></tr>
 *   <tr><td>llama</td><td>RMSNorm</td><td>gate/up/down</td><td>rotary, full head</td>
 *     <td>attention_bias, attention_bias, mlp_bias</td><td></td></tr>
 *   <tr><td>gemma</td><td>RMSNorm, scales by (1 + w)</td><td>gate/up/down</td><td>rotary, full head</td>
 *     <td>attention_bias, attention_bias, no</td>
 *     <td>embeddings times sqrt(hidden_size); activation {@code hidden_activation}, else {@code hidden_act}</td></tr>
 *   <tr><td>phi3</td><td>RMSNorm</td><td>fused gate_up, down</td>
 *     <td>rotary on int(d_head * partial_rotary_factor) dims</td><td>none</td>
 *     <td>fused qkv_proj (same parameter count); {@code sliding_window} when not null</td></tr>
 *   <tr><td>qwen2</td><td>RMSNorm</td><td>gate/up/down</td><td>rotary, full head</td><td>q/k/v only</td>
 *     <td>sliding window only with {@code use_sliding_window}, on layers {@code >= max_window_layers} (or as
 *     {@code layer_types} says)</td></tr>
 *   <tr><td>mistral</td><td>RMSNorm</td><td>gate/up/down</td><td>rotary, full head</td><td>none</td>
 *     <td>{@code sliding_window} on every layer when not null</td></tr>
 *   <tr><td>stable-lm</td><td>LayerNorm</td><td>gate/up/down</td>
 *     <td>rotary on int(d_head * partial_rotary_factor) dims</td><td>use_qkv_bias, no, no</td>
 *     <td>{@code use_parallel_residual} (then no post-attention norm); {@code qk_layernorm}: per-head LayerNorms
 *     without bias</td></tr>
 *   </tbody>
 * </table>
 *
 * <p>Instances are immutable and thread-safe; {@link #equals(Object)} compares the family and {@link #raw()}.
 */
public final class HookedAutoConfig {

    // ------------------------------------------------------------------------------------------- key schema

    /** The value type a key takes. */
    private enum Kind {
        INT, DOUBLE, BOOL, STRING, TOKEN_IDS, LIST, MAP
    }

    /**
     * One Hugging Face key of a family.
     *
     * @param inDefaults whether {@link #of(String)} puts it in {@link #raw()} (false: recognised when given)
     * @param positive for {@code INT}/{@code DOUBLE}: the value must be {@code > 0}
     */
    private record Key(String name, Kind kind, boolean nullable, Object defaultValue, boolean inDefaults,
            boolean positive) {
    }

    /** The nine families, in {@link #supportedFamilies()} order. */
    private enum Family {
        GPT2("gpt2", "gpt2"),
        GPT_NEO("gpt-neo", "gpt_neo"),
        GPT_NEOX("gpt-neox", "gpt_neox"),
        LLAMA("llama", "llama"),
        GEMMA("gemma", "gemma"),
        PHI3("phi3", "phi3"),
        QWEN2("qwen2", "qwen2"),
        MISTRAL("mistral", "mistral"),
        STABLE_LM("stable-lm", "stablelm");

        final String canonical;
        final String modelType;

        Family(String canonical, String modelType) {
            this.canonical = canonical;
            this.modelType = modelType;
        }
    }

    /** A family's keys (in {@code __init__} order) and its aliases. */
    private record Spec(Map<String, Key> keys, Map<String, String> aliases) {
    }

    private static final Map<Family, Spec> SPECS = new EnumMap<>(Family.class);

    private static final List<String> SUPPORTED;

    /** {@code transformers.activations.ACT2CLS} keys (v4.57.6). */
    private static final Set<String> ACTIVATIONS = Set.of("gelu", "gelu_10", "gelu_fast", "gelu_new", "gelu_python",
            "gelu_pytorch_tanh", "gelu_python_tanh", "gelu_accurate", "laplace", "leaky_relu", "linear", "mish",
            "quick_gelu", "relu", "relu2", "relu6", "sigmoid", "silu", "swish", "tanh", "prelu", "xielu");

    static {
        List<String> names = new ArrayList<>();
        for (Family f : Family.values()) {
            names.add(f.canonical);
        }
        SUPPORTED = List.copyOf(names);

        SPECS.put(Family.GPT2, spec(List.of(
                pos("vocab_size", 50257), pos("n_positions", 1024), pos("n_embd", 768), pos("n_layer", 12),
                pos("n_head", 12), posOrNull("n_inner", null), str("activation_function", "gelu_new"),
                dbl("resid_pdrop", 0.1), dbl("embd_pdrop", 0.1), dbl("attn_pdrop", 0.1),
                posDbl("layer_norm_epsilon", 1e-5), dbl("initializer_range", 0.02),
                str("summary_type", "cls_index"), bool("summary_use_proj", true), strOrNull("summary_activation", null),
                bool("summary_proj_to_labels", true), dbl("summary_first_dropout", 0.1),
                bool("scale_attn_weights", true), bool("use_cache", true), tok("bos_token_id", 50256),
                tok("eos_token_id", 50256), bool("scale_attn_by_inverse_layer_idx", false),
                bool("reorder_and_upcast_attn", false), bool("tie_word_embeddings", true)),
                Map.of("hidden_size", "n_embd", "max_position_embeddings", "n_positions",
                        "num_attention_heads", "n_head", "num_hidden_layers", "n_layer")));

        SPECS.put(Family.GPT_NEO, spec(List.of(
                pos("vocab_size", 50257), pos("max_position_embeddings", 2048), pos("hidden_size", 2048),
                pos("num_layers", 24),
                new Key("attention_types", Kind.LIST, false, List.of(List.of(List.of("global", "local"), 12)), true,
                        false),
                pos("num_heads", 16), posOrNull("intermediate_size", null), pos("window_size", 256),
                str("activation_function", "gelu_new"), dbl("resid_dropout", 0.0), dbl("embed_dropout", 0.0),
                dbl("attention_dropout", 0.0), dbl("classifier_dropout", 0.1), posDbl("layer_norm_epsilon", 1e-5),
                dbl("initializer_range", 0.02), bool("use_cache", true), tok("bos_token_id", 50256),
                tok("eos_token_id", 50256), bool("tie_word_embeddings", true)),
                Map.of("num_attention_heads", "num_heads", "num_hidden_layers", "num_layers")));

        SPECS.put(Family.GPT_NEOX, spec(List.of(
                pos("vocab_size", 50432), pos("hidden_size", 6144), pos("num_hidden_layers", 44),
                pos("num_attention_heads", 64), pos("intermediate_size", 24576), str("hidden_act", "gelu"),
                posDbl("rotary_pct", 0.25), posDbl("rotary_emb_base", 10000.0), dbl("attention_dropout", 0.0),
                dbl("hidden_dropout", 0.0), dbl("classifier_dropout", 0.1), pos("max_position_embeddings", 2048),
                dbl("initializer_range", 0.02), posDbl("layer_norm_eps", 1e-5), bool("use_cache", true),
                tok("bos_token_id", 0), tok("eos_token_id", 2), bool("tie_word_embeddings", false),
                bool("use_parallel_residual", true), mapOrNull("rope_scaling"), bool("attention_bias", true),
                ropeParameters()),
                Map.of("partial_rotary_factor", "rotary_pct", "rope_theta", "rotary_emb_base")));

        SPECS.put(Family.LLAMA, spec(List.of(
                pos("vocab_size", 32000), pos("hidden_size", 4096), pos("intermediate_size", 11008),
                pos("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", null),
                str("hidden_act", "silu"), pos("max_position_embeddings", 2048), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-6), bool("use_cache", true), tok("pad_token_id", null),
                tok("bos_token_id", 1), tok("eos_token_id", 2), pos("pretraining_tp", 1),
                bool("tie_word_embeddings", false), posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"),
                bool("attention_bias", false), dbl("attention_dropout", 0.0), bool("mlp_bias", false),
                posOrNull("head_dim", null), ropeParameters()),
                Map.of()));

        SPECS.put(Family.GEMMA, spec(List.of(
                pos("vocab_size", 256000), pos("hidden_size", 3072), pos("intermediate_size", 24576),
                pos("num_hidden_layers", 28), pos("num_attention_heads", 16), pos("num_key_value_heads", 16),
                pos("head_dim", 256), str("hidden_act", "gelu_pytorch_tanh"), strOrNull("hidden_activation", null),
                pos("max_position_embeddings", 8192), dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-6),
                bool("use_cache", true), tok("pad_token_id", 0), tok("eos_token_id", 1), tok("bos_token_id", 2),
                bool("tie_word_embeddings", true), posDbl("rope_theta", 10000.0), bool("attention_bias", false),
                dbl("attention_dropout", 0.0), ropeParameters()),
                Map.of()));

        SPECS.put(Family.PHI3, spec(List.of(
                pos("vocab_size", 32064), pos("hidden_size", 3072), pos("intermediate_size", 8192),
                pos("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", null),
                dbl("resid_pdrop", 0.0), dbl("embd_pdrop", 0.0), dbl("attention_dropout", 0.0),
                str("hidden_act", "silu"), pos("max_position_embeddings", 4096),
                pos("original_max_position_embeddings", 4096), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-5), bool("use_cache", true), bool("tie_word_embeddings", false),
                posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"), posDbl("partial_rotary_factor", 1.0),
                tok("bos_token_id", 1), tok("eos_token_id", 32000), tok("pad_token_id", 32000),
                posOrNull("sliding_window", null), optionalHeadDim(), ropeParameters()),
                Map.of()));

        SPECS.put(Family.QWEN2, spec(List.of(
                pos("vocab_size", 151936), pos("hidden_size", 4096), pos("intermediate_size", 22016),
                pos("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", 32),
                str("hidden_act", "silu"), pos("max_position_embeddings", 32768), dbl("initializer_range", 0.02),
                posDbl("rms_norm_eps", 1e-6), bool("use_cache", true), bool("tie_word_embeddings", false),
                posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"), bool("use_sliding_window", false),
                posOrNull("sliding_window", 4096), new Key("max_window_layers", Kind.INT, false, 28, true, false),
                new Key("layer_types", Kind.LIST, true, null, true, false), dbl("attention_dropout", 0.0),
                optionalHeadDim(), ropeParameters()),
                Map.of()));

        SPECS.put(Family.MISTRAL, spec(List.of(
                pos("vocab_size", 32000), pos("hidden_size", 4096), pos("intermediate_size", 14336),
                pos("num_hidden_layers", 32), pos("num_attention_heads", 32), posOrNull("num_key_value_heads", 8),
                posOrNull("head_dim", null), str("hidden_act", "silu"), pos("max_position_embeddings", 4096 * 32),
                dbl("initializer_range", 0.02), posDbl("rms_norm_eps", 1e-6), bool("use_cache", true),
                tok("pad_token_id", null), tok("bos_token_id", 1), tok("eos_token_id", 2),
                bool("tie_word_embeddings", false), posDbl("rope_theta", 10000.0), posOrNull("sliding_window", 4096),
                dbl("attention_dropout", 0.0), ropeParameters()),
                Map.of()));

        SPECS.put(Family.STABLE_LM, spec(List.of(
                pos("vocab_size", 50304), pos("intermediate_size", 6912), pos("hidden_size", 2560),
                pos("num_hidden_layers", 32), pos("num_attention_heads", 32), pos("num_key_value_heads", 32),
                str("hidden_act", "silu"), pos("max_position_embeddings", 4096), dbl("initializer_range", 0.02),
                posDbl("layer_norm_eps", 1e-5), bool("use_cache", true), bool("tie_word_embeddings", false),
                posDbl("rope_theta", 10000.0), mapOrNull("rope_scaling"), bool("use_qkv_bias", false),
                bool("qk_layernorm", false), bool("use_parallel_residual", false), dbl("hidden_dropout", 0.0),
                dbl("attention_dropout", 0.0), posDbl("partial_rotary_factor", 0.25), tok("bos_token_id", 0),
                tok("eos_token_id", 0), ropeParameters()),
                Map.of()));
    }

    private static Spec spec(List<Key> keys, Map<String, String> aliases) {
        Map<String, Key> byName = new LinkedHashMap<>();
        for (Key k : keys) {
            byName.put(k.name(), k);
        }
        return new Spec(Collections.unmodifiableMap(byName), aliases);
    }

    private static Key pos(String name, int dflt) {
        return new Key(name, Kind.INT, false, dflt, true, true);
    }

    private static Key posOrNull(String name, Integer dflt) {
        return new Key(name, Kind.INT, true, dflt, true, true);
    }

    private static Key optionalHeadDim() {
        return new Key("head_dim", Kind.INT, true, null, false, true);
    }

    private static Key ropeParameters() {
        return new Key("rope_parameters", Kind.MAP, true, null, false, false);
    }

    private static Key dbl(String name, double dflt) {
        return new Key(name, Kind.DOUBLE, false, dflt, true, false);
    }

    private static Key posDbl(String name, double dflt) {
        return new Key(name, Kind.DOUBLE, false, dflt, true, true);
    }

    private static Key bool(String name, boolean dflt) {
        return new Key(name, Kind.BOOL, false, dflt, true, false);
    }

    private static Key str(String name, String dflt) {
        return new Key(name, Kind.STRING, false, dflt, true, false);
    }

    private static Key strOrNull(String name, String dflt) {
        return new Key(name, Kind.STRING, true, dflt, true, false);
    }

    private static Key tok(String name, Integer dflt) {
        return new Key(name, Kind.TOKEN_IDS, true, dflt, true, false);
    }

    private static Key mapOrNull(String name) {
        return new Key(name, Kind.MAP, true, null, true, false);
    }

    // ------------------------------------------------------------------------------------------------ state

    private final Family family;
    private final Map<String, Object> raw;

    private final int dModel;
    private final int nLayers;
    private final int nHeads;
    private final int nKvHeads;
    private final int dHead;
    private final int dMlp;
    private final int vocabSize;
    private final int maxPositions;
    private final double normEps;
    private final boolean rmsNorm;
    private final boolean normAddsOne;
    private final String activation;
    private final boolean gatedMlp;
    private final boolean rotary;
    private final int rotaryDim;
    private final double ropeTheta;
    private final boolean parallelResidual;
    private final boolean tiedEmbeddings;
    private final boolean qkvBias;
    private final boolean outBias;
    private final boolean mlpBias;
    private final boolean scaleAttention;
    private final int slidingWindow; // 0: none
    private final boolean[] slidingLayers; // never exposed
    private final boolean[] localLayers; // never exposed
    private final int localWindow;
    private final double embeddingScale;
    private final double initializerRange;
    private final long parameterCount;

    /** Validates {@code raw} (already type-normalised) and derives the normalised view. */
    private HookedAutoConfig(Family family, Map<String, Object> raw) {
        this.family = family;
        this.raw = Collections.unmodifiableMap(raw);

        int d;
        int layers;
        int heads;
        int kv;
        int inner;
        int positions;
        double eps;
        String act;
        Integer explicitHeadDim = null;
        boolean headDimMayBeExplicit = false;
        double factor = 1.0;
        double theta = 0.0;
        boolean isRotary = true;
        boolean gated = true;
        boolean rms = true;
        boolean addsOne = false;
        boolean parallel = false;
        boolean qkvB = false;
        boolean outB = false;
        boolean mlpB = false;
        boolean scale = true;
        boolean learnedPositions = false;
        boolean qkLayerNorm = false;
        Integer window = null;
        boolean[] local = null;
        int localWin = 0;
        boolean[] sliding = null;

        switch (family) {
            case GPT2 -> {
                d = integer("n_embd");
                layers = integer("n_layer");
                heads = integer("n_head");
                kv = heads;
                positions = integer("n_positions");
                Integer nInner = integerOrNull("n_inner");
                inner = nInner != null ? nInner : multiply("n_embd", d, 4);
                eps = number("layer_norm_epsilon");
                act = string("activation_function");
                isRotary = false;
                gated = false;
                rms = false;
                qkvB = outB = mlpB = true;
                scale = bool("scale_attn_weights");
                learnedPositions = true;
            }
            case GPT_NEO -> {
                d = integer("hidden_size");
                layers = integer("num_layers");
                heads = integer("num_heads");
                kv = heads;
                positions = integer("max_position_embeddings");
                Integer is = integerOrNull("intermediate_size");
                inner = is != null ? is : multiply("hidden_size", d, 4);
                eps = number("layer_norm_epsilon");
                act = string("activation_function");
                isRotary = false;
                gated = false;
                rms = false;
                qkvB = false;
                outB = true;
                mlpB = true;
                scale = false;
                learnedPositions = true;
                local = expandAttentionTypes(layers);
                localWin = integer("window_size");
            }
            case GPT_NEOX -> {
                d = integer("hidden_size");
                layers = integer("num_hidden_layers");
                heads = integer("num_attention_heads");
                kv = heads;
                positions = integer("max_position_embeddings");
                inner = integer("intermediate_size");
                eps = number("layer_norm_eps");
                act = string("hidden_act");
                factor = number("rotary_pct");
                theta = number("rotary_emb_base");
                gated = false;
                rms = false;
                parallel = bool("use_parallel_residual");
                qkvB = outB = bool("attention_bias");
                mlpB = true;
            }
            case LLAMA, MISTRAL, QWEN2, PHI3, GEMMA -> {
                d = integer("hidden_size");
                layers = integer("num_hidden_layers");
                heads = integer("num_attention_heads");
                Integer kvOrNull = integerOrNull("num_key_value_heads");
                kv = kvOrNull != null ? kvOrNull : heads;
                positions = integer("max_position_embeddings");
                inner = integer("intermediate_size");
                eps = number("rms_norm_eps");
                act = string("hidden_act");
                theta = number("rope_theta");
                headDimMayBeExplicit = true;
                explicitHeadDim = raw.containsKey("head_dim") ? integerOrNull("head_dim") : null;
                switch (family) {
                    case LLAMA -> {
                        qkvB = outB = bool("attention_bias");
                        mlpB = bool("mlp_bias");
                    }
                    case GEMMA -> {
                        qkvB = outB = bool("attention_bias");
                        addsOne = true;
                        String hiddenActivation = stringOrNull("hidden_activation");
                        if (hiddenActivation != null) {
                            act = hiddenActivation;
                        }
                    }
                    case QWEN2 -> {
                        qkvB = true;
                        if (bool("use_sliding_window")) {
                            window = integerOrNull("sliding_window");
                            if (window == null) {
                                throw invalid("sliding_window", null, "must be set when use_sliding_window is true");
                            }
                        }
                        sliding = qwen2SlidingLayers(layers, window != null);
                    }
                    case PHI3 -> {
                        factor = number("partial_rotary_factor");
                        window = integerOrNull("sliding_window");
                    }
                    case MISTRAL -> window = integerOrNull("sliding_window");
                    default -> throw new AssertionError(family);
                }
            }
            case STABLE_LM -> {
                d = integer("hidden_size");
                layers = integer("num_hidden_layers");
                heads = integer("num_attention_heads");
                kv = integer("num_key_value_heads");
                positions = integer("max_position_embeddings");
                inner = integer("intermediate_size");
                eps = number("layer_norm_eps");
                act = string("hidden_act");
                factor = number("partial_rotary_factor");
                theta = number("rope_theta");
                rms = false;
                parallel = bool("use_parallel_residual");
                qkvB = bool("use_qkv_bias");
                qkLayerNorm = bool("qk_layernorm");
            }
            default -> throw new AssertionError(family);
        }

        // transformers 5 form: rope_parameters {"rope_theta": ..., "partial_rotary_factor": ...} takes precedence
        if (isRotary && raw.get("rope_parameters") instanceof Map<?, ?> rp) {
            if (rp.containsKey("rope_theta")) {
                theta = ropeParameter(rp, "rope_theta");
            }
            if (rp.containsKey("partial_rotary_factor")) {
                factor = ropeParameter(rp, "partial_rotary_factor");
            }
        }

        if (!ACTIVATIONS.contains(act)) {
            String key = family == Family.GPT2 || family == Family.GPT_NEO ? "activation_function"
                    : family == Family.GEMMA && stringOrNull("hidden_activation") != null ? "hidden_activation"
                    : "hidden_act";
            throw invalid(key, act, "is not an activation of transformers' ACT2FN; known: "
                    + String.join(", ", ACTIVATIONS.stream().sorted().toList()));
        }

        int headDim;
        if (explicitHeadDim != null) {
            headDim = explicitHeadDim;
        } else {
            if (d % heads != 0) {
                throw invalid(key("hidden_size"), d, "is not divisible by " + key("num_attention_heads") + " = "
                        + heads + (headDimMayBeExplicit ? " (and head_dim is not set)" : ""));
            }
            headDim = d / heads;
        }
        if (heads % kv != 0) {
            throw invalid(key("num_attention_heads"), heads,
                    "is not a multiple of num_key_value_heads = " + kv);
        }

        int rotDim = 0;
        if (isRotary) {
            String factorKey = family == Family.GPT_NEOX ? "rotary_pct"
                    : family == Family.STABLE_LM || family == Family.PHI3 ? "partial_rotary_factor" : null;
            String thetaKey = family == Family.GPT_NEOX ? "rotary_emb_base" : "rope_theta";
            if (raw.get("rope_parameters") instanceof Map<?, ?> rp) {
                factorKey = rp.containsKey("partial_rotary_factor") ? "rope_parameters.partial_rotary_factor"
                        : factorKey;
                thetaKey = rp.containsKey("rope_theta") ? "rope_parameters.rope_theta" : thetaKey;
            }
            if (!(factor > 0.0 && factor <= 1.0)) {
                throw invalid(factorKey, factor, "must be in (0, 1]");
            }
            if (!(theta > 0.0)) {
                throw invalid(thetaKey, theta, "must be > 0");
            }
            rotDim = (int) Math.floor(headDim * factor); // Python: int(head_dim * factor)
            if (rotDim < 2 || rotDim % 2 != 0) {
                String problem = "gives a rotary dimension of " + rotDim + " for head dimension " + headDim
                        + "; it must be a positive even number";
                if (factorKey != null) {
                    throw invalid(factorKey, factor, problem);
                }
                String headKey = explicitHeadDim != null ? "head_dim" : "hidden_size";
                throw invalid(headKey, explicitHeadDim != null ? headDim : d, "with num_attention_heads = " + heads
                        + " " + problem);
            }
        }

        double init = number("initializer_range");
        if (!(init >= 0.0)) {
            throw invalid("initializer_range", init, "must be >= 0");
        }

        this.dModel = d;
        this.nLayers = layers;
        this.nHeads = heads;
        this.nKvHeads = kv;
        this.dHead = headDim;
        this.dMlp = inner;
        this.vocabSize = integer("vocab_size");
        this.maxPositions = positions;
        this.normEps = eps;
        this.rmsNorm = rms;
        this.normAddsOne = addsOne;
        this.activation = act;
        this.gatedMlp = gated;
        this.rotary = isRotary;
        this.rotaryDim = rotDim;
        this.ropeTheta = isRotary ? theta : 0.0;
        this.parallelResidual = parallel;
        this.tiedEmbeddings = bool("tie_word_embeddings");
        this.qkvBias = qkvB;
        this.outBias = outB;
        this.mlpBias = mlpB;
        this.scaleAttention = scale;
        this.slidingWindow = window != null ? window : 0;
        this.slidingLayers = sliding;
        this.localLayers = local;
        this.localWindow = localWin;
        this.embeddingScale = family == Family.GEMMA ? Math.sqrt(d) : 1.0;
        this.initializerRange = init;
        try {
            this.parameterCount = countParameters(learnedPositions, qkLayerNorm);
        } catch (ArithmeticException overflow) {
            throw new IllegalArgumentException("the parameter count of this " + family.canonical
                    + " configuration overflows a long: " + summary());
        }
    }

    // ------------------------------------------------------------------------------------------- factories

    /**
     * The names of the supported families, in this order: {@code gpt2}, {@code gpt-neo}, {@code gpt-neox},
     * {@code llama}, {@code gemma}, {@code phi3}, {@code qwen2}, {@code mistral}, {@code stable-lm}.
     *
     * @return an unmodifiable list
     */
    public static List<String> supportedFamilies() {
        return SUPPORTED;
    }

    /**
     * The configuration with a family's Hugging Face defaults (see the class comment's table).
     *
     * @param family a name from {@link #supportedFamilies()} or a Hugging Face {@code model_type} spelling
     *     ({@code "gpt_neo"}, {@code "gpt_neox"}, {@code "stablelm"}); case-insensitive
     * @return the default configuration
     * @throws IllegalArgumentException for an unknown family, listing the supported names
     * @throws NullPointerException if {@code family} is null
     */
    public static HookedAutoConfig of(String family) {
        Family f = family(family, "family");
        Map<String, Object> raw = new LinkedHashMap<>();
        for (Key k : SPECS.get(f).keys().values()) {
            if (k.inDefaults()) {
                raw.put(k.name(), k.defaultValue());
            }
        }
        return new HookedAutoConfig(f, raw);
    }

    /**
     * Reads a Hugging Face {@code config.json}: its {@code "model_type"} picks the family (as in {@link #of}), its
     * family keys (or their aliases) override the defaults, and its other keys are kept in {@link #raw()} but
     * otherwise ignored.
     *
     * @param configJson the file (UTF-8)
     * @return the configuration
     * @throws IllegalArgumentException if the file is not strict JSON, not an object, has no string
     *     {@code model_type}, names an unsupported family, or holds an invalid value (the message names the file)
     * @throws UncheckedIOException if the file cannot be read
     */
    public static HookedAutoConfig fromJson(Path configJson) {
        Objects.requireNonNull(configJson, "configJson");
        String text;
        try {
            text = Files.readString(configJson);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + configJson + ": " + e.getMessage(), e);
        }
        try {
            return fromJsonText(text);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(configJson + ": " + e.getMessage(), e);
        }
    }

    /**
     * {@link #fromJson(Path)} on text in memory.
     *
     * @param text the content of a {@code config.json}
     * @return the configuration
     * @throws IllegalArgumentException as {@link #fromJson(Path)}, without a file name
     */
    static HookedAutoConfig fromJsonText(String text) {
        Object parsed;
        try {
            parsed = Json.parse(text);
        } catch (Json.ParseException e) {
            throw new IllegalArgumentException("invalid JSON: " + e.getMessage(), e);
        }
        if (!(parsed instanceof Map<?, ?> top)) {
            throw new IllegalArgumentException("a config.json must hold a JSON object, got " + describe(parsed));
        }
        Object modelType = top.get("model_type");
        if (!(modelType instanceof String mt)) {
            throw new IllegalArgumentException("a config.json needs a string \"model_type\" (one of "
                    + modelTypes() + "), got " + describe(modelType));
        }
        Family f = family(mt, "model_type");
        HookedAutoConfig defaults = of(f.canonical);
        Map<String, Object> overrides = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : top.entrySet()) {
            if (!"model_type".equals(e.getKey())) {
                overrides.put((String) e.getKey(), e.getValue());
            }
        }
        return new HookedAutoConfig(f, merge(f, defaults.raw, overrides, true));
    }

    /**
     * A copy with one key changed, validated at once.
     *
     * @param hfKey a Hugging Face key of this family (e.g. {@code "hidden_size"}, {@code "num_hidden_layers"},
     *     {@code "n_embd"}, {@code "n_layer"}), an alias from the family's {@code attribute_map}, or a key already
     *     in {@link #raw()}
     * @param value the new value ({@code Integer}, {@code Long}, {@code Double}, {@code Float}, {@code Boolean},
     *     {@code String}, {@code List}, {@code Map} or {@code null}, as the key takes)
     * @return the new configuration; this one is unchanged
     * @throws IllegalArgumentException for an unknown key (listing valid keys), a value of the wrong type or an
     *     invalid resulting configuration
     */
    public HookedAutoConfig with(String hfKey, Object value) {
        Objects.requireNonNull(hfKey, "hfKey");
        Map<String, Object> one = new LinkedHashMap<>();
        one.put(hfKey, value);
        return with(one);
    }

    /**
     * A copy with several keys changed at once (so that, for example, {@code hidden_size} and
     * {@code num_attention_heads} can change together), validated at once; see {@link #with(String, Object)}.
     *
     * @param overrides Hugging Face keys (or aliases) to new values
     * @return the new configuration; this one is unchanged
     * @throws IllegalArgumentException as {@link #with(String, Object)}, or if an alias and its real key are both
     *     given with different values
     */
    public HookedAutoConfig with(Map<String, ?> overrides) {
        Objects.requireNonNull(overrides, "overrides");
        return new HookedAutoConfig(family, merge(family, raw, overrides, false));
    }

    // --------------------------------------------------------------------------------------------- accessors

    /**
     * The family's canonical name, one of {@link #supportedFamilies()}.
     *
     * @return the family name
     */
    public String family() {
        return family.canonical;
    }

    /**
     * Hugging Face keys to values: the family's defaults with the overrides applied, plus any other keys a
     * {@code config.json} carried (without {@code model_type}, which {@link #toJson()} adds). Keys are in the
     * configuration class's argument order, then in file order.
     *
     * @return an unmodifiable map (nested lists and maps are unmodifiable too)
     */
    public Map<String, Object> raw() {
        return raw;
    }

    /**
     * This configuration as a Hugging Face {@code config.json}: {@code "model_type"} first, then {@link #raw()}.
     * {@link #fromJson(Path)} reads it back equal.
     *
     * @return pretty-printed JSON text
     */
    public String toJson() {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("model_type", family.modelType);
        out.putAll(raw);
        return Json.writeIndented(out) + "\n";
    }

    /**
     * The width of the residual stream ({@code n_embd} / {@code hidden_size}).
     *
     * @return d_model
     */
    public int dModel() {
        return dModel;
    }

    /**
     * The number of transformer blocks ({@code n_layer} / {@code num_layers} / {@code num_hidden_layers}).
     *
     * @return the layer count
     */
    public int nLayers() {
        return nLayers;
    }

    /**
     * The number of query heads ({@code n_head} / {@code num_heads} / {@code num_attention_heads}).
     *
     * @return the head count
     */
    public int nHeads() {
        return nHeads;
    }

    /**
     * The number of key/value heads ({@code num_key_value_heads}, or {@link #nHeads()} where the family or the key
     * leaves it unset); {@link #nHeads()} is a multiple of it.
     *
     * @return the key/value head count
     */
    public int nKvHeads() {
        return nKvHeads;
    }

    /**
     * The dimension of one head: {@code head_dim} where set (gemma always; llama, mistral, qwen2, phi3 optionally),
     * else {@code dModel / nHeads}.
     *
     * @return d_head
     */
    public int dHead() {
        return dHead;
    }

    /**
     * The hidden width of the MLP ({@code n_inner} / {@code intermediate_size}; {@code 4 * dModel} where those are
     * null in gpt2 and gpt-neo).
     *
     * @return d_mlp
     */
    public int dMlp() {
        return dMlp;
    }

    /**
     * The vocabulary size ({@code vocab_size}).
     *
     * @return d_vocab
     */
    public int vocabSize() {
        return vocabSize;
    }

    /**
     * The context length ({@code n_positions} / {@code max_position_embeddings}); for gpt2 and gpt-neo the number
     * of learned position embeddings.
     *
     * @return n_ctx
     */
    public int maxPositions() {
        return maxPositions;
    }

    /**
     * The epsilon of the normalisation layers ({@code layer_norm_epsilon} / {@code layer_norm_eps} /
     * {@code rms_norm_eps}).
     *
     * @return eps, positive
     */
    public double normEps() {
        return normEps;
    }

    /**
     * Whether the norms are RMSNorm (llama, gemma, phi3, qwen2, mistral) rather than LayerNorm with bias (gpt2,
     * gpt-neo, gpt-neox, stable-lm).
     *
     * @return true for RMSNorm
     */
    public boolean rmsNorm() {
        return rmsNorm;
    }

    /**
     * Whether the RMSNorm scales by {@code (1 + weight)} (gemma, whose weights start at zero) instead of
     * {@code weight}.
     *
     * @return true for gemma
     */
    public boolean normAddsOne() {
        return normAddsOne;
    }

    /**
     * The MLP activation as a {@code transformers} activation name ({@code "gelu_new"}, {@code "gelu"},
     * {@code "silu"}, {@code "gelu_pytorch_tanh"}, ...): {@code activation_function} for gpt2 and gpt-neo,
     * {@code hidden_act} otherwise, except that gemma's {@code hidden_activation} wins when set.
     *
     * @return the activation name
     */
    public String activation() {
        return activation;
    }

    /**
     * Whether the MLP is gated, {@code down(act(gate(x)) * up(x))} (llama, mistral, qwen2, gemma, phi3, stable-lm),
     * rather than two layers, {@code out(act(in(x)))} (gpt2, gpt-neo, gpt-neox).
     *
     * @return true for a gated MLP
     */
    public boolean gatedMlp() {
        return gatedMlp;
    }

    /**
     * Whether positions enter through rotary embeddings on queries and keys (all but gpt2 and gpt-neo, which learn
     * position embeddings).
     *
     * @return true for rotary
     */
    public boolean rotary() {
        return rotary;
    }

    /**
     * How many leading dimensions of each head are rotated: {@code int(dHead * factor)} with the factor
     * {@code rotary_pct} (gpt-neox) or {@code partial_rotary_factor} (stable-lm, phi3), 1 elsewhere; 0 when not
     * {@link #rotary()}.
     *
     * @return the rotary dimension, even
     */
    public int rotaryDim() {
        return rotaryDim;
    }

    /**
     * The rotary base ({@code rope_theta}, gpt-neox {@code rotary_emb_base}); 0 when not {@link #rotary()}. Any
     * {@code rope_scaling} is left in {@link #raw()}.
     *
     * @return theta
     */
    public double ropeTheta() {
        return ropeTheta;
    }

    /**
     * Whether attention and MLP read the same block input and both add to the residual
     * ({@code use_parallel_residual} of gpt-neox and stable-lm).
     *
     * @return true for a parallel residual
     */
    public boolean parallelResidual() {
        return parallelResidual;
    }

    /**
     * Whether the unembedding is the token embedding ({@code tie_word_embeddings}).
     *
     * @return true when tied
     */
    public boolean tiedEmbeddings() {
        return tiedEmbeddings;
    }

    /**
     * Whether the query, key and value projections have biases: gpt2 and qwen2 yes, gpt-neo, mistral and phi3 no,
     * gpt-neox, llama and gemma {@code attention_bias}, stable-lm {@code use_qkv_bias}.
     *
     * @return true with q/k/v biases
     */
    public boolean qkvBias() {
        return qkvBias;
    }

    /**
     * Whether the attention output projection has a bias: gpt2 and gpt-neo yes, gpt-neox, llama and gemma
     * {@code attention_bias}, the others no.
     *
     * @return true with an output bias
     */
    public boolean outBias() {
        return outBias;
    }

    /**
     * Whether the MLP projections have biases: gpt2, gpt-neo and gpt-neox yes, llama {@code mlp_bias}, the others
     * no.
     *
     * @return true with MLP biases
     */
    public boolean mlpBias() {
        return mlpBias;
    }

    /**
     * Whether attention scores are divided by {@code sqrt(dHead)}: false for gpt-neo, gpt2's
     * {@code scale_attn_weights}, true otherwise.
     *
     * @return true when scaled
     */
    public boolean scaleAttention() {
        return scaleAttention;
    }

    /**
     * The sliding attention window: mistral's and phi3's {@code sliding_window} when not null, qwen2's when
     * {@code use_sliding_window}; empty otherwise. Which layers use it: {@link #isSlidingWindowLayer(int)}.
     *
     * @return the window, in positions (the query's own included), or empty
     */
    public OptionalInt slidingWindow() {
        return slidingWindow > 0 ? OptionalInt.of(slidingWindow) : OptionalInt.empty();
    }

    /**
     * Whether a layer attends through {@link #slidingWindow()}: every layer for mistral and phi3 when the window is
     * set; for qwen2 with {@code use_sliding_window}, the layers {@code layer_types} marks
     * {@code "sliding_attention"}, or, without {@code layer_types}, the layers from {@code max_window_layers} on.
     *
     * @param layer the layer index, {@code 0 <= layer < nLayers()}
     * @return true when that layer uses the sliding window
     * @throws IndexOutOfBoundsException for a layer outside the model
     */
    public boolean isSlidingWindowLayer(int layer) {
        Objects.checkIndex(layer, nLayers);
        if (slidingWindow == 0) {
            return false;
        }
        return slidingLayers == null || slidingLayers[layer];
    }

    /**
     * Whether a gpt-neo layer uses local attention ({@code attention_types} expanded per layer, as
     * {@code GPTNeoConfig.expand_attention_types_params}); always false for the other families.
     *
     * @param layer the layer index, {@code 0 <= layer < nLayers()}
     * @return true for a local layer
     * @throws IndexOutOfBoundsException for a layer outside the model
     */
    public boolean isLocalAttentionLayer(int layer) {
        Objects.checkIndex(layer, nLayers);
        return localLayers != null && localLayers[layer];
    }

    /**
     * The window of gpt-neo's local layers ({@code window_size}): a query sees itself and the
     * {@code window_size - 1} positions before it; 0 for the other families.
     *
     * @return the local window
     */
    public int localWindow() {
        return localWindow;
    }

    /**
     * The factor the token embeddings are multiplied by before the first block: {@code sqrt(hidden_size)} for
     * gemma, 1 otherwise.
     *
     * @return the embedding scale
     */
    public double embeddingScale() {
        return embeddingScale;
    }

    /**
     * The standard deviation for initialising weights ({@code initializer_range}).
     *
     * @return the initializer range, {@code >= 0}
     */
    public double initializerRange() {
        return initializerRange;
    }

    /**
     * The exact number of parameters of the Hugging Face checkpoint ({@code *ForCausalLM}) for this configuration:
     * token embeddings, learned position embeddings (gpt2, gpt-neo), per layer the attention and MLP weights and
     * biases and the norms (LayerNorm weight and bias, RMSNorm weight; stable-lm's per-head q/k LayerNorms), the
     * final norm, and the unembedding, counted once when tied. Buffers (causal masks, rotary frequencies) are not
     * parameters. GPT-2 small gives 124,439,808; the llama defaults 6,738,415,616.
     *
     * @return the parameter count
     */
    public long parameterCount() {
        return parameterCount;
    }

    /**
     * The size of the weights at a given width per parameter, {@code parameterCount() * bytesPerParameter}.
     *
     * @param bytesPerParameter e.g. 4 for float32, 2 for bfloat16; positive
     * @return the size in bytes
     * @throws IllegalArgumentException if {@code bytesPerParameter} is not positive
     * @throws ArithmeticException if the product overflows a long
     */
    public long weightBytes(int bytesPerParameter) {
        if (bytesPerParameter <= 0) {
            throw new IllegalArgumentException("bytesPerParameter must be positive, got " + bytesPerParameter);
        }
        return Math.multiplyExact(parameterCount, (long) bytesPerParameter);
    }

    /**
     * Equal when the family and {@link #raw()} are equal.
     *
     * @param o another object
     * @return whether they are equal
     */
    @Override
    public boolean equals(Object o) {
        return o instanceof HookedAutoConfig other && family == other.family && raw.equals(other.raw);
    }

    /**
     * A hash of the family and {@link #raw()}.
     *
     * @return the hash code
     */
    @Override
    public int hashCode() {
        return 31 * family.hashCode() + raw.hashCode();
    }

    /**
     * The family and the main sizes, e.g. {@code HookedAutoConfig[gpt2: d_model=768, n_layers=12, n_heads=12,
     * n_kv_heads=12, d_head=64, d_mlp=3072, d_vocab=50257, n_ctx=1024, params=124439808]}.
     *
     * @return a one-line description
     */
    @Override
    public String toString() {
        return "HookedAutoConfig[" + family.canonical + ": " + summary() + ", params=" + parameterCount + "]";
    }

    private String summary() {
        return "d_model=" + dModel + ", n_layers=" + nLayers + ", n_heads=" + nHeads + ", n_kv_heads=" + nKvHeads
                + ", d_head=" + dHead + ", d_mlp=" + dMlp + ", d_vocab=" + vocabSize + ", n_ctx=" + maxPositions;
    }

    // ------------------------------------------------------------------------------------------- internals

    private long countParameters(boolean learnedPositions, boolean qkLayerNorm) {
        long d = dModel;
        long qDim = Math.multiplyExact((long) nHeads, dHead);
        long kvDim = Math.multiplyExact((long) nKvHeads, dHead);
        long inner = dMlp;
        long norm = rmsNorm ? d : 2 * d;

        long layer = parallelResidual && family == Family.STABLE_LM ? norm : 2 * norm; // stablelm: no post-attn norm
        layer += Math.multiplyExact(d, qDim + 2 * kvDim) + Math.multiplyExact(qDim, d);
        if (qkvBias) {
            layer += qDim + 2 * kvDim;
        }
        if (outBias) {
            layer += d;
        }
        if (qkLayerNorm) {
            layer += qDim + kvDim; // StableLmLayerNormPerHead: one bias-free LayerNorm(d_head) per head
        }
        layer += Math.multiplyExact(d, inner) * (gatedMlp ? 3 : 2);
        if (mlpBias) {
            layer += gatedMlp ? 2 * inner + d : inner + d;
        }

        long embed = Math.multiplyExact((long) vocabSize, d);
        long total = embed;
        if (learnedPositions) {
            total = Math.addExact(total, Math.multiplyExact((long) maxPositions, d));
        }
        total = Math.addExact(total, Math.multiplyExact(layer, (long) nLayers));
        total = Math.addExact(total, norm);
        if (!tiedEmbeddings) {
            total = Math.addExact(total, embed);
        }
        return total;
    }

    private boolean[] expandAttentionTypes(int layers) {
        List<?> types = (List<?>) raw.get("attention_types");
        long total = 0;
        for (Object item : types) {
            if (!(item instanceof List<?> pair) || pair.size() != 2 || !(pair.get(0) instanceof List<?> kinds)
                    || !(pair.get(1) instanceof Integer repeat)) {
                throw invalid("attention_types", types,
                        "must be a list of [[\"global\" | \"local\", ...], repeat] pairs; bad entry " + item);
            }
            if (repeat < 0) {
                throw invalid("attention_types", types, "has a negative repeat count in " + item);
            }
            for (Object kind : kinds) {
                if (!"global".equals(kind) && !"local".equals(kind)) {
                    throw invalid("attention_types", types,
                            "may only name \"global\" and \"local\" attention, got " + describe(kind));
                }
            }
            total += (long) kinds.size() * repeat;
        }
        if (total != layers) {
            throw invalid("attention_types", types,
                    "expands to " + total + " layers but num_layers = " + layers);
        }
        boolean[] local = new boolean[layers];
        int i = 0;
        for (Object item : types) {
            List<?> pair = (List<?>) item;
            List<?> kinds = (List<?>) pair.get(0);
            int repeat = (Integer) pair.get(1);
            for (int r = 0; r < repeat; r++) {
                for (Object kind : kinds) {
                    local[i++] = "local".equals(kind);
                }
            }
        }
        return local;
    }

    private boolean[] qwen2SlidingLayers(int layers, boolean windowOn) {
        boolean[] sliding = new boolean[layers];
        Object lt = raw.get("layer_types");
        if (lt != null) {
            List<?> types = (List<?>) lt;
            if (types.size() != layers) {
                throw invalid("layer_types", types,
                        "has " + types.size() + " entries but num_hidden_layers = " + layers);
            }
            for (int i = 0; i < layers; i++) {
                Object t = types.get(i);
                if (!"full_attention".equals(t) && !"sliding_attention".equals(t)) {
                    throw invalid("layer_types", types,
                            "entries must be \"full_attention\" or \"sliding_attention\", got " + describe(t));
                }
                sliding[i] = windowOn && "sliding_attention".equals(t);
            }
        } else {
            int maxWindowLayers = integer("max_window_layers");
            if (maxWindowLayers < 0) {
                throw invalid("max_window_layers", maxWindowLayers, "must be >= 0");
            }
            for (int i = 0; i < layers; i++) {
                sliding[i] = windowOn && i >= maxWindowLayers;
            }
        }
        return sliding;
    }

    private static double ropeParameter(Map<?, ?> rp, String name) {
        Object v = rp.get(name);
        if (!(v instanceof Integer || v instanceof Long || v instanceof Double)) {
            throw invalid("rope_parameters", rp, "entry \"" + name + "\" must be a number, got " + describe(v));
        }
        return ((Number) v).doubleValue();
    }

    /** The real key a standard name maps to in this family ({@code hidden_size} is {@code n_embd} for gpt2). */
    private String key(String standardName) {
        for (Map.Entry<String, String> alias : SPECS.get(family).aliases().entrySet()) {
            if (alias.getKey().equals(standardName)) {
                return alias.getValue();
            }
        }
        return standardName;
    }

    private int integer(String key) {
        Object v = raw.get(key);
        if (!(v instanceof Integer i)) {
            throw invalid(key, v, "must be an integer");
        }
        return i;
    }

    private Integer integerOrNull(String key) {
        return (Integer) raw.get(key);
    }

    private double number(String key) {
        return (Double) raw.get(key);
    }

    private boolean bool(String key) {
        return (Boolean) raw.get(key);
    }

    private String string(String key) {
        return (String) raw.get(key);
    }

    private String stringOrNull(String key) {
        return (String) raw.get(key);
    }

    private static int multiply(String key, int value, int factor) {
        try {
            return Math.multiplyExact(value, factor);
        } catch (ArithmeticException e) {
            throw invalid(key, value, "is too large: " + factor + " times it overflows an int");
        }
    }

    private static IllegalArgumentException invalid(String key, Object value, String problem) {
        return new IllegalArgumentException(key + " = " + describe(value) + " " + problem);
    }

    private static String describe(Object value) {
        if (value == null) {
            return "null";
        }
        if (value instanceof String s) {
            return "\"" + s + "\" (String)";
        }
        String text = String.valueOf(value);
        if (text.length() > 200) {
            text = text.substring(0, 200) + "...";
        }
        String type = value instanceof List<?> ? "list" : value instanceof Map<?, ?> ? "object"
                : value.getClass().getSimpleName();
        return text + " (" + type + ")";
    }

    private static String modelTypes() {
        StringJoiner j = new StringJoiner(", ");
        for (Family f : Family.values()) {
            j.add(f.modelType);
        }
        return j.toString();
    }

    private static Family family(String name, String what) {
        Objects.requireNonNull(name, what);
        String n = name.toLowerCase(Locale.ROOT);
        for (Family f : Family.values()) {
            if (f.canonical.equals(n) || f.modelType.equals(n)) {
                return f;
            }
        }
        throw new IllegalArgumentException("unsupported " + what + " \"" + name + "\"; supported families: "
                + String.join(", ", SUPPORTED) + " (Hugging Face model_type spellings: " + modelTypes() + ")");
    }

    /**
     * Applies overrides to a copy of {@code base}: resolves aliases, type-checks family keys, and either keeps
     * ({@code keepUnknown}, for config.json) or rejects keys the family does not know and {@code base} lacks.
     */
    private static Map<String, Object> merge(Family family, Map<String, Object> base, Map<String, ?> overrides,
            boolean keepUnknown) {
        Spec spec = SPECS.get(family);
        Map<String, Object> out = new LinkedHashMap<>(base);
        Map<String, String> givenAs = new LinkedHashMap<>();
        Map<String, Object> assigned = new LinkedHashMap<>();
        for (Map.Entry<String, ?> e : overrides.entrySet()) {
            String given = Objects.requireNonNull(e.getKey(), "override key");
            String real = spec.aliases().getOrDefault(given, given);
            Key key = spec.keys().get(real);
            Object value;
            if (key != null) {
                value = normaliseFor(key, given, e.getValue());
            } else if (keepUnknown || base.containsKey(real)) {
                value = normalise(given, e.getValue());
            } else {
                throw unknownKey(family, spec, given);
            }
            if (assigned.containsKey(real) && !Objects.equals(assigned.get(real), value)) {
                throw new IllegalArgumentException(givenAs.get(real) + " = " + describe(assigned.get(real)) + " and "
                        + given + " = " + describe(value) + " set the same key " + real + " of " + family.canonical
                        + " to different values");
            }
            assigned.put(real, value);
            givenAs.put(real, given);
            if (value == null && key != null && !key.inDefaults()) {
                out.remove(real); // an optional key set to null is absent, as the configuration class expects
            } else {
                out.put(real, value);
            }
        }
        return out;
    }

    private static IllegalArgumentException unknownKey(Family family, Spec spec, String given) {
        List<String> names = new ArrayList<>(spec.keys().keySet());
        String some = String.join(", ", names.subList(0, Math.min(10, names.size())));
        String aliases = spec.aliases().isEmpty() ? ""
                : "; aliases: " + String.join(", ", spec.aliases().keySet().stream().sorted().toList());
        return new IllegalArgumentException("unknown key \"" + given + "\" for " + family.canonical
                + "; valid keys include " + some + ", ... (" + names.size() + " in all" + aliases + ")");
    }

    /** Type-checks and normalises a value for a family key. */
    private static Object normaliseFor(Key key, String given, Object value) {
        String name = given.equals(key.name()) ? key.name() : given + " (" + key.name() + ")";
        if (value == null) {
            if (!key.nullable()) {
                throw invalid(name, null, "may not be null");
            }
            return null;
        }
        switch (key.kind()) {
            case INT -> {
                Integer i = asInt(value);
                if (i == null) {
                    throw invalid(name, value, "must be an integer");
                }
                if (key.positive() && i <= 0) {
                    throw invalid(name, value, "must be positive");
                }
                return i;
            }
            case DOUBLE -> {
                Double d = asDouble(value);
                if (d == null) {
                    throw invalid(name, value, "must be a number");
                }
                if (d.isNaN() || d.isInfinite()) {
                    throw invalid(name, value, "must be finite");
                }
                if (key.positive() && !(d > 0.0)) {
                    throw invalid(name, value, "must be positive");
                }
                return d;
            }
            case BOOL -> {
                if (!(value instanceof Boolean)) {
                    throw invalid(name, value, "must be a boolean");
                }
                return value;
            }
            case STRING -> {
                if (!(value instanceof String)) {
                    throw invalid(name, value, "must be a string");
                }
                return value;
            }
            case TOKEN_IDS -> {
                Integer i = asInt(value);
                if (i != null) {
                    return i;
                }
                if (value instanceof List<?> list) {
                    List<Object> ids = new ArrayList<>();
                    for (Object o : list) {
                        Integer id = o == null ? null : asInt(o);
                        if (id == null) {
                            throw invalid(name, value, "must be a token id or a list of token ids");
                        }
                        ids.add(id);
                    }
                    return Collections.unmodifiableList(ids);
                }
                throw invalid(name, value, "must be a token id or a list of token ids");
            }
            case LIST -> {
                if (!(value instanceof List<?>)) {
                    throw invalid(name, value, "must be a list");
                }
                return normalise(name, value);
            }
            case MAP -> {
                if (!(value instanceof Map<?, ?>)) {
                    throw invalid(name, value, "must be a JSON object (a Map)");
                }
                return normalise(name, value);
            }
            default -> throw new AssertionError(key.kind());
        }
    }

    /** Normalises any JSON-representable value; deep, unmodifiable copies of lists and maps. */
    private static Object normalise(String name, Object value) {
        if (value == null || value instanceof String || value instanceof Boolean) {
            return value;
        }
        if (value instanceof Number n) {
            Integer i = asInt(n);
            if (i != null) {
                return i;
            }
            if (n instanceof Long || n instanceof AtomicLong) {
                return n.longValue();
            }
            if (n instanceof BigInteger b) {
                if (b.bitLength() < 64) {
                    return b.longValue();
                }
                throw invalid(name, value, "is too large an integer for JSON round trips");
            }
            Double d = asDouble(n);
            if (d == null || d.isNaN() || d.isInfinite()) {
                throw invalid(name, value, "is not a finite JSON number");
            }
            return d;
        }
        if (value instanceof List<?> list) {
            List<Object> copy = new ArrayList<>(list.size());
            for (Object o : list) {
                copy.add(normalise(name, o));
            }
            return Collections.unmodifiableList(copy);
        }
        if (value instanceof Map<?, ?> map) {
            Map<String, Object> copy = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : map.entrySet()) {
                if (!(e.getKey() instanceof String k)) {
                    throw invalid(name, value, "has a non-string key " + describe(e.getKey()));
                }
                copy.put(k, normalise(name, e.getValue()));
            }
            return Collections.unmodifiableMap(copy);
        }
        throw invalid(name, value, "is not a JSON value (Integer, Long, Double, Boolean, String, List, Map, null)");
    }

    /** An integral number that fits an int, or null. */
    private static Integer asInt(Object value) {
        if (value instanceof Integer i) {
            return i;
        }
        if (value instanceof Short || value instanceof Byte || value instanceof AtomicInteger) {
            return ((Number) value).intValue();
        }
        if (value instanceof Long || value instanceof AtomicLong) {
            long l = ((Number) value).longValue();
            return l >= Integer.MIN_VALUE && l <= Integer.MAX_VALUE ? (int) l : null;
        }
        if (value instanceof BigInteger b && b.bitLength() < 32) {
            return b.intValue();
        }
        return null;
    }

    /** Any number as a double ({@code Float} through its decimal form), or null. */
    private static Double asDouble(Object value) {
        if (value instanceof Double d) {
            return d;
        }
        if (value instanceof Float f) {
            return f.isNaN() || f.isInfinite() ? f.doubleValue() : Double.parseDouble(Float.toString(f));
        }
        if (value instanceof BigDecimal b) {
            return b.doubleValue();
        }
        if (value instanceof Number n) {
            return n.doubleValue();
        }
        return null;
    }
}
