#!/usr/bin/env python3
"""Checks libttl model files against Python's `safetensors` library, and makes dense test models with it.

  check_safetensors.py check TT.safetensors [--dense DENSE.safetensors] [--max-err E] [--expect-layers N]
      Parses the file twice: with the format rules of docs/FORMAT.md in plain Python (header length and padding,
      offsets that tile the buffer, metadata strings, every TT layer's cores, ranks and bias), and with
      `safetensors` (torch when installed, else numpy), and checks that both give the same tensors bit for bit
      and the same metadata. With --dense, rebuilds every TT layer and prints its relative error against the
      dense weight "<layer>.weight" (or "<layer>"); --max-err E fails above E.
  check_safetensors.py make-dense OUT.safetensors
      Writes a small model with `safetensors.torch.save_file` (torch required): Linear and Conv2d weights of
      known TT ranks plus relative noise 1e-4, their biases, an F16 and a BF16 tensor, an I64 scalar.
  check_safetensors.py roundtrip --ttl path/to/ttl WORK_DIR
      make-dense, `ttl compress --eps 0.01`, check (with --dense), `ttl info --json` (expected ranks),
      `ttl verify --json` (its errors agree with the ones computed here). What the device machine runs.

Exit status 0 when every check passes, 1 otherwise (one "FAIL: ..." line says why). --no-library skips the
`safetensors` side where it is not installed (the plain-Python checks still run); it prints a warning.
The plain-Python reconstruction is meant for test-sized models, not for production weights.
"""
import argparse
import json
import math
import os
import random
import struct
import subprocess
import sys

MAX_HEADER = 100_000_000
DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2,
              "I32": 4, "U32": 4, "I64": 8, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1}


class CheckError(Exception):
    pass


def require(cond, msg):
    if not cond:
        raise CheckError(msg)


# ---- plain-Python reading ----------------------------------------------------------------------------------------

def parse_file(path):
    """Returns (header dict without __metadata__, metadata dict, data bytes), checking the format rules."""
    with open(path, "rb") as f:
        blob = f.read()
    require(len(blob) >= 8, f"{path}: {len(blob)} bytes, no header length")
    (n,) = struct.unpack("<Q", blob[:8])
    require(n <= MAX_HEADER and n <= len(blob) - 8, f"{path}: header length {n} out of range")
    text = blob[8:8 + n]
    require(n % 8 == 0, f"{path}: header length {n} is not padded to a multiple of 8")
    header = json.loads(text.decode("utf-8"))
    require(isinstance(header, dict), "header is not an object")
    meta = header.pop("__metadata__", {})
    require(isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values()), "metadata not strings")
    data = blob[8 + n:]
    end = 0
    for name, t in sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
        require(t["dtype"] in DTYPE_SIZE, f"tensor {name!r}: dtype {t['dtype']}")
        numel = math.prod(t["shape"])
        b, e = t["data_offsets"]
        require(b == end, f"tensor {name!r}: starts at {b}, previous tensor ends at {end}")
        require(e - b == numel * DTYPE_SIZE[t["dtype"]], f"tensor {name!r}: size does not match shape")
        end = e
    require(end == len(data), f"data buffer has {len(data) - end} bytes after the last tensor")
    return header, meta, data


def values(header, data, name):
    """A tensor's elements as Python floats/ints (flat, row-major)."""
    t = header[name]
    b, e = t["data_offsets"]
    raw = data[b:e]
    dt = t["dtype"]
    if dt == "F32":
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    if dt == "F64":
        return list(struct.unpack(f"<{len(raw) // 8}d", raw))
    if dt == "F16":
        return list(struct.unpack(f"<{len(raw) // 2}e", raw))
    if dt == "BF16":
        return [struct.unpack("<f", b"\0\0" + raw[i:i + 2])[0] for i in range(0, len(raw), 2)]
    if dt == "I64":
        return list(struct.unpack(f"<{len(raw) // 8}q", raw))
    return list(raw)


# ---- TT layers ---------------------------------------------------------------------------------------------------

