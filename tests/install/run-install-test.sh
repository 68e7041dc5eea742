#!/usr/bin/env bash
# install_consumer: install the build tree into a temporary prefix, then
# build tests/install/consumer/main.c against that prefix only, three ways,
# and run each:
#   1. cc $(pkg-config --cflags --libs gfn)          (shared libgfn.so)
#   2. cc ... -Wl,-Bstatic -lgfn + pkg-config --static (libgfn.a; checks that
#      Libs.private lists everything the static library needs)
#   3. a CMake project: find_package(gfn) + gfn::gfn and gfn::gfn_static
# The prefix is removed on success and kept (its path printed) on failure.
#
# usage: run-install-test.sh BUILD_DIR CONSUMER_SRC WORK_DIR CC CMAKE LIBDIR
#                            VERSION [SANITIZE]
set -euo pipefail

build_dir=$1 src=$2 work=$3 cc=$4 cmake=$5 libdir=$6 version=$7
sanitize=${8:-}

san_flags=()
if [[ -n "$sanitize" ]]; then
	san_flags=(-fsanitize="$sanitize" -fno-omit-frame-pointer)
fi
cflags=(-std=c11 -Wall -Wextra -Wpedantic -Werror "${san_flags[@]}")

step() { printf '== %s\n' "$*"; }
die() { printf 'install_consumer: FAIL: %s\n' "$*" >&2; exit 1; }

mkdir -p "$work"
prefix=$(mktemp -d "$work/prefix.XXXXXX")
out=$(mktemp -d "$work/out.XXXXXX")
ok=0
cleanup() {
	if ((ok)); then
		rm -rf "$prefix" "$out"
	else
		echo "install_consumer: left $prefix and $out for a look" >&2
	fi
}
trap cleanup EXIT

step "cmake --install $build_dir --prefix $prefix"
"$cmake" --install "$build_dir" --prefix "$prefix" >"$out/install.log" ||
	{ cat "$out/install.log"; die "cmake --install failed"; }

lib="$prefix/$libdir"
for f in include/gfn/gfn.h "$libdir/libgfn.so" "$libdir/libgfn.a" \
	"$libdir/pkgconfig/gfn.pc" "$libdir/cmake/gfn/gfnConfig.cmake" \
	"$libdir/cmake/gfn/gfnConfigVersion.cmake" \
	"$libdir/cmake/gfn/gfnTargets.cmake"; do
	[[ -e "$prefix/$f" ]] || die "not installed: $f"
done

# ---- 1. pkg-config, shared ---------------------------------------------------
command -v pkg-config >/dev/null || die "pkg-config not found (make deps)"
export PKG_CONFIG_PATH="$lib/pkgconfig"
step "pkg-config gfn (PKG_CONFIG_PATH=$PKG_CONFIG_PATH)"
got=$(pkg-config --modversion gfn) || die "pkg-config does not find gfn"
[[ "$got" == "$version" ]] || die "gfn.pc says version $got, want $version"
pc_prefix=$(pkg-config --variable=prefix gfn)
[[ "$(realpath "$pc_prefix")" == "$(realpath "$prefix")" ]] ||
	die "gfn.pc prefix $pc_prefix is not the install prefix $prefix"
read -r -a pc_cflags <<<"$(pkg-config --cflags gfn)"
read -r -a pc_libs <<<"$(pkg-config --libs gfn)"
read -r -a pc_static <<<"$(pkg-config --static --libs gfn)"
echo "cflags: ${pc_cflags[*]}"
echo "libs:   ${pc_libs[*]}"
echo "static: ${pc_static[*]}"

step "cc \$(pkg-config --cflags --libs gfn)"
"$cc" "${cflags[@]}" "${pc_cflags[@]}" "$src/main.c" -o "$out/consumer_pc" \
	"${pc_libs[@]}" || die "building the pkg-config consumer failed"
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
resolved=$(ldd "$out/consumer_pc" | awk '$1 ~ /^libgfn\.so/ { print $3 }')
[[ "$(realpath "$resolved")" == "$(realpath "$lib")"/libgfn.so* ]] ||
	die "consumer_pc loads libgfn from '$resolved', not from $lib"
"$out/consumer_pc" || die "consumer_pc failed"

# ---- 2. pkg-config --static, libgfn.a ------------------------------------------
step "cc ... -Wl,-Bstatic -lgfn -Wl,-Bdynamic \$(pkg-config --static --libs)"
static_libs=()
for a in "${pc_static[@]}"; do
	if [[ "$a" == -lgfn ]]; then
		static_libs+=("-Wl,-Bstatic" -lgfn "-Wl,-Bdynamic")
	else
		static_libs+=("$a")
	fi
done
"$cc" "${cflags[@]}" "${pc_cflags[@]}" "$src/main.c" \
	-o "$out/consumer_pc_static" "${static_libs[@]}" ||
	die "linking libgfn.a with Libs.private of gfn.pc failed"
if ldd "$out/consumer_pc_static" | grep -q 'libgfn\.so'; then
	die "consumer_pc_static links libgfn.so, not libgfn.a"
fi
"$out/consumer_pc_static" || die "consumer_pc_static failed"

# ---- 3. CMake find_package ---------------------------------------------------
step "find_package(gfn) with CMAKE_PREFIX_PATH=$prefix"
"$cmake" -S "$src" -B "$out/cmake" \
	-DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
	-DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF \
	-DCMAKE_C_COMPILER="$cc" \
	-DCMAKE_C_FLAGS="${cflags[*]}" \
	-DCMAKE_EXE_LINKER_FLAGS="${san_flags[*]}" >"$out/cmake.log" ||
	{ cat "$out/cmake.log"; die "configuring the CMake consumer failed"; }
grep 'gfn .* from' "$out/cmake.log" || true
gfn_dir=$(sed -n 's/^gfn_DIR:PATH=//p' "$out/cmake/CMakeCache.txt")
[[ "$(realpath "$gfn_dir")" == "$(realpath "$prefix")"/* ]] ||
	die "find_package found gfn in $gfn_dir, not under $prefix"
"$cmake" --build "$out/cmake" >"$out/build.log" ||
	{ cat "$out/build.log"; die "building the CMake consumer failed"; }
for exe in consumer_shared consumer_static; do
	step "$exe"
	"$out/cmake/$exe" || die "$exe failed"
done
if ldd "$out/cmake/consumer_static" | grep -q 'libgfn\.so'; then
	die "consumer_static (gfn::gfn_static) links libgfn.so"
fi

ok=1
echo "install_consumer: all consumers built and ran"
