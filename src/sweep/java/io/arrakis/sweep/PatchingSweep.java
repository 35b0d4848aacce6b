package io.arrakis.sweep;

import io.arrakis.Progress;
import io.arrakis.composer.Head;
import io.arrakis.composer.PathPatching;
import io.arrakis.io.ModelFolder;
import io.arrakis.json.Json;
import io.arrakis.model.HookedAutoConfig;
import io.arrakis.model.HookedAutoModel;
import io.arrakis.torch.Tensor;
import io.arrakis.torch.TensorScope;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;

import static org.apache.spark.sql.functions.abs;
import static org.apache.spark.sql.functions.avg;
import static org.apache.spark.sql.functions.col;

/**
 * Path patching of every sender into chosen receivers over many prompt pairs, as one Spark job: a task per slice of
 * prompts, each on its executor's model ({@link ExecutorModels}); one row per (prompt, sender, receiver) with the
 * sender's layer below the receiver's (a softmax-attention layer), its effect exactly {@link PathPatching#patch}'s
 * value for that pair and prompt.
 */
public final class PatchingSweep {
    /** The columns of the output. */
    public static final StructType SCHEMA = new StructType()
            .add("prompt_id", DataTypes.LongType, false)
            .add("sender_layer", DataTypes.IntegerType, false)
            .add("sender_head", DataTypes.IntegerType, false)
            .add("receiver_layer", DataTypes.IntegerType, false)
            .add("receiver_head", DataTypes.IntegerType, false)
            .add("route", DataTypes.StringType, false)
            .add("effect", DataTypes.DoubleType, false)
            .add("clean_metric", DataTypes.DoubleType, false)
            .add("corrupted_metric", DataTypes.DoubleType, false);

    /**
     * What a sweep wrote: its rows, its time, and the strongest (sender, receiver, mean effect) over the prompts, up to
     * 10, by the mean effect's magnitude (an important sender often lowers the metric).
     */
    public record Result(long rows, double seconds, List<List<Object>> top) {
    }

    private PatchingSweep() {
    }

    /**
     * Every head of the layers above the first that attends by softmax, layers without heads left out (linear
     * attention, short convolutions), and for the key and value routes layers that share an earlier layer's keys and
     * values (gemma4's): the receivers of {@code --receivers all}.
     */
    public static List<Head> allReceivers(HookedAutoConfig config, PathPatching.Route route) {
        if (config.nLayers() < 2) {
            throw new IllegalArgumentException("this model has one layer: no head receives from another");
        }
        int[] softmax = java.util.stream.IntStream.range(0, config.nLayers()).filter(config::attentionHeads)
                .toArray();
        if (softmax.length < 2) {
            throw new IllegalArgumentException("this model has " + softmax.length + " layer attending by softmax, the"
                    + " others mixing tokens by " + config.headlessMixers(0, config.nLayers()) + ", which has no"
                    + " heads: no head receives from another");
        }
        List<Head> heads = new ArrayList<>();
        for (int i = 1; i < softmax.length; i++) {
            if (route != PathPatching.Route.Q && config.keysFrom(softmax[i]) != softmax[i]) {
                continue;
            }
            for (int h = 0; h < config.nHeads(); h++) {
                heads.add(Head.of(softmax[i], h));
            }
        }
        return heads;
    }

    /** The rows of one prompt on {@code model}: what each task computes, without Spark. */
    public static List<Row> rows(HookedAutoModel model, PromptPair p, PathPatching.Route route, List<Head> receivers) {
        List<Row> rows = new ArrayList<>();
        try (HookedAutoModel.HookHandle held = model.holdHooks(); TensorScope scope = TensorScope.open()) {
            Tensor clean = Tensor.of(p.clean(), 1, p.clean().length);
            Tensor corrupted = Tensor.of(p.corrupted(), 1, p.corrupted().length);
            PathPatching.Metric metric = PathPatching.Metric.logitDiff(p.answer(), p.wrong());
            double cleanMetric = metric.apply(model.runWithHooks(clean));
            double corruptedMetric = metric.apply(model.runWithHooks(corrupted));
            int heads = model.config().nHeads();
            for (Head receiver : receivers) {
                double[] effects = PathPatching.patchAllSenders(model, clean, corrupted, receiver, route, metric,
                        PathPatching.Mode.PATH).toDoubleArray();
                for (int l = 0; l < receiver.layer(); l++) {
                    for (int h = 0; h < heads && model.config().attentionHeads(l); h++) {
                        rows.add(RowFactory.create(p.id(), l, h, receiver.layer(), receiver.index(), route.name(),
                                effects[l * heads + h], cleanMetric, corruptedMetric));
                    }
                }
            }
        }
        return rows;
    }