def layers_of(header, meta):
    """{layer name: (metadata dict, [part names in packing order], bias name or None)}, checked."""
    out = {}
    names = [k[len("ttl.layer."):] for k in meta if k.startswith("ttl.layer.")]
    if names:
        require(meta.get("ttl.format_version") == "1", "ttl.format_version is not \"1\"")
    for name in names:
        m = json.loads(meta["ttl.layer." + name])
        kind = m["kind"]
        require(kind in ("fc", "conv"), f"layer {name!r}: kind {kind!r}")
        om, im, r = m["out_modes"], m["in_modes"], m["ranks"]
        d = len(om)
        require(len(im) == d and len(r) == d + 1 and r[d] == 1, f"layer {name!r}: modes/ranks lengths")
        parts, shapes = [], []
        if kind == "conv":
            parts.append(f"{name}.tt_spatial")
            shapes.append([m["kernel"][0], m["kernel"][1], r[0]])
        else:
            require(r[0] == 1, f"layer {name!r}: ranks[0] != 1")
        for k in range(d):
            parts.append(f"{name}.tt_core.{k}")
            shapes.append([r[k], om[k], im[k], r[k + 1]])
        for p, s in zip(parts, shapes):
            require(p in header, f"layer {name!r}: tensor {p!r} missing")
            require(header[p]["shape"] == s, f"layer {name!r}: {p!r} is {header[p]['shape']}, expected {s}")
            require(header[p]["dtype"] == "F32", f"layer {name!r}: {p!r} is not F32")
        for a, b in zip(parts, parts[1:]):
            require(header[a]["shape"][-1] == header[b]["shape"][0], f"layer {name!r}: ranks do not chain")
        bias = None
        if m.get("bias"):
            bias = f"{name}.bias"
            require(header.get(bias, {}).get("shape") == [math.prod(om)], f"layer {name!r}: bias shape")
        out[name] = (m, parts, bias)
    return out


def reconstruct(header, data, layer):
    """The dense weight of a TT layer, flat row-major ([M, N] or [S, C, kh, kw]), in plain Python (double)."""
    m, parts, _ = layer
    om, im, r = m["out_modes"], m["in_modes"], m["ranks"]
    d = len(om)
    cores = [values(header, data, p) for p in parts]
    spatial = cores.pop(0) if m["kind"] == "conv" else None
    M, N = math.prod(om), math.prod(im)

    def element(i, j, left):
        ik, jk = [0] * d, [0] * d
        for k in reversed(range(d)):
            ik[k], i = i % om[k], i // om[k]
            jk[k], j = j % im[k], j // im[k]
        v = left
        for k in range(d):
            g, ra, rb = cores[k], r[k], r[k + 1]
            base = lambda a: ((a * om[k] + ik[k]) * im[k] + jk[k]) * rb
            v = [sum(v[a] * g[base(a) + c] for a in range(ra)) for c in range(rb)]
        return v[0]

    if spatial is None:
        return [element(i, j, [1.0]) for i in range(M) for j in range(N)]
    kh, kw = m["kernel"]
    out = [0.0] * (M * N * kh * kw)
    for pq in range(kh * kw):
        left = spatial[pq * r[0]:(pq + 1) * r[0]]
        for s in range(M):
            for c in range(N):
                out[(s * N + c) * kh * kw + pq] = element(s, c, left)
    return out


def rel_err(a, ref):
    num = sum((x - y) ** 2 for x, y in zip(a, ref))
    den = sum(y * y for y in ref)
    return math.sqrt(num / den) if den else (0.0 if num == 0 else math.inf)


# ---- the safetensors library -------------------------------------------------------------------------------------

