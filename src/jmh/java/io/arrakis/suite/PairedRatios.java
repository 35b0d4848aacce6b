package io.arrakis.suite;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.LongSupplier;

/**
 * The targets that compare two of our own workloads (forward vs its matrix products, full cache vs no cache, all-pairs
 * composition vs its product), measured paired: A and B alternate in one JVM, round after round, and the figure is
 * the median of the per-round ratios A/B, so that a machine whose speed drifts between JMH forks (a shared VM) does
 * not decide the verdict. Prints one JSON object on stdout. Usage: {@code PairedRatios ROUNDS}.
 */
public final class PairedRatios {
    private PairedRatios() {
    }

    public static void main(String[] args) {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 7;
        StringBuilder json = new StringBuilder("{");

        OursForward forward = new OursForward();
        forward.dtype = "float32";
        forward.setUp();
        json.append("\"forward_vs_matmuls\": ").append(ratio(rounds, forward::noCache, forward::matmulsAlone));
        OursForwardCache cache = new OursForwardCache();
        cache.setUp();
        json.append(", \"cache_vs_no_cache\": ").append(ratio(rounds, cache::fullCache, forward::noCache));
        cache.tearDown();
        forward.tearDown();

        OursComposition composition = new OursComposition();
        composition.dtype = "float32";
        composition.setUp();
        json.append(", \"composition_vs_product\": ")
                .append(ratio(rounds, composition::allPairsQ, composition::unavoidableProduct));
        composition.tearDown();
        System.out.println(json.append("}"));
    }

    private static String ratio(int rounds, LongSupplier a, LongSupplier b) {
        for (int i = 0; i < 3; i++) { // warm-up: the JIT compiles the Java side of A and B first
            a.getAsLong();
            b.getAsLong();
        }
        List<Double> ratios = new ArrayList<>();
        for (int i = 0; i < rounds; i++) {
            boolean aFirst = i % 2 == 0;
            long ta = 0;
            long tb = 0;
            for (int k = 0; k < 2; k++) {
                long t0 = System.nanoTime();
                if ((k == 0) == aFirst) {
                    a.getAsLong();
                    ta = System.nanoTime() - t0;
                } else {
                    b.getAsLong();
                    tb = System.nanoTime() - t0;
                }
            }
            ratios.add((double) ta / tb);
        }
        Collections.sort(ratios);
        double median = ratios.size() % 2 == 1 ? ratios.get(ratios.size() / 2)
                : (ratios.get(ratios.size() / 2 - 1) + ratios.get(ratios.size() / 2)) / 2;
        System.err.println("bench: paired ratios " + ratios);
        return String.format(java.util.Locale.ROOT, "%.4f", median);
    }
}
