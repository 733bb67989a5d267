# trainyard's front door.
#   make deps   install the Debian packages the project needs (scripts/deps.sh)
#   make        build build/trainyard (and the examples' programs)
#   make test   unit tests (release and ASan+UBSan builds) and end-to-end tests
#   make demo   run the Fashion-MNIST PyTorchJob on this machine
#   make bench  run the benchmarks in bench/ (not part of the tests)
#   make fuzz   build the libFuzzer targets in tests/fuzz/ with clang and run each for
#               FUZZ_TIME seconds (default 60; not part of the tests)
# Every target runs the ones it needs first.

PY      := /usr/bin/python3
CC      ?= cc
PKGS    := libuv yaml-0.1 jansson sqlite3 libmicrohttpd gnutls libarchive libcurl
# libmicrohttpd is loaded at run time by the server (src/server/mhd.h): compiled against, not
# linked, so that every other exec of trainyard does not pay for GnuTLS; libcurl likewise
# (src/kube/kube_int.h).
LINK_PKGS := libuv yaml-0.1 jansson sqlite3
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-missing-field-initializers
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(LINK_PKGS) 2>/dev/null)
BASE_CFLAGS = -std=gnu17 $(WARN) -g -Isrc -D_GNU_SOURCE -MMD -MP $(PKG_CFLAGS)
LDLIBS  = $(PKG_LIBS) -ldl -lm

# `trainyard --version`: the git description of the tree built (a tag, or the commit).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)

REL_FLAGS  := -O2
ASAN_FLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

