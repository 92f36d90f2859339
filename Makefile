.PHONY: run test setup bench
run:
	scripts/run.sh
test:
	scripts/test.sh
setup:
	scripts/setup.sh --test
bench:
	.venv/bin/python bench/run_all.py