def library_load(path):
    """(tensors as flat lists, metadata) through `safetensors`; None when it is not installed."""
    try:
        import safetensors
    except ImportError:
        return None
    try:
        import torch  # noqa: F401
        framework = "pt"
    except ImportError:
        framework = "np"
    tensors = {}
    with safetensors.safe_open(path, framework=framework) as f:
        meta = f.metadata() or {}
        for name in f.keys():
            t = f.get_tensor(name)
            if framework == "pt":
                import torch
                t = t.to(torch.float64) if t.is_floating_point() else t
                tensors[name] = (list(t.shape), t.flatten().tolist())
            else:
                tensors[name] = (list(t.shape), t.astype("float64").flatten().tolist()
                                 if t.dtype.kind == "f" else t.flatten().tolist())
    return tensors, meta


# ---- commands ----------------------------------------------------------------------------------------------------

def cmd_check(args):
    header, meta, data = parse_file(args.file)
    layers = layers_of(header, meta)
    print(f"{args.file}: {len(header)} tensors, {len(layers)} TT layers, metadata keys {sorted(meta)}")
    if args.expect_layers is not None:
        require(len(layers) == args.expect_layers, f"{len(layers)} TT layers, expected {args.expect_layers}")
    loaded = library_load(args.file)
    if loaded is None:
        require(args.no_library, "Python's safetensors is not installed (use --no-library to skip it)")
        print("WARNING: safetensors not installed: checked with plain Python only")
    else:
        tensors, lib_meta = loaded
        require(lib_meta == meta, "safetensors reads other metadata")
        require(sorted(tensors) == sorted(header), "safetensors lists other tensors")
        for name, (shape, vals) in tensors.items():
            require(shape == header[name]["shape"], f"tensor {name!r}: safetensors shape {shape}")
            ours = values(header, data, name)
            same = all((a == b) or (a != a and b != b) for a, b in zip(vals, ours)) and len(vals) == len(ours)
            require(same, f"tensor {name!r}: safetensors reads other values")
        print(f"safetensors loads all {len(tensors)} tensors and the metadata identically")
    if args.dense:
        dh, _, dd = parse_file(args.dense)
        dense_lib = library_load(args.dense)
        if dense_lib is None:
            require(args.no_library, "Python's safetensors is not installed")
        for name, layer in sorted(layers.items()):
            ref_name = f"{name}.weight" if f"{name}.weight" in dh else name
            require(ref_name in dh, f"layer {name!r}: no dense tensor in {args.dense}")
            ref = dense_lib[0][ref_name][1] if dense_lib else values(dh, dd, ref_name)
            err = rel_err(reconstruct(header, data, layer), ref)
            print(f"layer {name} ({layer[0]['kind']}): ranks {layer[0]['ranks']} rel_err {err:.3e} vs {ref_name}")
            if args.max_err is not None:
                require(err <= args.max_err, f"layer {name!r}: rel_err {err:.3e} above {args.max_err}")
    return 0


def tt_dense(om, im, ranks, rng, spatial=None):
    """A dense weight from random TT cores (flat list), via reconstruct()."""
    header, blobs, off = {}, b"", 0
    parts = []
    if spatial:
        parts.append(("s", [spatial[0], spatial[1], ranks[0]]))
    for k in range(len(om)):
        parts.append((f"c{k}", [ranks[k], om[k], im[k], ranks[k + 1]]))
    for name, shape in parts:
        n = math.prod(shape)
        blob = struct.pack(f"<{n}f", *[rng.choice((-1, 1)) * rng.uniform(0.1, 1.0) for _ in range(n)])
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs += blob
        off += len(blob)
    meta = {"kind": "conv" if spatial else "fc", "out_modes": om, "in_modes": im, "ranks": ranks}
    if spatial:
        meta["kernel"] = list(spatial)
    return reconstruct(header, blobs, (meta, [p for p, _ in parts], None))


EXPECTED = {  # layer: (kind, out modes, in modes, ranks, dense shape); modes are what `ttl compress` picks
    "fc": ("fc", [4, 4, 4], [4, 4, 8], [1, 3, 3, 1], [64, 128]),
    "conv": ("conv", [2, 4, 4], [4, 4, 4], [2, 3, 3, 1], [32, 64, 3, 3]),
}


