#!/usr/bin/env bash
# Builds and tests the opensearch-sesa plugin; the installable zip lands in plugin/target/releases/.
# Usage: plugin/build.sh [extra maven args, e.g. -DskipTests or -o]
set -euo pipefail
JDK=/usr/lib/jvm/temurin-25-jdk-amd64
if [ ! -x "$JDK/bin/java" ]; then
  echo "build.sh: Temurin 25 JDK not found at $JDK (OpenSearch 3.x needs JDK 21+; install it or edit JDK in this script)" >&2
  exit 1
fi
export JAVA_HOME="$JDK"
export PATH="$JAVA_HOME/bin:$PATH"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec mvn -B -f "$HERE/pom.xml" verify "$@"
