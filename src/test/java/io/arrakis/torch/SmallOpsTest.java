package io.arrakis.torch;

import io.arrakis.model.Fixtures;
import io.arrakis.testing.ChildJvm;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/**
 * Small CPU ops run on as many threads as get a grain of work each, large ones on all libtorch's threads, and the
 * thread's setting is put back: checked in a child JVM with three threads per op (this machine's libtorch may default
 * to one, where nothing would change), against libtorch's own count of the thread's threads, and with results against
 * their definitions, float64 products and Hugging Face's logits.
 */
class SmallOpsTest {

    @Test
    void smallOpsGetFewerThreadsAndLeaveTheThreadAsItWas() {
        String out = ChildJvm.of(SmallOpsProbe.class, Fixtures.huggingFace("gpt2").toString(),
                Fixtures.huggingFace("llama").toString()).property(LibTorch.PROPERTY_THREADS, "3").run();
        Map<String, String> seen = new HashMap<>();
        out.lines().flatMap(line -> java.util.Arrays.stream(line.split(" "))).filter(w -> w.contains("="))
                .forEach(w -> seen.put(w.substring(0, w.indexOf('=')), w.substring(w.indexOf('=') + 1)));
        assumeFalse(seen.containsKey("unavailable"), "skipped: this libtorch links no OpenMP runtime");
        assertEquals("3", seen.get("before"), out);
        assertEquals("3", seen.get("smallReturned"), out);
        assertEquals("1", seen.get("smallDuring"), out);
        assertEquals("3", seen.get("smallAfter"), out);
        assertEquals("3", seen.get("mediumReturned"), out);
        assertEquals("2", seen.get("mediumDuring"), out);
        assertEquals("0", seen.get("largeReturned"), out);
        assertEquals("3", seen.get("largeDuring"), out);
        assertEquals("0", seen.get("virtualReturned"), out);
        assertEquals("3", seen.get("virtualDuring"), out);
        assertEquals("3", seen.get("teamAfterOps"), out);
        assertEquals("3", seen.get("teamAtEnd"), out);
        for (String op : new String[] {"layerNorm", "softmax", "sdpa"}) {
            assertTrue(Double.parseDouble(seen.get(op)) < 1e-12, op + " differs from its definition: " + out);
        }
        for (String linear : new String[] {"linear0", "linear1"}) {
            assertTrue(Double.parseDouble(seen.get(linear)) < 1e-5, linear + " differs from the float64 product: " + out);
            if (LibTorch.oneDnnFloat32Weights()) {
                assertEquals("onednn", seen.get(linear + "Route"), out);
            }
        }
        for (String model : new String[] {"gpt2", "llama"}) {
            for (String route : new String[] {"fused", "explicit"}) {
                String key = "logits." + model + "." + route;
                assertTrue(Double.parseDouble(seen.get(key)) < 1e-4, key + " differs from Hugging Face's: " + out);
            }
        }
    }
}
