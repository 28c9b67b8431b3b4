#!/usr/bin/env python3
"""Writes golden.safetensors from the format description alone (docs/FORMAT.md), with the Python standard
library only, independently of libttl's writer. tests/cpu/test_safetensors.cpp builds the same content with
ttl_writer and checks that both files are identical byte for byte.

Content: a dense F32 tensor "dense" [2, 3]; a TT-FC layer "fc" (out modes [2, 2], in modes [1, 3], ranks
[1, 2, 1]) with a bias; a TT-conv layer "conv" (1x2 kernel, padding [0, 1], channel modes [2]:[2], ranks
[2, 1]) without bias; the metadata entry "format": "pt". Values: v_i = (i + 1) / 4 * (-1)^i, exact in F32.
"""
import json
import os
import struct


def values(n, start):
    return [(start + i + 1) / 4.0 * (-1) ** i for i in range(n)]


def layer(kind, out_modes, in_modes, ranks, bias, geometry=None):
    meta = {"kind": kind, "out_modes": out_modes, "in_modes": in_modes, "ranks": ranks}
    if geometry:
        meta.update(geometry)
    meta["bias"] = bias
    return json.dumps(meta, separators=(",", ":"))


tensors = {  # name -> (shape, values); stored F32
    "dense": ([2, 3], values(6, 0)),
    "fc.tt_core.0": ([1, 2, 1, 2], values(4, 10)),
    "fc.tt_core.1": ([2, 2, 3, 1], values(12, 20)),
    "fc.bias": ([4], values(4, 40)),
    "conv.tt_spatial": ([1, 2, 2], values(4, 50)),
    "conv.tt_core.0": ([2, 2, 2, 1], values(8, 60)),
}
metadata = {
    "format": "pt",
    "ttl.format_version": "1",
    "ttl.layer.fc": layer("fc", [2, 2], [1, 3], [1, 2, 1], True),
    "ttl.layer.conv": layer("conv", [2], [2], [2, 1], False,
                            {"kernel": [1, 2], "stride": [1, 1], "padding": [0, 1], "dilation": [1, 1]}),
}

header = {"__metadata__": dict(sorted(metadata.items()))}
data = b""
for name in sorted(tensors):  # all F32: the order is by name
    shape, vals = tensors[name]
    blob = struct.pack("<%df" % len(vals), *vals)
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
    data += blob
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * (-len(text) % 8)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.safetensors")
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + data)
print(out)
