#!/usr/bin/env bash
# The whole test suite on a fresh machine: install, build the plugin with its Java unit tests, then the
# Python unit tests and the end-to-end suite against the real stack (which the suite starts and stops).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
echo "[test] plugin: mvn verify (Java unit tests + zip)"
bash plugin/build.sh
echo "[test] python: unit + end-to-end"
export SESA_REQUIRE_E2E=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# The e2e server reranks with the shipped cross-encoder (models/); SESA_TEST_RERANKER=tiny|none|DIR overrides.
exec .venv/bin/python -m pytest "$@"
