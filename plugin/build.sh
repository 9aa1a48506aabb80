#!/usr/bin/env bash
# Builds and tests the opensearch-sesa plugin; the installable zip lands in plugin/target/releases/.
# Usage: plugin/build.sh [extra maven args, e.g. -DskipTests or -o]
#
# The JDK (OpenSearch 3.x needs Java 21+): $SESA_JAVA_HOME if set (an error if it is not a JDK 21+), else
# $JAVA_HOME if its java is 21+, else the newest JDK 21+ under /usr/lib/jvm, /opt/java or /usr/local/lib/jvm
# (symlinks skipped). This is the same search, in the same order and with the same version check, as
# integration/cluster/java.py (find_java_home, with OPENSEARCH_JAVA_HOME there in the place of SESA_JAVA_HOME
# here); keep the two in step.
set -euo pipefail
MIN_JAVA=21
ROOTS=(/usr/lib/jvm /opt/java /usr/local/lib/jvm)

# Prints the major version of $1/bin/java ("1.8.0" counts as 8), or nothing if it does not run.
java_major() {
  local exe="$1/bin/java" out
  [ -f "$exe" ] && [ -x "$exe" ] || return 0
  out="$("$exe" -version 2>&1)" || true
  if [[ "$out" =~ version\ \"([0-9]+)(\.([0-9]+))? ]]; then
    if [ "${BASH_REMATCH[1]}" = 1 ] && [ -n "${BASH_REMATCH[3]}" ]; then
      echo "${BASH_REMATCH[3]}"
    else
      echo "${BASH_REMATCH[1]}"
    fi
  fi
}

JDK=""
if [ -n "${SESA_JAVA_HOME:-}" ]; then
  major="$(java_major "$SESA_JAVA_HOME")"
  if [ -z "$major" ] || [ "$major" -lt "$MIN_JAVA" ]; then
    echo "build.sh: SESA_JAVA_HOME=$SESA_JAVA_HOME is not a Java $MIN_JAVA+ JDK (found ${major:-no java}): point it at a JDK $MIN_JAVA or newer" >&2
    exit 1
  fi
  JDK="$SESA_JAVA_HOME"
fi
if [ -z "$JDK" ] && [ -n "${JAVA_HOME:-}" ]; then
  major="$(java_major "$JAVA_HOME")"
  if [ -n "$major" ] && [ "$major" -ge "$MIN_JAVA" ]; then
    JDK="$JAVA_HOME"
  fi
fi
if [ -z "$JDK" ]; then
  best=-1
  for root in "${ROOTS[@]}"; do
    [ -d "$root" ] || continue
    for child in "$root"/*; do
      [ -d "$child" ] && [ ! -L "$child" ] || continue
      major="$(java_major "$child")"
      [ -n "$major" ] && [ "$major" -ge "$MIN_JAVA" ] || continue
      # as java.py: the highest version wins, and of equal versions the greatest path
      if [ "$major" -gt "$best" ] || { [ "$major" -eq "$best" ] && [[ "$child" > "$JDK" ]]; }; then
        best="$major"
        JDK="$child"
      fi
    done
  done
fi
if [ -z "$JDK" ]; then
  echo "build.sh: no Java $MIN_JAVA+ JDK found (looked at SESA_JAVA_HOME=${SESA_JAVA_HOME:-unset}, JAVA_HOME=${JAVA_HOME:-unset} and ${ROOTS[*]}): install one (e.g. Temurin 21 or 25) or set SESA_JAVA_HOME" >&2
  exit 1
fi
export JAVA_HOME="$JDK"
export PATH="$JAVA_HOME/bin:$PATH"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec mvn -B -f "$HERE/pom.xml" verify "$@"
