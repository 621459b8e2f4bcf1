"""Helper of scripts/order-code: the functions at the page faults of a run.

    order-code.py BINARY FAULTS

FAULTS is `perf script --show-mmap-events -F addr` of a run of BINARY
recorded with `perf record -e page-faults -d`. Prints, once each, the name
of the function of BINARY at every fault inside its executable mapping.
"""

import bisect
import re
import subprocess
import sys


def functions(binary):
    """(start, size, name) of every function, by start address."""
    out = subprocess.run(["nm", "-S", "--defined-only", "--no-demangle", binary],
                         capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tTwW":
            found.append((int(fields[0], 16), int(fields[1], 16), fields[3]))
    return sorted(found)


def text_delta(binary):
    """Virtual address minus file offset of the executable segment."""
    out = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] == "LOAD" and "E" in fields[6:-1]:
            return int(fields[2], 16) - int(fields[1], 16)
    raise SystemExit(f"order-code.py: {binary} has no executable segment")


def main(binary, faults):
    funcs = functions(binary)
    starts = [start for start, _, _ in funcs]
    delta = text_delta(binary)
    name = binary.rsplit("/", 1)[-1]
    mapping = None
    seen = set()
    mmap = re.compile(r"\[(0x[0-9a-f]+)\((0x[0-9a-f]+)\) @ (0x[0-9a-f]+|0) .*r-xp (\S+)")
    for line in open(faults):
        if "PERF_RECORD_MMAP" in line:
            m = mmap.search(line)
            if m and m.group(4).rsplit("/", 1)[-1] == name:
                start, length, offset = (int(m.group(i), 16) for i in (1, 2, 3))
                mapping = (start, start + length, offset)
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
        vaddr = address - mapping[0] + mapping[2] + delta
        i = bisect.bisect_right(starts, vaddr) - 1
        if i >= 0 and vaddr < funcs[i][0] + max(funcs[i][1], 1) and funcs[i][2] not in seen:
            seen.add(funcs[i][2])
            print(funcs[i][2])


if __name__ == "__main__":
    main(*sys.argv[1:3])
