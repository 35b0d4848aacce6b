package io.arrakis.model;

import io.arrakis.json.Json;
import io.arrakis.model.safetensors.SafeTensorsFile;
import io.arrakis.model.safetensors.SafeTensorsWriter;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.function.Consumer;

/**
 * Reference models for families that no Hugging Face fixture was made for, each written once per test JVM into a
 * temporary folder (deleted as the JVM exits, so that none outlives the code that derived it) from one that was,
 * holding the same function so that its reference activations hold unchanged; those of olmoe, exaone4, glm4, glm,
 * ernie4_5, seed-oss, arcee, helium, vaultgemma, nemotron, jais2, hyperclovax, opt, gpt-bigcode, glm4-moe, solar-open,
 * exaone-moe, apertus, minimax-m2, deepseek-v3, glm4-moe-lite, deepseek-v2, olmo, nanochat, hunyuan-v1-dense, dots1,
 * hy-v3, mistral4, hunyuan-v1-moe, ernie4_5-moe, flex-olmo, phimoe, cohere2-moe, youtu, mellum and afmoe, which no
 * fixture's function is, are {@link OlmoeReference}'s, {@link Exaone4Reference}'s, {@link Glm4Reference}'s,
 * {@link Ernie45Reference}'s, {@link SeedOssReference}'s, {@link ArceeReference}'s, {@link HeliumReference}'s,
 * {@link VaultGemmaReference}'s, {@link NemotronReference}'s, {@link Jais2Reference}'s, {@link HyperClovaxReference}'s,
 * {@link OptReference}'s, {@link GptBigCodeReference}'s (multi-query) and {@link Glm4MoeReference}'s (all five),
 * {@link ApertusReference}'s, {@link MiniMaxM2Reference}'s, {@link DeepseekV3Reference}'s (deepseek-v3's,
 * glm4-moe-lite's, deepseek-v2's, mistral4's and youtu's), {@link OlmoReference}'s, {@link NanoChatReference}'s,
 * {@link HunYuanMoeReference}'s, {@link Ernie45MoeReference}'s, {@link FlexOlmoReference}'s, {@link PhimoeReference}'s,
 * {@link Cohere2MoeReference}'s, {@link MellumReference}'s and {@link AfmoeReference}'s.
 *
 * <p>{@code qwen3-moe}: the qwen3 fixture with each layer's MLP made {@value #EXPERTS} experts, top {@value #TOP_K}
 * with {@code norm_topk_prob}. Every expert is the dense MLP with its hidden units in another order (the gate and up
 * rows and the down columns permuted alike, expert 0 as stored), so each computes the dense MLP; the routing weights
 * sum to 1, so their weighted sum is it too, whichever experts a token goes to. The router's weights are random, so
 * tokens go to different experts. {@code qwen3-vl-moe}: the same experts, fused as Qwen3-VL-MoE's text model stores
 * them ({@code gate_up_proj [experts, d_model, 2 d_mlp]}, {@code down_proj [experts, d_mlp, d_model]}), whose router
 * always renormalises. {@code qwen2-moe}: the qwen2 fixture likewise, its experts made of the first half of the dense
 * MLP's units and its shared expert of the other half, with a gate of zeros, whose sigmoid (one half) its doubled down
 * projection undoes: the two halves sum to the dense MLP. {@code granitemoe}: the granite fixture with the same
 * experts, fused as Granite's files store them ({@code input_linear [experts, 2 d_mlp, d_model]}, gate rows then up
 * rows, and {@code output_linear [experts, d_model, d_mlp]}), whose softmax over the top logits sums to 1.
 * {@code granitemoeshared}: the same experts of the first half of the units, and a shared MLP of the other half
 * ({@code shared_mlp.input_linear}, gate rows then up rows), added as it is: the two halves sum to the dense MLP.
 * {@code smollm3}: the llama fixture with every layer rotating ({@code no_rope_layers} all 1), which is Llama.
 * {@code olmo3}: the olmo2 fixture with a sliding layer whose window ({@value #OLMO3_WINDOW}) holds the reference's
 * tokens and both kinds of layer rotating as OLMo 2's, which is OLMo 2. {@code ministral3}: the mistral fixture with a
 * query temperature whose interval ({@value #MINISTRAL3_INTERVAL}) holds the reference's tokens, which is Mistral.
 * {@code ministral}: the mistral fixture as it is, under ministral's {@code model_type}. {@code cohere2}: the cohere
 * fixture with every layer sliding, so rotating, in a window ({@value #COHERE2_WINDOW}) that holds the reference's
 * tokens, which is Cohere. {@code cwm}: the llama3 fixture (Llama 3.1's rotary scaling) with its second layer sliding
 * in a window of exactly the reference's {@value #CWM_WINDOW} tokens, which is that Llama. {@code deepseek-v32} and
 * {@code glm-moe-dsa}: the deepseek-v3 reference model with its indexers' weights added (GLM-5's on its first and last
 * layers, the middle one sharing), whose {@code index_topk} keeps every key of the reference's
 * {@value #DEEPSEEK_V32_TOP_K} positions, which is DeepSeek-V3.
 */
