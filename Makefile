# SPDX-License-Identifier: Apache-2.0
# The front door of duet's build.  Meson and Ninja do the work:
#   make         build; the binary is build/duet
#   make deps    install the Debian packages the build, tests and demo need
#   make check   deps + build + every test; last line "N passed, N failed"
#   make demo    deps + build + the end-to-end demo
#   make asan    build and unit tests under AddressSanitizer + UBSan

BUILD ?= build
ASAN_BUILD ?= build-asan
MESON_FLAGS ?=

.PHONY: all build deps check demo asan unit integration clean

all: build

$(BUILD)/build.ninja:
	@command -v meson >/dev/null || { echo "meson is missing: run 'make deps' first" >&2; exit 1; }
	meson setup $(BUILD) $(MESON_FLAGS)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

deps:
	sh scripts/deps.sh

check: deps
	sh scripts/check.sh

demo: deps build
	DUET=$(BUILD)/duet sh scripts/demo.sh

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debug -Dc_args=-fno-sanitize-recover=all

asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)
	meson test -C $(ASAN_BUILD) --suite unit --print-errorlogs

unit: build
	meson test -C $(BUILD) --suite unit --print-errorlogs

integration: build
	DUET_BIN=$(CURDIR)/$(BUILD)/duet /usr/bin/python3 -m pytest -q tests/integration

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz demo-out
