package io.arrakis.composer;

import io.arrakis.model.ActivationCache;
import io.arrakis.model.CacheSpec;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.model.HookedAutoModel.HookHandle;
import io.arrakis.model.HookedAutoModel.HookSpec;
import io.arrakis.model.ModelOutput;
import io.arrakis.torch.DType;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.function.Function;

/**
 * Path patching from one sender head to one receiver head's query, key or value input (Wang et al. 2022,
 * "Interpretability in the Wild"; Goldowsky-Dill et al. 2023, "Localizing Model Behavior with Path Patching").
 *
 * <p>The sender's contribution to the residual stream is its {@code hook_z} row times its slice of {@code W_O}. Path
 * patching asks: if the receiver's route input (the normalised residual stream its q, k or v projection reads) saw
 * the sender's contribution on the <em>corrupted</em> input instead of the clean one, everything else clean, how much
 * would a metric of the logits change? It is computed exactly, with three kinds of forward pass on the clean input:
 *
 * <ol>
 *   <li>a clean run (the baseline metric, and the clean outputs of every layer below the receiver);</li>
 *   <li>a run where the sender head's {@code hook_z} is replaced by its corrupted value, caching the receiver layer's
 *       {@code hook_q}/{@code hook_k}/{@code hook_v}: in {@link Mode#PATH} (the default) every attention and MLP output
 *       that could carry the sender's change on its way to the receiver — {@code blocks.l.hook_attn_out} and
 *       {@code blocks.l.hook_mlp_out} (and gemma4's {@code blocks.l.hook_per_layer_out}, which reads the stream as an
 *       MLP does) for {@code sender.layer < l < receiver.layer}, and the sender layer's MLP — is
 *       frozen to its clean value, so the receiver's input differs from clean by the sender's change in contribution
 *       alone (the sender layer's other heads read the clean {@code resid_pre} and are clean already; in families that
 *       normalise the attention's output, gemma2, gemma3, olmo2, olmo3, flex-olmo, exaone4, glm4 and afmoe, that norm
 *       acts on all heads' sum, so one head's change also rescales the others' terms in the sender layer's
 *       {@code hook_attn_out}); in
 *       {@link Mode#PATH_THROUGH_MLPS} only the attention outputs are frozen and every MLP recomputes, so the sender
 *       also reaches the receiver through MLPs (the recipe of Wang et al. as ARENA's IOI exercises implement it: every
 *       head but the sender frozen, MLPs not); in {@link Mode#TOTAL} nothing is frozen, so intermediate heads and MLPs
 *       also see the corrupted sender (the total effect of the sender through the route);</li>
 *   <li>a clean run where only the receiver head's q (k, v) is replaced by the value cached in step 2.</li>
 * </ol>
 *
 * <p>The result is {@code metric(patched logits) - metric(clean logits)}. Because step 3 recomputes the receiver's
 * projection from the full residual (norm included), the method is exact for every norm, bias and family, and needs no
 * weights. In families that normalise queries and keys the Q and K routes carry the normalised value
 * ({@code hook_q_normed}, {@code hook_k_normed}), so that patching one head's value leaves the other heads' as they
 * were even in olmo2, olmo3, olmoe and flex-olmo, which normalise all heads together. For grouped-query attention the K
 * and V routes patch the receiver's key/value head, which the other query heads of its group share: the result is the
 * whole group's effect, and every query head of a group, taken as the receiver, gets the same value by those routes.
 *
 * <p>A receiver whose layer attends to an earlier layer's keys and values (gemma4's sharing layers) has a query route
 * only; the key and value routes of a head of the layer it shares reach every layer sharing them too, as in the
 * model.
 *
 * <p>In models with layers without heads (the linear attention of Qwen3.5 and Qwen3-Next, the short convolutions of
 * LFM2), senders and receivers are heads of the softmax-attention layers; such a layer between them is an attention
 * output like any other, frozen or recomputed as the mode says.
 *
 * <p>The one-sided forms ({@link #ablate}) use a single input: the sender's z is replaced by zeros or by its mean over
 * the batch and positions on that input.
 */
public final class PathPatching {
    private PathPatching() {
    }

    /** Which input of the receiver head the path ends in. */
    public enum Route {
        /** The query. */
        Q("hook_q"),
        /** The key. */
        K("hook_k"),
        /** The value. */
        V("hook_v");

