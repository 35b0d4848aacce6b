package io.arrakis.model;

import io.arrakis.model.HookedAutoModel.HookSpec;
import io.arrakis.testing.ChildJvm;
import io.arrakis.testing.ResidentMemory;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Generator;
import io.arrakis.torch.LibTorch;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What {@link MemoryCheck#requirePass} counts for a pass against what the pass takes: the peak of the resident set
 * over it, in a JVM of its own where glibc hands every large block back as it is freed (so the peak is what was live)
 * and the weights are not repacked on first use. An estimate well under the peak lets a pass the check admitted run
 * out of memory; one far over it refuses passes that fit.
 */
class PassMemoryEstimateTest {
    /** Below this the check admits passes that do not fit; the peak also holds libtorch's scratch buffers. */
    private static final double LOWEST = 0.8;
    /** Above this the check refuses passes that would fit in a third of the memory it asks for. */
    private static final double HIGHEST = 3;

    /**
     * Family, dtype, what the pass keeps or hooks, and its layers: one case each. Passes that keep activations have
     * more layers, so that what they keep outweighs one block's work.
     */
    private static final List<String> CASES = List.of(
            "gpt2 FLOAT32 none 2", "gpt2 BFLOAT16 none 2", "gpt2 FLOAT32 all 6", "gpt2 FLOAT32 replace 6",
            "llama BFLOAT16 none 2", "llama FLOAT32 all 6", "llama BFLOAT16 pattern 6",
            "gemma2 BFLOAT16 none 2", "gemma2 FLOAT32 scores 6",
            "gpt-j BFLOAT16 none 2", "phi BFLOAT16 none 2", "mixtral FLOAT32 none 2", "gpt-oss BFLOAT16 none 2",
            "qwen3-moe BFLOAT16 none 2", "olmo2 BFLOAT16 none 2", "arcee FLOAT32 none 2", "arcee BFLOAT16 none 2",
            "apertus FLOAT32 none 2", "apertus BFLOAT16 none 2", "glm4-moe BFLOAT16 none 2",
            "minimax-m2 BFLOAT16 none 2", "deepseek-v3 BFLOAT16 none 2", "deepseek-v3 FLOAT32 all 6",
            "deepseek-v2 BFLOAT16 none 2", "olmo BFLOAT16 none 2", "nanochat BFLOAT16 none 2",
            "mistral4 BFLOAT16 none 2", "dots1 BFLOAT16 none 2", "hunyuan-v1-dense BFLOAT16 none 2",
            "hunyuan-v1-moe BFLOAT16 none 2", "ernie4_5-moe BFLOAT16 none 2", "flex-olmo BFLOAT16 none 2",
            "phimoe BFLOAT16 none 2", "cohere2-moe BFLOAT16 none 2", "mellum BFLOAT16 none 2",
            "afmoe BFLOAT16 none 2", "qwen3-5 BFLOAT16 none 4", "qwen3-5 FLOAT32 all 8", "qwen3-next BFLOAT16 none 4",
            "lfm2 BFLOAT16 none 4", "lfm2 FLOAT32 all 4", "lfm2 FLOAT32 replace 4",
            "granitemoehybrid BFLOAT16 none 4", "granitemoehybrid FLOAT32 all 4");

    private static final Map<String, Map<String, Object>> SIZES = Map.ofEntries(
            Map.entry("gpt2", Map.of("n_embd", 256, "n_head", 4, "vocab_size", 1000, "n_positions", 1024)),
            Map.entry("llama", Map.of("hidden_size", 256, "intermediate_size", 704,
                    "num_attention_heads", 8, "num_key_value_heads", 2, "vocab_size", 1000)),
            Map.entry("olmo2", Map.of("hidden_size", 256, "intermediate_size", 704,
                    "num_attention_heads", 8, "num_key_value_heads", 2, "vocab_size", 1000)),
            Map.entry("olmo", Map.of("hidden_size", 256, "intermediate_size", 704, "clip_qkv", 8.0,
                    "num_attention_heads", 8, "num_key_value_heads", 2, "vocab_size", 1000)),
            Map.entry("nanochat", Map.of("hidden_size", 256, "intermediate_size", 1024,
                    "num_attention_heads", 8, "num_key_value_heads", 2, "vocab_size", 1000)),
            Map.entry("hunyuan-v1-dense", Map.of("hidden_size", 256, "intermediate_size", 704, "head_dim", 32,
                    "num_attention_heads", 8, "num_key_value_heads", 2, "vocab_size", 1000)),
            Map.entry("hunyuan-v1-moe", Map.of("hidden_size", 256, "intermediate_size", 256, "head_dim", 32,
                    "num_attention_heads", 8, "num_key_value_heads", 2, "num_experts", 8, "moe_topk", 2,
                    "vocab_size", 1000)),
            Map.entry("ernie4_5-moe", Map.of("hidden_size", 256, "intermediate_size", 1024,
                    "moe_intermediate_size", 256, "num_attention_heads", 8, "num_key_value_heads", 2,
                    "moe_num_experts", 8, "moe_k", 2, "vocab_size", 1000)),
            Map.entry("flex-olmo", Map.of("hidden_size", 256, "intermediate_size", 256, "num_attention_heads", 8,
                    "num_key_value_heads", 2, "num_experts", 8, "num_experts_per_tok", 2, "vocab_size", 1000,
                    "pad_token_id", 1, "eos_token_id", 2)),
            Map.entry("cohere2-moe", Map.of("hidden_size", 256, "intermediate_size", 256, "head_dim", 32,
                    "num_attention_heads", 8, "num_key_value_heads", 2, "num_experts", 8, "num_shared_experts", 1,
                    "vocab_size", 1000)),
            Map.entry("mellum", Map.of("hidden_size", 256, "moe_intermediate_size", 256, "num_attention_heads", 8,
                    "num_key_value_heads", 2, "head_dim", 32, "num_experts", 8, "num_experts_per_tok", 2,
                    "vocab_size", 1000)),
            Map.entry("qwen3-5", Map.of("hidden_size", 256, "intermediate_size", 704, "num_attention_heads", 8,
                    "num_key_value_heads", 2, "head_dim", 32, "linear_num_key_heads", 16, "linear_num_value_heads", 32,
                    "linear_key_head_dim", 64, "linear_value_head_dim", 64, "vocab_size", 1000)),
            Map.entry("qwen3-next", Map.ofEntries(Map.entry("hidden_size", 256), Map.entry("intermediate_size", 704),
                    Map.entry("moe_intermediate_size", 256), Map.entry("shared_expert_intermediate_size", 256),
                    Map.entry("num_attention_heads", 8), Map.entry("num_key_value_heads", 2), Map.entry("head_dim", 32),
                    Map.entry("linear_num_key_heads", 4), Map.entry("linear_num_value_heads", 8),
                    Map.entry("linear_key_head_dim", 32), Map.entry("linear_value_head_dim", 32),
                    Map.entry("num_experts", 8), Map.entry("num_experts_per_tok", 2), Map.entry("vocab_size", 1000))),
            Map.entry("granitemoehybrid", Map.ofEntries(Map.entry("hidden_size", 256),
                    Map.entry("intermediate_size", 256), Map.entry("shared_intermediate_size", 512),
                    Map.entry("num_attention_heads", 8), Map.entry("num_key_value_heads", 2),
                    Map.entry("num_local_experts", 8), Map.entry("num_experts_per_tok", 2),
                    Map.entry("mamba_n_heads", 16), Map.entry("mamba_d_state", 64), Map.entry("vocab_size", 1000),
                    Map.entry("num_hidden_layers", 4),
                    Map.entry("layer_types", List.of("mamba", "mamba", "attention", "mamba")))),
            Map.entry("lfm2", Map.of("hidden_size", 256, "intermediate_size", 1056, "num_attention_heads", 8,
                    "num_key_value_heads", 2, "vocab_size", 1000, "full_attn_idxs", List.of(2))),
            Map.entry("afmoe", Map.of("hidden_size", 256, "moe_intermediate_size", 256, "intermediate_size", 1024,
                    "num_attention_heads", 8, "num_key_value_heads", 2, "head_dim", 32, "num_experts", 8,
                    "num_experts_per_tok", 2, "vocab_size", 1000)),
            Map.entry("phimoe", Map.of("hidden_size", 256, "intermediate_size", 256, "num_attention_heads", 8,
                    "num_key_value_heads", 2, "num_local_experts", 8, "vocab_size", 1000)),
            Map.entry("dots1", Map.ofEntries(Map.entry("hidden_size", 256), Map.entry("moe_intermediate_size", 256),
                    Map.entry("intermediate_size", 1024), Map.entry("num_attention_heads", 8),
                    Map.entry("num_key_value_heads", 2), Map.entry("head_dim", 32), Map.entry("n_routed_experts", 8),
                    Map.entry("n_group", 2), Map.entry("topk_group", 1), Map.entry("num_experts_per_tok", 2),
                    Map.entry("first_k_dense_replace", 1), Map.entry("vocab_size", 1000))),
            Map.entry("mistral4", Map.ofEntries(Map.entry("hidden_size", 256),
                    Map.entry("moe_intermediate_size", 256), Map.entry("intermediate_size", 1024),
                    Map.entry("num_attention_heads", 8), Map.entry("num_key_value_heads", 8),
                    Map.entry("q_lora_rank", 96), Map.entry("kv_lora_rank", 64), Map.entry("qk_nope_head_dim", 32),
                    Map.entry("qk_rope_head_dim", 16), Map.entry("v_head_dim", 24), Map.entry("n_routed_experts", 8),
                    Map.entry("n_group", 2), Map.entry("topk_group", 1), Map.entry("num_experts_per_tok", 2),
                    Map.entry("first_k_dense_replace", 1), Map.entry("vocab_size", 1000),
                    Map.entry("max_position_embeddings", 4096))),
            Map.entry("arcee", Map.of("hidden_size", 256, "intermediate_size", 4096,
                    "num_attention_heads", 8, "num_key_value_heads", 2, "vocab_size", 1000)),
            Map.entry("apertus", Map.of("hidden_size", 256, "intermediate_size", 4096,
                    "num_attention_heads", 8, "num_key_value_heads", 2, "vocab_size", 1000)),
            Map.entry("gemma2", Map.of("hidden_size", 256, "intermediate_size", 1024,
                    "num_attention_heads", 8, "num_key_value_heads", 4, "head_dim", 32, "query_pre_attn_scalar", 32,
                    "sliding_window", 256, "vocab_size", 1000)),
            Map.entry("gpt-j", Map.of("n_embd", 256, "n_head", 8, "rotary_dim", 16, "vocab_size", 1000,
                    "n_positions", 1024)),
            Map.entry("phi", Map.of("hidden_size", 256, "intermediate_size", 1024,
                    "num_attention_heads", 8, "vocab_size", 1000, "max_position_embeddings", 1024)),
            Map.entry("mixtral", Map.of("hidden_size", 256, "intermediate_size", 896,
                    "num_attention_heads", 8, "num_key_value_heads", 2, "num_local_experts", 8,
                    "num_experts_per_tok", 2, "vocab_size", 1000)),
            Map.entry("qwen3-moe", Map.of("hidden_size", 256, "moe_intermediate_size", 256,
                    "num_attention_heads", 8, "num_key_value_heads", 2, "head_dim", 32, "num_local_experts", 8,
                    "num_experts_per_tok", 4, "vocab_size", 1000)),
            Map.entry("glm4-moe", Map.of("hidden_size", 256, "moe_intermediate_size", 256, "intermediate_size", 1024,
                    "num_attention_heads", 8, "num_key_value_heads", 2, "head_dim", 32, "num_local_experts", 8,
                    "num_experts_per_tok", 4, "vocab_size", 1000)),
            Map.entry("minimax-m2", Map.of("hidden_size", 256, "intermediate_size", 256,
                    "num_attention_heads", 8, "num_key_value_heads", 2, "head_dim", 32, "rotary_dim", 16,
                    "num_local_experts", 8, "num_experts_per_tok", 4, "vocab_size", 1000)),
            Map.entry("deepseek-v3", Map.ofEntries(Map.entry("hidden_size", 256),
                    Map.entry("moe_intermediate_size", 256), Map.entry("intermediate_size", 1024),
                    Map.entry("num_attention_heads", 8), Map.entry("num_key_value_heads", 8),
                    Map.entry("q_lora_rank", 96), Map.entry("kv_lora_rank", 64), Map.entry("qk_nope_head_dim", 32),
                    Map.entry("qk_rope_head_dim", 16), Map.entry("v_head_dim", 24), Map.entry("n_routed_experts", 8),
                    Map.entry("n_group", 2), Map.entry("topk_group", 1), Map.entry("num_experts_per_tok", 2),
                    Map.entry("first_k_dense_replace", 1), Map.entry("vocab_size", 1000))),
            Map.entry("deepseek-v2", Map.ofEntries(Map.entry("hidden_size", 256),
                    Map.entry("moe_intermediate_size", 256), Map.entry("num_attention_heads", 8),
                    Map.entry("q_lora_rank", 96), Map.entry("kv_lora_rank", 64), Map.entry("qk_nope_head_dim", 32),
                    Map.entry("qk_rope_head_dim", 16), Map.entry("v_head_dim", 24), Map.entry("n_routed_experts", 8),
                    Map.entry("topk_method", "group_limited_greedy"), Map.entry("n_group", 2),
                    Map.entry("topk_group", 1), Map.entry("num_experts_per_tok", 2), Map.entry("vocab_size", 1000))),
            Map.entry("gpt-oss", Map.of("hidden_size", 256, "intermediate_size", 256,
                    "num_attention_heads", 8, "num_key_value_heads", 2, "head_dim", 32, "num_local_experts", 8,
                    "num_experts_per_tok", 4, "sliding_window", 128, "vocab_size", 1000)));

    @Test
    void theCheckCountsWhatAPassTakesWithinItsMargins() {
        String out = ChildJvm.of(Estimates.class, CASES.toArray(String[]::new))
                .property(LibTorch.PROPERTY_MALLOC, "default")
                .property(LibTorch.PROPERTY_PACKED_WEIGHTS, "off")
                .environment("MALLOC_MMAP_THRESHOLD_", "131072")
                .run();
        Matcher m = Pattern.compile("(?m)^(.+): estimate (\\d+), peak (\\d+)$").matcher(out);
        List<String> outside = new ArrayList<>();
        int cases = 0;
        while (m.find()) {
            cases++;
            double ratio = Double.parseDouble(m.group(2)) / Double.parseDouble(m.group(3));
            System.out.printf(Locale.ROOT, "%s: estimate / peak %.2f%n", m.group(1), ratio);
            if (ratio < LOWEST || ratio > HIGHEST) {
                outside.add(String.format(Locale.ROOT, "%s: estimate / peak %.2f", m.group(1), ratio));
            }
        }
        assertTrue(cases == CASES.size(), out);
        assertTrue(outside.isEmpty(), "estimates outside [" + LOWEST + ", " + HIGHEST + "] of the measured peak: "
                + outside + "\n" + out);
    }

    /** Prints {@code <case>: estimate <bytes>, peak <bytes>} for each case named by its arguments. */
    public static final class Estimates {
        public static void main(String[] args) {
            LibTorch.load();
            for (String c : args) {
                String[] parts = c.split(" ");
                String family = parts[0];
                DType dtype = DType.valueOf(parts[1]);
                String mode = parts[2];
                HookedAutoConfig sized = HookedAutoConfig.of(family).with(SIZES.get(family));
                HookedAutoConfig config = sized.with(sized.raw().containsKey("n_layer") ? "n_layer"
                        : "num_hidden_layers", Integer.parseInt(parts[3]));
                try (TensorScope scope = TensorScope.open();
                     HookedAutoModel model = HookedAutoModel.create(config, 1, dtype, Device.CPU)) {
                    Tensor ids = Tensor.randint(new Generator(3), 0, config.vocabSize(), new long[] {4, 1024},
                            Device.CPU);
                    CacheSpec spec = mode.equals("all") ? CacheSpec.all() : CacheSpec.none();
                    Predicate<String> where = switch (mode) {
                        case "pattern" -> name -> name.endsWith("hook_pattern");
                        case "scores" -> name -> name.endsWith("hook_attn_scores");
                        case "replace" -> name -> !name.equals("logits");
                        default -> null;
                    };
                    HookSpec[] hooks = where == null ? new HookSpec[0] : new HookSpec[] {HookSpec.matching(where,
                            mode.equals("replace") ? (t, name) -> t.mul(1.0) : (t, name) -> null)};
                    Predicate<String> hooked = where == null ? MemoryCheck.NOTHING : where;
                    Predicate<String> kept = spec == CacheSpec.none() && where == null ? MemoryCheck.NOTHING
                            : name -> spec.keeps(name) || hooked.test(name);
                    double estimate = MemoryCheck.passBytes(config, model.hookNames(), kept, hooked, 4, 1024, dtype,
                            Device.CPU).total();
                    // a short pass first: libtorch's first calls and the JIT are not the pass's memory
                    model.runWithHooks(ids.narrow(1, 0, 8), spec, hooks).close();
                    ResidentMemory.resetPeak();
                    long before = ResidentMemory.rss();
                    model.runWithHooks(ids, spec, hooks).close();
                    System.out.printf(Locale.ROOT, "%s: estimate %d, peak %d%n", c, (long) estimate,
                            ResidentMemory.peak() - before);
                }
            }
        }
    }
}
