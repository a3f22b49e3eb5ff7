# The two commands a fresh machine needs (see README.md):
#   make demo   run the guided demo on a throwaway PostgreSQL cluster
#   make test   install test dependencies, vet, and run the whole test suite
GO ?= go

.PHONY: demo test bench deps build

deps:
	bash scripts/install-deps.sh

demo: deps
	@echo "make demo: building pgqgo (the first build downloads and compiles its modules: a few minutes on a fresh machine)"
	$(GO) build -o bin/pgqgo ./cmd/pgqgo
	./bin/pgqgo demo

build:
	$(GO) build -o pgqgo ./cmd/pgqgo

test: deps
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || { echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m -parallel 4 ./...

# Side-by-side benchmarks against Skytools' PgQ C extension.
bench: deps
	$(GO) test ./schema -run '^$$' -bench . -benchtime 1x -count 3 -timeout 30m
	$(GO) test ./pgq -run '^$$' -bench . -benchtime 1x -count 3 -timeout 30m
