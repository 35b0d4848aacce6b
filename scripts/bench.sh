#!/usr/bin/env bash
# Builds the JMH benchmarks (src/jmh/java, Maven profile "bench") and runs them.
#   scripts/bench.sh                  every benchmark (JMH defaults of each class)
#   scripts/bench.sh OpOverheadBench  a subset, by JMH's regular expression; further JMH options may follow
#   scripts/bench.sh --quick [--json] the comparison suite (issue #6): every workload for ours, JavaCPP's PyTorch API,
#   scripts/bench.sh --full  [--json] DJL's PyTorch engine and Python eager PyTorch, one table (or one JSON object on
#                                     stdout, everything else on stderr); --quick takes under 10 minutes on 2 cores
#   ... --install-python              installs the Python column's Debian packages if missing (else it is left empty)
# A JVM's crash report (hs_err_pid*.log) or JIT replay file goes under target/, never into the working tree.
set -euo pipefail
if [[ "${1:-}" == --help || "${1:-}" == -h ]]; then # this header, without building anything
    sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "$0"
    exit 0
fi
cd "$(dirname "$0")/.."
source scripts/lib/jdk.sh
# JMH's forks inherit these from the JVM that runs JMH (scripts/lib/bench_suite.py passes the same to its JVMs)
jvm_flags=(-XX:ErrorFile=target/hs_err_pid%p.log -XX:ReplayDataFile=target/replay_pid%p.log)
export MAVEN_OPTS="${MAVEN_OPTS:-} ${jvm_flags[*]}"
# and a JVM that times something starts with its heap committed and touched (see MEASURING_JVM_FLAGS there)
measuring_flags=(-Xms256m -XX:+AlwaysPreTouch)

suite=false
install_python=false
suite_args=()
if [[ $# -gt 0 && ( "$1" == --quick || "$1" == --full || "$1" == --json || "$1" == --install-python ) ]]; then
    suite=true
    for a in "$@"; do
        case "$a" in
            --quick|--json) suite_args+=("$a") ;;
            --full) ;;
            --install-python) install_python=true ;;
            *) echo "bench.sh: unknown option $a (suite mode takes --quick, --full, --json, --install-python)" >&2; exit 2 ;;
        esac
    done
fi

build() {
    mvn -B -ntp -q -Dstyle.color=never -Pbench -DskipTests package dependency:build-classpath \
        -Dmdep.outputFile=target/bench.classpath
}

if ! $suite; then
    build
    exec java "${jvm_flags[@]}" "${measuring_flags[@]}" --enable-native-access=ALL-UNNAMED -cp "target/classes:$(cat target/bench.classpath)" org.openjdk.jmh.Main "$@"
fi

# Suite mode: stdout carries only the table or the JSON object.
build 1>&2
# Python eager PyTorch: Debian's python3-torch, with OpenBLAS (without it torch falls back to the reference BLAS).
python_packages=(python3-torch libopenblas0-pthread)
python_ready() { /usr/bin/python3 -c 'import torch' 2>/dev/null && dpkg -s libopenblas0-pthread >/dev/null 2>&1; }
if ! python_ready; then
    sudo=(); [[ $(id -u) -eq 0 ]] || sudo=(sudo -n)  # -n: fail rather than wait for a password
    if $install_python; then
        echo "bench: installing ${python_packages[*]} (Debian)" >&2
        { "${sudo[@]}" apt-get update -qq \
            && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${python_packages[@]}"; } </dev/null >&2 \
            || echo "bench: installing ${python_packages[*]} failed" >&2
        why="installing them failed"
    else
        as_root=""; [[ $(id -u) -eq 0 ]] || as_root="sudo "
        echo "bench: the Python column needs Debian's ${python_packages[*]}, which are not installed: rerun with" >&2
        echo "bench: --install-python, or install them: ${as_root}apt-get update && ${as_root}apt-get install -y ${python_packages[*]}" >&2
        why="bench.sh --install-python installs them"
    fi
    python_ready || suite_args+=(--skip-python "not run: Debian's ${python_packages[*]} are not installed ($why)")
fi
# Idle OpenMP threads sleep instead of spinning, for every implementation alike (ours sets this itself when unset;
# libtorch's spinning threads steal the JVM's cores: on 2 cores DJL's 64x64 matmul took 11 ms instead of 40 us).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
exec /usr/bin/python3 scripts/lib/bench_suite.py --java "$(command -v java)" \
    --classpath "target/classes:$(cat target/bench.classpath)" "${suite_args[@]}"
