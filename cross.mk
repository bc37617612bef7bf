# cross.mk: ARM builds and their tests under qemu-user, included by the top-level Makefile.
#
#   make cross        libmipc, mipc_main (every binary of the workspace) and the C programs
#                     for each target of CROSS_TARGETS (TARGET=<triple> picks one), into
#                     target/<triple>/release/ and c-tests/build-<triple>/
#   make test-cross   per target, under qemu: the Rust unit tests (cargo's runner), the
#                     layout test (the target's own test binary), the suites of the C
#                     scenarios, the direct path, overload, events, the tool and reliability
#                     (host test binaries starting the target's relay and programs through
#                     qemu), the mixed 32/64-bit bus, the C-library floor
#   make test-cross-ci  the part of it CI runs (scripts/test.sh): see below
#   make cross-setup  only install what the above need (scripts/cross-setup.sh)
#
# Rust: Debian's rustc-web 1.85 with its ARM std in a private sysroot (never rustup), release
# builds linked by zig against glibc 2.17 or musl (scripts/cross/zig-cc, .cargo/config.toml).
# C programs: Debian's cross gcc for glibc, zig cc for musl.

CROSS_GLIBC_TARGETS := armv7-unknown-linux-gnueabihf aarch64-unknown-linux-gnu
CROSS_MUSL_TARGETS  := armv7-unknown-linux-musleabihf aarch64-unknown-linux-musl
CROSS_TARGETS ?= $(CROSS_GLIBC_TARGETS) $(CROSS_MUSL_TARGETS)
ifneq ($(TARGET),)
CROSS_TARGETS := $(TARGET)
endif

CROSS_CACHE := $(shell scripts/cross-setup.sh --print-cache)
CROSS_CARGO := RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
  CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUSTFLAGS=--sysroot=$(CROSS_CACHE)/sysroot \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS=--sysroot=$(CROSS_CACHE)/sysroot \
  /usr/bin/cargo
# musl: the standard library is built from Debian's source of the same rustc (-Zbuild-std).
CROSS_BUILD_STD := RUSTC_BOOTSTRAP=1 __CARGO_TESTS_ONLY_SRC_ROOT=$(CROSS_CACHE)/rust-src/library
CROSS_BUILD_STD_FLAGS := -Zbuild-std=std,panic_unwind

# Per target: C compiler, qemu command (the -L prefix holds the target's loader).
cross_cc = $(strip \
  $(if $(filter armv7-unknown-linux-gnueabihf,$1),arm-linux-gnueabihf-gcc) \
  $(if $(filter aarch64-unknown-linux-gnu,$1),aarch64-linux-gnu-gcc) \
  $(if $(filter $(CROSS_MUSL_TARGETS),$1),$(abspath scripts/cross/linker-$1)))
cross_qemu = $(strip \
  $(if $(filter armv7-unknown-linux-gnueabihf,$1),qemu-arm -L /usr/arm-linux-gnueabihf) \
  $(if $(filter aarch64-unknown-linux-gnu,$1),qemu-aarch64 -L /usr/aarch64-linux-gnu) \
  $(if $(filter armv7-unknown-linux-musleabihf,$1),qemu-arm -L $(CROSS_CACHE)/musl-armhf) \
  $(if $(filter aarch64-unknown-linux-musl,$1),qemu-aarch64 -L $(CROSS_CACHE)/musl-arm64))
cross_is_musl = $(filter $(CROSS_MUSL_TARGETS),$1)
# The unit tests of the library and the relay (a pthread_t is a pointer on musl: the tests
# make theirs with os::ThreadId::to_pthread).
CROSS_MUSL_UNIT ?= --workspace --lib
CROSS_MUSL_UNIT_NOTE ?= unit tests of mipc and mipc-relay
cross_upper = $(shell echo $1 | tr a-z- A-Z_)

