#!/usr/bin/env bash
# Builds arrakis-jvm and runs the unit tests (Maven downloads what it needs, libtorch included).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/jdk.sh
echo "using JDK at $JAVA_HOME"
export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"
exec mvn -B -ntp -Dstyle.color=never verify "$@"
