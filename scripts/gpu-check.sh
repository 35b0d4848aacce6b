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
# taken from GPU_CHECK_PYTHON (default python3). Reports go to $OUT (or .gpu/out), six files (a device call brings
# back eight at most): junit.log, junit-xml.tgz, gpu-java.log, gpu-python.log, gpu-check.json and gpu-check.txt. Time
# limits (seconds, together well inside a 10-minute device call): GPU_CHECK_JUNIT_TIMEOUT (default 100),
# GPU_CHECK_JAVA_TIMEOUT (default 200) and GPU_CHECK_PYTHON_TIMEOUT (default 160), each step killed 10 s after its
# limit; the exit status is JUnit's, else 1 where the report found a wrong result. Checkpoints (~2.7 GB) are written to
# .gpu/work (GPU_CHECK_WORK), never $OUT.
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
  rm -rf .gpu/jre .gpu/jre.tar.xz .gpu/out .gpu/work .gpu/classes .gpu/test-classes .gpu/lib .gpu/halves .gpu/junit
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
  # modules stored uncompressed, which xz then packs far smaller than zipped ones
  "$JAVA_HOME/bin/jlink" --add-modules java.base,java.sql,java.logging,java.xml,java.management,jdk.unsupported,java.naming,java.desktop \
    --strip-debug --no-man-pages --no-header-files --compress zip-0 --output .gpu/jre
  # packed, so that everything that travels stays under 64 MiB; unpacked there on first use
  tar cJf .gpu/jre.tar.xz -C .gpu jre && rm -rf .gpu/jre
  # what a device call carries: the tracked and untracked files git does not ignore, and .gpu
  tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}')
  gpu=$(du -sb .gpu | cut -f1)
  total=$((tree + gpu))
  echo "gpu-check: .gpu $((gpu / 1048576)) MiB, with the working tree $((total / 1048576)) MiB of the 64 a device call carries"
  [ "$total" -le $((64 * 1048576)) ] || { echo "gpu-check: over 64 MiB: the device call would refuse it" >&2; exit 1; }
  exit 0
fi

if [ ! -x .gpu/jre/bin/java ] && [ -f .gpu/jre.tar.xz ]; then
  tar xJf .gpu/jre.tar.xz -C .gpu
fi
[ -x .gpu/jre/bin/java ] || { echo "error: no .gpu/jre; run scripts/gpu-check.sh --prepare first (on a machine with a JDK 22+)" >&2; exit 1; }
python=${GPU_CHECK_PYTHON:-python3}
if [ -z "${ARRAKIS_LIBTORCH:-}" ]; then
  ARRAKIS_LIBTORCH=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') \
    || { echo "gpu-check: $python has no torch; set ARRAKIS_LIBTORCH to a CUDA libtorch's lib folder" >&2; exit 1; }
fi
export ARRAKIS_LIBTORCH
# that machine has no network: the Hugging Face half reads the checkpoints written here
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
out=${OUT:-.gpu/out}
halves=$root/.gpu/halves # the two halves' JSON, merged into $out/gpu-check.json
mkdir -p "$out" "$halves"
rm -f "$halves"/gpu-*.json # a half that does not finish must not leave an earlier run's results
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
  # one line per test as it ends, so a run cut off at its limit still says how far it got
  rm -rf .gpu/junit
  timeout -k 10 "${GPU_CHECK_JUNIT_TIMEOUT:-100}" "${jvm[@]}" org.junit.platform.console.ConsoleLauncher execute \
    --disable-banner --disable-ansi-colors --details=testfeed --scan-classpath "$root/.gpu/test-classes" \
    --exclude-classname '.*BrowserTest' --reports-dir .gpu/junit 2>&1 | tee "$out/junit.log"
  rc=${PIPESTATUS[0]}
  [ "$rc" != 124 ] && [ "$rc" != 137 ] || echo "gpu-check: the unit suite ran past its ${GPU_CHECK_JUNIT_TIMEOUT:-100} s"
  [ -d .gpu/junit ] && tar czf "$out/junit-xml.tgz" -C .gpu junit
  echo "gpu-check: JUnit exit code $rc"
fi

# Parity and benchmarks: ours (Java) first, as it writes the checkpoints and our logits the Python half reads.
work=${GPU_CHECK_WORK:-$root/.gpu/work}
mkdir -p "$work"
device=${GPU_CHECK_DEVICE:-cuda}
start=$(date +%s)
# the timing JVM starts with its heap committed and touched, as the CPU suite's (see BENCHMARKS.md)
timeout -k 10 "${GPU_CHECK_JAVA_TIMEOUT:-200}" "${jvm[@]}" -Xms256m -XX:+AlwaysPreTouch io.arrakis.model.GpuCheck --device "$device" --work "$work" \
  --out "$halves/gpu-java.json" ${GPU_CHECK_ARGS:-} 2>&1 | tee "$out/gpu-java.log"
echo "gpu-check: Java parity and benchmarks exit code ${PIPESTATUS[0]} in $(( $(date +%s) - start )) s"
start=$(date +%s)
timeout -k 10 "${GPU_CHECK_PYTHON_TIMEOUT:-160}" "$python" scripts/gpu_bench.py --device "$device" --work "$work" \
  --java-json "$halves/gpu-java.json" --out "$halves/gpu-python.json" ${GPU_BENCH_ARGS:-} 2>&1 | tee "$out/gpu-python.log"
echo "gpu-check: Python parity and benchmarks exit code ${PIPESTATUS[0]} in $(( $(date +%s) - start )) s"
python3 scripts/lib/gpu_report.py "$halves/gpu-java.json" "$halves/gpu-python.json" "$out/gpu-check.json" \
  "$out/gpu-check.txt" "$rc"
report=$?
set -e
echo "gpu-check: JUnit exit code $rc; report exit code $report (1: a wrong result); parity and benchmarks in" \
  "$out/gpu-check.json and $out/gpu-check.txt"
[ "$rc" = skipped ] || [ "$rc" = 0 ] || exit "$rc"
exit "$report"
