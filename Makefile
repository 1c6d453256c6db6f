# CacheService: a distributed layer cache for container image builds.
# `make run` serves the embedded default; `make test` installs what the tests need and runs them all.

PORT ?= 50051
HTTP_PORT ?= 8080
DATA_DIR ?= ./.cacheservice
CONFIGURATION ?= Release
PREFIX ?= /usr/local

.PHONY: build run install test demo pack lint clean deps services bench bench-distributed bench-registry bench-build

# Node.js tools: buf (proto lint) and @grpc/grpc-js (the independent end-to-end client).
tools/node_modules/.package-lock.json: tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund --loglevel=error

deps: tools/node_modules/.package-lock.json

# Debian packages of the real services the tests start (redis-server, Ceph RGW).
services:
	scripts/install-services.sh

# Builds everything and publishes the `layercache` CLI as one file to ./bin/layercache.
build:
	@echo "building the solution ($(CONFIGURATION); about a minute the first time)..."
	dotnet build CacheService.sln -c $(CONFIGURATION) -nologo -clp:ErrorsOnly
	@echo "publishing the layercache CLI to ./bin/layercache..."
	dotnet publish src/CacheService.Cli -c $(CONFIGURATION) -nologo -clp:ErrorsOnly -o bin -p:PublishSingleFile=true -p:AllowedReferenceRelatedFileExtensions=none -p:PublishDocumentationFile=false --self-contained false

# dotnet run starts the server in the project directory, so relative paths are made absolute here.
run:
	@echo "building and starting the server (the first start builds it: up to a minute)..."
	dotnet run --project src/CacheService.Server -c $(CONFIGURATION) -- \
	  --CacheService:Server:GrpcPort=$(PORT) \
	  --CacheService:Server:HttpPort=$(HTTP_PORT) \
	  --CacheService:Storage:DataDirectory=$(abspath $(DATA_DIR))

# Puts ./bin/layercache on PATH ($(PREFIX)/bin), so the README's examples run as written.
install: build
	install -D -m 755 bin/layercache $(PREFIX)/bin/layercache
	@echo "installed $(PREFIX)/bin/layercache"

test: deps services build
	scripts/test.sh

# The client SDK and the libraries it references, as NuGet packages; REPOSITORY_URL=https://...
# records where the source lives (each package records its commit either way).
pack:
	for p in Core Api Client; do dotnet pack src/CacheService.$$p -c $(CONFIGURATION) -nologo -o artifacts $(if $(REPOSITORY_URL),-p:RepositoryUrl=$(REPOSITORY_URL)) || exit 1; done

# The CI-farm walkthrough: two builders, one server, a PR namespace (scripts/demo.sh).
demo: build
	scripts/demo.sh

# The server against the machine's own ceilings (gRPC health Check, the store written directly),
# one run each: a markdown table on stdout, JSON in bench/results/. Embedded engines here;
# bench-distributed runs Redis and Ceph RGW started as in the tests.
bench: build
	dotnet run --project bench/CacheService.Bench -c $(CONFIGURATION) --no-build -- embedded

bench-distributed: services build
	dotnet run --project bench/CacheService.Bench -c $(CONFIGURATION) --no-build -- distributed

# buildah's remote layer cache against Debian's docker-registry and the facade, side by side.
bench-registry: services build
	command -v docker-registry >/dev/null || apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
	dotnet run --project bench/CacheService.Bench -c $(CONFIGURATION) --no-build -- registry

# One Dockerfile built cold, warm on a fresh root and after an edit: layercache build (embedded,
# Redis + Ceph RGW) against buildah --layers with its cache in docker-registry, medians of 3 rounds.
bench-build: services build
	command -v docker-registry >/dev/null || apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
	dotnet run --project bench/CacheService.Bench -c $(CONFIGURATION) --no-build -- build

lint: deps
	dotnet format CacheService.sln --verify-no-changes --verbosity quiet
	cd protos && ../tools/node_modules/.bin/buf lint
	@echo "lint passed (dotnet format, buf lint)"

clean:
	dotnet clean CacheService.sln -nologo -v quiet
	rm -rf src/*/bin src/*/obj tests/*/bin tests/*/obj bench/*/bin bench/*/obj tools/node_modules bin artifacts test-artifacts
