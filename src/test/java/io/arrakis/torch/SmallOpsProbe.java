package io.arrakis.torch;

import io.arrakis.model.CacheSpec;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.ModelOutput;
import io.arrakis.model.safetensors.SafeTensorsFile;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/**
 * For SmallOpsTest, in a child JVM with three threads per op: prints {@code key=value} lines on libtorch's thread count
 * around small and large work, and the largest differences of small ops and of models' logits from references.
 * Arguments: fixture folders (config, model and reference.safetensors with input_ids and logits).
 */
public final class SmallOpsProbe {
    private SmallOpsProbe() {
    }

    public static void main(String[] fixtures) {
        LibTorch.load();
        if (!SmallOps.available()) {
            System.out.println("unavailable=true");
            return;
        }
        MemorySegment scratch = Arena.ofAuto().allocate(ValueLayout.JAVA_INT);
        System.out.println("before=" + team(scratch));
        int small = SmallOps.fitTeam(2 * SmallOps.ROW_GRAIN - 1, SmallOps.ROW_GRAIN, scratch);
        System.out.println("smallReturned=" + small + " smallDuring=" + team(scratch));
        SmallOps.restore(small);
        System.out.println("smallAfter=" + team(scratch));
        int medium = SmallOps.fitTeam(2 * SmallOps.ROW_GRAIN, SmallOps.ROW_GRAIN, scratch);
        System.out.println("mediumReturned=" + medium + " mediumDuring=" + team(scratch));
        SmallOps.restore(medium);
        int large = SmallOps.fitTeam(3 * SmallOps.ROW_GRAIN, SmallOps.ROW_GRAIN, scratch);
        System.out.println("largeReturned=" + large + " largeDuring=" + team(scratch));
        SmallOps.restore(large);
        // a virtual thread keeps its team: it may move to another carrier before the restore
        Thread virtual = Thread.ofVirtual().start(() -> {
            MemorySegment own = Arena.ofAuto().allocate(ValueLayout.JAVA_INT);
            int cut = SmallOps.fitTeam(1, SmallOps.ROW_GRAIN, own);
            System.out.println("virtualReturned=" + cut + " virtualDuring=" + team(own));
            SmallOps.restore(cut);
        });
        try {
            virtual.join();
        } catch (InterruptedException e) {
            throw new IllegalStateException(e);
        }

        try (TensorScope scope = TensorScope.open()) {
            Generator g = new Generator(3);
            Tensor x = Tensor.randn(g, new long[] {2, 5, 16}, DType.FLOAT64, Device.CPU);
            Tensor mean = x.mean(-1, true);
            Tensor centred = x.sub(mean);
            Tensor variance = centred.mul(centred).mean(-1, true);
            Tensor byDefinition = centred.div(variance.add(1e-5).sqrt());
            System.out.println("layerNorm=" + x.layerNorm(null, null, 1e-5).sub(byDefinition).abs().max().item());
            Tensor e = x.exp();
            System.out.println("softmax=" + x.softmax(-1).sub(e.div(e.sum(-1, true))).abs().max().item());
            Tensor q = Tensor.randn(g, new long[] {1, 2, 6, 8}, DType.FLOAT64, Device.CPU);
            Tensor k = Tensor.randn(g, new long[] {1, 2, 6, 8}, DType.FLOAT64, Device.CPU);
            Tensor v = Tensor.randn(g, new long[] {1, 2, 6, 8}, DType.FLOAT64, Device.CPU);
            Tensor future = Tensor.ones(new long[] {6, 6}, DType.BOOL, Device.CPU).triu(1);
            Tensor scores = q.matmul(k.transpose(-2, -1)).div(Math.sqrt(8)).maskedFill(future, Double.NEGATIVE_INFINITY);
            Tensor attention = scores.softmax(-1).matmul(v);
            System.out.println("sdpa=" + Tensor.scaledDotProductAttention(q, k, v, null, true, null).sub(attention).abs().max().item());
            // a model's linear layers: a small one on a one-thread copy, a large one on the whole team (oneDNN's
            // packed weights, where this libtorch and CPU run them)
            long[][] linears = {{4, 64, 64}, {128, 768, 2304}};
            for (int i = 0; i < linears.length; i++) {
                long[] s = linears[i];
                Tensor a = Tensor.randn(g, new long[] {1, s[0], s[1]}, DType.FLOAT32, Device.CPU);
                Tensor w = Tensor.randn(g, new long[] {s[2], s[1]}, DType.FLOAT32, Device.CPU);
                Tensor b = Tensor.randn(g, new long[] {s[2]}, DType.FLOAT32, Device.CPU);
                Tensor exact = a.to(DType.FLOAT64).matmul(w.to(DType.FLOAT64).transpose(0, 1)).add(b.to(DType.FLOAT64));
                try (LinearWeight weight = new LinearWeight(w)) {
                    double relative = weight.apply(a, b).to(DType.FLOAT64).sub(exact).abs().max().item()
                            / exact.abs().max().item();
                    System.out.println("linear" + i + "=" + relative + " linear" + i + "Route="
                            + (weight.isPacked() ? "onednn" : "blas"));
                }
            }
            System.out.println("teamAfterOps=" + team(scratch));
        }

        for (String fixture : fixtures) {
            Path dir = Path.of(fixture);
            try (TensorScope scope = TensorScope.open();
                 SafeTensorsFile reference = SafeTensorsFile.open(dir.resolve("reference.safetensors"));
                 HookedAutoModel model = HookedAutoModel.fromPretrained(dir)) {
                Tensor expected = reference.tensor("logits");
                String[] routes = {"fused", "explicit"}; // no cache entry needs the pattern; every entry does
                CacheSpec[] specs = {CacheSpec.none(), CacheSpec.all()};
                for (int i = 0; i < routes.length; i++) {
                    try (ModelOutput out = model.forward(reference.tensor("input_ids"), specs[i])) {
                        double diff = out.logits().sub(expected).abs().max().item();
                        System.out.println("logits." + dir.getFileName() + "." + routes[i] + "=" + diff);
                    }
                }
            }
        }
        System.out.println("teamAtEnd=" + team(scratch));
    }

    private static int team(MemorySegment scratch) {
        Native.check(io.arrakis.bindings.arrakis_torch_h.torch_get_num_threads(scratch), "torch_get_num_threads");
        return scratch.get(ValueLayout.JAVA_INT, 0);
    }
}
