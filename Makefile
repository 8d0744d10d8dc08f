# SPDX-License-Identifier: GPL-2.0
#
# rdma-gift top-level build.
#
#   make            deps + module + provider + selftests
#   make check      the above + checkpatch + every selftest in the QEMU VM
#   make demo       build, boot the VM, walk through gift0
#   make install    install module and provider on this host (real hosts)
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
	 $(wildcard include/uapi/rdma/*.h) \
	 tools/testing/selftests/rdma_gift/ktest/gift_ktest.c
KTEST := tools/testing/selftests/rdma_gift/ktest
VM := tools/testing/vm/run

# The deps step runs first on every entry point that needs the toolchain;
# it is idempotent and takes well under a second once done.
DEPS_STAMP := $(GIFT_CACHE)/deps.mk

.PHONY: all deps module provider selftests checkpatch check demo install \
	clean

all: module provider selftests

deps:
	@bash tools/deps.sh

$(DEPS_STAMP):
	@bash tools/deps.sh

module: | deps
	$(MAKE) -C $(KDIR) M=$(TOP) W=1 modules

# Sparse over every module source (the test module's too), warnings fatal.
sparse: | deps
	@out=$$($(MAKE) -C $(KDIR) M=$(TOP) W=1 C=2 modules 2>&1; \
		$(MAKE) -C $(KDIR) M=$(TOP)/$(KTEST) W=1 C=2 modules 2>&1); \
	echo "$$out"; \
	if echo "$$out" | grep -E ': (warning|error):'; then \
		echo "sparse/W=1: warnings above are errors"; exit 1; fi

provider: | deps
	$(MAKE) -C lib RDMA_CORE=$(RDMA_CORE)

selftests: | deps
	$(MAKE) -C tools/testing/selftests/rdma_gift LINUX_SRC=$(LINUX_SRC) \
		KDIR=$(KDIR)

checkpatch: | deps
	@perl $(LINUX_SRC)/scripts/checkpatch.pl --strict --no-tree \
		--show-types -q -f $(KSRCS) && echo "checkpatch: clean"

check: all sparse checkpatch
	@bash tools/testing/selftests/rdma_gift/run_all.sh

demo: all
	@bash tools/demo.sh

install: module provider
	$(MAKE) -C $(KDIR) M=$(TOP) modules_install
	depmod -a $(notdir $(patsubst %/build,%,$(KDIR)))
	$(MAKE) -C lib RDMA_CORE=$(RDMA_CORE) install

clean:
	-$(MAKE) -C $(KDIR) M=$(TOP) clean
	-$(MAKE) -C lib clean
	-$(MAKE) -C tools/testing/selftests/rdma_gift clean
