# c-tests.mk: the C programs of c-tests/, included by the top-level Makefile.
#
# They use only include/mipc.h and link the already built target/release/libmipc.so (the
# top-level Makefile runs `cargo build --release` first). Targets:
#   c-tests        everything into c-tests/build/ (plus the C++ header check if g++ exists)
#   c-tests-asan   errors, stress and friends with ASan+UBSan into c-tests/build/asan/
#   c-tests-clean  remove c-tests/build/
# The scenarios run from relay/tests/c_scenarios.rs: cargo test -p mipc-relay --test c_scenarios

# Keep the including Makefile's default goal.
CTESTS_SAVED_GOAL := $(.DEFAULT_GOAL)

CC ?= cc
CXX ?= g++

CTESTS_SRC    := c-tests
CTESTS_BUILD  := c-tests/build
CTESTS_ASAN   := $(CTESTS_BUILD)/asan
CTESTS_STUB   := $(CTESTS_BUILD)/stub
MIPC_INCLUDE  := include
MIPC_LIBDIR   := target/release

CTESTS_WARN    := -std=c11 -Wall -Wextra -Werror -pedantic
CTESTS_CFLAGS  := $(CTESTS_WARN) -D_DEFAULT_SOURCE -D_GNU_SOURCE -O2 -g \
                  -I$(MIPC_INCLUDE) -I$(CTESTS_SRC) $(CFLAGS)
CTESTS_LDLIBS  := -L$(MIPC_LIBDIR) -lmipc -Wl,-rpath,$(abspath $(MIPC_LIBDIR)) -lpthread
CTESTS_SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# $(wildcard): a missing header or library is reported by c-tests-need-lib, not by make.
CTESTS_MIPC_H  := $(wildcard $(MIPC_INCLUDE)/mipc.h)
CTESTS_LIBMIPC := $(wildcard $(MIPC_LIBDIR)/libmipc.so)
CTESTS_HEADERS := $(CTESTS_MIPC_H) $(CTESTS_SRC)/middleware_api.h
CTESTS_STUB_C  := $(CTESTS_SRC)/middleware_client_stub.c

# Programs linked against libmipc: name -> c-tests/<name>.c (+ the middleware client stub).
CTESTS_PROGRAMS := alarm_apm main_apm middleware_server middleware_client stress_client caller probe_server \
                   async_order errors
# Programs for the direct path's and answers straight back's tests (relay/tests/direct.rs).
CTESTS_PROGRAMS += direct_order answer_back
# Programs for the overload tests (relay/tests/overload.rs).
CTESTS_PROGRAMS += stall
# Cancelling threads blocked in the library, and signals during calls (c_scenarios.rs).
CTESTS_PROGRAMS += cancel
# Programs for events, broadcast and the handler-table API (relay/tests/events.rs).
CTESTS_PROGRAMS += middleware_server_handlers events_peer
CTESTS_ASAN_PROGRAMS := errors stress_client middleware_server async_order middleware_server_handlers
# mipc_wait_for from C (relay/tests/tool.rs).
CTESTS_PROGRAMS += wait_for

CTESTS_BINS := $(addprefix $(CTESTS_BUILD)/,$(CTESTS_PROGRAMS) layout legacy_peer preload_probe) \
               $(CTESTS_STUB)/libmipc.so
CTESTS_ASAN_BINS := $(addprefix $(CTESTS_ASAN)/,$(CTESTS_ASAN_PROGRAMS))

ifneq ($(shell command -v $(CXX) 2>/dev/null),)
CTESTS_BINS += $(CTESTS_BUILD)/header_cxx.ok
endif

# The bench's minimal C relay forwards exactly the SPEC bytes: the legacy relay of the
# interoperability test (relay/tests/c_scenarios.rs). It uses the header only.
CTESTS_BINS += $(CTESTS_BUILD)/crelay
$(CTESTS_BUILD)/crelay: bench/crelay.c bench/common.h $(CTESTS_HEADERS) | c-tests-need-lib $(CTESTS_BUILD)
	$(CC) $(CTESTS_CFLAGS) -Ibench -o $@ $< -lpthread


