package io.arrakis.model;

import java.util.LinkedHashMap;
import java.util.Map;

/** The tensor names and shapes of a Hugging Face checkpoint for a config, as {@code save_pretrained} writes them. */
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
            case "llama", "mistral", "qwen2" -> {
                long q = (long) c.nHeads() * c.dHead();
                long kv = (long) c.nKvHeads() * c.dHead();
                s.put("model.embed_tokens.weight", new long[] {c.vocabSize(), d});
                for (int i = 0; i < c.nLayers(); i++) {
                    String l = "model.layers." + i + ".";
                    s.put(l + "input_layernorm.weight", new long[] {d});
                    s.put(l + "self_attn.q_proj.weight", new long[] {q, d});
                    s.put(l + "self_attn.k_proj.weight", new long[] {kv, d});
                    s.put(l + "self_attn.v_proj.weight", new long[] {kv, d});
                    if (c.qkvBias()) {
                        s.put(l + "self_attn.q_proj.bias", new long[] {q});
                        s.put(l + "self_attn.k_proj.bias", new long[] {kv});
                        s.put(l + "self_attn.v_proj.bias", new long[] {kv});
                    }
                    s.put(l + "self_attn.o_proj.weight", new long[] {d, q});
                    if (c.outBias()) {
                        s.put(l + "self_attn.o_proj.bias", new long[] {d});
                    }
                    s.put(l + "post_attention_layernorm.weight", new long[] {d});
                    s.put(l + "mlp.gate_proj.weight", new long[] {mlp, d});
                    s.put(l + "mlp.up_proj.weight", new long[] {mlp, d});
                    s.put(l + "mlp.down_proj.weight", new long[] {d, mlp});
                    if (c.mlpBias()) {
                        s.put(l + "mlp.up_proj.bias", new long[] {mlp});
                        s.put(l + "mlp.down_proj.bias", new long[] {d});
                    }
                }
                s.put("model.norm.weight", new long[] {d});
                if (!c.tiedEmbeddings()) {
                    s.put("lm_head.weight", new long[] {c.vocabSize(), d});
                }
            }
            default -> throw new UnsupportedOperationException("random " + c.family()
                    + " models are not implemented yet; supported so far: gpt2, llama, mistral, qwen2");
        }
        return s;
    }
}