        private final String hook;

        Route(String hook) {
            this.hook = hook;
        }

        /** The hook point of this route in {@code layer}, e.g. {@code blocks.1.attn.hook_k}. */
        public String hookName(int layer) {
            return "blocks." + layer + ".attn." + hook;
        }
    }

    /** Which of the layers between sender and receiver are frozen to their clean outputs. */
    public enum Mode {
        /** Only the direct path sender → residual → receiver route: intermediate attention and MLP outputs clean. */
        PATH,
        /**
         * The direct path and the paths through MLPs: intermediate attention outputs clean, every MLP recomputed from
         * the changed residual stream.
         */
        PATH_THROUGH_MLPS,
        /** Intermediate heads and MLPs see the changed sender too; its effect through them reaches the route. */
        TOTAL
    }

    /** What the sender's z becomes in the one-sided form. */
    public enum Ablation {
        /** Zeros. */
        ZERO,
        /** Its mean over the batch and positions of the input. */
        MEAN
    }

    /** A scalar function of the logits {@code [batch, pos, vocab]}. */
    @FunctionalInterface
    public interface Metric extends Function<Tensor, Double> {
        /**
         * The logit of {@code correctToken} minus that of {@code wrongToken} at the last position, averaged over the
         * batch.
         */
        static Metric logitDiff(long correctToken, long wrongToken) {
            return logits -> {
                if (logits.dim() != 3) {
                    throw new IllegalArgumentException("logitDiff expects logits [batch, pos, vocab], got shape "
                            + Arrays.toString(logits.shape()));
                }
                long vocab = logits.size(2);
                if (correctToken < 0 || correctToken >= vocab || wrongToken < 0 || wrongToken >= vocab) {
                    throw new IllegalArgumentException("logitDiff tokens " + correctToken + " and " + wrongToken
                            + " must lie in [0, " + vocab + ")");
                }
                try (TensorScope scope = TensorScope.open()) {
                    Tensor last = logits.select(1, logits.size(1) - 1).to(DType.FLOAT64);
                    return last.select(1, correctToken).sub(last.select(1, wrongToken)).mean().item();
                }
            };
        }
    }

    // ------------------------------------------------------------------------------------------------ two inputs

    /** {@link #patch(HookedAutoModel, Tensor, Tensor, Head, Head, Route, Function, Mode)} in {@link Mode#PATH}. */
    public static double patch(HookedAutoModel model, Tensor clean, Tensor corrupted, Head sender, Head receiver,
                               Route route, Function<Tensor, Double> metric) {
        return patch(model, clean, corrupted, sender, receiver, route, metric, Mode.PATH);
    }

    /**
     * The change in {@code metric} (patched − clean) when the receiver's {@code route} input sees the sender's
     * contribution on {@code corrupted} in place of that on {@code clean}.
     *
     * @param clean the clean input ids {@code [batch, pos]} (or {@code [pos]})
     * @param corrupted the corrupted input ids, the same shape
     * @throws IllegalArgumentException when the shapes differ, a head is out of range, or the sender's layer is not
     *     below the receiver's
     */
    public static double patch(HookedAutoModel model, Tensor clean, Tensor corrupted, Head sender, Head receiver,
                               Route route, Function<Tensor, Double> metric, Mode mode) {
        checkCommon(model, receiver, route, metric, mode);
        checkInputs(clean, corrupted);
        checkSender(model, sender, receiver);
        try (HookHandle held = model.holdHooks(); TensorScope scope = TensorScope.open();
             CleanRun base = new CleanRun(model, clean, receiver.layer(), metric);
             ModelOutput corr = model.forward(corrupted, CacheSpec.only(zName(sender.layer())))) {
            Tensor z = corr.cache().get(zName(sender.layer())).select(2, sender.index());
            return base.effect(sender, z, receiver, route, mode);
        }
    }

