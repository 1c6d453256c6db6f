#!/usr/bin/env python3
"""Independent reference implementation of cache keys v1 (docs/cache-key.md).

It shares no code with the C# core: it is written from the document alone, and it generates
testdata/cache-keys/v1.json, which the C# tests replay. If the two ever disagree, the document
is ambiguous or one side is wrong. Run: python3 docs/cache_key_v1_reference.py > testdata/cache-keys/v1.json
"""
import hashlib
import json
import struct

SCRATCH = None


def field(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack(">I", len(data)) + data


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def key_preimage(parent, platform, instruction, args, sources):
    out = field("cacheservice/key/v1") + field(parent) + field(platform.lower()) + field(instruction)
    ordered = sorted(args, key=lambda a: a[0].encode("utf-8"))
    out += struct.pack(">I", len(ordered))
    for name, value in ordered:
        out += field(name) + field(value)
    return out + field(sources or "")


def layer_state(parent, diff_id):
    return digest(field("cacheservice/state/v1/layer") + field(parent) + field(diff_id))


def config_state(parent, key):
    return digest(field("cacheservice/state/v1/config") + field(parent) + field(key))


SCRATCH = digest(field("cacheservice/state/v1/scratch"))
BASE = "sha256:" + "ab" * 32
DIFF = "sha256:" + "cd" * 32
SRC = "sha256:" + "ef" * 32

# (name, parent, platform, raw instruction, normalized instruction, args, sources digest)
CASES = [
    ("first step after FROM scratch", SCRATCH, "linux/amd64", "COPY busybox /bin/busybox", "COPY busybox /bin/busybox", [], SRC),
    ("first step after a pinned base", BASE, "linux/amd64", "RUN apt-get update", "RUN apt-get update", [], None),
    ("config-only step ENV", BASE, "linux/amd64", "ENV PATH=/usr/local/bin:$PATH", "ENV PATH=/usr/local/bin:$PATH", [], None),
    ("config-only step WORKDIR", BASE, "linux/amd64", "workdir /src", "WORKDIR /src", [], None),
    ("layer step after a layer step", layer_state(BASE, DIFF), "linux/amd64", "RUN make", "RUN make", [], None),
    ("step after a config-only step", config_state(BASE, "sha256:" + "01" * 32), "linux/amd64", "RUN make", "RUN make", [], None),
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
    ("one build arg", BASE, "linux/amd64", "RUN make", "RUN make", [("VERSION", "1.2.3")], None),
    ("build args sorted by UTF-8 bytes", BASE, "linux/amd64", "RUN make", "RUN make", [("b", "2"), ("B", "1"), ("a", "3")], None),
    ("empty arg value", BASE, "linux/amd64", "RUN make", "RUN make", [("EMPTY", "")], None),
    ("platform with variant", BASE, "linux/arm64/v8", "RUN make", "RUN make", [], None),
    ("platform upper case is normalized", BASE, "Linux/AMD64", "RUN make", "RUN make", [], None),
    ("COPY with sources digest", BASE, "linux/amd64", "COPY src/ /app/src/", "COPY src/ /app/src/", [], SRC),
    ("COPY without sources digest", BASE, "linux/amd64", "COPY src/ /app/src/", "COPY src/ /app/src/", [], None),
    ("unicode in instruction and args", BASE, "linux/amd64", "RUN echo \"héllo wörld ✓ 日本\"", "RUN echo \"héllo wörld ✓ 日本\"", [("GRÜSS", "𝄞")], None),
    ("instruction with no arguments", BASE, "linux/amd64", "HEALTHCHECK", "HEALTHCHECK", [], None),
    ("field boundaries: name/value split 1", BASE, "linux/amd64", "RUN x", "RUN x", [("AB", "C")], None),
    ("field boundaries: name/value split 2", BASE, "linux/amd64", "RUN x", "RUN x", [("A", "BC")], None),
    ("escaped backslash at end is not a continuation", BASE, "linux/amd64", "RUN echo a\\\\", "RUN echo a\\\\", [], None),
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
        })
    states = [
        {"name": "layer step", "kind": "layer", "parentState": BASE, "input": DIFF, "state": layer_state(BASE, DIFF)},
        {"name": "config-only step", "kind": "config", "parentState": BASE, "input": "sha256:" + "01" * 32,
         "state": config_state(BASE, "sha256:" + "01" * 32)},
    ]
    print(json.dumps({"version": "cacheservice/key/v1", "scratchState": SCRATCH, "keys": vectors, "states": states},
                     indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
