package io.arrakis.model;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The tensor names and shapes of a Hugging Face checkpoint for a config, as {@code save_pretrained} writes them (the
 * {@code *ForCausalLM} class; {@code nn.Linear} weights {@code [out, in]}, gpt2's {@code Conv1D} {@code [in, out]});
 * their element counts add up to {@link HookedAutoConfig#parameterCount()}.
 */
final class CheckpointLayout {
    private CheckpointLayout() {
    }

    static Map<String, long[]> shapes(HookedAutoConfig c) {
        Map<String, long[]> s = new LinkedHashMap<>();
        long d = c.dModel();
        long mlp = c.dMlp();
        switch (c.family()) {
            case "gpt2" -> {
                String p = "transformer.";
                s.put(p + "wte.weight", new long[] {c.vocabSize(), d});
                s.put(p + "wpe.weight", new long[] {c.maxPositions(), d});
                for (int i = 0; i < c.nLayers(); i++) {
                    String l = p + "h." + i + ".";
                    s.put(l + "ln_1.weight", new long[] {d});
                    s.put(l + "ln_1.bias", new long[] {d});
                    s.put(l + "attn.c_attn.weight", new long[] {d, 3 * d});
                    s.put(l + "attn.c_attn.bias", new long[] {3 * d});
                    s.put(l + "attn.c_proj.weight", new long[] {d, d});
                    s.put(l + "attn.c_proj.bias", new long[] {d});
                    s.put(l + "ln_2.weight", new long[] {d});
                    s.put(l + "ln_2.bias", new long[] {d});
                    s.put(l + "mlp.c_fc.weight", new long[] {d, mlp});
                    s.put(l + "mlp.c_fc.bias", new long[] {mlp});
                    s.put(l + "mlp.c_proj.weight", new long[] {mlp, d});
                    s.put(l + "mlp.c_proj.bias", new long[] {d});
                }
                s.put(p + "ln_f.weight", new long[] {d});
                s.put(p + "ln_f.bias", new long[] {d});
            }
            case "gpt-neo" -> {
                String p = "transformer.";
                s.put(p + "wte.weight", new long[] {c.vocabSize(), d});
                s.put(p + "wpe.weight", new long[] {c.maxPositions(), d});
                for (int i = 0; i < c.nLayers(); i++) {
                    String l = p + "h." + i + ".";
                    String a = l + "attn.attention.";
                    s.put(l + "ln_1.weight", new long[] {d});
                    s.put(l + "ln_1.bias", new long[] {d});
                    s.put(a + "k_proj.weight", new long[] {d, d});
                    s.put(a + "v_proj.weight", new long[] {d, d});
                    s.put(a + "q_proj.weight", new long[] {d, d});
                    s.put(a + "out_proj.weight", new long[] {d, d});
                    s.put(a + "out_proj.bias", new long[] {d});
                    s.put(l + "ln_2.weight", new long[] {d});
                    s.put(l + "ln_2.bias", new long[] {d});
                    s.put(l + "mlp.c_fc.weight", new long[] {mlp, d});
                    s.put(l + "mlp.c_fc.bias", new long[] {mlp});
                    s.put(l + "mlp.c_proj.weight", new long[] {d, mlp});
                    s.put(l + "mlp.c_proj.bias", new long[] {d});
                }
                s.put(p + "ln_f.weight", new long[] {d});
                s.put(p + "ln_f.bias", new long[] {d});
            }
            case "gpt-neox" -> {
                String p = "gpt_neox.";
                long qkv = 3L * c.nHeads() * c.dHead();
                s.put(p + "embed_in.weight", new long[] {c.vocabSize(), d});
                for (int i = 0; i < c.nLayers(); i++) {
                    String l = p + "layers." + i + ".";
                    s.put(l + "input_layernorm.weight", new long[] {d});
                    s.put(l + "input_layernorm.bias", new long[] {d});
                    s.put(l + "post_attention_layernorm.weight", new long[] {d});
                    s.put(l + "post_attention_layernorm.bias", new long[] {d});
                    s.put(l + "attention.query_key_value.weight", new long[] {qkv, d});
                    if (c.qkvBias()) {
                        s.put(l + "attention.query_key_value.bias", new long[] {qkv});
                    }
                    s.put(l + "attention.dense.weight", new long[] {d, d});
                    if (c.outBias()) {
                        s.put(l + "attention.dense.bias", new long[] {d});
                    }
                    s.put(l + "mlp.dense_h_to_4h.weight", new long[] {mlp, d});
                    s.put(l + "mlp.dense_h_to_4h.bias", new long[] {mlp});
                    s.put(l + "mlp.dense_4h_to_h.weight", new long[] {d, mlp});
                    s.put(l + "mlp.dense_4h_to_h.bias", new long[] {d});
                }
                s.put(p + "final_layer_norm.weight", new long[] {d});
                s.put(p + "final_layer_norm.bias", new long[] {d});
                if (!c.tiedEmbeddings()) {
                    s.put("embed_out.weight", new long[] {c.vocabSize(), d});
                }
            }
            case "llama", "mistral", "qwen2", "gemma", "stable-lm", "phi3" -> {
                long q = (long) c.nHeads() * c.dHead();
                long kv = (long) c.nKvHeads() * c.dHead();
                boolean phi3 = c.family().equals("phi3");
                boolean normBias = !c.rmsNorm();
                boolean postAttentionNorm = !(c.parallelResidual() && c.family().equals("stable-lm"));
                boolean qkNorm = c.family().equals("stable-lm") && Boolean.TRUE.equals(c.raw().get("qk_layernorm"));
                s.put("model.embed_tokens.weight", new long[] {c.vocabSize(), d});
                for (int i = 0; i < c.nLayers(); i++) {
                    String l = "model.layers." + i + ".";
                    String a = l + "self_attn.";
                    s.put(l + "input_layernorm.weight", new long[] {d});
                    if (normBias) {
                        s.put(l + "input_layernorm.bias", new long[] {d});
                    }
                    if (phi3) {
                        s.put(a + "qkv_proj.weight", new long[] {q + 2 * kv, d});
                    } else {
                        s.put(a + "q_proj.weight", new long[] {q, d});
                        s.put(a + "k_proj.weight", new long[] {kv, d});
                        s.put(a + "v_proj.weight", new long[] {kv, d});
                    }
                    if (c.qkvBias()) {
                        s.put(a + "q_proj.bias", new long[] {q});
                        s.put(a + "k_proj.bias", new long[] {kv});
                        s.put(a + "v_proj.bias", new long[] {kv});
                    }
                    if (qkNorm) { // StableLmLayerNormPerHead: one bias-free LayerNorm(d_head) per head
                        for (int h = 0; h < c.nHeads(); h++) {
                            s.put(a + "q_layernorm.norms." + h + ".weight", new long[] {c.dHead()});
                        }
                        for (int h = 0; h < c.nKvHeads(); h++) {
                            s.put(a + "k_layernorm.norms." + h + ".weight", new long[] {c.dHead()});
                        }
                    }
                    s.put(a + "o_proj.weight", new long[] {d, q});
                    if (c.outBias()) {
                        s.put(a + "o_proj.bias", new long[] {d});
                    }
                    if (postAttentionNorm) {
                        s.put(l + "post_attention_layernorm.weight", new long[] {d});
                        if (normBias) {
                            s.put(l + "post_attention_layernorm.bias", new long[] {d});
                        }
                    }
                    if (phi3) {
                        s.put(l + "mlp.gate_up_proj.weight", new long[] {2 * mlp, d});
                    } else {
                        s.put(l + "mlp.gate_proj.weight", new long[] {mlp, d});
                        s.put(l + "mlp.up_proj.weight", new long[] {mlp, d});
                    }
                    s.put(l + "mlp.down_proj.weight", new long[] {d, mlp});
                    if (c.mlpBias()) {
                        s.put(l + "mlp.gate_proj.bias", new long[] {mlp});
                        s.put(l + "mlp.up_proj.bias", new long[] {mlp});
                        s.put(l + "mlp.down_proj.bias", new long[] {d});
                    }
                }
                s.put("model.norm.weight", new long[] {d});
                if (normBias) {
                    s.put("model.norm.bias", new long[] {d});
                }
                if (!c.tiedEmbeddings()) {
                    s.put("lm_head.weight", new long[] {c.vocabSize(), d});
                }
            }
            default -> throw new UnsupportedOperationException("random " + c.family() + " models are not implemented");
        }
        return s;
    }
}
