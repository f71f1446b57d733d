"""S4D forward+backward time over sequence length on the current backend.

Usage:
    KERAS_BACKEND=torch python benchmarks/bench_s4d.py [--lengths 1024 4096]
        [--batch 8] [--channels 256] [--d-state 64] [--plain-torch]

Prints a table and writes `benchmarks/results/s4d_<backend>.json`.
`--plain-torch` also times a plain PyTorch implementation of the same kernel
(Vandermonde, complex dtype) and FFT convolution, side by side in the same
process, so the ratio is measured under the same load.
"""

import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import harness  # noqa: E402
from keras_ssm.layers import S4D  # noqa: E402


def plain_torch_step(batch, length, channels, d_state):
    """Forward+backward of S4D written directly in PyTorch (complex dtype)."""
    import torch

    modes = d_state // 2
    log_dt = torch.rand(channels) * (math.log(0.1) - math.log(0.001))
    log_dt = (log_dt + math.log(0.001)).requires_grad_()
    log_A_real = torch.full(
        (channels, modes), math.log(0.5), requires_grad=True
    )
    A_imag = (math.pi * torch.arange(modes)).repeat(channels, 1)
    A_imag.requires_grad_()
    C = torch.randn(channels, modes, dtype=torch.cfloat, requires_grad=True)
    D = torch.randn(channels, requires_grad=True)
    u = torch.randn(batch, length, channels)
    params = [log_dt, log_A_real, A_imag, C, D]

    def run():
        for p in params:
            p.grad = None
        dt = torch.exp(log_dt)
        A = -torch.exp(log_A_real) + 1j * A_imag
        dtA = A * dt[:, None]
        CB = C * (torch.exp(dtA) - 1.0) / A
        vandermonde = torch.exp(dtA[..., None] * torch.arange(length))
        k = 2 * torch.einsum("hn,hnl->hl", CB, vandermonde).real
        n = 2 * length
        x = u.transpose(1, 2)
        y = torch.fft.irfft(
            torch.fft.rfft(x, n=n) * torch.fft.rfft(k, n=n), n=n
        )[..., :length]
        y = y.transpose(1, 2) + u * D
        (y**2).mean().backward()

    return run


def main():
    parser = harness.sweep_parser(__doc__, harness.LENGTHS, batch=8)
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--d-state", type=int, default=64)
    parser.add_argument("--plain-torch", action="store_true")
    args = parser.parse_args()
    rows = []
    for length in args.lengths:
        x = (
            np.random.default_rng(0)
            .normal(size=(args.batch, length, args.channels))
            .astype("float32")
        )
        layer = S4D(d_state=args.d_state)
        inputs = keras.ops.convert_to_tensor(x)
        step = harness.make_train_step(layer, inputs)
        row = {
            "length": length,
            "seconds": harness.time_call(step, repeats=args.repeats),
            "peak_host_mb": harness.peak_host_memory_mb(),
        }
        if args.plain_torch:
            plain = plain_torch_step(
                args.batch, length, args.channels, args.d_state
            )
            row["plain_torch_seconds"] = harness.time_call(
                plain, repeats=args.repeats
            )
            row["ratio_vs_plain_torch"] = (
                row["seconds"] / row["plain_torch_seconds"]
            )
        rows.append(row)
        harness.print_table(rows[-1:], list(row))
    print()
    columns = list(rows[0])
    harness.print_table(rows, columns)
    exponent = harness.scaling_exponent(
        [r["length"] for r in rows], [r["seconds"] for r in rows]
    )
    print(f"time ~ L^{exponent:.2f} (L log L gives slightly above 1)")
    output = harness.output_path(args.output, "s4d")
    harness.write_json(
        output,
        {
            "benchmark": "s4d_forward_backward",
            "batch": args.batch,
            "channels": args.channels,
            "d_state": args.d_state,
            "rows": rows,
            "time_scaling_exponent": exponent,
        },
    )


if __name__ == "__main__":
    main()