LIB_SRC  := $(shell find src -name '*.c' ! -name main.c | sort)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
EX_DIRS  := $(sort $(patsubst %/,%,$(dir $(wildcard examples/*/*.c))))
EX_BINS  := $(foreach d,$(EX_DIRS),build/examples/$(notdir $(d)))

REL_OBJ  := $(LIB_SRC:%.c=build/obj/%.o)
ASAN_OBJ := $(LIB_SRC:%.c=build/asan/obj/%.o)
UNIT_REL := $(UNIT_SRC:tests/unit/%.c=build/tests/%)
UNIT_ASAN:= $(UNIT_SRC:tests/unit/%.c=build/asan/tests/%)
DEPS_STAMP := build/.deps-installed

.PHONY: all deps test unit e2e demo bench asan clean fuzz
all: build/trainyard $(EX_BINS) build/examples/fashion-mnist-static
asan: build/asan/trainyard

deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/deps.sh
	bash scripts/deps.sh
	@mkdir -p build && touch $@

build/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(REL_FLAGS) -c $< -o $@
build/asan/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(ASAN_FLAGS) -c $< -o $@

# The version is compiled into cli.c only; the stamp changes (and cli.c is rebuilt) only
# when the version does.
build/version.stamp: FORCE
	@mkdir -p build; echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@
build/obj/src/cli/cli.o build/asan/obj/src/cli/cli.o: build/version.stamp
build/obj/src/cli/cli.o build/asan/obj/src/cli/cli.o: BASE_CFLAGS += -DTY_VERSION='"$(VERSION)"'
.PHONY: FORCE
FORCE:

# Schemas are embedded with .incbin, which -MMD does not see.
build/obj/src/api/kubeflow.o build/asan/obj/src/api/kubeflow.o: src/api/schemas/kubeflow.org_v1.json
build/obj/src/api/storage.o build/asan/obj/src/api/storage.o: src/api/schemas/core_v1_storage.json
build/obj/src/api/batch.o build/asan/obj/src/api/batch.o: src/api/schemas/batch_v1.json
build/obj/src/api/katib.o build/asan/obj/src/api/katib.o: src/api/schemas/kubeflow.org_v1beta1.json
build/obj/src/api/kueue.o build/asan/obj/src/api/kueue.o: src/api/schemas/kueue.x-k8s.io_v1beta1.json \
	src/api/schemas/scheduling.k8s.io_v1.json
build/obj/src/api/serving.o build/asan/obj/src/api/serving.o: \
	src/api/schemas/serving.kserve.io_v1beta1.json src/api/schemas/serving.kserve.io_v1alpha1.json
build/obj/src/auth/rbac.o build/asan/obj/src/auth/rbac.o: src/auth/bootstrap_rbac.json

build/libtrainyard.a: $(REL_OBJ)
	@rm -f $@; ar rcs $@ $^
build/asan/libtrainyard.a: $(ASAN_OBJ)
	@rm -f $@; ar rcs $@ $^

build/trainyard: build/obj/src/main.o build/libtrainyard.a
	$(CC) $(REL_FLAGS) -o $@ $^ $(LDLIBS)
build/asan/trainyard: build/asan/obj/src/main.o build/asan/libtrainyard.a
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(LDLIBS)

build/tests/%: tests/unit/%.c build/libtrainyard.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(REL_FLAGS) -Itests/unit -o $@ $< build/libtrainyard.a $(LDLIBS) -lcriterion
build/asan/tests/%: tests/unit/%.c build/asan/libtrainyard.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(ASAN_FLAGS) -Itests/unit -o $@ $< build/asan/libtrainyard.a $(LDLIBS) -lcriterion

# The Kubernetes client's driver, which tests/e2e/test_kube_client.py runs against a server.
build/tests/kube_driver: tests/kube/kube_driver.c build/libtrainyard.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(REL_FLAGS) -o $@ $< build/libtrainyard.a $(LDLIBS)
build/asan/tests/kube_driver: tests/kube/kube_driver.c build/asan/libtrainyard.a
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(ASAN_FLAGS) -o $@ $< build/asan/libtrainyard.a $(LDLIBS)

# Each examples/<name>/ with C sources is one program, build/examples/<name>.
.SECONDEXPANSION:
build/examples/%: $$(wildcard examples/%/*.c) $$(wildcard examples/%/*.h) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu17 $(WARN) -g -O2 -march=x86-64-v2 -o $@ $(filter %.c,$^) -lz -lm

# The Fashion-MNIST trainer linked statically (glibc, zlib from zlib1g-dev, libm): a program
# that needs nothing from its root filesystem, for the image the container tests build.
build/examples/fashion-mnist-static: $(wildcard examples/fashion-mnist/*.c) \
    $(wildcard examples/fashion-mnist/*.h) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu17 $(WARN) -g -O2 -march=x86-64-v2 -static -o $@ $(filter %.c,$^) -lz -lm

# The runtime's tests run the real binary as the pod shim, so both variants are built first.
# The runtime's tests start the real binary as the pod supervisor, hence the binaries.
# Criterion counts a test that leaks as passed (LeakSanitizer reports from its worker
# process), so the output is searched for sanitizer reports too.
unit: build/trainyard build/asan/trainyard $(UNIT_REL) $(UNIT_ASAN)
	@set -e; for t in $(UNIT_REL) $(UNIT_ASAN); do echo "== $$t"; \
	  $$t --jobs 2 > build/unit.log 2>&1 || { cat build/unit.log; exit 1; }; \
	  tail -n 1 build/unit.log; \
	  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' build/unit.log; then \
	    cat build/unit.log; echo "$$t: sanitizer report" >&2; exit 1; fi; done

# End-to-end: everything against the release binary, then the job, manifest and signal
# suites and the API server suite again against the ASan+UBSan binary (the examples are too slow to run twice).
E2E_ASAN := tests/e2e/test_run_jobs.py tests/e2e/test_experiments.py tests/e2e/test_run_manifests.py tests/e2e/test_run_signals.py \
            tests/e2e/test_server_api.py tests/e2e/test_server_jobs.py tests/e2e/test_server_recovery.py \
            tests/e2e/test_server_kubectl.py tests/e2e/test_server_kueue_api.py tests/e2e/test_server_apply.py \
            tests/e2e/test_kueue.py tests/e2e/test_virtual_nodes.py \
            tests/e2e/test_server_hostile.py tests/e2e/test_failures.py tests/e2e/test_cli.py tests/e2e/test_install.py \
            tests/e2e/test_run_inputs.py tests/e2e/test_run_endings.py tests/e2e/test_run_state.py \
            tests/e2e/test_server_bounds.py tests/e2e/test_pod_network.py tests/e2e/test_security.py \
            tests/e2e/test_batch_jobs.py tests/e2e/test_serving.py \
            tests/e2e/test_cluster_dns.py tests/e2e/test_simulate.py tests/e2e/test_images.py \
            tests/e2e/test_services.py tests/e2e/test_config_data.py tests/e2e/test_kube_client.py \
            tests/e2e/test_probes.py tests/e2e/test_resource_metrics.py \
            tests/e2e/test_service_accounts.py tests/e2e/test_cluster_mode.py
e2e: build/trainyard build/asan/trainyard $(EX_BINS) build/examples/fashion-mnist-static \
    build/tests/kube_driver build/asan/tests/kube_driver
	$(PY) -m pytest -q tests/e2e
	TRAINYARD_BIN=build/asan/trainyard $(PY) -m pytest -q $(E2E_ASAN)

test: unit e2e

# The demo trains from scratch every time: its checkpoints are the run's own (TRAINYARD_JOB_DIR).
demo: build/trainyard $(EX_BINS)
	build/trainyard run examples/fashion-mnist/pytorchjob.yaml

bench: all
	@set -e; for b in bench/*.sh; do echo "== $$b"; bash $$b; done

# libFuzzer targets: tests/fuzz/fuzz_<name>.c, built with clang against the sources they need,
# seeded from tests/fuzz/corpus/<name>/; what they discover goes to build/fuzz/corpus-<name>/.
FUZZ_CC    ?= clang
FUZZ_TIME  ?= 60
FUZZ_FLAGS  = -std=gnu17 $(WARN) -g -O1 -Isrc -D_GNU_SOURCE $(PKG_CFLAGS) \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_BASE  := $(sort $(wildcard src/base/*.c))

build/fuzz/fuzz_manifest: tests/fuzz/fuzz_manifest.c src/api/manifest.c $(FUZZ_BASE) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(LDLIBS)

# patch.c reads merge keys from the registry of kinds, which names every kind's schema, ops and
# printer: the whole of api.
build/fuzz/fuzz_apiquery: tests/fuzz/fuzz_apiquery.c $(sort $(wildcard src/api/*.c)) \
    $(FUZZ_BASE) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(LDLIBS)

build/fuzz/fuzz_k8sproto: tests/fuzz/fuzz_k8sproto.c src/api/k8sproto.c $(FUZZ_BASE) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(LDLIBS)

build/fuzz/fuzz_apirequest: tests/fuzz/fuzz_apirequest.c src/server/util.c $(FUZZ_BASE) \
    | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(LDLIBS)

build/fuzz/fuzz_dns: tests/fuzz/fuzz_dns.c src/net/dns.c src/net/endpoints.c $(FUZZ_BASE) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(LDLIBS)

# kubeconfig.c reads files through api/manifest.c; client.c is built for the watch framing
# (libcurl is only loaded by a client, which the target never makes).
build/fuzz/fuzz_kube: tests/fuzz/fuzz_kube.c src/kube/kubeconfig.c src/kube/retry.c \
    src/kube/client.c src/kube/curl.c src/api/manifest.c $(FUZZ_BASE) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(LDLIBS)

build/fuzz/fuzz_simtrace: tests/fuzz/fuzz_simtrace.c src/sim/trace.c $(FUZZ_BASE) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(filter %.c,$^) $(LDLIBS)

build/fuzz/fuzz_serving: tests/fuzz/fuzz_serving.c src/serving/kpa.c src/runtime/probe.c \
    $(FUZZ_BASE) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(LDLIBS)

build/fuzz/fuzz_hpo: tests/fuzz/fuzz_hpo.c $(sort $(wildcard src/hpo/*.c)) $(FUZZ_BASE) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(LDLIBS)

fuzz: build/fuzz/fuzz_manifest build/fuzz/fuzz_apiquery build/fuzz/fuzz_k8sproto \
    build/fuzz/fuzz_apirequest build/fuzz/fuzz_dns build/fuzz/fuzz_kube build/fuzz/fuzz_simtrace \
    build/fuzz/fuzz_serving build/fuzz/fuzz_hpo
	@mkdir -p build/fuzz/corpus-manifest build/fuzz/corpus-apiquery build/fuzz/corpus-k8sproto \
	    build/fuzz/corpus-apirequest build/fuzz/corpus-dns build/fuzz/corpus-kube \
	    build/fuzz/corpus-simtrace build/fuzz/corpus-serving build/fuzz/corpus-hpo
	build/fuzz/fuzz_manifest -max_total_time=$(FUZZ_TIME) -max_len=65536 -timeout=10 \
	    -dict=tests/fuzz/manifest.dict -artifact_prefix=build/fuzz/ \
	    build/fuzz/corpus-manifest tests/fuzz/corpus/manifest
	build/fuzz/fuzz_apiquery -max_total_time=$(FUZZ_TIME) -max_len=4096 -timeout=10 \
	    -artifact_prefix=build/fuzz/ build/fuzz/corpus-apiquery tests/fuzz/corpus/apiquery
	build/fuzz/fuzz_k8sproto -max_total_time=$(FUZZ_TIME) -max_len=4096 -timeout=10 \
	    -artifact_prefix=build/fuzz/ build/fuzz/corpus-k8sproto tests/fuzz/corpus/k8sproto
	build/fuzz/fuzz_apirequest -max_total_time=$(FUZZ_TIME) -max_len=4096 -timeout=10 \
	    -artifact_prefix=build/fuzz/ build/fuzz/corpus-apirequest tests/fuzz/corpus/apirequest
	build/fuzz/fuzz_dns -max_total_time=$(FUZZ_TIME) -max_len=4096 -timeout=10 \
	    -artifact_prefix=build/fuzz/ build/fuzz/corpus-dns tests/fuzz/corpus/dns
	build/fuzz/fuzz_kube -max_total_time=$(FUZZ_TIME) -max_len=8192 -timeout=10 \
	    -artifact_prefix=build/fuzz/ build/fuzz/corpus-kube tests/fuzz/corpus/kube
	build/fuzz/fuzz_simtrace -max_total_time=$(FUZZ_TIME) -max_len=8192 -timeout=10 \
	    -artifact_prefix=build/fuzz/ build/fuzz/corpus-simtrace tests/fuzz/corpus/simtrace
	build/fuzz/fuzz_serving -max_total_time=$(FUZZ_TIME) -max_len=4096 -timeout=10 \
	    -artifact_prefix=build/fuzz/ build/fuzz/corpus-serving tests/fuzz/corpus/serving
	build/fuzz/fuzz_hpo -max_total_time=$(FUZZ_TIME) -max_len=65536 -timeout=10 \
	    -artifact_prefix=build/fuzz/ build/fuzz/corpus-hpo tests/fuzz/corpus/hpo

clean:
	rm -rf build/obj build/asan build/tests build/examples build/trainyard build/libtrainyard.a \
	    build/fuzz

-include $(shell find build -name '*.d' 2>/dev/null)
