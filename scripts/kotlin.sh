#!/usr/bin/env bash
# Compiles a Kotlin program together with the generated Kotlin bindings and
# runs it on the JVM against target/<profile>/libroomseal.so, installing what
# it needs on first use (no global SDK):
#   - kotlinc: npm package kotlin-compiler, pinned in tests/kotlin/package.json
#     and package-lock.json, installed with `npm ci` into .tools/kotlin/;
#   - JNA: Debian's libjna-java and libjna-jni (/usr/share/java/jna.jar; 5.13.0
#     on Debian 12), or, without apt, JNA $jna_version from Maven Central into
#     .tools/jna/ when that is reachable;
#   - java: the machine's JDK, or Debian's default-jre-headless.
#
#   scripts/kotlin.sh                                          # tests/kotlin/Scenario.kt
#   PROFILE=release scripts/kotlin.sh tests/kotlin/BenchOverhead.kt
#
# Run scripts/bindings.sh first with the same PROFILE: it writes
# bindings/mobile/uniffi/roomseal/roomseal.kt and target/<profile>/libroomseal.so.
# Output: target/kotlin/<Name>.jar, compiled again only when a source changed.
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${PROFILE:-debug}"
source_file="${1:-tests/kotlin/Scenario.kt}"
name=$(basename "$source_file" .kt)
bindings=bindings/mobile/uniffi/roomseal/roomseal.kt
libdir="target/$profile"
jna_version=5.13.0
kotlin_home=.tools/kotlin/node_modules/kotlin-compiler

for f in "$bindings" "$libdir/libroomseal.so" "$source_file"; do
  [ -f "$f" ] || { echo "kotlin: $f is missing (run PROFILE=$profile scripts/bindings.sh first)" >&2; exit 1; }
done

# apt-get install as root (as CI runs), or through sudo when it needs no
# password; runs apt-get update only when the first attempt fails.
apt_install() {
  local as=()
  command -v apt-get >/dev/null 2>&1 || return 1
  if [ "$(id -u)" -ne 0 ]; then
    sudo -n true 2>/dev/null || return 1
    as=(sudo -n)
  fi
  "${as[@]}" apt-get install -y -qq "$@" >/dev/null 2>&1 && return 0
  "${as[@]}" apt-get update -qq >/dev/null 2>&1 && "${as[@]}" apt-get install -y -qq "$@" >/dev/null 2>&1
}

SECONDS=0
if ! command -v java >/dev/null 2>&1; then
  echo "kotlin: installing a Java runtime (Debian default-jre-headless)"
  apt_install default-jre-headless || { echo "kotlin: java is required and apt-get could not install it" >&2; exit 1; }
fi

pinned=$(sed -n 's/.*"kotlin-compiler": "\([^"]*\)".*/\1/p' tests/kotlin/package.json)
installed=$(sed -n 's/^  "version": "\([^"]*\)".*/\1/p' "$kotlin_home/package.json" 2>/dev/null || true)
if [ "$installed" != "$pinned" ]; then
  command -v npm >/dev/null 2>&1 || { echo "kotlin: npm is required to install kotlin-compiler $pinned" >&2; exit 1; }
  echo "kotlin: installing kotlin-compiler $pinned (npm ci into .tools/kotlin)"
  mkdir -p .tools/kotlin
  cp tests/kotlin/package.json tests/kotlin/package-lock.json .tools/kotlin/
  (cd .tools/kotlin && npm ci --no-audit --no-fund --loglevel=error)
fi

# Debian's jna.jar loads its native part from libjna-jni, so both are needed.
jna=/usr/share/java/jna.jar
debian_jni_missing() {
  command -v dpkg-query >/dev/null 2>&1 &&
    ! dpkg-query -W -f='${Status}' libjna-jni 2>/dev/null | grep -q 'ok installed'
}
if [ ! -f "$jna" ] || debian_jni_missing; then
  echo "kotlin: installing JNA (Debian libjna-java libjna-jni)"
  apt_install libjna-java libjna-jni || true
fi
if [ ! -f "$jna" ] || debian_jni_missing; then
  jna=".tools/jna/jna-$jna_version.jar"
  if [ ! -f "$jna" ]; then
    maven="https://repo1.maven.org/maven2/net/java/dev/jna/jna/$jna_version/jna-$jna_version.jar"
    echo "kotlin: apt-get could not install JNA; trying Maven Central"
    mkdir -p .tools/jna
    if command -v curl >/dev/null 2>&1 &&
        curl -fsS --max-time 30 -o "$jna.part" "$maven" &&
        expected=$(curl -fsS --max-time 30 "$maven.sha1") &&
        [ "$(sha1sum "$jna.part" | cut -d' ' -f1)" = "${expected:0:40}" ]; then
      mv "$jna.part" "$jna"
    else
      rm -f "$jna.part"
      echo "kotlin: JNA is missing: apt-get could not install libjna-java and libjna-jni, and" >&2
      echo "kotlin: JNA $jna_version could not be fetched and checked from Maven Central (unreachable?)." >&2
      echo "kotlin: install JNA 5.x (jna.jar) and run again." >&2
      exit 1
    fi
  fi
fi
echo "kotlin: tools ready in ${SECONDS} s: kotlinc $pinned, $(basename "$(readlink -f "$jna")"), $(java -version 2>&1 | head -1)"

mkdir -p target/kotlin
jar="target/kotlin/$name.jar"
stamp="target/kotlin/$name.inputs"
inputs=$(cat "$bindings" "$source_file" | sha256sum | cut -d' ' -f1)" kotlinc $pinned $jna"
if [ -f "$jar" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$inputs" ]; then
  echo "kotlin: $jar is up to date"
else
  SECONDS=0
  rm -f "$stamp"
  # -nowarn: the generated bindings warn about their own style; the build
  # fails on any error all the same.
  "$kotlin_home/bin/kotlinc" "$bindings" "$source_file" -cp "$jna" -include-runtime -nowarn -d "$jar"
  echo "$inputs" >"$stamp"
  echo "kotlin: compiled $jar in ${SECONDS} s"
fi

SECONDS=0
java -Djna.library.path="$libdir" -cp "$jar:$jna" "${name}Kt"
echo "kotlin: ran ${name} in ${SECONDS} s"
