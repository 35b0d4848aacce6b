package io.arrakis.examples;

import io.arrakis.bench.BaseInterpretabilityBench;
import io.arrakis.bench.Experiment;
import io.arrakis.bench.ExperimentRecord;
import io.arrakis.text.Gpt2Tokenizer;
import io.arrakis.bench.ModelProfile;
import io.arrakis.bench.Plots;
import io.arrakis.bench.WelchResult;
import io.arrakis.composer.AttentionComposer;
import io.arrakis.composer.CompositionScores;
import io.arrakis.composer.Head;
import io.arrakis.composer.HeadDetectors;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.torch.DType;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's bench walkthrough, line for line (only the save folder differs), so the README stays true. */
class ReadmeBenchExampleTest {

    // --- README: bench walkthrough ---
    /** Derive from the bench, as in Arrakis. */
    static class MIExperiment extends BaseInterpretabilityBench {
        MIExperiment(HookedAutoModel model, Path saveDir) {
            super(model, saveDir);
        }
    }

    /** An experiment's arguments: a record names them in the log. */
    record HeadPair(Head head1, Head head2, double alpha) {
    }
    // --- end ---

    @Test
    void theWalkthroughRuns(@TempDir Path saveDir) throws Exception {
        try (TensorScope scope = TensorScope.open()) {
            // --- README: bench walkthrough ---
            HookedAutoConfig config = HookedAutoConfig.of("gpt2").with(Map.of("n_layer", 2, "n_embd", 128, "n_head", 4));
            HookedAutoModel model = HookedAutoModel.create(config, 0, DType.FLOAT32, Device.CPU);

            MIExperiment exp = new MIExperiment(model, saveDir);          // e.g. Path.of("experiments")
            exp.setTokenizer(Gpt2Tokenizer.get());                          // GPT-2's BPE: text in, tokens on plots
            Tensor inputIds = exp.encode("The cat sat on the mat. The cat sat on the mat.");

            Experiment<HeadPair, Map<String, Object>> test = exp.logExperiment(exp.useTools("composer").experiment(
                    "test_attention_composer", (args, tools) -> {
                        AttentionComposer composer = tools.get("composer", AttentionComposer.class);
                        try (AttentionComposer.HeadComposition hc =
                                     composer.headComposition(args.head1(), args.head2(), args.alpha())) {
                            return Map.of("q", hc.qComposition(), "k", hc.kComposition(), "v", hc.vComposition());
                        }
                    }));
            Map<String, Object> result = test.run(new HeadPair(Head.of(0, 0), Head.of(1, 1), 0.5));

            List<ExperimentRecord> runs = exp.listVersions("test_attention_composer"); // args, result, timing, versions
            ExperimentRecord run = exp.getVersion("test_attention_composer", runs.get(0).version());

            ModelProfile profile = exp.profileModel(inputIds);            // time and bytes per layer and component
            System.out.println(profile.toTable());

            WelchResult h = exp.testHypothesis(                           // is L1H0 more of an induction head than L1H1?
                    i -> { try (HeadDetectors.Scores s = HeadDetectors.detect(model, 20, 1, i)) {
                        return s.induction().select(0, 1).select(0, 1).item(); } },
                    i -> { try (HeadDetectors.Scores s = HeadDetectors.detect(model, 20, 1, i)) {
                        return s.induction().select(0, 1).select(0, 0).item(); } },
                    20, 0.05);
            System.out.println(h);
            // --- end ---

            assertEquals(Map.of("q", result.get("q"), "k", result.get("k"), "v", result.get("v")), run.result());
            assertEquals(1, runs.size());
            assertEquals(Map.of("head1", Map.of("layer", 0L, "index", 0L), "head2", Map.of("layer", 1L, "index", 1L),
                    "alpha", 0.5), run.arguments());
            assertEquals("gpt2", run.modelConfig().get("model_type"));
            assertTrue(profile.byLayer().keySet().containsAll(List.of(0, 1)), profile.byLayer().toString());
            assertTrue(h.pValue() >= 0 && h.pValue() <= 1);
            assertEquals(14, inputIds.size(1), "GPT-2 tokens of the sentence, twice");

            if (Plots.canRenderText()) {
                // --- README: bench walkthrough (plots) ---
                List<Path> patterns = exp.plotAttentionPatterns(inputIds, new int[] {0, 1}, new int[] {0}, 800, 800);
                Path heatmap = exp.plotCompositionScores(CompositionScores.Mode.K, 800, 800);
                // --- end ---
                assertEquals(2, patterns.size());
                for (Path p : List.of(patterns.get(0), patterns.get(1), heatmap)) {
                    assertTrue(Files.size(p) > 1000 && p.startsWith(saveDir.resolve("plots")), p.toString());
                }
            }
            exp.close();
            model.close();
        }
    }
}
