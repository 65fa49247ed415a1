# Convenience wrapper around CMake; the real build is CMakeLists.txt.
BUILD ?= build
JOBS ?= 2

.PHONY: all test unit integration asan clean docs

all:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

test: all
	ctest --test-dir $(BUILD) --output-on-failure

unit: all
	ctest --test-dir $(BUILD) --output-on-failure -L unit

integration: all
	ctest --test-dir $(BUILD) --output-on-failure -L integration

asan:
	cmake -S . -B build-asan -DSR_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build build-asan -j$(JOBS)
	ctest --test-dir build-asan --output-on-failure -L unit
	ctest --test-dir build-asan --output-on-failure -R 'integration_test_(store|serve_fuzz)$$'

docs: all
	$(BUILD)/streamrec config --markdown > docs/CONFIGURATION.md

clean:
	rm -rf $(BUILD) build-asan
