#!/usr/bin/env bash
# GPU check in two steps, for a GPU machine that has a CUDA PyTorch but no JDK 22+, no Maven and no network.
#   scripts/gpu-check.sh --prepare   here: build the library, its tests and their fixtures, and a jlink runtime, into
#                                    .gpu/ (~60 MB, the runtime packed)
#   scripts/gpu-check.sh             there: run the whole unit suite against that machine's CUDA libtorch, then the
#                                    parity and benchmark run (issue #7): io.arrakis.model.GpuCheck (Java) and
#                                    scripts/gpu_bench.py (PyTorch + transformers on the same checkpoints), merged by
#                                    scripts/lib/gpu_report.py into $OUT/gpu-check.json and $OUT/gpu-check.txt
#   scripts/gpu-check.sh --bench-only  there: only the parity and benchmark run
# Copy or carry .gpu/ along with the repository. --prepare takes the fixtures from ../shared, or from ARRAKIS_FIXTURES
# and ARRAKIS_FIXTURES_HF_MORE. ARRAKIS_LIBTORCH may name the torch/lib folder; by default it is
# taken from the python3 on PATH. Reports go to $OUT (or .gpu/out) as JUnit XML plus a summary. Time limits (seconds,
# sized for a 10-minute device call with the ~35 s test run): GPU_CHECK_JUNIT_TIMEOUT (default 120),
# GPU_CHECK_JAVA_TIMEOUT (default 240) and GPU_CHECK_PYTHON_TIMEOUT (default 220); the exit status is JUnit's, else 1
# where the report found a wrong result; GPU_CHECK_PYTHON names the Python (default python3). Checkpoints (~2.7 GB) are written to .gpu/work (GPU_CHECK_WORK), never $OUT.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
junit=org.junit.platform:junit-platform-console-standalone:1.14.1

if [ "${1:-}" = "--prepare" ]; then
  # the reference models the tests read: shared/ beside the repository (as in CI), or where these name it
  fixtures=${ARRAKIS_FIXTURES:-../shared/fixtures}
  fixtures_more=${ARRAKIS_FIXTURES_HF_MORE:-../shared/fixtures-hf-more}
  for dir in "$fixtures" "$fixtures_more"; do
    [ -d "$dir" ] || { echo "gpu-check: no fixtures at $dir (set ARRAKIS_FIXTURES and ARRAKIS_FIXTURES_HF_MORE)" >&2; exit 2; }
  done
  source scripts/lib/jdk.sh
  mvn -B -ntp -q -Dstyle.color=never -DskipTests test-compile
  rm -rf .gpu/jre .gpu/jre.tar.xz .gpu/out .gpu/work .gpu/classes .gpu/test-classes .gpu/lib
  mvn -B -ntp -q -Dstyle.color=never dependency:copy -Dartifact=$junit -DoutputDirectory=.gpu -Dmdep.stripVersion=true
  # runtime dependencies, except the CPU libtorch jars: that machine brings its own libtorch
  mvn -B -ntp -q -Dstyle.color=never dependency:copy-dependencies -DincludeScope=runtime -DexcludeGroupIds=org.bytedeco \
    -DoutputDirectory=.gpu/lib
  # the tokenizers jar carries its native library for four platforms; that machine needs only linux-x86_64's
  for jar in .gpu/lib/tokenizers-*.jar; do
    command -v zip >/dev/null && zip -q -d "$jar" 'native/lib/linux-aarch64/*' 'native/lib/osx-*' 'native/lib/win-*'
  done
  mkdir -p .gpu
  cp -r target/classes .gpu/classes
  cp -r target/test-classes .gpu/test-classes
  rm -rf .gpu/fixtures .gpu/fixtures-hf-more
  cp -r "$fixtures" .gpu/fixtures
  cp -r "$fixtures_more" .gpu/fixtures-hf-more
  chmod -R u+w .gpu/fixtures .gpu/fixtures-hf-more # read-only copies would stop the next --prepare's rm
  "$JAVA_HOME/bin/jlink" --add-modules java.base,java.sql,java.logging,java.xml,java.management,jdk.unsupported,java.naming,java.desktop \
    --strip-debug --no-man-pages --no-header-files --compress zip-9 --output .gpu/jre
  # packed, so that everything that travels stays under 64 MB; unpacked there on first use
  tar cJf .gpu/jre.tar.xz -C .gpu jre && rm -rf .gpu/jre
  du -sh .gpu
  exit 0
