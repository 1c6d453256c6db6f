#!/usr/bin/env python3
"""Independent reference implementation of cache keys v2 (docs/cache-key.md).

It shares no code with the C# core: it is written from the document alone, and it generates
testdata/cache-keys/v2.json, which the C# tests replay. If the two ever disagree, the document
is ambiguous or one side is wrong. Run: python3 docs/cache_key_v2_reference.py > testdata/cache-keys/v2.json
"""
import hashlib
import json
import struct

FILE_KEYWORDS = {"COPY", "ADD", "WORKDIR"}
LAYER_KEYWORDS = {"RUN", "COPY", "ADD"}
METADATA_KEYWORDS = {"ENV", "ARG", "USER", "SHELL", "LABEL", "EXPOSE", "CMD", "ENTRYPOINT", "STOPSIGNAL",
                     "HEALTHCHECK", "MAINTAINER", "ONBUILD"}


def field(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack(">I", len(data)) + data


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def normalize_platform(platform: str) -> str:
    parts = platform.lower().split("/")
    assert 2 <= len(parts) <= 3 and all(parts), platform
    os_, arch = parts[0], parts[1]
    variant = parts[2] if len(parts) == 3 else ""
    if os_ == "macos":
        os_ = "darwin"
    if arch == "i386":
        arch, variant = "386", ""
    elif arch in ("x86_64", "x86-64", "amd64"):
        arch = "amd64"
        if variant == "v1":
            variant = ""
    elif arch in ("aarch64", "arm64"):
        arch = "arm64"
        if variant in ("8", "v8", "v8.0"):
            variant = ""
        elif variant in ("9", "9.0", "v9.0"):
            variant = "v9"
    elif arch == "armhf":
        arch, variant = "arm", "v7"
    elif arch == "armel":
        arch, variant = "arm", "v6"
    elif arch == "arm":
        if variant in ("", "7"):
            variant = "v7"
        elif variant in ("5", "6", "8"):
            variant = "v" + variant
    return f"{os_}/{arch}/{variant}" if variant else f"{os_}/{arch}"


def keyword(normalized_instruction: str) -> str:
    word = normalized_instruction.split("\n", 1)[0]
    return word.split(" ", 1)[0]


def key_preimage(parent, platform, instruction, args, sources):
    platform = normalize_platform(platform)
    keyed = "" if keyword(instruction) in FILE_KEYWORDS else platform
    out = field("cacheservice/key/v2") + field(parent) + field(keyed) + field(instruction)
    ordered = sorted(args, key=lambda a: a[0].encode("utf-8"))
    out += u32(len(ordered))
    for name, value in ordered:
        out += field(name) + field(value)
    return out + field(sources or "")


def kind(instruction: str) -> str:
    word = keyword(instruction)
    if word in LAYER_KEYWORDS:
        return "layer"
    if word in METADATA_KEYWORDS:
        return "metadata"
    return "config"


def next_state(parent, instruction, key, diff_id):
    k = kind(instruction)
    if k == "layer":
        return digest(field("cacheservice/state/v2/layer") + field(parent) + field(diff_id))
    if k == "config":
        return digest(field("cacheservice/state/v2/config") + field(parent) + field(key))
    return parent


def image_state(image, platform):
    return digest(field("cacheservice/state/v2/image") + field(image) + field(normalize_platform(platform)))


def unpinned_state(reference, platform):
    return digest(field("cacheservice/state/v2/unpinned") + field(reference) + field(normalize_platform(platform)))


def sources_digest(entries):
    out = field("cacheservice/sources/v2") + u32(len(entries))
    for e in sorted(entries, key=lambda e: e["path"].encode("utf-8")):
        out += (field(e["path"]) + field(e["type"]) + field(e["mode"]) + field(e["uid"]) + field(e["gid"])
                + field(e["size"]) + field(e["content"] or "") + field(e["link"] or ""))
    return digest(out)


def combined(digests):
    out = field("cacheservice/sources/v2/combined") + u32(len(digests))
    for d in digests:
        out += field(d)
    return digest(out)


SCRATCH = digest(field("cacheservice/state/v2/scratch"))
BASE = "sha256:" + "ab" * 32
DIFF = "sha256:" + "cd" * 32
SRC = "sha256:" + "ef" * 32
KEY = "sha256:" + "01" * 32

# (name, parent, platform, raw instruction, normalized instruction, args, sources digest)
CASES = [
    ("first step after FROM scratch", SCRATCH, "linux/amd64", "COPY busybox /bin/busybox", "COPY busybox /bin/busybox", [], SRC),
    ("COPY leaves the platform out", SCRATCH, "linux/arm64", "COPY busybox /bin/busybox", "COPY busybox /bin/busybox", [], SRC),
    ("ADD leaves the platform out", BASE, "linux/s390x", "ADD https://example.com/a.tgz /a", "ADD https://example.com/a.tgz /a", [], None),
    ("WORKDIR leaves the platform out and counts the user", BASE, "linux/arm64", "WORKDIR /src", "WORKDIR /src", [("=user", "app")], None),
    ("first step after a pinned base", BASE, "linux/amd64", "RUN apt-get update", "RUN apt-get update", [], None),
    ("RUN counts the platform", BASE, "linux/arm64", "RUN apt-get update", "RUN apt-get update", [], None),
    ("RUN counts user and shell", BASE, "linux/amd64", "RUN make", "RUN make",
     [("=user", "1000:1000"), ("=shell", "SHELL [\"/bin/bash\",\"-c\"]"), ("PATH", "/usr/bin")], None),
    ("metadata step ENV", BASE, "linux/amd64", "ENV PATH=/usr/local/bin:$PATH", "ENV PATH=/usr/local/bin:$PATH", [], None),
    ("config step WORKDIR lower case", BASE, "linux/amd64", "workdir /src", "WORKDIR /src", [], None),
    ("layer step after a layer step", next_state(BASE, "RUN x", None, DIFF), "linux/amd64", "RUN make", "RUN make", [], None),
    ("step after a config step", next_state(BASE, "WORKDIR /a", KEY, None), "linux/amd64", "RUN make", "RUN make", [], None),
    ("keyword lower case", BASE, "linux/amd64", "run echo hi", "RUN echo hi", [], None),
    ("blanks folded outside quotes", BASE, "linux/amd64", "  RUN   echo    hi\t there  ", "RUN echo hi there", [], None),
    ("blanks kept inside quotes", BASE, "linux/amd64", "RUN echo \"a   b\" 'c\t d'", "RUN echo \"a   b\" 'c\t d'", [], None),
    ("continuation lines joined", BASE, "linux/amd64", "RUN apt-get update && \\\n    apt-get install -y curl", "RUN apt-get update && apt-get install -y curl", [], None),
    ("comment inside continuation dropped", BASE, "linux/amd64", "RUN a \\\n# note\n  b", "RUN a b", [], None),
    ("flags sorted", BASE, "linux/amd64", "COPY --link --chown=1:1 --chmod=644 a /a", "COPY --chmod=644 --chown=1:1 --link a /a", [], SRC),
    ("exec form canonical JSON", BASE, "linux/amd64", "RUN [ \"/bin/sh\" ,  \"-c\", \"echo  hi\" ]", "RUN [\"/bin/sh\",\"-c\",\"echo  hi\"]", [], None),
    ("shell form that looks like JSON but is not", BASE, "linux/amd64", "RUN ['a', 'b']", "RUN ['a', 'b']", [], None),
    ("exec form with escapes", BASE, "linux/amd64", "CMD [\"printf\", \"a\\tb\\\"c\\\\\"]", "CMD [\"printf\",\"a\\u0009b\\\"c\\\\\"]", [], None),
    ("heredoc body kept exactly", BASE, "linux/amd64", "RUN <<EOF\n  echo   a\n\tb  \nEOF", "RUN <<EOF\n  echo   a\n\tb  \nEOF", [], None),
    ("COPY heredoc leaves the platform out", BASE, "linux/arm64", "COPY <<EOF /a\nx\nEOF", "COPY <<EOF /a\nx\nEOF", [], None),
    ("one build arg", BASE, "linux/amd64", "RUN make", "RUN make", [("VERSION", "1.2.3")], None),
    ("build args sorted by UTF-8 bytes", BASE, "linux/amd64", "RUN make", "RUN make", [("b", "2"), ("B", "1"), ("a", "3"), ("=user", "u")], None),
    ("empty arg value", BASE, "linux/amd64", "RUN make", "RUN make", [("EMPTY", "")], None),
    ("arm64/v8 is arm64", BASE, "linux/arm64/v8", "RUN make", "RUN make", [], None),
    ("aarch64 is arm64", BASE, "Linux/AArch64", "RUN make", "RUN make", [], None),
    ("platform upper case is normalized", BASE, "Linux/AMD64", "RUN make", "RUN make", [], None),
    ("arm alone is arm/v7", BASE, "linux/arm", "RUN make", "RUN make", [], None),
    ("arm/v6 kept", BASE, "linux/arm/v6", "RUN make", "RUN make", [], None),
    ("COPY with sources digest", BASE, "linux/amd64", "COPY src/ /app/src/", "COPY src/ /app/src/", [], SRC),
    ("COPY without sources digest", BASE, "linux/amd64", "COPY src/ /app/src/", "COPY src/ /app/src/", [], None),
    ("unicode in instruction and args", BASE, "linux/amd64", "RUN echo \"héllo wörld ✓ 日本\"", "RUN echo \"héllo wörld ✓ 日本\"", [("GRÜSS", "𝄞")], None),
    ("instruction with no arguments", BASE, "linux/amd64", "HEALTHCHECK", "HEALTHCHECK", [], None),
    ("field boundaries: name/value split 1", BASE, "linux/amd64", "RUN x", "RUN x", [("AB", "C")], None),
    ("field boundaries: name/value split 2", BASE, "linux/amd64", "RUN x", "RUN x", [("A", "BC")], None),
    ("escaped backslash at end is not a continuation", BASE, "linux/amd64", "RUN echo a\\\\", "RUN echo a\\\\", [], None),
]

PLATFORMS = [
    ("linux/amd64", "linux/amd64"), ("LINUX/AMD64", "linux/amd64"), ("linux/x86_64", "linux/amd64"),
    ("linux/x86-64", "linux/amd64"), ("linux/amd64/v1", "linux/amd64"), ("linux/amd64/v3", "linux/amd64/v3"),
    ("linux/arm64/v8", "linux/arm64"), ("linux/aarch64", "linux/arm64"), ("linux/arm64/8", "linux/arm64"),
    ("linux/arm64/v8.0", "linux/arm64"), ("linux/arm64/9", "linux/arm64/v9"), ("linux/arm", "linux/arm/v7"),
    ("linux/arm/7", "linux/arm/v7"), ("linux/arm/6", "linux/arm/v6"), ("linux/armhf", "linux/arm/v7"),
    ("linux/armel", "linux/arm/v6"), ("linux/i386", "linux/386"), ("macos/arm64", "darwin/arm64"),
    ("linux/riscv64", "linux/riscv64"), ("windows/amd64", "windows/amd64"),
]

# Sources digests: entries as the document lists their fields, all strings.
ENTRY_A = {"path": "a.txt", "type": "file", "mode": "644", "uid": "0", "gid": "0", "size": "1", "content": SRC, "link": None}
ENTRY_DIR = {"path": "src", "type": "dir", "mode": "755", "uid": "0", "gid": "0", "size": "0", "content": None, "link": None}
ENTRY_LINK = {"path": "src/link", "type": "symlink", "mode": "777", "uid": "1000", "gid": "1000", "size": "0", "content": None,
              "link": "../a.txt"}
ENTRY_UNICODE = {"path": "src/é", "type": "file", "mode": "4755", "uid": "0", "gid": "0", "size": "12", "content": DIFF, "link": None}
SOURCES = [
    ("no entries", []),
    ("one file", [ENTRY_A]),
    ("a directory, a link and a file, given out of order", [ENTRY_LINK, ENTRY_A, ENTRY_UNICODE, ENTRY_DIR]),
]


def main():
    vectors = []
    for name, parent, platform, raw, normalized, args, sources in CASES:
        preimage = key_preimage(parent, platform, normalized, args, sources)
        vectors.append({
            "name": name,
            "parentState": parent,
            "platform": platform,
            "instruction": raw,
            "normalizedInstruction": normalized,
            "args": [[n, v] for n, v in args],
            "sourcesDigest": sources,
            "preimageHex": preimage.hex(),
            "key": digest(preimage),
            "kind": kind(normalized),
        })
    states = []
    for name, instruction, input_ in [("layer step", "RUN x", DIFF), ("config step", "WORKDIR /a", KEY),
                                      ("metadata step", "LABEL a=b", KEY), ("unknown keyword is config", "FROBNICATE x", KEY)]:
        layer = kind(instruction) == "layer"
        states.append({"name": name, "instruction": instruction, "parentState": BASE, "input": input_,
                       "state": next_state(BASE, instruction, None if layer else input_, input_ if layer else None)})
    images = [{"image": BASE, "platform": p, "state": image_state(BASE, p)} for p in ("linux/amd64", "linux/arm64/v8", "linux/arm64")]
    unpinned = [{"reference": "alpine:latest", "platform": "linux/amd64", "state": unpinned_state("alpine:latest", "linux/amd64")}]
    print(json.dumps({
        "version": "cacheservice/key/v2",
        "scratchState": SCRATCH,
        "keys": vectors,
        "states": states,
        "platforms": [{"given": g, "normalized": normalize_platform(g)} for g, _ in PLATFORMS],
        "imageStates": images,
        "unpinnedStates": unpinned,
        "sources": [{"name": n, "entries": e, "digest": sources_digest(e)} for n, e in SOURCES],
        "combined": [{"digests": [SRC, DIFF], "digest": combined([SRC, DIFF])}],
    }, indent=2, ensure_ascii=False))
    for given, expected in PLATFORMS:
        assert normalize_platform(given) == expected, (given, normalize_platform(given), expected)


if __name__ == "__main__":
    main()
