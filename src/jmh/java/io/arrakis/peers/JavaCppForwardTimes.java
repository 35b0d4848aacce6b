package io.arrakis.peers;

import io.arrakis.suite.ForwardTimes;

/**
 * JavaCPP's side of the suite's paired comparison with ours: the float32 forward passes of the tiny GPT-2 (µs) and of
 * GPT-2-small (ms) through {@link JavaCppPeer}'s model, timed exactly as {@link ForwardTimes} times ours; prints the
 * same JSON object. Run it with {@code -Dorg.bytedeco.javacpp.platform.preloadpath=/nonexistent}, as the JMH rows are.
 */
public final class JavaCppForwardTimes {
    private JavaCppForwardTimes() {
    }

    public static void main(String[] args) {
        JavaCppPeer.Gpt2Run tiny = new JavaCppPeer.Gpt2Run(Gpt2Checkpoint.tiny(), "float32");
        ForwardTimes.warmUp(tiny::forward, ForwardTimes.TINY_WARM_UP_NANOS);
        double tinyMicros = ForwardTimes.medianMicros(tiny::forward, 0, 100, 7);
        JavaCppPeer.Gpt2Run small = new JavaCppPeer.Gpt2Run(Gpt2Checkpoint.gpt2Small(), "float32");
        double smallMillis = ForwardTimes.medianMicros(small::forward, 3, 1, 5) / 1e3;
        ForwardTimes.printResult(tinyMicros, smallMillis);
    }
}
