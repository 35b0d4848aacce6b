#!/usr/bin/env bash
# Builds arrakis-jvm and runs the unit tests (Maven downloads what it needs, libtorch included).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/jdk.sh
echo "using JDK at $JAVA_HOME"
# the benchmark suite driver's bookkeeping (retries, reasons, the table), without a JVM
python3 -m unittest discover -s scripts/lib
exec mvn -B -ntp -Dstyle.color=never verify "$@"
