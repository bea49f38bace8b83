#!/usr/bin/env bash
# Checks the generated Swift bindings as far as a machine without a Swift
# compiler can (no Swift toolchain installs on Linux here):
#   (a) every uniffi_roomseal_* / ffi_roomseal_* function that roomseal.swift
#       calls is declared in roomsealFFI.h and exported by libroomseal.a (nm);
#   (b) every type an app names is public: each generated enum, struct and
#       error enum (uniffi's error template writes `public` and `enum` on
#       two lines, so a line-by-line grep for `public enum RoomsealError`
#       finds nothing although the declaration is public);
#   (c) roomsealFFI.h compiles in a C program (tests/swift-header/check.c)
#       linked against libroomseal.a, which checks the contract version and
#       every API checksum roomseal.swift expects and calls through the header.
#
#   scripts/swift-check.sh             # after scripts/bindings.sh
#   PROFILE=release scripts/swift-check.sh
#
# Output: target/swift-check/ (the symbol lists, checksums.inc, the program).
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${PROFILE:-debug}"
swift=bindings/mobile/roomseal.swift
header=bindings/mobile/roomsealFFI.h
lib="target/$profile/libroomseal.a"
out=target/swift-check

for f in "$swift" "$header" "$lib"; do
  [ -f "$f" ] || { echo "swift-check: $f is missing (run PROFILE=$profile scripts/bindings.sh first)" >&2; exit 1; }
done
for tool in nm gcc; do
  command -v "$tool" >/dev/null 2>&1 || { echo "swift-check: $tool is required" >&2; exit 1; }
done
rm -rf "$out"
mkdir -p "$out"

# (a) The C symbols the Swift file calls, against the header and the library.
grep -o '\b\(uniffi\|ffi\)_roomseal_[A-Za-z0-9_]*' "$swift" | sort -u >"$out/called.txt"
nm -g --defined-only "$lib" 2>/dev/null | awk '$2 == "T" { print $3 }' | sort -u >"$out/exported.txt"
missing=$(comm -23 "$out/called.txt" "$out/exported.txt")
undeclared=$(while read -r symbol; do grep -qw "$symbol" "$header" || echo "$symbol"; done <"$out/called.txt")
if [ -n "$missing" ] || [ -n "$undeclared" ]; then
  [ -z "$missing" ] || printf 'swift-check: called by roomseal.swift but not exported by %s:\n%s\n' "$lib" "$missing" >&2
  [ -z "$undeclared" ] || printf 'swift-check: called by roomseal.swift but not declared in %s:\n%s\n' "$header" "$undeclared" >&2
  exit 1
fi
echo "swift-check: all $(wc -l <"$out/called.txt") functions roomseal.swift calls are declared in the header and exported by $lib"

# (b) The declarations apps name are public (modifier and keyword may sit on
# two lines: Swift reads the newline as plain whitespace there).
flat=$(tr '\n' ' ' <"$swift")
for decl in "enum RoomsealError" "class Endpoint" "class DurableEndpoint" "class MatrixMachine" "class DurableMatrixMachine" "struct MatrixRequest" "enum MatrixRequestKind"; do
  if ! grep -Eq "(public|open)[[:space:]]+${decl}[:[:space:]]" <<<"$flat"; then
    echo "swift-check: '$decl' is not public in $swift" >&2
    exit 1
  fi
done
echo "swift-check: RoomsealError, Endpoint, DurableEndpoint, MatrixMachine, DurableMatrixMachine and the Matrix records are public"

# (c) What the Swift bindings check when they load, from roomseal.swift.
contract=$(sed -n 's/.*let bindings_contract_version = \([0-9]*\).*/\1/p' "$swift")
sed -n 's/.*if (\(uniffi_roomseal_checksum_[a-z0-9_]*\)() != \([0-9]*\)).*/CHECKSUM(\1, \2)/p' "$swift" >"$out/checksums.inc"
declared=$(grep -c 'uniffi_roomseal_checksum_[a-z0-9_]*(void' "$header")
if [ -z "$contract" ] || [ "$(wc -l <"$out/checksums.inc")" -ne "$declared" ]; then
  echo "swift-check: could not read the contract version and all $declared checksums from $swift" >&2
  exit 1
fi
gcc -std=c11 -Wall -Wextra -Werror -DEXPECTED_CONTRACT_VERSION="$contract" \
  -I bindings/mobile -I "$out" tests/swift-header/check.c "$lib" -lpthread -ldl -lm -o "$out/check"
"$out/check"
