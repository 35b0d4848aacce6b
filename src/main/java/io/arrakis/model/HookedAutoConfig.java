package io.arrakis.model;

import io.arrakis.io.IoErrors;
import io.arrakis.io.ModelFolder;
import io.arrakis.json.Json;
import io.arrakis.model.family.Architecture;
import io.arrakis.model.family.Checkpoint;
import io.arrakis.model.family.ConfigValues;
import io.arrakis.model.family.Families;
import io.arrakis.model.family.ModelFamily;
import io.arrakis.model.family.SparseAttention;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.CharacterCodingException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * A transformer configuration of one of the {@linkplain #supportedFamilies() supported model families}, with the
 * Hugging Face {@code config.json} key names: the Java form of Arrakis's {@code HookedAutoConfig(name="llama")}.
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
 *   <li>A family's keys and their defaults are {@code HookedAutoConfig.of(family).raw()}: the keyword defaults of
 *       the family's configuration class's {@code __init__} in Hugging Face {@code transformers} <b>v4.57.6</b> (the
 *       last 4.x release, whose files still use the {@code config.json} key names found on the Hub), plus
 *       {@code tie_word_embeddings} where the class inherits it from {@code PretrainedConfig} (the first nine
 *       families); the later ones follow the fields of their 5.17 classes, with the 4.x rotary keys
 *       ({@code rope_theta}, {@code rope_scaling}, {@code partial_rotary_factor}) that 5.x still reads. Each family's
 *       class in {@code io.arrakis.model.family} holds that table, the source it was read from, and how the modeling
 *       file uses the keys.</li>
 *   <li>Values are {@code Integer}, {@code Long}, {@code Double}, {@code Boolean}, {@code String}, {@code null},
 *       unmodifiable {@code List}s and unmodifiable {@code Map}s (JSON objects such as {@code rope_scaling}) of
 *       these. Integer-valued keys hold {@code Integer}; floating-point keys hold {@code Double}, so
 *       {@code "rope_theta": 10000} reads as {@code 10000.0}; a {@code Long} that fits an {@code int} becomes an
 *       {@code Integer}, a {@code Float} the {@code Double} of its decimal form.</li>
 *   <li>Aliases: where the configuration class has an {@code attribute_map}, its standard names are accepted by
 *       {@link #with(String, Object)} and {@link #fromJson(Path)} and stored under the family's real key
 *       ({@code hidden_size -> n_embd} for {@code gpt2}). An alias and its real key given together with different
 *       values are an error.</li>
 *   <li>Keys the family does not define are kept in {@link #raw()} when they come from a {@code config.json}
 *       ({@code architectures}, {@code torch_dtype}, {@code transformers_version}, ...) and are otherwise ignored;
 *       {@link #with(String, Object)} rejects a key that is neither a family key nor already present.</li>
 *   <li>Optional keys are recognised (type-checked, honoured) but absent from the defaults because the configuration
 *       class has no such argument while the modeling code reads it ({@code head_dim} of {@code qwen2} and
 *       {@code phi3}, {@code rope_scaling} of {@code gemma} and {@code mistral}), or because they are the
 *       {@code transformers} 5 form ({@code rope_parameters}). Setting an optional key to {@code null} removes
 *       it.</li>
 *   <li>Rotary scaling: the object {@code rope_scaling} (or {@code rope_parameters}; given both, they must agree)
 *       is read as {@code transformers} 5 reads it. Its {@code rope_theta} and {@code partial_rotary_factor} take
 *       precedence over the top-level keys, and its {@code rope_type} (or {@code type}) {@code "default"},
 *       {@code "linear"}, {@code "llama3"}, {@code "yarn"}, {@code "dynamic"} or {@code "longrope"} scales the
 *       frequencies; other types ({@code "proportional"}, ...) and entries the type does not take are refused.</li>
 * </ul>
 *
 * <h2>Validation</h2>
 * Every factory and {@code with} validates before anything is allocated and throws {@link IllegalArgumentException}
 * naming the key and the value: an unknown key, a value of the wrong type (a string for {@code hidden_size}),
 * {@code null} for a key that may not be null, a non-positive size, a hidden size not divisible by the number of
 * heads (unless the family takes an explicit {@code head_dim} and it is set), heads not a multiple of key/value heads,
 * a rotary factor outside (0, 1] or a rotary dimension that is not a positive even number, a non-positive epsilon or
 * rope base, an activation name unknown to {@code transformers.activations.ACT2FN}, and the families' own cross-key
 * rules ({@code attention_types} of {@code gpt-neo} must expand to its layers, a sliding window switched on needs a
 * size, ...). A value that changes the computation in a way the forward pass does not implement is refused the same
 * way, never ignored: an activation or rope type it does not compute, {@code qk_layernorm} of {@code stable-lm},
 * {@code scale_attn_by_inverse_layer_idx} of {@code gpt2}.
 *
 * <p>Instances are immutable and thread-safe; {@link #equals(Object)} compares the family and {@link #raw()}.
 */
public final class HookedAutoConfig {
    /** The largest config.json read, in bytes: real ones are a few kilobytes. */
    static final long MAX_CONFIG_BYTES = 16L << 20;

    private static final List<String> SUPPORTED = Families.all().stream().map(ModelFamily::name).toList();

    private final ModelFamily family;
    private final Map<String, Object> raw;
    private final Architecture arch;
    private final Checkpoint checkpoint;
    private final long parameterCount;
    private final boolean multimodal; // read from a multimodal model's config.json (see MultimodalCheckpoint)
    private final MultimodalCheckpoint.Placeholders placeholders; // ids its multimodal model embeds as another

    /** Validates {@code raw} (already type-normalised) and derives the normalised view. */
    private HookedAutoConfig(ModelFamily family, Map<String, Object> raw) {
        this(family, raw, false, MultimodalCheckpoint.Placeholders.NONE);
    }

    private HookedAutoConfig(ModelFamily family, Map<String, Object> raw, boolean multimodal,
                             MultimodalCheckpoint.Placeholders placeholders) {
        this.multimodal = multimodal;
        this.placeholders = placeholders;
        this.family = family;
        this.raw = Collections.unmodifiableMap(raw);
        this.arch = family.architecture(this.raw);
        this.checkpoint = family.checkpoint(arch);
        try {
            this.parameterCount = checkpoint.parameterCount();
        } catch (ArithmeticException overflow) {
            throw new IllegalArgumentException("the parameter count of this " + family.name()
                    + " configuration overflows a long: " + summary());
        }
    }

    // ------------------------------------------------------------------------------------------- factories

    /**
     * The names of the supported families, in registration order: {@code gpt2}, {@code gpt-neo}, {@code gpt-neox},
     * {@code llama}, {@code gemma}, {@code phi3}, {@code qwen2}, {@code mistral}, {@code stable-lm}, ...
     *
     * @return an unmodifiable list
     */
    public static List<String> supportedFamilies() {
        return SUPPORTED;
    }

    /**
     * The configuration with a family's Hugging Face defaults.
     *
     * @param family a name from {@link #supportedFamilies()} or a Hugging Face {@code model_type} spelling
     *     ({@code "gpt_neo"}, {@code "gpt_neox"}, {@code "stablelm"}); case-insensitive
     * @return the default configuration
     * @throws IllegalArgumentException for an unknown family, listing the supported names
     * @throws NullPointerException if {@code family} is null
     */
    public static HookedAutoConfig of(String family) {
        ModelFamily f = Families.find(family, "family");
        return new HookedAutoConfig(f, f.defaults());
    }

    /**
     * Reads a Hugging Face {@code config.json}: its {@code "model_type"} picks the family (Hugging Face's spelling
     * exactly, e.g. {@code gpt_neox} and {@code gemma3_text}; {@link #of} takes the families' own names too), its
     * family keys (or their aliases) override the defaults, and its other keys are kept in {@link #raw()} but
     * otherwise ignored; a {@code quantization_config} is refused, as quantized models are not implemented, unless it
     * sets {@code "dequantize": true} (the checkpoint then holds plain weights), and so are {@code is_causal} other
     * than {@code true} and a non-empty {@code per_layer_config}, which {@code transformers} reads for every family
     * (but Gemma 4's, whose overrides of its layers' heads the family reads).
     * A multimodal config of Gemma 3 ({@code model_type} {@code gemma3}, the 4B to 27B models), LLaVA, Mistral 3,
     * Qwen2-VL or Qwen2.5-VL gives its text model's, which is all that text reaches.
     *
     * @param configJson the file (UTF-8)
     * @return the configuration
     * @throws IllegalArgumentException if the file is not UTF-8 strict JSON, not an object, has no string
     *     {@code model_type}, names an unsupported family, or holds an invalid value (the message names the file)
     * @throws UncheckedIOException if the file cannot be read
     */
    public static HookedAutoConfig fromJson(Path configJson) {
        Objects.requireNonNull(configJson, "configJson");
        String text;
        try {
            long size = Files.size(configJson);
            if (size > MAX_CONFIG_BYTES) {
                throw new IllegalArgumentException(configJson + " is " + size + " bytes, over the " + MAX_CONFIG_BYTES
                        + " a config.json may have (is it one?)");
            }
            text = Files.readString(configJson);
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException(configJson + ": not UTF-8 text, which a config.json is", e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + configJson + ": " + IoErrors.reason(e), e);
        }
        try {
            return fromJsonText(text);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(configJson + ": " + e.getMessage(), e);
        }
    }

    /**
     * The configuration of a Hugging Face model folder, or of the snapshot a hub cache folder names: its
     * {@code config.json}, without reading the weights.
     *
     * @throws IllegalArgumentException when {@code dir} is not a model folder with a {@code config.json}, or as
     *     {@link #fromJson(Path)}
     */
    public static HookedAutoConfig fromPretrained(Path dir) {
        return fromJson(modelFolder(dir).resolve("config.json"));
    }

    /** The folder holding a model's files ({@link ModelFolder#resolve}), refused when it has no config.json. */
    static Path modelFolder(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("no model directory " + dir + " (expected a Hugging Face model folder with"
                    + " config.json and model.safetensors)");
        }
        Path folder = ModelFolder.resolve(dir);
        if (!Files.isRegularFile(folder.resolve("config.json"))) {
            throw new IllegalArgumentException(folder + " has no config.json; a Hugging Face model folder needs one");
        }
        return folder;
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
            throw new IllegalArgumentException(e.getMessage(), e);
        }
        if (!(parsed instanceof Map<?, ?> file)) {
            throw new IllegalArgumentException("a config.json must hold a JSON object, got "
                    + ConfigValues.describe(parsed));
        }
        Map<?, ?> top = MultimodalCheckpoint.textConfig(file);
        Object modelType = top.get("model_type");
        if (!(modelType instanceof String mt)) {
            throw new IllegalArgumentException("a config.json needs a string \"model_type\" (one of "
                    + Families.modelTypes() + "), got " + ConfigValues.describe(modelType));
        }
        ModelFamily f = Families.forModelType(mt);
        Map<String, Object> overrides = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : top.entrySet()) {
            if (!"model_type".equals(e.getKey())) {
                overrides.put((String) e.getKey(), e.getValue());
            }
        }
        return new HookedAutoConfig(f, f.fromFile(overrides), top != file, MultimodalCheckpoint.placeholders(file));
    }

    /** Whether this config is the text model's of a multimodal model's {@code config.json}. */
    boolean multimodal() {
        return multimodal;
    }

    /**
     * The token ids the multimodal model embeds as another in every pass, text alone too (the media placeholders of
     * Kimi K2.5 and Gemma 4), and that id; no ids for others.
     */
    MultimodalCheckpoint.Placeholders placeholders() {
        return placeholders;
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
        return new HookedAutoConfig(family, family.merge(raw, overrides, false), false, placeholders);
    }

    // --------------------------------------------------------------------------------------------- accessors

    /**
     * The configuration's {@code bos_token_id}, where it names one token: what TransformerLens's {@code to_tokens}
     * prepends by default.
     *
     * @return the id, or empty where the configuration sets none (or a list)
     */
    public OptionalLong bosTokenId() {
        return raw.get("bos_token_id") instanceof Long || raw.get("bos_token_id") instanceof Integer
                ? OptionalLong.of(((Number) raw.get("bos_token_id")).longValue()) : OptionalLong.empty();
    }

    /**
     * The family's canonical name, one of {@link #supportedFamilies()}.
     *
     * @return the family name
     */
    public String family() {
        return family.name();
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
        out.put("model_type", family.modelType());
        out.putAll(raw);
        return Json.writeIndented(out) + "\n";
    }

    /**
     * The width of the residual stream ({@code n_embd} / {@code hidden_size}).
     *
     * @return d_model
     */
    public int dModel() {
        return arch.dModel();
    }

    /**
     * The number of transformer blocks ({@code n_layer} / {@code num_layers} / {@code num_hidden_layers}).
     *
     * @return the layer count
     */
    public int nLayers() {
        return arch.nLayers();
    }

    /**
     * The number of query heads ({@code n_head} / {@code num_heads} / {@code num_attention_heads}).
     *
     * @return the head count
     */
    public int nHeads() {
        return arch.nHeads();
    }

    /**
     * The number of key/value heads ({@code num_key_value_heads}, or {@link #nHeads()} where the family or the key
     * leaves it unset); {@link #nHeads()} is a multiple of it.
     *
     * @return the key/value head count
     */
    public int nKvHeads() {
        return arch.nKvHeads();
    }

    /**
     * The key/value heads of one layer: {@link #nKvHeads()}, but where layers differ (Gemma 4's full-attention
     * layers have their own {@code num_key_value_heads}).
     *
     * @param layer the layer index
     * @return its key/value head count
     */
    public int nKvHeads(int layer) {
        return arch.nKvHeads(layer);
    }

    /**
     * The width of one layer's query and key heads: {@link #dHead()}, but where layers differ (Gemma 4's
     * full-attention layers have their own {@code head_dim}).
     *
     * @param layer the layer index
     * @return its d_head
     */
    public int dHead(int layer) {
        return arch.dHead(layer);
    }

    /**
     * The width of one layer's value heads, and of its {@code hook_z}'s: {@link #dHeadV()}, but where layers differ.
     *
     * @param layer the layer index
     * @return its d_head of the values
     */
    public int dHeadV(int layer) {
        return arch.dHeadV(layer);
    }

    /**
     * The dimension of one head: {@code head_dim} where set (gemma always; llama, mistral, qwen2, phi3 optionally),
     * else {@code dModel / nHeads}; in latent attention (deepseek-v3) that of a query or key head,
     * {@code qk_nope_head_dim + qk_rope_head_dim} ({@link #dHeadV()} is its value heads'). Where layers differ
     * (Gemma 4), the width of the layers the configuration does not override; {@link #dHead(int)} gives each layer's.
     *
     * @return d_head
     */
    public int dHead() {
        return arch.dHead();
    }

    /**
     * The dimension of one value head, and of {@code hook_z}'s heads: {@link #dHead()}, but for multi-head latent
     * attention (deepseek-v3), whose query and key heads are wider than its value heads.
     *
     * @return d_head of the values
     */
    public int dHeadV() {
        return arch.dHeadV();
    }

    /**
     * The width of one layer's MLP hidden layer: {@link #dMlp()}, but where layers differ (Gemma 4's
     * {@code use_double_wide_mlp} doubles it in the layers that share keys and values).
     *
     * @param layer the layer index
     * @return its width
     */
    public int dMlp(int layer) {
        return arch.dMlp(layer);
    }

    /**
     * The layer whose keys and values a layer's queries attend to: its own, but in Gemma 4's layers that share an
     * earlier layer's ({@code num_kv_shared_layers}), which project none.
     *
     * @param layer the layer index
     * @return that layer's index
     */
    public int keysFrom(int layer) {
        return arch.keysFrom(layer);
    }

    /**
     * The widest query or key head of any layer: {@link #dHead()}, but where layers differ (Gemma 4).
     *
     * @return the width
     */
    public int widestHead() {
        return arch.widestHead();
    }

    /**
     * The hidden width of the MLP ({@code n_inner} / {@code intermediate_size}; {@code 4 * dModel} where those are
     * null in gpt2 and gpt-neo).
     *
     * @return d_mlp
     */
    public int dMlp() {
        return arch.dMlp();
    }

    /**
     * The vocabulary size ({@code vocab_size}).
     *
     * @return d_vocab
     */
    public int vocabSize() {
        return arch.vocabSize();
    }

    /**
     * The context length ({@code n_positions} / {@code max_position_embeddings}); for the families that learn position
     * embeddings (gpt2, gpt-neo, gpt-bigcode, opt) the number of them ({@link HookedAutoModel#W_pos()}'s rows; opt's
     * checkpoint stores two more, ahead of position 0).
     *
     * @return n_ctx
     */
    public int maxPositions() {
        return arch.maxPositions();
    }

    /**
     * The most positions a pass takes: {@link #maxPositions()}, or fewer where the family's attention turns sparse
     * beyond them (DeepSeek-V3.2's {@code index_topk}: its indexer then keeps only that many keys per query, which is
     * not implemented; within it every key is kept, and attention is dense).
     *
     * @return the longest input a pass accepts
     */
    public int longestPass() {
        SparseAttention indexer = arch.sparseAttention();
        return indexer != null ? Math.min(indexer.topK(), arch.maxPositions()) : arch.maxPositions();
    }

    /**
     * The epsilon of the normalisation layers ({@code layer_norm_epsilon} / {@code layer_norm_eps} /
     * {@code rms_norm_eps}).
     *
     * @return eps, positive
     */
    public double normEps() {
        return arch.normEps();
    }

    /**
     * Whether the norms are RMSNorm (llama, gemma, phi3, qwen2, mistral) rather than LayerNorm with bias (gpt2,
     * gpt-neo, gpt-neox, stable-lm).
     *
     * @return true for RMSNorm
     */
    public boolean rmsNorm() {
        return !arch.norm().centres();
    }

    /**
     * Whether the norm scales by {@code (1 + weight)} (gemma's RMSNorms and nemotron's LayerNorms) instead of
     * {@code weight}.
     *
     * @return true for gemma and nemotron
     */
    public boolean normAddsOne() {
        return arch.norm().addsOne();
    }

    /**
     * The MLP activation as a {@code transformers} activation name ({@code "gelu_new"}, {@code "gelu"},
     * {@code "silu"}, {@code "gelu_pytorch_tanh"}, ...): {@code activation_function} for gpt2 and gpt-neo,
     * {@code hidden_act} otherwise, except that gemma's {@code hidden_activation} wins when set.
     *
     * @return the activation name
     */
    public String activation() {
        return arch.activation();
    }

    /**
     * Whether the MLP is gated, {@code down(act(gate(x)) * up(x))} (llama, mistral, qwen2, gemma, phi3, stable-lm),
     * rather than two layers, {@code out(act(in(x)))} (gpt2, gpt-neo, gpt-neox).
     *
     * @return true for a gated MLP
     */
    public boolean gatedMlp() {
        return arch.gatedMlp();
    }

    /**
     * Whether positions enter through rotary embeddings on queries and keys (all but gpt2, gpt-neo, gpt-bigcode and
     * opt, which learn position embeddings).
     *
     * @return true for rotary
     */
    public boolean rotary() {
        return arch.rotary();
    }

    /**
     * The bound projected queries, keys and values are clamped to, {@code [-clipQkv, clipQkv]} (OLMo's
     * {@code clip_qkv}).
     *
     * @return the bound, or 0 for none
     */
    public double clipQkv() {
        return arch.clipQkv();
    }

    /**
     * Whether the query and key norms follow the rotary embedding (nanochat) rather than precede it.
     *
     * @return true where {@code hook_q_normed} is made from {@code hook_rot_q}
     */
    public boolean qkNormAfterRotary() {
        return arch.qkNormAfterRotary();
    }

    /**
     * How a layer mixes tokens: softmax attention, linear attention (Qwen3.5's gated DeltaNet: a recurrent state each
     * position decays and corrects, {@link io.arrakis.model.family.LinearAttention}, hooks
     * {@code blocks.i.linear_attn.*}), a short convolution (LFM2's, {@link io.arrakis.model.family.ShortConvolution},
     * hooks {@code blocks.i.conv.*}) or a Mamba-2 state space (Granite 4.0's, {@link io.arrakis.model.family.Mamba2},
     * hooks {@code blocks.i.mamba.*}). Only softmax attention has heads ({@link #attentionHeads}).
     *
     * @param layer the layer index, {@code 0 <= layer < nLayers()}
     * @return its mixer
     * @throws IndexOutOfBoundsException for a layer outside the model
     */
    public Architecture.Mixer mixer(int layer) {
        Objects.checkIndex(layer, arch.nLayers());
        return arch.mixer(layer);
    }

    /**
     * Whether a layer has attention heads, an attention pattern and per-head query, key and value maps: it attends by
     * softmax ({@link #mixer}). The head detectors and composition scores give the heads of other layers no score
     * (NaN); path patching, which patches heads, refuses them as senders and receivers.
     *
     * @param layer the layer index, {@code 0 <= layer < nLayers()}
     * @return true for a softmax-attention layer
     * @throws IndexOutOfBoundsException for a layer outside the model
     */
    public boolean attentionHeads(int layer) {
        return mixer(layer) == Architecture.Mixer.SOFTMAX_ATTENTION;
    }

    /**
     * What mixes tokens in the layers {@code from .. to - 1} that have no heads, each kind once, for messages: "linear
     * attention (gated DeltaNet)", or "" where every one of them has heads.
     */
    public String headlessMixers(int from, int to) {
        return java.util.stream.IntStream.range(from, to).mapToObj(this::mixer)
                .filter(m -> m != Architecture.Mixer.SOFTMAX_ATTENTION).distinct().map(Architecture.Mixer::description)
                .collect(java.util.stream.Collectors.joining(" and "));
    }

    /**
     * Whether a layer applies the rotary embeddings to its queries and keys: every layer of a {@link #rotary()}
     * model but smollm3's NoPE layers ({@code no_rope_layers}), which take no positions at all.
     *
     * @param layer the layer index, {@code 0 <= layer < nLayers()}
     * @return true where the layer rotates
     * @throws IndexOutOfBoundsException for a layer outside the model
     */
    public boolean rotates(int layer) {
        Objects.checkIndex(layer, arch.nLayers());
        return arch.rope(layer) != null;
    }

    /**
     * How many leading dimensions of each head are rotated: {@code int(dHead * factor)} with the factor
     * {@code rotary_pct} (gpt-neox) or {@code partial_rotary_factor} (stable-lm, phi3, phi), 1 elsewhere; gpt-j's
     * {@code rotary_dim}; 0 when not {@link #rotary()}. In latent attention (deepseek-v3, glm4-moe-lite,
     * deepseek-v2) the rotated dimensions are the last {@code qk_rope_head_dim} of each query and key head; where
     * {@code rope_interleave} is set (deepseek-v3, glm4-moe-lite) {@code hook_rot_q} and {@code hook_rot_k} hold them
     * laid out from the stored adjacent pairs as halves ({@code x0, x2, ..., x1, x3, ...}), as transformers' attention
     * rotates them, where deepseek-v2 keeps the pairs in place. Where layer types rotate differently (gemma3, gemma4),
     * the full layers'; gemma4's proportional rope counts the whole head, whose later pairs turn by no angle.
     *
     * @return the rotary dimension, even
     */
    public int rotaryDim() {
        return arch.rotary() ? arch.rope().dim() : 0;
    }

    /**
     * The rotary base ({@code rope_theta}, gpt-neox {@code rotary_emb_base}, 10000 for gpt-j, or the rotary
     * object's {@code rope_theta}); 0 when not {@link #rotary()}. A {@code rope_type} other than {@code "default"}
     * rescales the frequencies derived from it. Where layer types rotate differently (gemma3, gemma4), the full
     * layers'.
     *
     * @return theta
     */
    public double ropeTheta() {
        return arch.rotary() ? arch.rope().theta() : 0.0;
    }

    /**
     * Whether attention and MLP read the same block input and both add to the residual
     * ({@code use_parallel_residual} of gpt-neox and stable-lm; phi, gpt-j, cohere; falcon's {@code parallel_attn}).
     *
     * @return true for a parallel residual
     */
    public boolean parallelResidual() {
        return arch.parallelResidual();
    }

    /**
     * Whether the unembedding is the token embedding ({@code tie_word_embeddings}); a checkpoint that also stores an
     * unembedding with other values loads it untied all the same, as {@code transformers} 5 does.
     *
     * @return true when tied
     */
    public boolean tiedEmbeddings() {
        return arch.tiedEmbeddings();
    }

    /**
     * Whether the query, key and value projections have biases: gpt2, qwen2 and phi yes, gpt-neo, mistral, phi3 and
     * gpt-j no, gpt-neox, llama, gemma, granite and cohere {@code attention_bias}, stable-lm {@code use_qkv_bias},
     * starcoder2 {@code use_bias}, falcon {@code bias}.
     *
     * @return true with q/k/v biases
     */
    public boolean qkvBias() {
        return arch.qkvBias();
    }

    /**
     * Whether the attention output projection has a bias: gpt2, gpt-neo and phi yes, gpt-neox, llama, gemma, granite
     * and cohere {@code attention_bias}, starcoder2 {@code use_bias}, falcon {@code bias}, the others no.
     *
     * @return true with an output bias
     */
    public boolean outBias() {
        return arch.outBias();
    }

    /**
     * Whether the MLP projections have biases: gpt2, gpt-neo, gpt-neox, phi and gpt-j yes, llama and granite
     * {@code mlp_bias}, starcoder2 {@code use_bias}, falcon {@code bias}, the others no.
     *
     * @return true with MLP biases
     */
    public boolean mlpBias() {
        return arch.mlpBias();
    }

    /**
     * Whether attention scores are scaled, by {@code dHead^-1/2} or, for gemma2 and gemma3, by
     * {@code query_pre_attn_scalar^-1/2}: false for gpt-neo, granite (which multiplies them by
     * {@code attention_multiplier} instead) and gpt2's {@code scale_attn_weights}, true otherwise.
     *
     * @return true when scaled
     */
    public boolean scaleAttention() {
        return arch.scaleAttention();
    }

    /**
     * The sliding attention window: mistral's and phi3's {@code sliding_window} when not null, qwen2's, qwen3's and
     * qwen3-moe's when {@code use_sliding_window} (and not null); the windows of the other families that have one;
     * empty otherwise. Which layers use it: {@link #isSlidingWindowLayer(int)}.
     *
     * @return the window, in positions (the query's own included), or empty
     */
    public OptionalInt slidingWindow() {
        return arch.slidingWindow() > 0 ? OptionalInt.of(arch.slidingWindow()) : OptionalInt.empty();
    }

    /**
     * Whether a layer attends through {@link #slidingWindow()}: for mistral, the layers {@code layer_types} marks
     * {@code "sliding_attention"}, or every layer without it, when the window is set; every layer for phi3 and
     * qwen3-moe when the window is set; for qwen2 and qwen3 with a window, the layers {@code layer_types} marks, or,
     * without it, the layers from {@code max_window_layers} on; for the other families with sliding layers, those
     * their {@code layer_types} or pattern marks.
     *
     * @param layer the layer index, {@code 0 <= layer < nLayers()}
     * @return true when that layer uses the sliding window
     * @throws IndexOutOfBoundsException for a layer outside the model
     */
    public boolean isSlidingWindowLayer(int layer) {
        Objects.checkIndex(layer, arch.nLayers());
        return arch.layerAttention().get(layer) == Architecture.LayerAttention.SLIDING;
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
        Objects.checkIndex(layer, arch.nLayers());
        return arch.layerAttention().get(layer) == Architecture.LayerAttention.LOCAL;
    }

    /**
     * The chunk a layer's queries attend within (llama4's chunked layers: the earlier positions of the query's own
     * chunk of {@code attention_chunk_size}); 0 for the layers of the other kinds and families.
     *
     * @param layer the layer index, {@code 0 <= layer < nLayers()}
     * @return the chunk, in positions, or 0
     * @throws IndexOutOfBoundsException for a layer outside the model
     */
    public int attentionChunk(int layer) {
        Objects.checkIndex(layer, arch.nLayers());
        return arch.attentionChunk(layer);
    }

    /**
     * The window of gpt-neo's local layers ({@code window_size}): a query sees itself and the
     * {@code window_size - 1} positions before it; 0 for the other families.
     *
     * @return the local window
     */
    public int localWindow() {
        return arch.localWindow();
    }

    /**
     * How many experts each layer's sparse mixture-of-experts MLP has ({@code num_local_experts} of mixtral and
     * gpt-oss, {@code num_experts} of qwen3-moe, qwen3-vl-moe, olmoe and qwen2-moe); 0 for a dense MLP.
     *
     * @return the number of experts, or 0
     */
    public int numExperts() {
        return arch.moe() == null ? 0 : arch.moe().experts();
    }

    /**
     * How many experts each token goes to ({@code num_experts_per_tok}); 0 for a dense MLP.
     *
     * @return the experts per token, or 0
     */
    public int expertsPerToken() {
        return arch.moe() == null ? 0 : arch.moe().topK();
    }

    /**
     * Whether each attention head has a learned sink logit that joins the softmax of every query's scores without a
     * value (gpt-oss), so that a head can attend to nothing.
     *
     * @return true with attention sinks
     */
    public boolean attentionSinks() {
        return arch.attentionSinks();
    }

    /**
     * Whether each head's output is multiplied by the sigmoid of a projection of the attention's input before the
     * output projection (afmoe; {@link HookedAutoModel#W_G}, {@code attn.hook_gate}).
     *
     * @return true with an output gate
     */
    public boolean attentionOutputGate() {
        return arch.attentionOutputGate();
    }

    /**
     * The factor the token embeddings are multiplied by before the first block: {@code sqrt(hidden_size)} for
     * gemma, granite's {@code embedding_multiplier}, 1 otherwise.
     *
     * @return the embedding scale
     */
    public double embeddingScale() {
        return arch.embeddingScale();
    }

    /**
     * The standard deviation for initialising weights ({@code initializer_range}).
     *
     * @return the initializer range, {@code >= 0}
     */
    public double initializerRange() {
        return arch.initializerRange();
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
        return "HookedAutoConfig[" + family.name() + ": " + summary() + ", params=" + parameterCount + "]";
    }

    private String summary() {
        return "d_model=" + arch.dModel() + ", n_layers=" + arch.nLayers() + ", n_heads=" + arch.nHeads()
                + ", n_kv_heads=" + arch.nKvHeads() + ", d_head=" + arch.dHead() + layerShapes()
                + ", d_mlp=" + arch.dMlp()
                + ", d_vocab=" + arch.vocabSize() + ", n_ctx=" + arch.maxPositions();
    }

    /** The layers whose heads differ from the model-wide ones, as {@code " (layers 5, 11: 2 kv heads of 512)"}. */
    private String layerShapes() {
        if (arch.layerShapes() == null) {
            return "";
        }
        Map<String, List<Integer>> byShape = new LinkedHashMap<>();
        for (int l = 0; l < arch.nLayers(); l++) {
            if (arch.nKvHeads(l) != arch.nKvHeads() || arch.dHead(l) != arch.dHead()) {
                byShape.computeIfAbsent(arch.nKvHeads(l) + " kv heads of " + arch.dHead(l), k -> new ArrayList<>())
                        .add(l);
            }
        }
        StringBuilder b = new StringBuilder();
        byShape.forEach((shape, layers) -> b.append(" (layers ").append(layers.stream().map(String::valueOf)
                .collect(java.util.stream.Collectors.joining(", "))).append(": ").append(shape).append(')'));
        return b.toString();
    }

    // ------------------------------------------------------------------------------------------- internals

    /** The normalised view the model code reads. */
    Architecture architecture() {
        return arch;
    }

    /** The family's checkpoint for this configuration: tensor names, shapes and where each goes. */
    Checkpoint checkpoint() {
        return checkpoint;
    }

    /** The family's key for a standard name ({@code num_hidden_layers} is {@code n_layer} for gpt2). */
    String hfKey(String standardName) {
        return family.realKey(standardName);
    }
}
