"""Data of the Long Range Arena tasks: generators, loaders, downloaders.

Every loader returns NumPy arrays `(x, y)` per split in a dict
`{"train": (x, y), "validation": (x, y), "test": (x, y)}`:

- token tasks (ListOps, Text, Retrieval): int32 token ids, 0 is padding;
  Retrieval's `x` is a pair `(x1, x2)`;
- pixel tasks (Image, Pathfinder, sequential MNIST): float32 sequences of
  shape (examples, pixels, 1).
"""
