#!/usr/bin/env bash
# Builds arrakis-jvm and runs the unit tests, the sweeps' (Apache Spark, Maven profile sweep) included; Maven
# downloads what it needs, libtorch and Spark too.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/jdk.sh
echo "using JDK at $JAVA_HOME"
# the view page's tests drive a headless Chromium: installed here when missing and this runs as root; elsewhere those
# tests are skipped, and say so
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium and chromium-driver for the browser tests"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } >/dev/null 2>&1 \
      || echo "could not install chromium and chromium-driver: the browser tests will be skipped"
  else
    echo "no chromium or chromedriver, and not root to install them (apt-get install chromium chromium-driver):" \
      "the browser tests will be skipped"
  fi
fi
# the benchmark suite driver's bookkeeping (retries, reasons, the table), without a JVM
python3 -m unittest discover -s scripts/lib
exec mvn -B -ntp -Dstyle.color=never -Psweep verify "$@"
