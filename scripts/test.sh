#!/usr/bin/env bash
# Builds arrakis-jvm and runs the unit tests (Maven downloads what it needs, libtorch included).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/jdk.sh
echo "using JDK at $JAVA_HOME"
# quiets Maven's own sun.misc.Unsafe warnings (JDK 24+); the option exists from JDK 23, and JDK 22 refuses to start with it
if [ "$ARRAKIS_JDK_MAJOR" -ge 23 ]; then export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"; fi
# the benchmark suite driver's bookkeeping (retries, reasons, the table), without a JVM
python3 -m unittest discover -s scripts/lib
exec mvn -B -ntp -Dstyle.color=never verify "$@"
