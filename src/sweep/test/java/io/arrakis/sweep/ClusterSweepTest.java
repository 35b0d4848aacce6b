package io.arrakis.sweep;

import io.arrakis.Progress;
import io.arrakis.composer.PathPatching;
import io.arrakis.model.HookedAutoModel;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerExecutorRemoved;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The patching sweep on a real standalone cluster (a master and two workers, separate JVMs, on 127.0.0.1) against
 * {@code local[2]}: the same rows; and the same rows again when a worker and its executor are killed mid-job.
 */
@Tag("cluster")
class ClusterSweepTest {
    @TempDir
    Path dir;

    @Test
    void aClusterGivesTheRowsOfLocalModeEvenWhenAWorkerDiesMidJob() throws Exception {
        List<PromptPair> prompts = PatchingSweepTest.prompts(40);
        String model = PatchingSweepTest.MODEL.toAbsolutePath().toString();
        List<io.arrakis.composer.Head> receivers;
        try (HookedAutoModel m = HookedAutoModel.fromPretrained(PatchingSweepTest.MODEL)) {
            receivers = PatchingSweep.allReceivers(m.config(), PathPatching.Route.V);
        }
        List<String> local;
        try (SparkSession spark = Sweeps.session("local[2]", Map.of("spark.ui.enabled", "false"))) {
            PatchingSweep.run(spark, model, prompts, PathPatching.Route.V, receivers, dir.resolve("local.parquet").toString(),
                    Progress.NONE);
            local = PatchingSweepTest.sorted(Sweeps.read(spark, dir.resolve("local.parquet").toString()).collectAsList());
        }
        assertEquals(40 * 4 * 4, local.size());

        try (StandaloneCluster cluster = StandaloneCluster.start(dir.resolve("cluster"), 2);
             SparkSession spark = Sweeps.session(cluster.url(), Map.of("spark.ui.enabled", "false",
                     "spark.driver.host", "127.0.0.1", "spark.executor.memory", "1g"))) {
            long deadline = System.nanoTime() + 90_000_000_000L;
            while (spark.sparkContext().statusTracker().getExecutorInfos().length < 3 && System.nanoTime() < deadline) {
                Thread.sleep(200); // the driver and an executor on each worker
            }
            assertEquals(3, spark.sparkContext().statusTracker().getExecutorInfos().length, cluster::logs);

            String whole = dir.resolve("cluster.parquet").toString();
            PatchingSweep.run(spark, model, prompts, PathPatching.Route.V, receivers, whole, Progress.NONE);
            assertEquals(local, PatchingSweepTest.sorted(Sweeps.read(spark, whole).collectAsList()), "cluster = local");

            AtomicInteger finished = new AtomicInteger();
            AtomicBoolean killed = new AtomicBoolean();
            AtomicBoolean lost = new AtomicBoolean();
            spark.sparkContext().addSparkListener(new SparkListener() {
                @Override
                public void onTaskEnd(SparkListenerTaskEnd task) {
                    if (finished.incrementAndGet() == 2 && killed.compareAndSet(false, true)) {
                        cluster.killWorker(0);
                    }
                }

                @Override
                public void onExecutorRemoved(SparkListenerExecutorRemoved removed) {
                    lost.set(true);
                }
            });
            String survived = dir.resolve("survived.parquet").toString();
            PatchingSweep.Result result = PatchingSweep.run(spark, model, prompts, PathPatching.Route.V, receivers,
                    survived, Progress.NONE);
            assertTrue(killed.get() && lost.get(), "a worker died during the job");
            assertEquals(local.size(), result.rows());
            assertEquals(local, PatchingSweepTest.sorted(Sweeps.read(spark, survived).collectAsList()),
                    "every row exactly once after the retries");
        }
    }
}
