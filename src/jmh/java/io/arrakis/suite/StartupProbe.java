package io.arrakis.suite;

import io.arrakis.model.BenchCheckpoint;
import io.arrakis.model.CacheSpec;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.ModelOutput;
import io.arrakis.torch.Tensor;

import java.nio.file.Path;

/**
 * Suite row {@code startup_cold}: the whole process, timed from outside by scripts/bench.sh — a new JVM that loads
 * libtorch (already extracted), loads the tiny checkpoint and runs its first forward pass. Usage: {@code StartupProbe DIR}.
 */
public final class StartupProbe {
    private StartupProbe() {
    }

    public static void main(String[] args) {
        Path dir = Path.of(args[0]);
        try (HookedAutoModel model = HookedAutoModel.fromPretrained(dir);
             Tensor ids = Tensor.of(BenchCheckpoint.readIds(dir), 1, BenchCheckpoint.TINY_SEQ);
             ModelOutput out = model.forward(ids, CacheSpec.none())) {
            System.out.println("startup: logits " + java.util.Arrays.toString(out.logits().shape()));
        }
    }
}
