################################################################################
#
# mipc
#
################################################################################

MIPC_VERSION = 0.1.0
# The source: this checkout (packaging/buildroot is a br2-external tree inside it). For a
# release tarball or git, set MIPC_SITE/MIPC_SITE_METHOD; then Buildroot vendors the crates
# at download time and --offline can be added to MIPC_CARGO_BUILD_OPTS.
MIPC_SITE = $(BR2_EXTERNAL_MIPC_PATH)/../..
MIPC_SITE_METHOD = local
MIPC_LICENSE = Apache-2.0 or MIT
MIPC_INSTALL_STAGING = YES

# Every crate of the workspace: the library and mipc_main. PKG_CARGO_ENV (cargo-package)
# sets the target (CARGO_BUILD_TARGET=$(RUSTC_TARGET_NAME)) and its linker.
MIPC_CARGO_BUILD_OPTS = --workspace

# The default build command of the cargo infrastructure, without --offline (a local site is
# not vendored): cargo fetches the locked crates.
define MIPC_BUILD_CMDS
	cd $(@D) && \
	$(TARGET_MAKE_ENV) $(TARGET_CONFIGURE_OPTS) $(PKG_CARGO_ENV) $(MIPC_CARGO_ENV) \
		cargo build --release --manifest-path Cargo.toml --locked $(MIPC_CARGO_BUILD_OPTS)
endef

# `make install` of mipc-rs lays the files out (cargo install would only copy binaries).
MIPC_MAKE_INSTALL = $(TARGET_MAKE_ENV) $(MAKE) -C $(@D) install \
	TARGET=$(RUSTC_TARGET_NAME) PREFIX=/usr STRIP="$(TARGET_CROSS)strip"

# Staging: header, libmipc.so*, libmipc.a, mipc.pc for packages that link against it.
define MIPC_INSTALL_STAGING_CMDS
	$(MIPC_MAKE_INSTALL) DESTDIR=$(STAGING_DIR)
endef

# Target: the whole install; Buildroot's target-finalize drops the header, the static
# library and mipc.pc from the image. The init script comes from the hooks below.
define MIPC_INSTALL_TARGET_CMDS
	$(MIPC_MAKE_INSTALL) DESTDIR=$(TARGET_DIR)
endef

define MIPC_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(TARGET_DIR)/usr/share/mipc/init/S50mipc \
		$(TARGET_DIR)/etc/init.d/S50mipc
	test -e $(TARGET_DIR)/etc/default/mipc || \
		$(INSTALL) -D -m 0644 $(TARGET_DIR)/usr/share/mipc/init/mipc.default \
			$(TARGET_DIR)/etc/default/mipc
endef

define MIPC_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(TARGET_DIR)/usr/share/mipc/init/mipc.service \
		$(TARGET_DIR)/usr/lib/systemd/system/mipc.service
	test -e $(TARGET_DIR)/etc/default/mipc || \
		$(INSTALL) -D -m 0644 $(TARGET_DIR)/usr/share/mipc/init/mipc.default \
			$(TARGET_DIR)/etc/default/mipc
endef

$(eval $(cargo-package))
