# Build and install system-update and its generator.
#
#   make                      build (release)
#   make install              install into $(DESTDIR)
#   make install WITH_TARGETS=yes
#                             also install system-update.target,
#                             system-update-pre.target and
#                             system-update-cleanup.service, for systems whose
#                             systemd lacks them
#   make install REPLACE_SYSTEMD_GENERATOR=yes
#                             mask systemd-system-update-generator so ours
#                             runs alone (undone by make uninstall)
#   make install NOBUILD=1    install what an earlier `make` built, without
#                             running cargo (packaging, another user's build)
#   make uninstall            remove what install put in place
#   make deb                  build the Debian package into target/debian/
#   make demo                 build both programs and play an offline update
#   make check                the test suite (cargo test + unit verification)
#   make update-po            refresh po/system-update.pot and the
#                             translations from the sources (xgettext, msgmerge)

PREFIX ?= /usr
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
DATADIR ?= $(PREFIX)/share
BASH_COMPLETION_DIR ?= $(DATADIR)/bash-completion/completions
ZSH_COMPLETION_DIR ?= $(DATADIR)/zsh/vendor-completions
FISH_COMPLETION_DIR ?= $(DATADIR)/fish/vendor_completions.d
CARGO ?= cargo
CARGOFLAGS ?=

PKG_CONFIG ?= pkg-config
# Where systemd looks for units and generators; the generator's link target is
# built from the same answer (generator/build.rs), so the two always agree.
SYSTEMD_SYSTEM_UNIT_DIR ?= $(or $(shell $(PKG_CONFIG) --variable=systemdsystemunitdir systemd 2>/dev/null),$(PREFIX)/lib/systemd/system)
SYSTEMD_SYSTEM_GENERATOR_DIR ?= $(or $(shell $(PKG_CONFIG) --variable=systemdsystemgeneratordir systemd 2>/dev/null),$(PREFIX)/lib/systemd/system-generators)
export SYSTEMD_SYSTEM_UNIT_DIR

WITH_TARGETS ?= no
REPLACE_SYSTEMD_GENERATOR ?= no
NOBUILD ?=

