# install.mk: `make install` and `make uninstall`, included by the top-level Makefile.
#
# Installs what cargo already built (it builds nothing: run `make` or `make cross TARGET=...`
# first) into $(DESTDIR)$(PREFIX):
#   $(LIBDIR)/libmipc.so.1         the shared library, SONAME libmipc.so.1, stripped
#   $(LIBDIR)/libmipc.so           link to libmipc.so.1: the name legacy binaries ask for (the
#                                  vendor library had no SONAME), so it is part of the runtime set
#   $(LIBDIR)/libmipc.a            the static library without debug info (strip --strip-debug)
#   $(INCLUDEDIR)/mipc.h           the C header
#   $(PKGCONFIGDIR)/mipc.pc        pkg-config file, paths of this install
#   $(BINDIR)/mipc_main ...        every binary of the workspace (BINS), stripped
#   $(INITDIR)/                    the init files of packaging/init/ with this install's paths:
#                                  mipc.procd (OpenWrt), mipc.service (systemd), S50mipc
#                                  (busybox/sysvinit), mipc.uci and mipc.default (settings)
#   $(WIRESHARKDIR)/mipc.lua       the Wireshark dissector of `mipc capture` files
# INIT=procd|systemd|sysv also puts that init file (and its settings file, unless one exists)
# in its system place under $(SYSCONFDIR) or $(SYSTEMDUNITDIR).
#
# TARGET=<rust triple> installs target/<triple>/release/ with that target's strip (STRIP=
# overrides it; STRIP=: installs unstripped), e.g. into a firmware staging tree:
#   make install TARGET=armv7-unknown-linux-gnueabihf PREFIX=/usr DESTDIR=$PWD/staging

PREFIX        ?= /usr/local
EXEC_PREFIX   ?= $(PREFIX)
BINDIR        ?= $(EXEC_PREFIX)/bin
LIBDIR        ?= $(EXEC_PREFIX)/lib
INCLUDEDIR    ?= $(PREFIX)/include
DATADIR       ?= $(PREFIX)/share
PKGCONFIGDIR  ?= $(LIBDIR)/pkgconfig
INITDIR       ?= $(DATADIR)/mipc/init
WIRESHARKDIR  ?= $(DATADIR)/mipc/wireshark
# /etc for a system install (PREFIX=/usr, as firmware images use), else under the prefix.
SYSCONFDIR    ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
INIT          ?=
DESTDIR       ?=
TARGET        ?=
INSTALL       ?= install
LDCONFIG      ?= ldconfig

ifeq ($(TARGET),)
MIPC_FROM     ?= target/release
STRIP         ?= strip
else
MIPC_FROM     ?= target/$(TARGET)/release
# The GNU cross strip of the target's architecture (it does not care about the C library).
MIPC_STRIP_armv7   := arm-linux-gnueabihf-strip
MIPC_STRIP_arm     := arm-linux-gnueabihf-strip
MIPC_STRIP_thumbv7neon := arm-linux-gnueabihf-strip
MIPC_STRIP_aarch64 := aarch64-linux-gnu-strip
MIPC_STRIP_x86_64  := strip
STRIP         ?= $(or $(MIPC_STRIP_$(firstword $(subst -, ,$(TARGET)))),$(firstword $(subst -, ,$(TARGET)))-linux-gnu-strip)
endif

# Every binary of the workspace: cargo puts exactly those (no dependency's) as executables
# directly in the release folder. BINS="mipc_main ..." overrides the list.
BINS ?= $(sort $(notdir $(shell find $(MIPC_FROM) -maxdepth 1 -type f -perm -u+x ! -name '*.*' 2>/dev/null)))

MIPC_VERSION := $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)
MIPC_INIT_SRC := packaging/init
MIPC_INIT_FILES := mipc.procd mipc.service S50mipc mipc.uci mipc.default

# A path as the .pc file writes it: relative to ${prefix} when it lies under the prefix.
mipc_pc_path = $(if $(filter $(PREFIX)/%,$(1)),$${prefix}/$(patsubst $(PREFIX)/%,%,$(1)),$(1))

# The init files' placeholders.
MIPC_SUBST := sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
                  -e 's|@VERSION@|$(MIPC_VERSION)|g'

D := $(DESTDIR)

.PHONY: install install-check uninstall test-install

install-check:
	@test -f $(MIPC_FROM)/libmipc.so -a -f $(MIPC_FROM)/libmipc.a || \
	  { echo "install: $(MIPC_FROM)/libmipc.so or libmipc.a is missing: run \`make$(if $(TARGET), cross TARGET=$(TARGET))\` first" >&2; exit 1; }
	@test -n "$(BINS)" || { echo "install: no binary in $(MIPC_FROM)" >&2; exit 1; }
	@command -v $(firstword $(STRIP)) >/dev/null || \
	  { echo "install: $(STRIP) not found (set STRIP=, or STRIP=: to install unstripped)" >&2; exit 1; }
	@case "$(INIT)" in ""|procd|systemd|sysv) ;; *) echo "install: INIT=$(INIT): procd, systemd or sysv" >&2; exit 1;; esac