    /**
     * Every head in the layers below the receiver as a sender to {@code receiver}: {@code [layers, heads]} float64 on
     * the CPU, with NaN where a head is not a sender (layers at or above the receiver's, and layers without heads).
     */
    public static Tensor patchAllSenders(HookedAutoModel model, Tensor clean, Tensor corrupted, Head receiver, Route route,
                                         Function<Tensor, Double> metric, Mode mode) {
        checkCommon(model, receiver, route, metric, mode);
        checkInputs(clean, corrupted);
        checkReceiver(model.config(), receiver);
        String[] names = java.util.stream.IntStream.range(0, receiver.layer()).filter(model.config()::attentionHeads)
                .mapToObj(PathPatching::zName).toArray(String[]::new);
        try (HookHandle held = model.holdHooks(); TensorScope scope = TensorScope.open();
             CleanRun base = new CleanRun(model, clean, receiver.layer(), metric);
             ModelOutput corr = model.forward(corrupted, CacheSpec.only(names))) {
            return scope.keep(base.all(receiver, route, mode, (l, h) -> corr.cache().get(zName(l)).select(2, h)));
        }
    }

    // ------------------------------------------------------------------------------------------------ one input

    /** {@link #ablate(HookedAutoModel, Tensor, Head, Head, Route, Function, Ablation, Mode)} in {@link Mode#PATH}. */
    public static double ablate(HookedAutoModel model, Tensor input, Head sender, Head receiver, Route route,
                                Function<Tensor, Double> metric, Ablation ablation) {
        return ablate(model, input, sender, receiver, route, metric, ablation, Mode.PATH);
    }

    /**
     * The one-sided form: the change in {@code metric} when the receiver's {@code route} input sees the sender's
     * contribution with its z zero- or mean-ablated (mean over the batch and positions of {@code input}).
     */
    public static double ablate(HookedAutoModel model, Tensor input, Head sender, Head receiver, Route route,
                                Function<Tensor, Double> metric, Ablation ablation, Mode mode) {
        checkCommon(model, receiver, route, metric, mode);
        Objects.requireNonNull(input, "input");
        Objects.requireNonNull(ablation, "ablation");
        checkSender(model, sender, receiver);
        try (HookHandle held = model.holdHooks(); TensorScope scope = TensorScope.open();
             CleanRun base = new CleanRun(model, input, receiver.layer(), metric)) {
            return base.effect(sender, base.ablated(sender.layer(), sender.index(), ablation), receiver, route, mode);
        }
    }

    /**
     * The one-sided form for every sender below {@code receiver}: {@code [layers, heads]}, NaN where not a sender (as
     * in {@link #patchAllSenders}).
     */
    public static Tensor ablateAllSenders(HookedAutoModel model, Tensor input, Head receiver, Route route,
                                          Function<Tensor, Double> metric, Ablation ablation, Mode mode) {
        checkCommon(model, receiver, route, metric, mode);
        Objects.requireNonNull(input, "input");
        Objects.requireNonNull(ablation, "ablation");
        checkReceiver(model.config(), receiver);
        try (HookHandle held = model.holdHooks(); TensorScope scope = TensorScope.open();
             CleanRun base = new CleanRun(model, input, receiver.layer(), metric)) {
            return scope.keep(base.all(receiver, route, mode, (l, h) -> base.ablated(l, h, ablation)));
        }
    }

    // ------------------------------------------------------------------------------------------------ machinery

    private static String zName(int layer) {
        return "blocks." + layer + ".attn.hook_z";
    }

    private static boolean isFreezable(String name, int below) {
        if (!name.startsWith("blocks.") || !(name.endsWith(".hook_attn_out") || name.endsWith(".hook_mlp_out")
                || name.endsWith(".hook_per_layer_out"))) {
            return false;
        }
        int layer = Integer.parseInt(name.substring(7, name.indexOf('.', 7)));
        return layer < below;
    }

    /**
     * The clean run: its metric and cached z, attention and MLP outputs (and gemma4's per-layer terms) below the
     * receiver's layer.
     */
    private static final class CleanRun implements AutoCloseable {
        private final HookedAutoModel model;
        private final Tensor ids;
        private final Function<Tensor, Double> metric;
        private final ModelOutput out;
        private final double metricValue;

        CleanRun(HookedAutoModel model, Tensor ids, int receiverLayer, Function<Tensor, Double> metric) {
            this.model = model;
            this.ids = ids;
            this.metric = metric;
            this.out = model.forward(ids, CacheSpec.matching(n -> isFreezable(n, receiverLayer)
                    || (n.endsWith(".attn.hook_z") && isBelow(n, receiverLayer))));
            try {
                this.metricValue = evaluate(out.logits());
            } catch (RuntimeException e) {
                out.close();
                throw e;
            }
        }

