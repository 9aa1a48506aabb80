# The two commands of the README: `make demo` (the embedded default with a demo) and `make test`.
.PHONY: setup demo test up down status

setup:
	bash scripts/bootstrap.sh

demo: setup
	.venv/bin/sesa up --demo

test:
	bash scripts/test.sh

up: setup
	.venv/bin/sesa up

down:
	.venv/bin/sesa down

status:
	.venv/bin/sesa status
