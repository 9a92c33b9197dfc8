# Two commands matter: `make demo` and `make test`. Both install what is missing first.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)

.PHONY: all deps configure build test demo bench clean format

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD_DIR)/build.ninja: | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

configure: $(BUILD_DIR)/build.ninja

build: deps configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) --timeout 600

demo: build
	@bash examples/wordcount/run-demo.sh $(BUILD_DIR)
	@echo
	@bash examples/infer-tabular/run-demo.sh $(BUILD_DIR)
	@echo
	@bash examples/train-ctr/run-demo.sh $(BUILD_DIR)
	@echo
	@bash examples/meta-ctr/run-demo.sh $(BUILD_DIR)

bench: build
	@bash bench/run-all.sh $(BUILD_DIR)

format:
	clang-format -i $$(git ls-files '*.h' '*.cc')

clean:
	rm -rf $(BUILD_DIR)