        private static boolean isBelow(String name, int below) {
            return Integer.parseInt(name.substring(7, name.indexOf('.', 7))) < below;
        }

        double evaluate(Tensor logits) {
            try (TensorScope scope = TensorScope.open()) {
                Double v = metric.apply(logits);
                if (v == null) {
                    throw new IllegalArgumentException("the metric returned null");
                }
                return v;
            }
        }

        /** The sender's z {@code [batch, pos, d_head]} ablated on this input. */
        Tensor ablated(int layer, int head, Ablation ablation) {
            Tensor z = out.cache().get(zName(layer)).select(2, head);
            return switch (ablation) {
                case ZERO -> Tensor.zeros(z.shape(), z.dtype(), z.device());
                case MEAN -> z.mean(0, true).mean(1, true).expand(z.shape()).contiguous();
            };
        }

        /** The metric's change when the receiver's route sees the sender with z {@code senderZ} [batch, pos, d_head]. */
        double effect(Head sender, Tensor senderZ, Head receiver, Route route, Mode mode) {
            HookedAutoConfig c = model.config();
            ActivationCache cache = out.cache();
            List<HookSpec> hooks = new ArrayList<>();
            hooks.add(HookSpec.at(zName(sender.layer()), (z, n) -> replaceHead(z, sender.index(), senderZ)));
            Set<String> frozen = new HashSet<>();
            if (mode != Mode.TOTAL) {
                boolean mlps = mode == Mode.PATH;
                // gemma4's per-layer inputs reach the stream through a gate that reads it, as an MLP does
                List<String> mlpLike = List.of(".hook_mlp_out", ".hook_per_layer_out");
                if (mlps) {
                    mlpLike.forEach(h -> frozen.add("blocks." + sender.layer() + h));
                }
                for (int l = sender.layer() + 1; l < receiver.layer(); l++) {
                    frozen.add("blocks." + l + ".hook_attn_out");
                    if (mlps) {
                        int layer = l;
                        mlpLike.forEach(h -> frozen.add("blocks." + layer + h));
                    }
                }
            }
            if (!frozen.isEmpty()) {
                hooks.add(HookSpec.matching(frozen::contains, (a, n) -> {
                    Tensor clean = cache.get(n);
                    return clean.view(clean.shape());
                }));
            }
            String routeName = patchedHook(model, route, receiver.layer());
            int index = route == Route.Q ? receiver.index()
                    : receiver.index() / (c.nHeads() / c.nKvHeads(receiver.layer()));
            try (TensorScope scope = TensorScope.open();
                 ModelOutput second = model.runWithHooks(ids, CacheSpec.only(routeName), hooks.toArray(HookSpec[]::new))) {
                Tensor routed = second.cache().get(routeName).select(2, index);
                try (Tensor patched = model.runWithHooks(ids, HookSpec.at(routeName, (a, n) -> replaceHead(a, index, routed)))) {
                    return evaluate(patched) - metricValue;
                }
            }
        }

        /**
         * Where the route's value is replaced: its hook point, or, in families that normalise queries and keys, the
         * normalised query or key, since olmo2, olmo3, olmoe and flex-olmo normalise all heads' queries (keys) together
         * and replacing one head's raw query would change the others' through the shared norm (per head, as in qwen3,
         * either point is exact).
         */
        private static String patchedHook(HookedAutoModel model, Route route, int layer) {
            String normed = route.hookName(layer) + "_normed";
            return route != Route.V && model.hookNames().contains(normed) ? normed : route.hookName(layer);
        }

        Tensor all(Head receiver, Route route, Mode mode, java.util.function.BiFunction<Integer, Integer, Tensor> senderZ) {
            int layers = model.config().nLayers();
            int heads = model.config().nHeads();
            double[] values = new double[layers * heads];
            Arrays.fill(values, Double.NaN);
            for (int l = 0; l < receiver.layer(); l++) {
                for (int h = 0; h < heads && model.config().attentionHeads(l); h++) {
                    try (TensorScope scope = TensorScope.open()) {
                        values[l * heads + h] = effect(new Head(l, h), senderZ.apply(l, h), receiver, route, mode);
                    }
                }
            }
            return Tensor.of(values, layers, heads);
        }