# Cargo's target directory: CARGO_TARGET_DIR when set, as cargo does.
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
RELEASE := $(TARGET_DIR)/release
MAN8 := man/system-update-generator.8 $(wildcard man/system-update.8)
MAN5 := $(wildcard man/*.5)
MAN7 := $(wildcard man/*.7)
OWN_UNITS := system-update.target system-update-pre.target system-update-cleanup.service
MASK := $(DESTDIR)$(SYSCONFDIR)/systemd/system-generators/systemd-system-update-generator

COMPLETIONS := $(RELEASE)/completions
LOCALEDIR ?= $(DATADIR)/locale
LINGUAS := $(basename $(notdir $(wildcard po/*.po)))
# The catalogues, compiled beside the binaries.
MO_DIR := $(RELEASE)/locale
# The package stays in target/debian whatever the target directory is.
DEB_DESTDIR ?= target/debian
CONFIG := $(DESTDIR)$(SYSCONFDIR)/system-update.toml

.PHONY: all build completions mo update-po install uninstall deb check demo clean screenshots

all: build

# Completions are generated from the argument definitions by the binary
# itself, so they never disagree with it.
build:
	$(CARGO) build --release --locked $(CARGOFLAGS)
	$(MAKE) completions mo

# The message catalogues, one per language (msgfmt checks the formats).
mo:
	for l in $(LINGUAS); do \
		mkdir -p $(MO_DIR)/$$l/LC_MESSAGES && \
		msgfmt -c -o $(MO_DIR)/$$l/LC_MESSAGES/system-update.mo po/$$l.po || exit 1; \
	done

# What a person reads on the consoles and in plymouth: tr.s(), tr.f() and
# n_() in the UI's sources, and the messages the apply service and its
# backends declare with m_() (events::words). Lifetimes ('a) make
# xgettext's C lexer warn.
update-po:
	xgettext --from-code=UTF-8 -L C -k -ks -kf -kn_ -km_ --package-name=system-update \
		--msgid-bugs-address=none -o po/system-update.pot \
		tui/src/fullscreen.rs tui/src/plain.rs tui/src/plymouth.rs tui/src/i18n.rs \
		$$(grep -rl --include='*.rs' 'm_("' apply/src | sort) 2>/dev/null
	for l in $(LINGUAS); do msgmerge -q -U --backup=none po/$$l.po po/system-update.pot || exit 1; done

completions:
	mkdir -p $(COMPLETIONS)
	$(RELEASE)/system-update completions bash > $(COMPLETIONS)/system-update.bash
	$(RELEASE)/system-update completions zsh > $(COMPLETIONS)/_system-update
	$(RELEASE)/system-update completions fish > $(COMPLETIONS)/system-update.fish

$(RELEASE)/%.service: units/%.service.in
	mkdir -p $(RELEASE)
	sed 's|@BINDIR@|$(BINDIR)|g' $< > $@

install: $(if $(NOBUILD),,build) $(RELEASE)/system-update-apply.service $(RELEASE)/system-update-cleanup-snapshots.service $(RELEASE)/system-update-probation.service $(RELEASE)/system-update-auto.service
	install -Dm755 $(RELEASE)/system-update-generator $(DESTDIR)$(SYSTEMD_SYSTEM_GENERATOR_DIR)/system-update-generator
	install -Dm755 $(RELEASE)/system-update $(DESTDIR)$(BINDIR)/system-update
	install -Dm644 $(RELEASE)/system-update-apply.service $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/system-update-apply.service
	install -d $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/system-update.target.wants
	ln -sfn ../system-update-apply.service $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/system-update.target.wants/system-update-apply.service
	install -Dm644 $(RELEASE)/system-update-cleanup-snapshots.service $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/system-update-cleanup-snapshots.service
	install -d $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/multi-user.target.wants
	ln -sfn ../system-update-cleanup-snapshots.service $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/multi-user.target.wants/system-update-cleanup-snapshots.service
	install -Dm644 $(RELEASE)/system-update-probation.service $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/system-update-probation.service
	ln -sfn ../system-update-probation.service $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/multi-user.target.wants/system-update-probation.service
	# Unattended updates: installed, never enabled (the administrator's choice).
	install -Dm644 $(RELEASE)/system-update-auto.service $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/system-update-auto.service
	install -Dm644 units/system-update-auto.timer $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/system-update-auto.timer
ifeq ($(WITH_TARGETS),yes)
	for u in $(OWN_UNITS); do install -Dm644 units/$$u $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/$$u || exit 1; done
endif
ifeq ($(REPLACE_SYSTEMD_GENERATOR),yes)
	install -d $(dir $(MASK))
	ln -sfn /dev/null $(MASK)
endif
	for m in $(MAN8); do install -Dm644 $$m $(DESTDIR)$(MANDIR)/man8/$$(basename $$m) || exit 1; done
	for m in $(MAN5); do install -Dm644 $$m $(DESTDIR)$(MANDIR)/man5/$$(basename $$m) || exit 1; done
	for m in $(MAN7); do install -Dm644 $$m $(DESTDIR)$(MANDIR)/man7/$$(basename $$m) || exit 1; done
	install -Dm644 $(COMPLETIONS)/system-update.bash $(DESTDIR)$(BASH_COMPLETION_DIR)/system-update
	install -Dm644 $(COMPLETIONS)/_system-update $(DESTDIR)$(ZSH_COMPLETION_DIR)/_system-update
	install -Dm644 $(COMPLETIONS)/system-update.fish $(DESTDIR)$(FISH_COMPLETION_DIR)/system-update.fish
	for l in $(LINGUAS); do install -Dm644 $(MO_DIR)/$$l/LC_MESSAGES/system-update.mo $(DESTDIR)$(LOCALEDIR)/$$l/LC_MESSAGES/system-update.mo || exit 1; done
	# The commented defaults, never over an administrator's file.
	test -e $(CONFIG) || install -Dm644 conf/system-update.toml $(CONFIG)

# Removes only what is ours: systemd's own targets are left alone unless we
# installed them (WITH_TARGETS=yes), and the mask only if it is our /dev/null link.
uninstall:
	rm -f $(DESTDIR)$(SYSTEMD_SYSTEM_GENERATOR_DIR)/system-update-generator
	rm -f $(DESTDIR)$(BINDIR)/system-update
	rm -f $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/system-update.target.wants/system-update-apply.service
	-rmdir $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/system-update.target.wants 2>/dev/null
	rm -f $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/system-update-apply.service
	rm -f $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/multi-user.target.wants/system-update-cleanup-snapshots.service
	rm -f $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/multi-user.target.wants/system-update-probation.service
	rm -f $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/system-update-probation.service
	-rmdir $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/multi-user.target.wants 2>/dev/null
	rm -f $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/system-update-cleanup-snapshots.service
	rm -f $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/system-update-auto.service $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/system-update-auto.timer
ifeq ($(WITH_TARGETS),yes)
	for u in $(OWN_UNITS); do rm -f $(DESTDIR)$(SYSTEMD_SYSTEM_UNIT_DIR)/$$u; done
endif
	if [ "$$(readlink $(MASK) 2>/dev/null)" = /dev/null ]; then rm -f $(MASK); fi
	for m in $(MAN8); do rm -f $(DESTDIR)$(MANDIR)/man8/$$(basename $$m); done
	for m in $(MAN5); do rm -f $(DESTDIR)$(MANDIR)/man5/$$(basename $$m); done
	for m in $(MAN7); do rm -f $(DESTDIR)$(MANDIR)/man7/$$(basename $$m); done
	rm -f $(DESTDIR)$(BASH_COMPLETION_DIR)/system-update $(DESTDIR)$(ZSH_COMPLETION_DIR)/_system-update \
		$(DESTDIR)$(FISH_COMPLETION_DIR)/system-update.fish
	for l in $(LINGUAS); do rm -f $(DESTDIR)$(LOCALEDIR)/$$l/LC_MESSAGES/system-update.mo; done
	# The configuration only when the administrator never changed it.
	if cmp -s conf/system-update.toml $(CONFIG); then rm -f $(CONFIG); fi

# Both programs: the demo runs the generator found beside system-update.
demo:
	$(CARGO) build --release --locked $(CARGOFLAGS)
	$(RELEASE)/system-update demo

# The Debian package, built by debian/rules (debhelper) into target/debian/;
# lintian checks it in make check.
deb:
	mkdir -p $(DEB_DESTDIR)
	DEB_DESTDIR=$(abspath $(DEB_DESTDIR)) debian/rules binary
	debian/rules clean

check:
	tests/check

# The kiosk's screen as the real-boot suite photographs it (issue 23): boots
# scenario s2 with a VGA card (as root, like tests/vm/run) and copies its
# OCR-checked screendumps of the VT into docs/. Every run of the suite keeps
# them in $(VMTEST_WORK)/logs/screenshots/ too.
VMTEST_WORK ?= tests/vm/work
screenshots:
	VMTEST_WORK=$(abspath $(VMTEST_WORK)) tests/vm/run s2_ s7_
	cp $(VMTEST_WORK)/logs/screenshots/vt-progress.png docs/screenshot-vt-progress.png
	cp $(VMTEST_WORK)/logs/screenshots/vt-final.png docs/screenshot-vt-final.png
	cp $(VMTEST_WORK)/logs/screenshots/plymouth.png docs/screenshot-plymouth.png

clean:
	$(CARGO) clean