fi

if [ ! -x .gpu/jre/bin/java ] && [ -f .gpu/jre.tar.xz ]; then
  tar xJf .gpu/jre.tar.xz -C .gpu
fi
[ -x .gpu/jre/bin/java ] || { echo "error: no .gpu/jre; run scripts/gpu-check.sh --prepare first (on a machine with a JDK 22+)" >&2; exit 1; }
if [ -z "${ARRAKIS_LIBTORCH:-}" ]; then
  ARRAKIS_LIBTORCH=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
fi
export ARRAKIS_LIBTORCH
out=${OUT:-.gpu/out}
mkdir -p "$out"
echo "libtorch: $ARRAKIS_LIBTORCH"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
cp="$root/.gpu/junit-platform-console-standalone.jar:$root/.gpu/classes:$root/.gpu/test-classes:$root/.gpu/lib/*"
jvm=(.gpu/jre/bin/java --enable-native-access=ALL-UNNAMED -Xmx8g -Darrakis.fixtures="$root/.gpu/fixtures"
  -Darrakis.fixturesHfMore="$root/.gpu/fixtures-hf-more"
  -Djava.awt.headless=true -cp "$cp")
set +e
rc=skipped
if [ "${1:-}" != "--bench-only" ]; then
  # the browser tests need Selenium and Chromium, which that machine has no use for
  timeout "${GPU_CHECK_JUNIT_TIMEOUT:-120}" "${jvm[@]}" org.junit.platform.console.ConsoleLauncher execute --disable-banner --disable-ansi-colors --details=tree \
    --scan-classpath "$root/.gpu/test-classes" --exclude-classname '.*BrowserTest' --reports-dir "$out" 2>&1 \
    | tee "$out/junit.log"
  rc=${PIPESTATUS[0]}
  echo "gpu-check: JUnit exit code $rc"
fi

# Parity and benchmarks: ours (Java) first, as it writes the checkpoints and our logits the Python half reads.
work=${GPU_CHECK_WORK:-$root/.gpu/work}
mkdir -p "$work"
device=${GPU_CHECK_DEVICE:-cuda}
start=$(date +%s)
timeout "${GPU_CHECK_JAVA_TIMEOUT:-240}" "${jvm[@]}" io.arrakis.model.GpuCheck --device "$device" --work "$work" \
  --out "$out/gpu-java.json" ${GPU_CHECK_ARGS:-} 2>&1 | tee "$out/gpu-java.log"
echo "gpu-check: Java parity and benchmarks exit code ${PIPESTATUS[0]} in $(( $(date +%s) - start )) s"
start=$(date +%s)
timeout "${GPU_CHECK_PYTHON_TIMEOUT:-220}" "${GPU_CHECK_PYTHON:-python3}" scripts/gpu_bench.py --device "$device" --work "$work" \
  --java-json "$out/gpu-java.json" --out "$out/gpu-python.json" ${GPU_BENCH_ARGS:-} 2>&1 | tee "$out/gpu-python.log"
echo "gpu-check: Python parity and benchmarks exit code ${PIPESTATUS[0]} in $(( $(date +%s) - start )) s"
python3 scripts/lib/gpu_report.py "$out/gpu-java.json" "$out/gpu-python.json" "$out/gpu-check.json" \
  "$out/gpu-check.txt" "$rc"
report=$?
set -e
echo "gpu-check: JUnit exit code $rc; report exit code $report (1: a wrong result); parity and benchmarks in" \
  "$out/gpu-check.json and $out/gpu-check.txt"
[ "$rc" = skipped ] || [ "$rc" = 0 ] || exit "$rc"
exit "$report"