final class DerivedFixtures {
    static final int EXPERTS = 3;
    static final int TOP_K = 2;
    static final int OLMO3_WINDOW = 16;
    static final int MINISTRAL3_INTERVAL = 64;
    static final int COHERE2_WINDOW = 64;
    static final int CWM_WINDOW = 10;
    static final int DEEPSEEK_V32_TOP_K = 10;
    private static final Map<String, Path> WRITTEN = new HashMap<>(); // guarded by the class
    private static Path root; // guarded by the class

    private DerivedFixtures() {
    }

    /** The derived fixture of {@code family}, written at the first call; empty for a family none is derived for. */
    static synchronized Optional<Path> of(String family) {
        if (!List.of("qwen3-moe", "qwen3-vl-moe", "qwen2-moe", "smollm3", "olmoe", "olmo3",
                "ministral3", "ministral", "exaone4", "glm4", "ernie4_5", "glm", "seed-oss",
                "arcee", "helium", "vaultgemma", "cohere2", "granitemoe", "nemotron", "jais2",
                "hyperclovax", "opt", "gpt-bigcode", "cwm", "glm4-moe", "solar-open", "exaone-moe",
                "granitemoeshared", "apertus", "minimax-m2", "deepseek-v3", "glm4-moe-lite",
                "deepseek-v2", "olmo", "nanochat", "hunyuan-v1-dense", "dots1", "mistral4", "hunyuan-v1-moe",
                "ernie4_5-moe", "flex-olmo", "phimoe", "cohere2-moe", "youtu", "mellum", "afmoe",
                "deepseek-v32", "glm-moe-dsa", "hy-v3")
                .contains(family)) {
            return Optional.empty();
        }
        Path written = WRITTEN.get(family);
        if (written != null) {
            return Optional.of(written);
        }
        try {
            Path dir = Files.createDirectory(root().resolve(family));
            if (family.equals("smollm3")) {
                writeSmolLm3(Fixtures.huggingFace("llama"), dir);
            } else if (family.equals("ministral")) {
                writeMinistral(Fixtures.huggingFace("mistral"), dir);
            } else if (family.equals("ministral3")) {
                writeMinistral3(Fixtures.huggingFace("mistral"), dir);
            } else if (family.equals("cohere2")) {
                writeCohere2(Fixtures.huggingFace("cohere"), dir);
            } else if (family.equals("cwm")) {
                writeCwm(Fixtures.HF_MORE.resolve("llama3"), dir);
            } else if (family.equals("olmo3")) {
                writeOlmo3(Fixtures.huggingFace("olmo2"), dir);
            } else if (family.equals("olmoe")) {
                OlmoeReference.write(dir);
            } else if (family.equals("exaone4")) {
                Exaone4Reference.write(dir);
            } else if (family.equals("glm4") || family.equals("glm")) {
                Glm4Reference.write(dir, family);
            } else if (family.equals("ernie4_5")) {
                Ernie45Reference.write(dir);
            } else if (family.equals("seed-oss")) {
                SeedOssReference.write(dir);
            } else if (family.equals("arcee")) {
                ArceeReference.write(dir);
            } else if (family.equals("helium")) {
                HeliumReference.write(dir);
            } else if (family.equals("vaultgemma")) {
                VaultGemmaReference.write(dir);
            } else if (family.equals("nemotron")) {
                NemotronReference.write(dir);
            } else if (family.equals("jais2")) {
                Jais2Reference.write(dir);
            } else if (family.equals("hyperclovax")) {
                HyperClovaxReference.write(dir);
            } else if (family.equals("opt")) {
                OptReference.write(dir);
            } else if (family.equals("gpt-bigcode")) {
                GptBigCodeReference.write(dir, GptBigCodeReference.Variant.DEFAULTS);
            } else if (family.equals("glm4-moe")) {
                Glm4MoeReference.write(dir, Glm4MoeReference.Kind.GLM4_MOE);
            } else if (family.equals("solar-open")) {
                Glm4MoeReference.write(dir, Glm4MoeReference.Kind.SOLAR_OPEN);
            } else if (family.equals("exaone-moe")) {
                Glm4MoeReference.write(dir, Glm4MoeReference.Kind.EXAONE_MOE);
            } else if (family.equals("apertus")) {
                ApertusReference.write(dir);
            } else if (family.equals("minimax-m2")) {
                MiniMaxM2Reference.write(dir);
            } else if (family.equals("deepseek-v3")) {
                DeepseekV3Reference.write(dir, DeepseekV3Reference.Kind.LATENT_QUERIES);
            } else if (family.equals("glm4-moe-lite")) {
                DeepseekV3Reference.write(dir, DeepseekV3Reference.Kind.GLM4_MOE_LITE);
            } else if (family.equals("deepseek-v2")) {
                DeepseekV3Reference.write(dir, DeepseekV3Reference.Kind.DEEPSEEK_V2);
            } else if (family.equals("olmo")) {
                OlmoReference.write(dir);
            } else if (family.equals("nanochat")) {
                NanoChatReference.write(dir);
            } else if (family.equals("hunyuan-v1-dense")) {
                HunYuanDenseReference.write(dir);
            } else if (family.equals("hy-v3")) {
                Glm4MoeReference.write(dir, Glm4MoeReference.Kind.HY_V3);
            } else if (family.equals("dots1")) {
                Glm4MoeReference.write(dir, Glm4MoeReference.Kind.DOTS1);
            } else if (family.equals("mistral4")) {
                DeepseekV3Reference.write(dir, DeepseekV3Reference.Kind.MISTRAL4);
            } else if (family.equals("hunyuan-v1-moe")) {
                HunYuanMoeReference.write(dir);
            } else if (family.equals("ernie4_5-moe")) {
                Ernie45MoeReference.write(dir);
            } else if (family.equals("flex-olmo")) {
                FlexOlmoReference.write(dir);
            } else if (family.equals("phimoe")) {
                PhimoeReference.write(dir);
            } else if (family.equals("youtu")) {
                DeepseekV3Reference.write(dir, DeepseekV3Reference.Kind.YOUTU);
            } else if (family.equals("deepseek-v32")) {
                writeSparseAttention(of("deepseek-v3").orElseThrow(), dir, "deepseek_v32", null);
            } else if (family.equals("glm-moe-dsa")) {
                writeSparseAttention(of("deepseek-v3").orElseThrow(), dir, "glm_moe_dsa",
                        List.of("full", "shared", "full"));
            } else if (family.equals("afmoe")) {
                AfmoeReference.write(dir, AfmoeReference.Kind.ROUTE_SCALED);
            } else if (family.equals("mellum")) {
                MellumReference.write(dir, MellumReference.Kind.DEFAULTS);
            } else if (family.equals("cohere2-moe")) {
                Cohere2MoeReference.write(dir, Cohere2MoeReference.Kind.SOFTMAX_AVERAGED);
            } else {
                String dense = switch (family) {
                    case "qwen2-moe" -> "qwen2";
                    case "granitemoe", "granitemoeshared" -> "granite";
                    default -> "qwen3";
                };
                writeMixture(Fixtures.huggingFace(dense), dir, Mixture.of(family));
            }
            WRITTEN.put(family, dir);
            return Optional.of(dir);
        } catch (IOException e) {
            throw new IllegalStateException("cannot write the derived fixture of " + family + ": " + e.getMessage(), e);
        }
    }

