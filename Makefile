# SPDX-License-Identifier: GPL-2.0
#
# rdma-gift top-level build.
#
#   make            deps + module + provider + selftests, the module and the
#                   test module for Debian's 6.12 (in the tree) and for
#                   the newest sid kernel (in build/<kernelrelease>/)
#   make module-debug  the debug kernel (tools/kernel/build.sh, cached)
#                   and the modules for it, in build/<kernelrelease>/
#   make check      the above + sparse + checkpatch + every selftest in
#                   the QEMU VM on 6.12 (what .ci/run runs)
#   make check-debug  every selftest and the fail-nth sweep, the packet
#                   fuzzer and the stress run on the debug kernel
#   make check-interop  RC interop between two VMs (tools/testing/vm/
#                   run-pair): gift0 <-> gift0, gift0 <-> stock rxe0 on
#                   6.12 and on sid's 7.2; make check runs the 6.12 ones
#   make fuzz MINUTES=N    the RoCEv2 packet fuzzer on the debug kernel
#   make stress MINUTES=N  registration vs mm churn vs traffic, debug kernel
#   make demo       build, boot the VM, walk through gift0
#   make deb        the Debian packages (rdma-gift-dkms, libgift1,
#                   libgift-dev) in build/deb/, checked with lintian
#   make check-packages  build them, install them with apt, load the
#                   DKMS-built module in the VM, use the packaged
#                   provider, purge (make check runs it)
#   make install    install module and provider on this host (developers;
#                   real hosts: the packages, see README)
#
# KDIR=/lib/modules/$(uname -r)/build builds the module for another kernel.

TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
GIFT_CACHE ?= $(HOME)/.cache/rdma-gift
export GIFT_CACHE

# deps.mk is written by tools/deps.sh (GUEST_KVER, LINUX_SRC, RDMA_CORE).
-include $(GIFT_CACHE)/deps.mk

