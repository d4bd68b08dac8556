# wazuh-nats-tap. `make demo` and `make test` install what is missing first
# (Debian packages, npm ci), then build; both work on a fresh machine.

.PHONY: all deps build test demo clean

all: build

deps:
	@bash scripts/ensure-deps.sh

build: deps
	@node scripts/build.mjs

test: build
	@bash scripts/run-tests.sh

demo: build
	@node scripts/demo.mjs

clean:
	rm -rf build dist .tap
