# wazuh-nats-tap. `make demo` and `make test` install what is missing first
# (Debian packages, npm ci), then build; both work on a fresh machine.

.PHONY: all deps build test demo clean install uninstall bench package

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

# build/package/wazuh-nats-tap_<version>_amd64.deb and wazuh-nats-tap-<version>.x86_64.rpm,
# self-contained (Node.js 22 bundled). PACKAGE_COMPRESSION=gzip: quicker, larger.
package: build
	@bash scripts/ensure-deps.sh --package
	@bash scripts/package.sh

# SPEC §9's bars, measured (docs/performance.md). BENCH_QUICK=1: shorter; ONLY=latency,memory: some only;
# PROFILE=1: V8 CPU profiles of the tap in build/bench/.
bench: build
	@node scripts/bench/run.mjs

clean:
	rm -rf build dist .tap