CROSS_ALL := $(CROSS_GLIBC_TARGETS) $(CROSS_MUSL_TARGETS)

# The host's test suites that run a target's relay and C programs under qemu (the test
# binaries stay the host's: relay/tests/common/target.rs). A test that needs the host's
# programs (ASan, valgrind) or measures the host (VmRSS) says so and skips that part.
# The reliability suite (about 33 s a target under qemu-arm, its 30 s timeout test's wait)
# runs on every target under `make test-cross`, and on the two 32-bit ones under
# `make test-cross-ci` (set below), where sizes differ from the host's: aarch64 glibc has the
# host's, and keeps CI's time down.
# The tool suite runs the host's `mipc` against the target's relay: on armv7, a 64-bit tool on
# a 32-bit relay's control channel.
CROSS_SUITES := --test c_scenarios --test direct --test overload --test events --test tool
CROSS_RELIABILITY_TARGETS := $(CROSS_ALL)
cross_suites = $(CROSS_SUITES) $(if $(filter $1,$(CROSS_RELIABILITY_TARGETS)),--test reliability)
cross_suites_note = C scenarios, direct path, overload, events, tool$(if \
  $(filter $1,$(CROSS_RELIABILITY_TARGETS)), and reliability)

.PHONY: cross test-cross test-cross-ci cross-setup cross-clean test-cross-mixed test-cross-floor \
        $(addprefix cross-,$(CROSS_ALL)) $(addprefix test-cross-,$(CROSS_ALL))

cross-setup:
	@scripts/cross-setup.sh

cross: $(addprefix cross-,$(CROSS_TARGETS))

# The mixed bus needs both glibc targets: it runs when TARGET= does not pick one.
test-cross: $(addprefix test-cross-,$(CROSS_TARGETS)) test-cross-floor \
            $(if $(TARGET),,test-cross-mixed)

# --- builds -------------------------------------------------------------------------------
# glibc: one cargo call builds the cdylib, the staticlib and every binary.
# musl: the library dynamically linked (a musl libmipc.so), then mipc_main fully static in a
# target dir of its own (other flags), copied beside the library.
define cross_build
cross-$1: cross-setup
	@echo "==> cross build $1"
ifeq ($(call cross_is_musl,$1),)
	$(CROSS_CARGO) build --release --locked --workspace --target $1
else
	$(CROSS_BUILD_STD) CARGO_TARGET_$(call cross_upper,$1)_RUSTFLAGS="-C target-feature=-crt-static" \
	  $(CROSS_CARGO) build --release --locked --workspace --target $1 $(CROSS_BUILD_STD_FLAGS)
	$(CROSS_BUILD_STD) \
	  CARGO_TARGET_$(call cross_upper,$1)_RUSTFLAGS="-C target-feature=+crt-static -C link-self-contained=no" \
	  $(CROSS_CARGO) build --release --locked -p mipc-relay --bins --target $1 \
	  --target-dir target/static $(CROSS_BUILD_STD_FLAGS)
	cp target/static/$1/release/mipc_main target/$1/release/mipc_main
endif
	ln -sfn libmipc.so target/$1/release/libmipc.so.1
	$(MAKE) --no-print-directory -f c-tests/c-tests.mk c-tests CC="$(call cross_cc,$1)" \
	  CTESTS_BUILD=c-tests/build-$1 MIPC_LIBDIR=target/$1/release
endef
$(foreach t,$(CROSS_ALL),$(eval $(call cross_build,$t)))

# --- tests --------------------------------------------------------------------------------
# The environment of the harness in cross mode (relay/tests/common: target_command).
cross_test_env = MIPC_TEST_TARGET=$1 MIPC_TEST_C_BUILD=c-tests/build-$1 \
  MIPC_TEST_LIB_DIR=target/$1/release MIPC_TEST_RELAY_BIN=target/$1/release/mipc_main \
  MIPC_TEST_EXEC="$(call cross_qemu,$1)"

