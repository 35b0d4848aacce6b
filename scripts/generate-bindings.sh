#!/usr/bin/env bash
# Regenerates bindings/ from native/include/arrakis_torch.h with jextract.
#   scripts/generate-bindings.sh          write the bindings into bindings/
#   scripts/generate-bindings.sh --check  regenerate into a temporary folder and diff against bindings/
# jextract is taken from $JEXTRACT, else from PATH. The committed bindings come from jextract's jdk22 branch, whose
# output compiles on JDK 22 (jextract master's output calls SymbolLookup.findOrThrow, new in JDK 23).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
header="$root/native/include/arrakis_torch.h"
package=io.arrakis.bindings
jextract=${JEXTRACT:-$(command -v jextract || true)}
if [ -z "$jextract" ] || [ ! -x "$jextract" ]; then
  echo "error: jextract not found: set JEXTRACT to its launcher or put it on PATH" >&2
  echo "       (jextract built from the jdk22 branch of https://github.com/openjdk/jextract)" >&2
  exit 1
fi

mode=write
[ "${1:-}" = "--check" ] && mode=check

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Only what the header itself declares: every function and our typedefs, nothing from system headers.
args=(--output "$out" --target-package "$package" --header-class-name arrakis_torch_h)
for f in $(sed -n 's/^[A-Za-z_][A-Za-z0-9_ *]*[ *]\([A-Za-z_][A-Za-z0-9_]*\)(.*);$/\1/p' "$header"); do
  args+=(--include-function "$f")
done
for t in AOTITorchError AtenTensorHandle StableIValue StableListHandle StringHandle; do
  args+=(--include-typedef "$t")
done
"$jextract" "${args[@]}" "$header"

# jextract stamps nothing time-dependent, but normalise line endings to keep diffs honest.
target="$root/bindings"
if [ "$mode" = check ]; then
  if diff -ru "$target/io" "$out/io"; then
    echo "bindings/ is up to date with $header"
  else
    echo "error: bindings/ differs from what jextract generates; run scripts/generate-bindings.sh" >&2
    exit 1
  fi
else
  rm -rf "$target/io"
  mkdir -p "$target"
  cp -r "$out/io" "$target/"
  echo "wrote $(find "$target/io" -name '*.java' | wc -l) files under bindings/"
fi