def cmd_make_dense(args):
    try:
        import torch
        from safetensors.torch import save_file
    except ImportError:
        raise CheckError("make-dense needs torch and safetensors")
    rng = random.Random(1234)
    sd = {}
    for name, (kind, om, im, ranks, shape) in EXPECTED.items():
        w = tt_dense(om, im, ranks, rng, spatial=shape[2:] if kind == "conv" else None)
        rms = math.sqrt(sum(x * x for x in w) / len(w))
        w = [x + 1e-4 * rms * rng.uniform(-1, 1) for x in w]
        sd[f"{name}.weight"] = torch.tensor(w, dtype=torch.float32).reshape(shape)
        sd[f"{name}.bias"] = torch.tensor([rng.uniform(-1, 1) for _ in range(shape[0])], dtype=torch.float32)
    sd["head.weight"] = torch.tensor([[0.5, -1.0, 2.0]] * 5, dtype=torch.float16)
    sd["emb"] = torch.tensor([[1.0, 2.0, 3.0, 4.0]] * 4, dtype=torch.bfloat16)
    sd["bn.num_batches_tracked"] = torch.tensor(12345, dtype=torch.int64)
    save_file(sd, args.out, metadata={"format": "pt"})
    print(f"wrote {args.out} with safetensors.torch.save_file")
    return 0


def run(cmd):
    print("$ " + " ".join(cmd))
    p = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write(p.stdout)
    sys.stderr.write(p.stderr)
    require(p.returncode == 0, f"{' '.join(cmd)} exited with {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def cmd_roundtrip(args):
    os.makedirs(args.work_dir, exist_ok=True)
    dense = os.path.join(args.work_dir, "dense.safetensors")
    tt = os.path.join(args.work_dir, "tt.safetensors")
    cmd_make_dense(argparse.Namespace(out=dense))
    # libttl loads the file Python wrote: `ttl info` on the dense file, then compress it
    run([args.ttl, "info", dense])
    run([args.ttl, "compress", dense, tt, "--eps", "0.01"])
    cmd_check(argparse.Namespace(file=tt, dense=dense, max_err=0.01, expect_layers=2, no_library=False))
    info = json.loads(run([args.ttl, "info", tt, "--json"]))
    for layer in info:
        kind, om, im, ranks, _ = EXPECTED[layer["name"]]
        got = (layer["kind"], layer["out_modes"], layer["in_modes"], layer["ranks"])
        require(got == (kind, om, im, ranks), f"layer {layer['name']}: {got}, expected {(kind, om, im, ranks)}")
    header, meta, data = parse_file(tt)
    layers = layers_of(header, meta)
    dh, _, dd = parse_file(dense)
    for v in json.loads(run([args.ttl, "verify", dense, tt, "--json"])):
        ref = values(dh, dd, v["dense_tensor"])
        ours = rel_err(reconstruct(header, data, layers[v["name"]]), ref)
        require(abs(ours - v["rel_err"]) <= 1e-3 * ours + 1e-7,
                f"layer {v['name']}: ttl verify says {v['rel_err']:.6e}, Python {ours:.6e}")
    for name in ("head.weight", "emb", "bn.num_batches_tracked"):
        require(values(header, data, name) == values(dh, dd, name), f"tensor {name!r} not copied exactly")
    print("roundtrip: OK")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("file")
    c.add_argument("--dense")
    c.add_argument("--max-err", type=float)
    c.add_argument("--expect-layers", type=int)
    c.add_argument("--no-library", action="store_true")
    m = sub.add_parser("make-dense")
    m.add_argument("out")
    r = sub.add_parser("roundtrip")
    r.add_argument("--ttl", required=True)
    r.add_argument("work_dir")
    args = ap.parse_args()
    try:
        return {"check": cmd_check, "make-dense": cmd_make_dense, "roundtrip": cmd_roundtrip}[args.command](args)
    except (CheckError, OSError, ValueError, KeyError, json.JSONDecodeError, struct.error) as e:
        print(f"check_safetensors: FAIL: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
