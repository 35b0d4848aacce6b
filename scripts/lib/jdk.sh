# Sourced by the scripts: finds a JDK >= 22 (the Foreign Function & Memory API is final from 22; the jextract bindings
# are generated for JDK 22) and exports JAVA_HOME, PATH and ARRAKIS_JDK_MAJOR (its feature version, e.g. 25), and the
# MAVEN_OPTS every script's Maven runs with.
# Looks at $JAVA_HOME, then `java` on PATH, then /usr/lib/jvm/*.

jdk_major() { # prints the feature version of the JDK at $1, or nothing
  [ -x "$1/bin/java" ] && [ -x "$1/bin/javac" ] || return 0
  "$1/bin/java" -XshowSettings:properties -version 2>&1 |
    sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n 1
}

find_jdk() {
  local candidates=() c v
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
  if command -v java >/dev/null 2>&1; then
    candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")")
  fi
  for c in /usr/lib/jvm/*; do candidates+=("$c"); done
  for c in "${candidates[@]}"; do
    v=$(jdk_major "$c")
    if [ -n "$v" ] && [ "$v" -ge 22 ]; then
      export JAVA_HOME="$c" PATH="$c/bin:$PATH" ARRAKIS_JDK_MAJOR="$v"
      return 0
    fi
  done
  echo "error: arrakis-jvm needs a JDK 22 or newer (for the Foreign Function & Memory API)." >&2
  echo "       Looked at \$JAVA_HOME, 'java' on PATH and /usr/lib/jvm/*; none is >= 22." >&2
  echo "       Install one (e.g. Temurin 25) and set JAVA_HOME to it." >&2
  return 1
}

find_jdk || exit 1

# quiets Maven's own sun.misc.Unsafe warnings (JDK 24+); the option exists from JDK 23, and JDK 22 refuses to start with it
if [ "$ARRAKIS_JDK_MAJOR" -ge 23 ]; then export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"; fi