    /**
     * Runs the sweep of {@code prompts} on the model in {@code modelFolder} (a path every executor can read) and
     * writes the rows to {@code out} (see {@link Sweeps#write}). A hub cache folder is resolved here, once, to the
     * snapshot its {@code refs/main} names, so that every executor reads the same one.
     *
     * @throws IllegalArgumentException for no receivers, a receiver named twice or not in the model's layers 1 and up,
     *                                  no prompts, two prompts of one id, or an output that exists
     */
    public static Result run(SparkSession spark, String modelFolder, List<PromptPair> prompts, PathPatching.Route route,
                             List<Head> receivers, String out, Progress progress) {
        if (receivers.isEmpty() || new HashSet<>(receivers).size() != receivers.size()) {
            throw new IllegalArgumentException("the receivers " + receivers + " are none, or name one twice: name each"
                    + " once");
        }
        if (prompts.isEmpty() || prompts.stream().map(PromptPair::id).distinct().count() != prompts.size()) {
            throw new IllegalArgumentException("the sweep needs prompts, each of its own id: its rows are keyed by it");
        }
        Sweeps.checkNew(spark, out);
        String folder = ModelFolder.resolve(Path.of(modelFolder)).toAbsolutePath().normalize().toString();
        HookedAutoConfig config = HookedAutoConfig.fromJson(Path.of(folder, "config.json"));
        receivers.forEach(r -> PathPatching.checkReceiver(config, r));
        receivers.forEach(r -> PathPatching.checkRoute(config, r, route));
        long start = System.nanoTime();
        int[] receiverPairs = new int[2 * receivers.size()]; // records are not serializable; the pairs are
        for (int i = 0; i < receivers.size(); i++) {
            receiverPairs[2 * i] = receivers.get(i).layer();
            receiverPairs[2 * i + 1] = receivers.get(i).index();
        }
        String version = ExecutorModels.version(folder); // every task must read the files as they are now
        JavaSparkContext context = JavaSparkContext.fromSparkContext(spark.sparkContext());
        int slices = Math.max(1, Math.min(prompts.size(), 4 * context.defaultParallelism()));
        JavaRDD<Row> rows = context.parallelize(prompts, slices).flatMap(p -> {
            List<Head> heads = new ArrayList<>();
            for (int i = 0; i < receiverPairs.length; i += 2) {
                heads.add(Head.of(receiverPairs[i], receiverPairs[i + 1]));
            }
            return rows(ExecutorModels.get(folder, version), p, route, heads).iterator();
        });
        Dataset<Row> frame = spark.createDataFrame(rows, SCHEMA);
        long written = ExecutorModels.during(spark,
                () -> Sweeps.withProgress(spark, progress, () -> Sweeps.write(spark, frame, out)));
        List<List<Object>> top = new ArrayList<>();
        for (Row r : Sweeps.read(spark, out)
                .groupBy("sender_layer", "sender_head", "receiver_layer", "receiver_head")
                .agg(avg("effect").as("mean_effect"))
                .orderBy(abs(col("mean_effect")).desc(), col("sender_layer"), col("sender_head"), col("receiver_layer"),
                        col("receiver_head"))
                .limit(10).collectAsList()) {
            top.add(List.of("L" + r.getInt(0) + "H" + r.getInt(1), "L" + r.getInt(2) + "H" + r.getInt(3),
                    Json.number(r.getDouble(4))));
        }
        return new Result(written, (System.nanoTime() - start) / 1e9, top);
    }
}
