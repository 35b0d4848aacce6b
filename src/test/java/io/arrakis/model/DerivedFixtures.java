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

/**
 * Reference models for families that no Hugging Face fixture was made for, each written once per test JVM into a
 * temporary folder (deleted as the JVM exits, so that none outlives the code that derived it) from one that was,
 * holding the same function so that its reference activations hold unchanged; olmoe's, which no fixture's function
 * is, is {@link OlmoeReference}'s.
 *
 * <p>{@code qwen3-moe}: the qwen3 fixture with each layer's MLP made {@value #EXPERTS} experts, top
 * {@value #TOP_K} with {@code norm_topk_prob}. Every expert is the dense MLP with its hidden units in another order
 * (the gate and up rows and the down columns permuted alike, expert 0 as stored), so each computes the dense MLP;
 * the routing weights sum to 1, so their weighted sum is it too, whichever experts a token goes to. The router's
 * weights are random, so tokens go to different experts. {@code qwen3-vl-moe}: the same experts, fused as
 * Qwen3-VL-MoE's text model stores them ({@code gate_up_proj [experts, d_model, 2 d_mlp]}, {@code down_proj
 * [experts, d_mlp, d_model]}), whose router always renormalises. {@code smollm3}: the llama fixture with every layer
 * rotating ({@code no_rope_layers} all 1), which is Llama.
 */
final class DerivedFixtures {
    static final int EXPERTS = 3;
    static final int TOP_K = 2;
    private static final Map<String, Path> WRITTEN = new HashMap<>(); // guarded by the class
    private static Path root; // guarded by the class

    private DerivedFixtures() {
    }

    /** The derived fixture of {@code family}, written at the first call; empty for a family none is derived for. */
    static synchronized Optional<Path> of(String family) {
        if (!List.of("qwen3-moe", "qwen3-vl-moe", "smollm3", "olmoe").contains(family)) {
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
            } else if (family.equals("olmoe")) {
                OlmoeReference.write(dir);
            } else {
                writeQwen3Moe(Fixtures.huggingFace("qwen3"), dir, family.equals("qwen3-vl-moe"));
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
        @SuppressWarnings("unchecked")
        Map<String, Object> config = new LinkedHashMap<>((Map<String, Object>) Json.parse(
                Files.readString(llama.resolve("config.json"))));
        config.put("architectures", List.of("SmolLM3ForCausalLM"));
        config.put("model_type", "smollm3");
        config.remove("pretraining_tp");
        config.put("no_rope_layers", Collections.nCopies(
                ((Number) config.get("num_hidden_layers")).intValue(), 1));
        Files.writeString(dir.resolve("config.json"), Json.write(config));
        for (String file : List.of("model.safetensors", "reference.safetensors")) {
            Files.copy(llama.resolve(file), dir.resolve(file));
        }
    }

    /** {@code fused}: Qwen3-VL-MoE's text model, else Qwen3-MoE. */
    private static void writeQwen3Moe(Path qwen3, Path dir, boolean fused) throws IOException {
        @SuppressWarnings("unchecked")
        Map<String, Object> config = new LinkedHashMap<>((Map<String, Object>) Json.parse(
                Files.readString(qwen3.resolve("config.json"))));
        if (fused) {
            config.remove("architectures");
            config.put("model_type", "qwen3_vl_moe_text");
        } else {
            config.put("architectures", List.of("Qwen3MoeForCausalLM"));
            config.put("model_type", "qwen3_moe");
            config.put("norm_topk_prob", true);
        }
        config.put("num_experts", EXPERTS);
        config.put("num_experts_per_tok", TOP_K);
        config.put("moe_intermediate_size", config.get("intermediate_size"));
        config.put("decoder_sparse_step", 1);
        config.put("mlp_only_layers", List.of());
        Files.writeString(dir.resolve("config.json"), Json.write(config));
        Generator g = new Generator(7);
        Random order = new Random(7);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try (TensorScope scope = TensorScope.open();
             SafeTensorsFile file = SafeTensorsFile.open(qwen3.resolve("model.safetensors"))) {
            for (String name : file.names()) {
                if (!name.endsWith(".mlp.gate_proj.weight")) {
                    if (!name.contains(".mlp.")) {
                        tensors.put(name, file.tensor(name));
                    }
                    continue;
                }
                String mlp = name.substring(0, name.length() - "gate_proj.weight".length());
                Tensor gate = file.tensor(name);
                Tensor up = file.tensor(mlp + "up_proj.weight");
                Tensor down = file.tensor(mlp + "down_proj.weight");
                long width = gate.size(0);
                long dModel = gate.size(1);
                // logits of about unit size on the normalised stream, so that no expert's softmax share is negligible
                tensors.put(mlp + "gate.weight", Tensor.randn(g, new long[] {EXPERTS, dModel}, DType.FLOAT32,
                        Device.CPU).div(Math.sqrt(dModel)));
                List<Tensor> gateUp = new ArrayList<>();
                List<Tensor> downs = new ArrayList<>();
                for (int e = 0; e < EXPERTS; e++) {
                    Tensor units = Tensor.of(e == 0 ? identity(width) : shuffled(width, order), width);
                    Tensor gateRows = gate.indexSelect(0, units);
                    Tensor upRows = up.indexSelect(0, units);
                    Tensor downColumns = down.indexSelect(1, units);
                    if (fused) {
                        gateUp.add(Tensor.cat(List.of(gateRows.transpose(0, 1), upRows.transpose(0, 1)), 1));
                        downs.add(downColumns.transpose(0, 1));
                        continue;
                    }
                    String expert = mlp + "experts." + e + ".";
                    tensors.put(expert + "gate_proj.weight", gateRows.contiguous());
                    tensors.put(expert + "up_proj.weight", upRows.contiguous());
                    tensors.put(expert + "down_proj.weight", downColumns.contiguous());
                }
                if (fused) {
                    tensors.put(mlp + "experts.gate_up_proj", Tensor.stack(gateUp, 0).contiguous());
                    tensors.put(mlp + "experts.down_proj", Tensor.stack(downs, 0).contiguous());
                }
            }
            SafeTensorsWriter.write(dir.resolve("model.safetensors"), tensors, Map.of("format", "pt"));
        }
        Files.copy(qwen3.resolve("reference.safetensors"), dir.resolve("reference.safetensors"));
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
