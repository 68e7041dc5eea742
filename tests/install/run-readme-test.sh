#!/usr/bin/env bash
# readme_example: the C example in README.md must compile as written and run
# to exit 0. It is the fenced ```c block between the markers
# <!-- readme-example:begin --> and <!-- readme-example:end -->, built
# against the build tree's headers and static libgfn.a.
#
# usage: run-readme-test.sh README INCLUDE_DIR LIBGFN_A CC WORK_DIR [SANITIZE]
set -euo pipefail

readme=$1 include=$2 libgfn=$3 cc=$4 work=$5 sanitize=${6:-}
# The rest: libraries the static libgfn needs (xxHash, OpenCL, ...).
extra_libs=("${@:7}")

die() { printf 'readme_example: FAIL: %s\n' "$*" >&2; exit 1; }

mkdir -p "$work"
src="$work/readme-example.c"
exe="$work/readme-example"
rm -f "$src" "$exe"

awk '
/<!-- readme-example:begin -->/ { inside = 1; blocks = 0; next }
/<!-- readme-example:end -->/   { inside = 0; done = 1; next }
inside && !code && /^```c[[:space:]]*$/ { code = 1; blocks++; next }
inside && code && /^```[[:space:]]*$/  { code = 0; next }
inside && code && blocks == 1 { print }
END { exit !(done && blocks == 1) }
' "$readme" >"$src" ||
	die "$readme has no single \`\`\`c block between the readme-example markers"
[[ -s "$src" ]] || die "the README example is empty"
echo "extracted $(wc -l <"$src") lines from $readme into $src"

flags=(-std=c11 -Wall -Wextra -Wpedantic -Werror)
if [[ -n "$sanitize" ]]; then
	flags+=(-fsanitize="$sanitize" -fno-omit-frame-pointer)
fi
"$cc" "${flags[@]}" -I"$include" "$src" -o "$exe" "$libgfn" \
	"${extra_libs[@]}" -lpthread -ldl -lm ||
	die "the README example does not compile"
"$exe" || die "the README example exited with status $?"
echo "readme_example: ok"
