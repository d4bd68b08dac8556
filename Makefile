# wazuh-nats-tap. `make demo` and `make test` install what is missing first
# (Debian packages, npm ci), then build; both work on a fresh machine.

.PHONY: all deps build test demo clean install uninstall bench

all: build

deps:
	@bash scripts/ensure-deps.sh

build: deps
	@node scripts/build.mjs

test: build
	@bash scripts/ensure-deps.sh --test
	@bash scripts/run-tests.sh

demo: build
	@node scripts/demo.mjs

install: build
	@bash scripts/install.sh install

uninstall:
	@bash scripts/install.sh uninstall

clean:
	rm -rf build dist .tap
