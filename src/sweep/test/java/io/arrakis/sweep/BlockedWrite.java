package io.arrakis.sweep;

import org.apache.spark.api.java.function.MapFunction;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.SparkSession;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * A child JVM whose {@link Sweeps#write} to {@code args[0]} never ends: its one task creates the file {@code args[1]}
 * and blocks, and a test stops the JVM with a signal.
 */
public final class BlockedWrite {
    private BlockedWrite() {
    }

    public static void main(String[] args) {
        SparkSession spark = Sweeps.session("local[1]", Map.of());
        String blocked = args[1];
        Sweeps.write(spark, spark.range(1).map((MapFunction<Long, Long>) x -> {
            Files.createFile(Path.of(blocked));
            Thread.sleep(Long.MAX_VALUE);
            return x;
        }, Encoders.LONG()).toDF("x"), args[0]);
    }
}
