#!/usr/bin/env bash
# Builds the JMH benchmarks (src/jmh/java, Maven profile "bench") and runs them.
#   scripts/bench.sh                  every benchmark
#   scripts/bench.sh OpOverheadBench  a subset, by JMH's regular expression; further JMH options may follow
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/jdk.sh
# quiets Maven's own sun.misc.Unsafe warnings (JDK 24+); the option exists from JDK 23, and JDK 22 refuses to start with it
if [ "$ARRAKIS_JDK_MAJOR" -ge 23 ]; then export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"; fi
mvn -B -ntp -q -Dstyle.color=never -Pbench -DskipTests package dependency:build-classpath -Dmdep.outputFile=target/bench.classpath
exec java --enable-native-access=ALL-UNNAMED -cp "target/classes:$(cat target/bench.classpath)" org.openjdk.jmh.Main "$@"