    /** This JVM's folder of derived fixtures, removed with what it holds as the JVM exits. */
    private static Path root() throws IOException {
        if (root == null) {
            Path made = Files.createTempDirectory("arrakis-derived-fixtures-");
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try (var paths = Files.walk(made)) {
                    for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                        Files.deleteIfExists(p);
                    }
                } catch (IOException e) {
                    // a temporary folder left behind is harmless
                }
            }));
            root = made;
        }
        return root;
    }

    /** The llama fixture as SmolLM3 with every layer rotating: Llama's computation. */
    private static void writeSmolLm3(Path llama, Path dir) throws IOException {
        asFamily(llama, dir, "smollm3", "SmolLM3ForCausalLM", config -> {
            config.remove("pretraining_tp");
            config.put("no_rope_layers", Collections.nCopies(
                    ((Number) config.get("num_hidden_layers")).intValue(), 1));
        });
    }

    /** The olmo2 fixture as OLMo 3: a sliding layer that sees every token, then a full one; OLMo 2's function. */
    private static void writeOlmo3(Path olmo2, Path dir) throws IOException {
        asFamily(olmo2, dir, "olmo3", "Olmo3ForCausalLM", config -> {
            Object rotary = config.remove("rope_parameters");
            config.put("rope_parameters", Map.of("full_attention", rotary, "sliding_attention", rotary));
            config.put("layer_types", List.of("sliding_attention", "full_attention"));
            config.put("sliding_window", OLMO3_WINDOW);
        });
    }

    /** The cohere fixture as Cohere 2 with every layer sliding in a window that holds its tokens: Cohere's function. */
    private static void writeCohere2(Path cohere, Path dir) throws IOException {
        asFamily(cohere, dir, "cohere2", "Cohere2ForCausalLM", config -> {
            config.remove("use_qk_norm");
            config.put("layer_types", Collections.nCopies(((Number) config.get("num_hidden_layers")).intValue(),
                    "sliding_attention"));
            config.put("sliding_window", COHERE2_WINDOW);
        });
    }

    /** The llama3 fixture as CWM, its second layer sliding in a window of the reference's length: that Llama. */
    private static void writeCwm(Path llama3, Path dir) throws IOException {
        asFamily(llama3, dir, "cwm", "CwmForCausalLM", config -> {
            config.remove("attention_bias"); // not a key of CwmConfig
            config.put("layer_types", List.of("full_attention", "sliding_attention"));
            config.put("sliding_window", CWM_WINDOW);
        });
    }

    /**
     * The deepseek-v3 reference model (queries from their latent, interleaved) as DeepSeek-V3.2 or GLM-5
     * ({@code modelType}), its indexers' weights added (GLM-5's on the layers {@code indexerTypes} marks
     * {@code "full"}): with {@code index_topk} the reference's {@value #DEEPSEEK_V32_TOP_K} positions, every key is
     * kept, so it attends as DeepSeek-V3 does.
     */
    private static void writeSparseAttention(Path deepseekV3, Path dir, String modelType, List<String> indexerTypes)
            throws IOException {
        String architecture = modelType.equals("deepseek_v32") ? "DeepseekV32ForCausalLM" : "GlmMoeDsaForCausalLM";
        asFamily(deepseekV3, dir, modelType, architecture, config -> {
            config.remove("rope_interleave"); // not a key of DeepseekV32Config, which always interleaves
            config.remove("pretraining_tp");
            config.put("index_topk", DEEPSEEK_V32_TOP_K);
            config.put("index_n_heads", 2);
            config.put("index_head_dim", 6);
            if (indexerTypes != null) {
                config.put("indexer_types", indexerTypes);
            }
        });
        Random random = new Random(32);
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile weights = SafeTensorsFile.open(deepseekV3.resolve("model.safetensors"))) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            weights.names().forEach(n -> tensors.put(n, weights.tensor(n)));
            long d = ((Number) parse(dir).get("hidden_size")).longValue();
            long queryRank = ((Number) parse(dir).get("q_lora_rank")).longValue();
            for (int l = 0; l < ((Number) parse(dir).get("num_hidden_layers")).intValue(); l++) {
                if (indexerTypes != null && indexerTypes.get(l).equals("shared")) {
                    continue;
                }
                String p = "model.layers." + l + ".self_attn.indexer.";
                tensors.put(p + "wq_b.weight", gaussian(random, 2 * 6, queryRank));
                tensors.put(p + "wk.weight", gaussian(random, 6, d));
                tensors.put(p + "k_norm.weight", gaussian(random, 6));
                tensors.put(p + "k_norm.bias", gaussian(random, 6));
                tensors.put(p + "weights_proj.weight", gaussian(random, 2, d));
            }
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        }
    }

    private static Map<?, ?> parse(Path dir) throws IOException {
        return (Map<?, ?>) Json.parse(Files.readString(dir.resolve("config.json")));
    }

    private static Tensor gaussian(Random random, long... shape) {
        float[] values = new float[(int) java.util.Arrays.stream(shape).reduce(1, (a, b) -> a * b)];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) random.nextGaussian();
        }
        return Tensor.of(values, shape);
    }

    /** The mistral fixture under ministral's model_type, whose configuration and layers are Mistral's. */
    private static void writeMinistral(Path mistral, Path dir) throws IOException {
        asFamily(mistral, dir, "ministral", "MinistralForCausalLM", config -> { });
    }

    /** The mistral fixture as Ministral 3, its query temperature 1 at every reference token: Mistral's function. */
    private static void writeMinistral3(Path mistral, Path dir) throws IOException {
        asFamily(mistral, dir, "ministral3", "Ministral3ForCausalLM", config -> {
            @SuppressWarnings("unchecked")
            Map<String, Object> rotary = new LinkedHashMap<>((Map<String, Object>) config.get("rope_parameters"));
            rotary.put("llama_4_scaling_beta", 0.1);
            rotary.put("original_max_position_embeddings", MINISTRAL3_INTERVAL);
            config.put("rope_parameters", rotary);
        });
    }

    /**
     * {@code fixture}'s checkpoint and reference as they are, under a config of {@code modelType} (computed by
     * {@code architecture}) that {@code edit} makes from the fixture's.
     */
    private static void asFamily(Path fixture, Path dir, String modelType, String architecture,
                                 Consumer<Map<String, Object>> edit) throws IOException {
        @SuppressWarnings("unchecked")
        Map<String, Object> config = new LinkedHashMap<>((Map<String, Object>) Json.parse(
                Files.readString(fixture.resolve("config.json"))));
        config.put("architectures", List.of(architecture));
        config.put("model_type", modelType);
        edit.accept(config);
        Files.writeString(dir.resolve("config.json"), Json.write(config));
        for (String file : List.of("model.safetensors", "reference.safetensors")) {
            Files.copy(fixture.resolve(file), dir.resolve(file));
        }
    }

    /** The mixtures derived from a dense fixture: their config and how their experts are stored. */
    private enum Mixture {
        QWEN3_MOE, QWEN3_VL_MOE, QWEN2_MOE, GRANITE_MOE, GRANITE_MOE_SHARED;

        static Mixture of(String family) {
            return switch (family) {
                case "qwen3-vl-moe" -> QWEN3_VL_MOE;
                case "qwen2-moe" -> QWEN2_MOE;
                case "granitemoe" -> GRANITE_MOE;
                case "granitemoeshared" -> GRANITE_MOE_SHARED;
                default -> QWEN3_MOE;
            };
        }
    }

    /**
     * {@code dense}'s MLPs as experts: each the dense MLP's units (for qwen2-moe the first half of them) in another
     * order, and for qwen2-moe a shared expert of the other half, its output doubled where its gate's sigmoid halves
     * it.
     */
    private static void writeMixture(Path dense, Path dir, Mixture kind) throws IOException {
        @SuppressWarnings("unchecked")
        Map<String, Object> config = new LinkedHashMap<>((Map<String, Object>) Json.parse(
                Files.readString(dense.resolve("config.json"))));
        int width = ((Number) config.get("intermediate_size")).intValue();
        boolean shared = kind == Mixture.QWEN2_MOE || kind == Mixture.GRANITE_MOE_SHARED;
        boolean granite = kind == Mixture.GRANITE_MOE || kind == Mixture.GRANITE_MOE_SHARED;
        int routedWidth = shared ? width / 2 : width;
        switch (kind) {
            case QWEN3_VL_MOE -> {
                config.remove("architectures");
                config.put("model_type", "qwen3_vl_moe_text");
            }
            case QWEN3_MOE -> {
                config.put("architectures", List.of("Qwen3MoeForCausalLM"));
                config.put("model_type", "qwen3_moe");
                config.put("norm_topk_prob", true);
            }
            case QWEN2_MOE -> {
                config.put("architectures", List.of("Qwen2MoeForCausalLM"));
                config.put("model_type", "qwen2_moe");
                config.put("norm_topk_prob", true);
                config.put("qkv_bias", true);
                config.put("shared_expert_intermediate_size", width - routedWidth);
            }
            case GRANITE_MOE -> {
                config.put("architectures", List.of("GraniteMoeForCausalLM"));
                config.put("model_type", "granitemoe");
                config.remove("mlp_bias");
            }
            case GRANITE_MOE_SHARED -> {
                config.put("architectures", List.of("GraniteMoeSharedForCausalLM"));
                config.put("model_type", "granitemoeshared");
                config.remove("mlp_bias");
                config.put("intermediate_size", routedWidth);
                config.put("shared_intermediate_size", width - routedWidth);
            }
        }
        config.put(granite ? "num_local_experts" : "num_experts", EXPERTS);
        config.put("num_experts_per_tok", TOP_K);
        if (!granite) {
            config.put("moe_intermediate_size", routedWidth);
            config.put("decoder_sparse_step", 1);
            config.put("mlp_only_layers", List.of());
        }
        Files.writeString(dir.resolve("config.json"), Json.write(config));
        Generator g = new Generator(7);
        Random order = new Random(7);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile file = SafeTensorsFile.open(dense.resolve("model.safetensors"))) {
            for (String name : file.names()) {
                if (!name.endsWith(".mlp.gate_proj.weight")) {
                    if (!name.contains(".mlp.")) {
                        tensors.put(name, file.tensor(name));
                    }
                    continue;
                }
                String mlp = name.substring(0, name.length() - "gate_proj.weight".length());
                String moe = granite ? mlp.replace(".mlp.", ".block_sparse_moe.") : mlp;
                Tensor gate = file.tensor(name);
                Tensor up = file.tensor(mlp + "up_proj.weight");
                Tensor down = file.tensor(mlp + "down_proj.weight");
                long dModel = gate.size(1);
                // logits of about unit size on the normalised stream, so that no expert's softmax share is negligible
                String router = granite ? "router.layer.weight" : "gate.weight";
                tensors.put(moe + router, Tensor.randn(g, new long[] {EXPERTS, dModel}, DType.FLOAT32, Device.CPU)
                        .div(Math.sqrt(dModel)));
                List<Tensor> gateUp = new ArrayList<>();
                List<Tensor> downs = new ArrayList<>();
                for (int e = 0; e < EXPERTS; e++) {
                    Tensor units = Tensor.of(e == 0 ? identity(routedWidth) : shuffled(routedWidth, order),
                            routedWidth);
                    Tensor gateRows = gate.indexSelect(0, units);
                    Tensor upRows = up.indexSelect(0, units);
                    Tensor downColumns = down.indexSelect(1, units);
                    if (kind == Mixture.QWEN3_VL_MOE) {
                        gateUp.add(Tensor.cat(List.of(gateRows.transpose(0, 1), upRows.transpose(0, 1)), 1));
                        downs.add(downColumns.transpose(0, 1));
                        continue;
                    }
                    if (granite) { // nn.Linear's [out, in]: gate rows then up rows
                        gateUp.add(Tensor.cat(List.of(gateRows, upRows), 0));
                        downs.add(downColumns);
                        continue;
                    }
                    String expert = mlp + "experts." + e + ".";
                    tensors.put(expert + "gate_proj.weight", gateRows.contiguous());
                    tensors.put(expert + "up_proj.weight", upRows.contiguous());
                    tensors.put(expert + "down_proj.weight", downColumns.contiguous());
                }
                if (kind == Mixture.QWEN3_VL_MOE) {
                    tensors.put(mlp + "experts.gate_up_proj", Tensor.stack(gateUp, 0).contiguous());
                    tensors.put(mlp + "experts.down_proj", Tensor.stack(downs, 0).contiguous());
                }
                if (granite) {
                    tensors.put(moe + "input_linear.weight", Tensor.stack(gateUp, 0).contiguous());
                    tensors.put(moe + "output_linear.weight", Tensor.stack(downs, 0).contiguous());
                }
                if (kind == Mixture.GRANITE_MOE_SHARED) { // the other half of the units, gate rows then up rows
                    int sharedWidth = width - routedWidth;
                    String block = mlp.replace(".mlp.", ".shared_mlp.");
                    tensors.put(block + "input_linear.weight", Tensor.cat(List.of(
                            gate.narrow(0, routedWidth, sharedWidth), up.narrow(0, routedWidth, sharedWidth)), 0)
                            .contiguous());
                    tensors.put(block + "output_linear.weight", down.narrow(1, routedWidth, sharedWidth).contiguous());
                }
                if (kind == Mixture.QWEN2_MOE) {
                    int sharedWidth = width - routedWidth;
                    tensors.put(mlp + "shared_expert.gate_proj.weight", gate.narrow(0, routedWidth, sharedWidth)
                            .contiguous());
                    tensors.put(mlp + "shared_expert.up_proj.weight", up.narrow(0, routedWidth, sharedWidth)
                            .contiguous());
                    tensors.put(mlp + "shared_expert.down_proj.weight", down.narrow(1, routedWidth, sharedWidth)
                            .mul(2.0).contiguous());
                    tensors.put(mlp + "shared_expert_gate.weight", Tensor.zeros(new long[] {1, dModel},
                            DType.FLOAT32, Device.CPU));
                }
            }
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        }
        Files.copy(dense.resolve("reference.safetensors"), dir.resolve("reference.safetensors"));
    }

    private static long[] identity(long n) {
        long[] ids = new long[(int) n];
        for (int i = 0; i < n; i++) {
            ids[i] = i;
        }
        return ids;
    }

    private static long[] shuffled(long n, Random random) {
        List<Long> ids = new ArrayList<>();
        for (long i = 0; i < n; i++) {
            ids.add(i);
        }
        Collections.shuffle(ids, random);
        return ids.stream().mapToLong(Long::longValue).toArray();
    }
}