install: install-check
	$(INSTALL) -d $(D)$(BINDIR) $(D)$(LIBDIR) $(D)$(INCLUDEDIR) $(D)$(PKGCONFIGDIR) $(D)$(INITDIR) \
	  $(D)$(WIRESHARKDIR)
	$(INSTALL) -m 0644 packaging/wireshark/mipc.lua $(D)$(WIRESHARKDIR)/mipc.lua
	$(INSTALL) -m 0755 $(MIPC_FROM)/libmipc.so $(D)$(LIBDIR)/libmipc.so.1
	$(STRIP) --strip-unneeded $(D)$(LIBDIR)/libmipc.so.1
	ln -sfn libmipc.so.1 $(D)$(LIBDIR)/libmipc.so
	$(INSTALL) -m 0644 $(MIPC_FROM)/libmipc.a $(D)$(LIBDIR)/libmipc.a
	$(STRIP) --strip-debug $(D)$(LIBDIR)/libmipc.a
	$(INSTALL) -m 0644 include/mipc.h $(D)$(INCLUDEDIR)/mipc.h
	printf '%s\n' 'prefix=$(PREFIX)' 'exec_prefix=$(call mipc_pc_path,$(EXEC_PREFIX))' \
	  'libdir=$(call mipc_pc_path,$(LIBDIR))' 'includedir=$(call mipc_pc_path,$(INCLUDEDIR))' '' \
	  'Name: mipc' 'Description: MIPC System V message-queue IPC library (mipc-rs)' \
	  'Version: $(MIPC_VERSION)' 'Libs: -L$${libdir} -lmipc' \
	  'Libs.private: -lgcc_s -lpthread -ldl -lrt -lm' 'Cflags: -I$${includedir}' \
	  >$(D)$(PKGCONFIGDIR)/mipc.pc
	chmod 0644 $(D)$(PKGCONFIGDIR)/mipc.pc
	for b in $(BINS); do \
	  $(INSTALL) -m 0755 $(MIPC_FROM)/$$b $(D)$(BINDIR)/$$b && $(STRIP) $(D)$(BINDIR)/$$b || exit 1; \
	done
	for f in $(MIPC_INIT_FILES); do \
	  $(MIPC_SUBST) $(MIPC_INIT_SRC)/$$f >$(D)$(INITDIR)/$$f || exit 1; \
	done
	chmod 0755 $(D)$(INITDIR)/mipc.procd $(D)$(INITDIR)/S50mipc
	chmod 0644 $(D)$(INITDIR)/mipc.service $(D)$(INITDIR)/mipc.uci $(D)$(INITDIR)/mipc.default
ifeq ($(INIT),procd)
	$(INSTALL) -d $(D)$(SYSCONFDIR)/init.d $(D)$(SYSCONFDIR)/config
	$(INSTALL) -m 0755 $(D)$(INITDIR)/mipc.procd $(D)$(SYSCONFDIR)/init.d/mipc
	test -e $(D)$(SYSCONFDIR)/config/mipc || $(INSTALL) -m 0644 $(D)$(INITDIR)/mipc.uci $(D)$(SYSCONFDIR)/config/mipc
endif
ifeq ($(INIT),systemd)
	$(INSTALL) -d $(D)$(SYSTEMDUNITDIR) $(D)$(SYSCONFDIR)/default
	$(INSTALL) -m 0644 $(D)$(INITDIR)/mipc.service $(D)$(SYSTEMDUNITDIR)/mipc.service
	test -e $(D)$(SYSCONFDIR)/default/mipc || $(INSTALL) -m 0644 $(D)$(INITDIR)/mipc.default $(D)$(SYSCONFDIR)/default/mipc
endif
ifeq ($(INIT),sysv)
	$(INSTALL) -d $(D)$(SYSCONFDIR)/init.d $(D)$(SYSCONFDIR)/default
	$(INSTALL) -m 0755 $(D)$(INITDIR)/S50mipc $(D)$(SYSCONFDIR)/init.d/S50mipc
	test -e $(D)$(SYSCONFDIR)/default/mipc || $(INSTALL) -m 0644 $(D)$(INITDIR)/mipc.default $(D)$(SYSCONFDIR)/default/mipc
endif
	@if [ -z "$(DESTDIR)" ] && [ -z "$(TARGET)" ] && [ "$$(id -u)" = 0 ] && command -v $(LDCONFIG) >/dev/null; then \
	  echo "$(LDCONFIG)"; $(LDCONFIG); fi

# Settings files (config/mipc, default/mipc) stay: they may hold local edits.
uninstall:
	rm -f $(D)$(LIBDIR)/libmipc.so.1 $(D)$(LIBDIR)/libmipc.so $(D)$(LIBDIR)/libmipc.a \
	  $(D)$(INCLUDEDIR)/mipc.h $(D)$(PKGCONFIGDIR)/mipc.pc \
	  $(addprefix $(D)$(BINDIR)/,$(BINS)) $(addprefix $(D)$(INITDIR)/,$(MIPC_INIT_FILES)) \
	  $(D)$(SYSCONFDIR)/init.d/mipc $(D)$(SYSCONFDIR)/init.d/S50mipc $(D)$(SYSTEMDUNITDIR)/mipc.service \
	  $(D)$(WIRESHARKDIR)/mipc.lua
	-rmdir $(D)$(INITDIR) $(D)$(WIRESHARKDIR) $(D)$(DATADIR)/mipc 2>/dev/null

test-install:
	./scripts/test-install.sh
	./scripts/test-packaging.sh