KDIR ?= /lib/modules/$(GUEST_KVER)/build
MODULE := drivers/infiniband/sw/gift/rdma_gift.ko
KSRCS := $(filter-out %.mod.c,$(wildcard drivers/infiniband/sw/gift/*.[ch])) \
	 $(wildcard include/uapi/rdma/*.h) $(wildcard include/rdma/*.h) \
	 tools/testing/selftests/rdma_gift/ktest/gift_ktest.c
KTEST := tools/testing/selftests/rdma_gift/ktest
VM := tools/testing/vm/run

# The deps step runs first on every entry point that needs the toolchain;
# it is idempotent and takes well under a second once done.
DEPS_STAMP := $(GIFT_CACHE)/deps.mk

.PHONY: all bench deps module module-newest module-debug provider selftests \
	checkpatch check check-debug check-interop demo install clean fuzz \
	stress deb check-packages patches check-patches

all: module module-newest provider selftests

deps:
	@bash tools/deps.sh

$(DEPS_STAMP):
	@bash tools/deps.sh

# 6.12 builds in the source tree. Its top-level modules.order files are
# removed afterwards: newer kbuild refuses an MO= build of a tree that has
# one ("external module source tree is not clean").
module: | deps
	$(MAKE) -C $(KDIR) M=$(TOP) W=1 modules
	rm -f $(TOP)/modules.order

# $(call lane,FLAVOUR,EXTRA): the module and the test module for a kernel
# tree of tools/kernel/build.sh, built out of the source tree (MO=) into
# build/<kernelrelease>/, where the VM runner looks for them.
lane = set -e; k=$$(bash tools/kernel/build.sh $(1)); \
	o=$(TOP)/build/$$(cat $$k/kernelrelease); mkdir -p $$o/ktest; \
	$(MAKE) -C $$k/build M=$(TOP) MO=$$o W=1 $(2) modules; \
	$(MAKE) -C $$k/build M=$(TOP)/$(KTEST) MO=$$o/ktest W=1 $(2) modules

module-newest: | deps
	@$(call lane,stock)

module-debug: | deps
	@$(call lane,debug)

# Sparse over every module source (the test module's too), on 6.12 and on
# the newest kernel (with a sparse from sid: 7.x needs a newer one),
# warnings fatal.
sparse: | deps
	@out=$$($(MAKE) -C $(KDIR) M=$(TOP) W=1 C=2 modules 2>&1; \
		rm -f $(TOP)/modules.order; \
		$(MAKE) -C $(KDIR) M=$(TOP)/$(KTEST) W=1 C=2 modules 2>&1; \
		rm -f $(TOP)/$(KTEST)/modules.order; \
		$(call lane,stock,C=2 CHECK=$(NEW_CHECK)) 2>&1); \
	echo "$$out"; \
	if echo "$$out" | grep -E ': (warning|error):|not available or not up to date'; then \
		echo "sparse/W=1: warnings above are errors"; exit 1; fi

provider: | deps
	$(MAKE) -C lib RDMA_CORE=$(RDMA_CORE)

selftests: | deps
	$(MAKE) -C tools/testing/selftests/rdma_gift LINUX_SRC=$(LINUX_SRC) \
		KDIR=$(KDIR)
	rm -f $(TOP)/$(KTEST)/modules.order

checkpatch: | deps
	@perl $(LINUX_SRC)/scripts/checkpatch.pl --strict --no-tree \
		--show-types -q -f $(KSRCS) && echo "checkpatch: clean"

# Every suite on 6.12, then the debug suite and the ODP tests on the
# debug kernel (built on first use, then cached).
check: all module-debug sparse checkpatch
	@bash tools/testing/selftests/rdma_gift/run_all.sh check

# gift0 <-> gift0 and gift0 <-> stock rxe0 in two VMs, every pairing.
check-interop: all
	@bash tools/testing/selftests/rdma_gift/interop/run_interop.sh all

# Every suite on the debug kernel (about 40 minutes): see
# Documentation/rdma_gift.rst, "Kernel lanes".
check-debug: all module-debug
	@bash tools/testing/selftests/rdma_gift/run_all.sh debug

# Long soaks on the debug kernel; make check-debug runs short ones of both.
MINUTES ?= 10
SOAK = tools/testing/vm/run --kernel debug --env GIFT_SLOW=8 \
	--timeout $$(($(MINUTES) * 60 + 900)) --
SELFTESTS := tools/testing/selftests/rdma_gift

fuzz: all module-debug
	$(SOAK) $(SELFTESTS)/fuzz/gift_fuzz -t $$(($(MINUTES) * 60))

stress: all module-debug
	$(SOAK) $(SELFTESTS)/stress/gift_stress -t $$(($(MINUTES) * 60))

# The linux-rdma patch series (tools/upstream/, Documentation/upstream.rst):
# `make patches` writes it, with cover letter and recipients, to
# build/patches; `make check-patches` applies, checkpatches and
# bisect-builds it and runs its kselftests on the debug kernel, which is
# built from the patched tree (make check runs it too).
patches: | deps
	@bash tools/upstream/series.sh patches $(TOP)/build/patches

check-patches: all module-debug
	@bash tools/upstream/check.sh

deb: | deps
	@bash tools/packaging/deb.sh >/dev/null

# Installs the packages on this host (apt), one VM boot, purges them.
check-packages: | deps
	@bash tools/packaging/check_packages.sh

demo: all
	@bash tools/demo.sh

# Issue 13's goal table, gift0 against stock rxe0 in one VM boot, with the
# guest's memcpy ceiling (tools/bench/fastpath.sh; BENCH_ARGS passes
# options, e.g. BENCH_ARGS="--reps 5"). Numbers, never assertions.
bench: all
	@bash tools/bench/fastpath.sh $(BENCH_ARGS)

install: module provider
	$(MAKE) -C $(KDIR) M=$(TOP) modules_install
	depmod -a $(notdir $(patsubst %/build,%,$(KDIR)))
	$(MAKE) -C lib RDMA_CORE=$(RDMA_CORE) install

clean:
	-$(MAKE) -C $(KDIR) M=$(TOP) clean
	rm -rf $(TOP)/build
	-$(MAKE) -C lib clean
	-$(MAKE) -C tools/testing/selftests/rdma_gift clean
