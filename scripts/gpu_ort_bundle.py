"""Bundle onnxruntime-gpu for a lent GPU machine that reaches no registry and takes 64 MiB per call.

The wheel is 256 MB, most of it the CUDA provider's kernels for six GPU generations (sm_75 … sm_120). For
transport only, the kernels of every generation but the target's (default sm_90: H100/H200) are zeroed inside the
library's fat binaries — each entry's header stays, so the CUDA driver still finds and loads the target's kernels,
byte for byte the vendor's — and the unused TensorRT provider, C library and tooling are left out. The result
compresses to ~60 MB. Never install such a bundle anywhere but a machine of the target generation.

    python scripts/gpu_ort_bundle.py WHEEL OUT.tar.xz [--keep-arch 90]
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import tempfile
import zipfile
from pathlib import Path

FATBIN_MAGIC = struct.pack("<I", 0xBA55ED50)
DROP = ("capi/libonnxruntime_providers_tensorrt.so", "capi/libonnxruntime.so", "quantization/", "tools/",
        "datasets/")


def zero_other_archs(data: bytearray, keep_arch: int) -> dict[int, int]:
    """Zero the ELF (SASS) entries of every fat binary in ``data`` whose arch is not ``keep_arch``; bytes per arch
    kept or zeroed. A fat binary: 16-byte header (magic, version 1, header size 16, size), then entries (kind 2 =
    ELF, header size, payload size, arch at +28)."""
    seen: dict[int, int] = {}
    pos = 0
    while (start := data.find(FATBIN_MAGIC, pos)) >= 0:
        _, version, header, size = struct.unpack_from("<IHHQ", data, start)
        if version != 1 or header != 16 or start + header + size > len(data):
            pos = start + 4
            continue
        entry, end = start + header, start + header + size
        while entry < end:
            kind, _, entry_header, payload = struct.unpack_from("<HHIQ", data, entry)
            arch = struct.unpack_from("<I", data, entry + 28)[0]
            seen[arch] = seen.get(arch, 0) + payload
            if kind == 2 and arch != keep_arch:
                data[entry + entry_header : entry + entry_header + payload] = bytes(payload)
            entry += entry_header + payload
        pos = end
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--keep-arch", type=int, default=90)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with zipfile.ZipFile(args.wheel) as wheel:
            wheel.extractall(root)
        package = root / "onnxruntime"
        for pattern in DROP:
            for path in package.glob(pattern + ("*" if not pattern.endswith("/") else "")):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        library = package / "capi" / "libonnxruntime_providers_cuda.so"
        data = bytearray(library.read_bytes())
        seen = zero_other_archs(data, args.keep_arch)
        if args.keep_arch not in seen:
            raise SystemExit(f"no sm_{args.keep_arch} kernels in {library.name} (archs: {sorted(seen)})")
        library.write_bytes(data)
        print({f"sm_{a}": f"{b / 1e6:.1f} MB" + (" kept" if a == args.keep_arch else " zeroed")
               for a, b in seen.items()})
        names = [p.name for p in root.iterdir()]
        subprocess.run(["tar", "-cJf", str(args.out.resolve()), *names], check=True, cwd=root,
                       env={**os.environ, "XZ_OPT": "-9 -T2"})
    print(f"{args.out}: {args.out.stat().st_size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