        @Override
        public void close() {
            out.close();
        }
    }

    /** {@code x [batch, pos, head, d]} with head {@code index} replaced by {@code value [batch, pos, d]}. */
    static Tensor replaceHead(Tensor x, int index, Tensor value) {
        long heads = x.size(2);
        List<Tensor> parts = new ArrayList<>(3);
        if (index > 0) {
            parts.add(x.narrow(2, 0, index));
        }
        parts.add(value.to(x.dtype(), x.device()).unsqueeze(2));
        if (index < heads - 1) {
            parts.add(x.narrow(2, index + 1, heads - index - 1));
        }
        return Tensor.cat(parts, 2);
    }

    // ------------------------------------------------------------------------------------------------ checks

    private static void checkCommon(HookedAutoModel model, Head receiver, Route route, Function<Tensor, Double> metric,
                                    Mode mode) {
        if (model == null || receiver == null || route == null || metric == null || mode == null) {
            throw new IllegalArgumentException("model, receiver, route, metric and mode must not be null");
        }
        checkRoute(model.config(), receiver, route);
    }

    /**
     * Refuses the key and value routes of a receiver whose layer attends to an earlier layer's keys and values
     * (gemma4's sharing layers), naming that layer.
     *
     * @param config   the model's configuration
     * @param receiver the receiving head
     * @param route    its route
     * @throws IllegalArgumentException for such a receiver and a K or V route
     */
    public static void checkRoute(HookedAutoConfig config, Head receiver, Route route) {
        int layer = receiver.layer();
        if (route != Route.Q && layer < config.nLayers() && config.keysFrom(layer) != layer) {
            int from = config.keysFrom(layer);
            throw new IllegalArgumentException("receiver " + receiver + "'s keys and values are layer " + from + "'s,"
                    + " which it shares: it has no " + route + " input of its own; patch route " + route + " of a"
                    + " head of layer " + from + ", whose keys and values every layer sharing them reads");
        }
    }

    private static void checkInputs(Tensor clean, Tensor corrupted) {
        if (clean == null || corrupted == null) {
            throw new IllegalArgumentException("clean and corrupted inputs must not be null");
        }
        if (!Arrays.equals(clean.shape(), corrupted.shape())) {
            throw new IllegalArgumentException("clean and corrupted inputs must have the same shape, got "
                    + Arrays.toString(clean.shape()) + " and " + Arrays.toString(corrupted.shape()));
        }
    }

    /**
     * Refuses a receiver that is not a head of {@code config}'s model, or that no head sends to (in layer 0, or above
     * layers without heads only): what the patching of all senders checks, for callers that check before other work.
     *
     * @param config   the model's configuration
     * @param receiver the receiving head
     * @throws IllegalArgumentException naming the receiver and the model's range
     */
    public static void checkReceiver(HookedAutoConfig config, Head receiver) {
        checkHead(config, receiver, "receiver");
        if (receiver.layer() == 0) {
            throw new IllegalArgumentException("the receiver " + receiver + " is in layer 0: no head sends to it");
        }
        if (java.util.stream.IntStream.range(0, receiver.layer()).noneMatch(config::attentionHeads)) {
            throw new IllegalArgumentException("no head sends to the receiver " + receiver + ": the layers below it"
                    + " have no attention heads (they mix tokens by " + config.headlessMixers(0, receiver.layer())
                    + ")");
        }
    }

    private static void checkHead(HookedAutoConfig c, Head head, String role) {
        if (head == null) {
            throw new IllegalArgumentException("the " + role + " head is null");
        }
        if (head.layer() < 0 || head.layer() >= c.nLayers() || head.index() < 0 || head.index() >= c.nHeads()) {
            throw new IllegalArgumentException("the " + role + " " + head + " is out of range: the model has "
                    + c.nLayers() + " layers of " + c.nHeads() + " heads");
        }
        head.checkIn(c, role); // in range: refuses a head of a layer without heads
    }

    private static void checkSender(HookedAutoModel model, Head sender, Head receiver) {
        checkHead(model.config(), sender, "sender");
        checkHead(model.config(), receiver, "receiver");
        if (sender.layer() >= receiver.layer()) {
            throw new IllegalArgumentException("the sender " + sender + " must be in a layer below the receiver "
                    + receiver);
        }
    }
}