define cross_test
test-cross-$1: cross-$1
	@echo "==> Rust unit tests for $1 under $(firstword $(call cross_qemu,$1))"
ifeq ($(call cross_is_musl,$1),)
	$(CROSS_CARGO) test --locked --workspace --lib --target $1
	@echo "==> layout test: $1's C programs against $1's Rust structs"
	$(call cross_test_env,$1) $(CROSS_CARGO) test --locked -p mipc-relay --target $1 \
	  --test c_scenarios layout_matches_rust_and_spec
else
	@echo "(musl: $(CROSS_MUSL_UNIT_NOTE))"
	$(call cross_test_env,$1) $(CROSS_BUILD_STD) \
	  CARGO_TARGET_$(call cross_upper,$1)_RUSTFLAGS="-C target-feature=-crt-static" \
	  CARGO_TARGET_$(call cross_upper,$1)_RUNNER="$(call cross_qemu,$1)" \
	  $(CROSS_CARGO) test --locked $(CROSS_MUSL_UNIT) --target $1 $(CROSS_BUILD_STD_FLAGS)
	@echo "==> layout test: $1's C programs against $1's Rust structs"
	$(call cross_test_env,$1) $(CROSS_BUILD_STD) \
	  CARGO_TARGET_$(call cross_upper,$1)_RUSTFLAGS="-C target-feature=-crt-static" \
	  CARGO_TARGET_$(call cross_upper,$1)_RUNNER="$(call cross_qemu,$1)" \
	  $(CROSS_CARGO) test --locked -p mipc-relay --target $1 $(CROSS_BUILD_STD_FLAGS) \
	  --test c_scenarios layout_matches_rust_and_spec
endif
	@echo "==> $$(call cross_suites_note,$1): $1's relay and programs under qemu"
	$(call cross_test_env,$1) cargo test --locked -p mipc-relay $$(call cross_suites,$1)
endef
$(foreach t,$(CROSS_ALL),$(eval $(call cross_test,$t)))

# What CI runs (scripts/test.sh), within its time: everything for the glibc targets (the
# reliability suite on armv7 only), and for musl the armv7 build (library, static relay, C
# programs) and the same suites under qemu, without the unit tests (each needs its own debug
# build of std).
test-cross-ci: CROSS_RELIABILITY_TARGETS := armv7-unknown-linux-gnueabihf \
                                            armv7-unknown-linux-musleabihf
test-cross-ci: $(addprefix test-cross-,$(CROSS_GLIBC_TARGETS)) test-cross-mixed \
               cross-armv7-unknown-linux-musleabihf
	@echo "==> $(call cross_suites_note,armv7-unknown-linux-musleabihf): armv7-unknown-linux-musleabihf's relay and programs under qemu"
	$(call cross_test_env,armv7-unknown-linux-musleabihf) cargo test --locked -p mipc-relay \
	  $(call cross_suites,armv7-unknown-linux-musleabihf)
	scripts/check-libc-floor.sh $(CROSS_GLIBC_TARGETS) armv7-unknown-linux-musleabihf

# Mixed 32/64-bit bus: every ARM target built, the host's programs too.
test-cross-mixed: $(addprefix cross-,$(CROSS_GLIBC_TARGETS)) all
	@echo "==> mixed 32/64-bit bus (relay and peers of different architectures)"
	MIPC_TEST_REQUIRE_CROSS=1 cargo test --locked -p mipc-relay --test mixed_arch

# The C-library floor, read from the binaries' symbol versions.
test-cross-floor: $(addprefix cross-,$(CROSS_TARGETS))
	@echo "==> C-library floor"
	scripts/check-libc-floor.sh $(CROSS_TARGETS)

cross-clean:
	rm -rf $(addprefix c-tests/build-,$(CROSS_TARGETS)) $(addprefix target/,$(CROSS_TARGETS)) \
	  target/static
