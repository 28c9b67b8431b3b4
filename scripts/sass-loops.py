#!/usr/bin/env python3
"""Instruction mix of the loops in a SASS listing (cuobjdump -sass or nvdisasm output).

For every function whose name contains one of the given substrings (all functions when none is given), each loop
(a backward branch to a label at or before it) is reported with its length and its counts of FFMA, HMMA and the
load/store kinds, innermost loops first within a function. A kernel's inner loop issuing many instructions per
multiply-add, or local-memory traffic (LDL/STL) inside one, shows up here before any device time is spent.

    cuobjdump -sass build/libttl.so | scripts/sass-loops.py - fc_fused_step_tiles tt_fused_kernel
"""
import collections
import re
import sys

KINDS = ("FFMA", "HMMA", "LDS", "LDG", "LD", "LDGSTS", "LDL", "STS", "STG", "ST", "STL", "BAR")


def functions(lines):
    """(name, [instructions], labels) per function: labels (names, and instruction addresses for listings that
    branch to addresses) map to instruction indices."""
    name, body, labels = None, [], {}
    for line in lines:
        header = re.match(r"\s*Function\s*:\s*(\S+)", line) or re.match(r"^(\$?[\w$.]+):\s*$", line)
        if header and not line.startswith(".L"):
            if name is not None:
                yield name, body, labels
            name, body, labels = header.group(1), [], {}
            continue
        label = re.match(r"^\s*(\.L_?x?_?\w+):", line)
        if label:
            labels[label.group(1)] = len(body)
            continue
        ins = re.match(r"\s*/\*([0-9a-f]+)\*/\s+(.*?)\s*;", line)
        if ins and name is not None:
            labels["0x" + ins.group(1).lstrip("0").lower() if ins.group(1).strip("0") else "0x0"] = len(body)
            body.append(ins.group(2))
    if name is not None:
        yield name, body, labels


def opcode(ins):
    ins = re.sub(r"^@!?U?P\w+\s+", "", ins)
    return ins.split()[0].split(".")[0] if ins else ""


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    source = sys.stdin if sys.argv[1] == "-" else open(sys.argv[1])
    wanted = sys.argv[2:]
    for name, body, labels in functions(source.read().splitlines()):
        if wanted and not any(w in name for w in wanted):
            continue
        loops = []
        for end, ins in enumerate(body):
            target = re.search(r"BRA\s+`?\(?(\.L\w+|0x[0-9a-f]+)", ins)
            if target and target.group(1) in labels and labels[target.group(1)] <= end:
                loops.append((labels[target.group(1)], end))
        if not loops:
            continue
        print(f"== {name}")
        for start, end in sorted(loops, key=lambda se: se[1] - se[0]):
            mix = collections.Counter(opcode(i) for i in body[start : end + 1])
            kinds = " ".join(f"{k} {mix[k]}" for k in KINDS if mix[k])
            print(f"  loop {start:6d}-{end:6d}: {end - start + 1:5d} instructions; {kinds}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:  # a reader such as head stopped early
        pass