.PHONY: c-tests c-tests-asan c-tests-clean c-tests-need-lib

c-tests: $(CTESTS_BINS)

c-tests-asan: $(CTESTS_ASAN_BINS)

c-tests-clean:
	rm -rf $(CTESTS_BUILD)

# The library is cargo's to build; say so instead of "No rule to make target".
c-tests-need-lib:
	@test -f $(MIPC_LIBDIR)/libmipc.so -a -f $(MIPC_INCLUDE)/mipc.h || \
	  { echo "c-tests: $(MIPC_LIBDIR)/libmipc.so or $(MIPC_INCLUDE)/mipc.h is missing: run cargo build --release first" >&2; exit 1; }

$(CTESTS_BUILD) $(CTESTS_ASAN) $(CTESTS_STUB):
	mkdir -p $@

$(addprefix $(CTESTS_BUILD)/,$(CTESTS_PROGRAMS)): $(CTESTS_BUILD)/%: $(CTESTS_SRC)/%.c $(CTESTS_STUB_C) \
		$(CTESTS_HEADERS) $(CTESTS_LIBMIPC) | c-tests-need-lib $(CTESTS_BUILD)
	$(CC) $(CTESTS_CFLAGS) -o $@ $< $(CTESTS_STUB_C) $(CTESTS_LDLIBS)

$(CTESTS_ASAN_BINS): $(CTESTS_ASAN)/%: $(CTESTS_SRC)/%.c $(CTESTS_STUB_C) \
		$(CTESTS_HEADERS) $(CTESTS_LIBMIPC) | c-tests-need-lib $(CTESTS_ASAN)
	$(CC) $(CTESTS_CFLAGS) $(CTESTS_SANITIZE) -o $@ $< $(CTESTS_STUB_C) $(CTESTS_LDLIBS)

# Needs only the header: no libmipc.
$(CTESTS_BUILD)/layout: $(CTESTS_SRC)/layout.c $(CTESTS_HEADERS) | c-tests-need-lib $(CTESTS_BUILD)
	$(CC) $(CTESTS_CFLAGS) -o $@ $< -lpthread

# A legacy peer speaks the wire format by hand: it must not link libmipc.
$(CTESTS_BUILD)/legacy_peer: $(CTESTS_SRC)/legacy_peer.c $(CTESTS_HEADERS) | c-tests-need-lib $(CTESTS_BUILD)
	$(CC) $(CTESTS_CFLAGS) -o $@ $< -lpthread

# The stand-in vendor library, and a program linked against it (LD_PRELOAD test).
$(CTESTS_STUB)/libmipc.so: $(CTESTS_SRC)/stub_libmipc.c $(CTESTS_HEADERS) | c-tests-need-lib $(CTESTS_STUB)
	$(CC) $(CTESTS_CFLAGS) -fPIC -shared -Wl,-soname,libmipc.so -o $@ $<

$(CTESTS_BUILD)/preload_probe: $(CTESTS_SRC)/preload_probe.c $(CTESTS_STUB)/libmipc.so $(CTESTS_HEADERS) | $(CTESTS_BUILD)
	$(CC) $(CTESTS_CFLAGS) -o $@ $< -L$(CTESTS_STUB) -lmipc -Wl,-rpath,$(abspath $(CTESTS_STUB)) -lpthread

$(CTESTS_BUILD)/header_cxx.ok: $(CTESTS_SRC)/header_cxx.cpp $(CTESTS_MIPC_H) | c-tests-need-lib $(CTESTS_BUILD)
	$(CXX) -std=c++11 -fsyntax-only -Wall -Wextra -Werror -pedantic -I$(MIPC_INCLUDE) $<
	touch $@

.DEFAULT_GOAL := $(CTESTS_SAVED_GOAL)
