# phi4mac build entry points. `make help` lists them.
#
# Everything but `app` works on Linux and macOS; `app` needs a Mac (cgo with
# Apple's SDK for the Metal driver and the Fyne GUI).

GO          ?= go
BIN         ?= bin/phi4mac
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
APP         := dist/phi4mac.app

.PHONY: help deps build test test-short bench lint check-darwin check-metal app clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

deps: ## install the system packages the tests need (clang for the Metal emulator)
	@bash scripts/deps.sh

build: ## build the phi4mac binary into bin/
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/phi4mac

test: deps ## run every test (the README's test command)
	$(GO) test -timeout 20m ./...

test-short: ## run the fast tests only
	$(GO) test -short ./...

bench: ## run the Go benchmarks (kernels, tokenizer, end to end)
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

check-darwin: ## type-check all Go code for darwin/arm64 with cgo, and build the cgo-free part
	$(GO) run ./internal/tools/darwincheck ./...
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) build ./...

check-metal: deps ## compile every .metal file as C++ for OpenCL (syntax, types, address spaces)
	$(GO) test -run 'TestMetalSourcesCompile' ./metal/...

app: ## macOS only: build dist/phi4mac.app (menu-bar app bundle with the phi4mac:// URL scheme)
	@if [ "$$(uname -s)" != Darwin ]; then echo "make app needs a Mac (cgo against Apple's SDK)"; exit 1; fi
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/phi4mac
	rm -rf $(APP) && mkdir -p $(APP)/Contents/MacOS $(APP)/Contents/Resources
	cp $(BIN) $(APP)/Contents/MacOS/phi4mac
	sed 's/__VERSION__/$(VERSION)/g' Info.plist > $(APP)/Contents/Info.plist
	codesign --force --sign - $(APP)
	@echo "built $(APP)"

clean: ## remove build outputs
	rm -rf bin dist
