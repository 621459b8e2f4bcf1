"""Helpers of scripts/order-code.

    order-code.py faults BINARY FAULTS

FAULTS is `perf script --show-mmap-events -F addr` of a run of BINARY
recorded with `perf record -e page-faults -d` (directly, or under
qemu-user, which maps the binary the same way). Prints, once each, the
name of the function of BINARY at every fault inside its executable
mapping.

    order-code.py translate LIST BINARY

Prints the names BINARY gives the functions LIST names for another target:
a name carries hashes of its crate's build, target included, so the two
are matched demangled with the hashes dropped. A name several
instantiations share (a generic's) matches at most four of them.
"""

import bisect
import os
import re
import subprocess
import sys


def functions(binary):
    """(start, size, name) of every function, by start address."""
    out = subprocess.run([os.environ.get("NM", "nm"), "-S", "--defined-only", "--no-demangle", binary],
                         capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tTwW":
            found.append((int(fields[0], 16), int(fields[1], 16), fields[3]))
    return sorted(found)


def text_segment(binary):
    """File offset and virtual address of the executable segment."""
    out = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] == "LOAD" and "E" in fields[6:-1]:
            return int(fields[1], 16), int(fields[2], 16)
    raise SystemExit(f"order-code.py: {binary} has no executable segment")


def demangled(names):
    """Each name demangled by c++filt (Rust legacy and v0), hashes dropped."""
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, check=True).stdout
    return [re.sub(r"::h[0-9a-f]{16}$", "", re.sub(r"\[[0-9a-f]+\]", "", line)) for line in out.splitlines()]


def translate(listed, binary):
    names = [name for _, _, name in functions(binary)]
    by_key = {}
    for key, name in zip(demangled(names), names):
        by_key.setdefault(key, []).append(name)
    wanted = open(listed).read().split()
    seen = set()
    for key in demangled(wanted):
        for name in by_key.get(key, [])[:4]:
            if name not in seen:
                seen.add(name)
                print(name)


def faults(binary, recorded):
    funcs = functions(binary)
    starts = [start for start, _, _ in funcs]
    offset, vaddr = text_segment(binary)
    name = binary.rsplit("/", 1)[-1]
    # The code's mapping: the one of the binary at the executable segment's
    # page (r-xp natively; qemu-user maps it r--p and translates from it).
    mapping = None
    seen = set()
    for line in open(recorded):
        if "PERF_RECORD_MMAP" in line:
            m = re.search(r"\[(0x[0-9a-f]+)\((0x[0-9a-f]+)\) @ (0x[0-9a-f]+|0) .*\]: r..p (\S+)", line)
            if m and m.group(4).rsplit("/", 1)[-1] == name:
                start, length, pgoff = (int(m.group(i), 16) for i in (1, 2, 3))
                if pgoff == offset & ~0xFFF:
                    mapping = (start, start + length, pgoff)
            continue
        fields = line.split()
        if not fields or mapping is None:
            continue
        try:
            address = int(fields[0], 16)
        except ValueError:
            continue
        if not mapping[0] <= address < mapping[1]:
            continue
        at = address - mapping[0] + mapping[2] - offset + vaddr
        i = bisect.bisect_right(starts, at) - 1
        if i >= 0 and at < funcs[i][0] + max(funcs[i][1], 1) and funcs[i][2] not in seen:
            seen.add(funcs[i][2])
            print(funcs[i][2])


if __name__ == "__main__":
    {"faults": faults, "translate": translate}[sys.argv[1]](*sys.argv[2:4])
