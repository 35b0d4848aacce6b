package io.arrakis.bench;

import io.arrakis.model.CacheSpec;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.ModelOutput;
import io.arrakis.torch.Device;
import io.arrakis.torch.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Arrakis's {@code profile_model}: where one forward pass spends its time and how many bytes its activations take,
 * measured through read-only hooks on every hook point but the norms' scales ({@code hook_scale}: a hook there makes
 * the norm divide by what the hook leaves, ops no other pass runs).
 *
 * <p>How it measures: a hook at every hook point notes the clock when it fires; the time since the previous hook
 * returned (or, for the first, since the forward pass was called) is attributed to the hook point that fired, i.e.
 * to the computation that produced its activation. Work with no hook point of its own counts to the next hook point
 * that fires: rotary tables to {@code blocks.0.hook_resid_pre}, the final projection to {@code logits}; a
 * projection that makes several activations at once counts to the first of them (a fused Q, K and V projection to
 * {@code attn.hook_q}, leaving {@code hook_k} and {@code hook_v} almost nothing). Hooks the model holds
 * ({@code addHook}) run as in any pass, and their time counts to their hook points. The
 * hooks' own bookkeeping is measured separately ({@link ModelProfile#hookOverheadNanos()}), as is the time from the
 * last hook until the forward pass returns ({@link ModelProfile#tailNanos()}), so the components' times sum to less
 * than the total. Activation bytes are each activation's logical size, {@code numel × element size} (an expanded
 * view counts its full shape; {@code hook_pos_embed}, observed, is a copy of that shape, made for its hooks).
 *
 * <p>The total is the wall time of the hooked forward pass. Every other hook point is observed, so each layer takes the
 * route a fully cached pass takes, less the norms' scales: attention computed explicitly (scores and pattern are hook
 * points) and the MLP's activation as an op of its own (its input is one), where an unobserved pass fuses them on
 * devices that can; the profile is that pass's, which may be slower than an unhooked one. The hooks themselves only
 * read the clock and the activations' shapes, a few microseconds per hook point once the JVM has compiled them, and
 * cache nothing (what they see lives to the pass's end, as what any hook sees does). The first
 * forward passes of a process are slower (libtorch warms up, the JVM compiles); use
 * {@link #profile(HookedAutoModel, Tensor, int)} with warm-up runs (tens of them for the hooks' own cost to settle)
 * for steadier figures.
 *
 * <p>On a CUDA device libtorch runs kernels asynchronously; the profiler then waits for each activation (by reading
 * one of its elements) before noting the clock, so times are those of the GPU work, at the cost of one small copy per
 * hook point.
 */
public final class ModelProfiler {
    private ModelProfiler() {
    }

    /** Profiles one forward pass of {@code model} on {@code inputIds} ({@code [batch, pos]} or {@code [pos]}, int64). */
    public static ModelProfile profile(HookedAutoModel model, Tensor inputIds) {
        return profile(model, inputIds, 0);
    }

    /**
     * Runs {@code warmupRuns} profiled forward passes first and discards them (libtorch's first calls and the JVM's
     * first runs of the hooks are slow), then profiles one.
     */
    public static ModelProfile profile(HookedAutoModel model, Tensor inputIds, int warmupRuns) {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(inputIds, "inputIds");
        if (warmupRuns < 0) {
            throw new IllegalArgumentException("warmupRuns must be non-negative, got " + warmupRuns);
        }
        boolean sync = !model.device().equals(Device.CPU);
        for (int i = 0; i < warmupRuns; i++) {
            measure(model, inputIds, new Recorder(sync));   // the same hooks, so their code is warm too
        }
        return measure(model, inputIds, new Recorder(sync));
    }

    private static ModelProfile measure(HookedAutoModel model, Tensor inputIds, Recorder recorder) {
        long start = System.nanoTime();
        recorder.last = start;
        try (ModelOutput out = model.runWithHooks(inputIds, CacheSpec.none(),
                HookedAutoModel.HookSpec.matching(name -> !name.endsWith("hook_scale"), recorder::fire))) {
            if (recorder.sync) {
                sync(out.logits());
            }
            long end = System.nanoTime();
            return new ModelProfile(model.config().family(), model.config().nLayers(), inputIds.shape(),
                    recorder.entries, end - start, end - recorder.last, recorder.overhead);
        }
    }

    /** Waits for a device tensor's pending work by reading one element (none where it is empty). */
    static void sync(Tensor t) {
        if (t.numel() == 0) { // an expert no token chose: nothing ran
            return;
        }
        Tensor e = t;
        List<Tensor> views = new ArrayList<>();
        while (e.dim() > 0) {
            e = e.select(0, 0);
            views.add(e);
        }
        e.item();
        views.forEach(Tensor::close);
    }

    /** The hook: notes the clock, the name and the activation's size at each hook point. */
    private static final class Recorder {
        final boolean sync;
        final List<ModelProfile.HookTiming> entries = new ArrayList<>();
        long last;
        long overhead;

        Recorder(boolean sync) {
            this.sync = sync;
        }

        Tensor fire(Tensor activation, String name) {
            if (sync) {
                sync(activation);
            }
            long now = System.nanoTime();
            long[] shape = activation.shape();
            long bytes = activation.numel() * activation.dtype().byteSize();
            entries.add(new ModelProfile.HookTiming(name, ModelProfile.layerOf(name), ModelProfile.componentOf(name),
                    now - last, bytes, shape, activation.dtype()));
            long after = System.nanoTime();
            overhead += after - now;
            last = after;
            return null;
        }
    }
}
