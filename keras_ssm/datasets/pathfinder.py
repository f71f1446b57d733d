"""Pathfinder / Path-X: are the two dots joined by one dashed contour?

The generator follows the Pathfinder procedure (Linsley et al., 2018; LRA
uses it at 32 px and Path-X at 128 px): each image holds two long contours
made of short dashes with gaps between them, a few short distractor
contours, and two marked dots (discs) at contour ends.

- positive (label 1): both dots sit on the two ends of the same contour;
- negative (label 0): one dot on an end of each long contour.

Both classes therefore contain the same number of contours and dots of the
same lengths; only the connection differs. Each contour is a random walk of
`contour_length` dashes whose direction turns by at most `max_turn` radians
per dash; contours keep at least `separation` pixels from each other, so
that "connected" is unambiguous. Strokes are round-capped segments drawn
with anti-aliased edges. Labels alternate positive/negative in a seeded
shuffle, so each split is balanced.

Speed (one CPU core, images per second at 32 / 64 / 128 px, default
arguments): 353 / 419 / 217, against 3-5 / 8-9 / 3-5 for the first version,
which tested each probe point against a NumPy window of an ownership map
and stamped every stroke as hundreds of small discs at 4x resolution. Now
the random walks run on Python scalars against a bytearray of blocked
pixels, and all dashes of an image are rasterised in one vectorised pass
(`_distances`), which also marks the pixels a finished contour blocks.

The loader reads the released LRA data: PNG images listed by the text
files in `<difficulty>/metadata/*.npy` (whitespace-separated rows
`subdir filename ... label ...`, the label in the fourth field).
"""

import math
import os
import random

import keras
import numpy as np

from keras_ssm.datasets.limits import check_examples_memory
from keras_ssm.datasets.limits import check_sizes
from keras_ssm.utils.validation import check_class_labels
from keras_ssm.utils.validation import check_int

NUM_CLASSES = 2  # 1: the dots are connected
# Bytes an example needs beside its pixels while generating: its label,
# seed and dot coordinates.
_EXAMPLE_OVERHEAD = 40


def _scale(image_size):
    """Stroke geometry in output pixels for a given image size."""
    unit = image_size / 32.0
    return {
        "dash": 1.6 * unit,
        "gap": 1.0 * unit,
        "width": 1.0 * max(1.0, unit / 2),
        "dot_radius": 1.3 * max(1.0, unit / 2),
        "separation": 5.5 * max(1.0, unit / 2),
        "margin": 2.0 * max(1.0, unit / 2),
    }


def _distances(segments, size, reach):
    """Pixel-centre distances to each segment, within `reach` of it.

    All segments are handled at once: each gets a square window of the same
    side around it, and every window pixel its distance to the segment.

    Args:
        segments: float array (n, 4) of `(x0, y0, x1, y1)`; a point is a
            segment of length zero.
        size: image side; window pixels outside the image are dropped.
        reach: how far from a segment distances are needed.

    Returns:
        `(ys, xs, d)`: flat pixel rows, columns and distances.
    """
    a, b = segments[:, :2], segments[:, 2:]
    length = float(np.max(np.abs(b - a), initial=0.0))
    side = int(math.ceil(length + 2 * reach)) + 2
    origin = np.floor(np.minimum(a, b) - reach).astype("int64")
    grid = np.arange(side)
    xs = origin[:, 0, None, None] + grid[None, None, :]
    ys = origin[:, 1, None, None] + grid[None, :, None]
    xs, ys = np.broadcast_arrays(xs, ys)
    ab = b - a
    norm = np.maximum(np.sum(ab * ab, axis=1), 1e-12)[:, None, None]
    px = xs + 0.5 - a[:, 0, None, None]
    py = ys + 0.5 - a[:, 1, None, None]
    t = (px * ab[:, 0, None, None] + py * ab[:, 1, None, None]) / norm
    t = np.clip(t, 0.0, 1.0)
    d = np.hypot(px - t * ab[:, 0, None, None], py - t * ab[:, 1, None, None])
    keep = (d <= reach) & (xs >= 0) & (xs < size) & (ys >= 0) & (ys < size)
    return ys[keep], xs[keep], d[keep]


class _Occupancy:
    """Pixels too close to an accepted contour for another to enter.

    `cells` is a flat bytearray (fast scalar reads in the walk's inner loop)
    that shares memory with the NumPy view `grid` (fast vectorised writes).
    A pixel is blocked when its centre is within the separation (plus half
    a pixel, so that every point inside it keeps about the separation).
    """

    def __init__(self, size, geometry):
        self.size = size
        self.reach = geometry["separation"] + 0.5
        self.cells = bytearray(size * size)
        self.grid = np.frombuffer(self.cells, dtype="uint8").reshape(size, -1)

    def block(self, dashes):
        """Reserves the space around the `(n, 4)` dash segments."""
        ys, xs, _ = _distances(dashes, self.size, self.reach)
        self.grid[ys, xs] = 1


def _walk(rnd, occupancy, geometry, num_dashes, max_turn, attempts=60):
    """A dashed random-walk contour as an `(n, 4)` array, or None.

    Pure Python on scalars: the walk tries thousands of short candidate
    dashes per image, where NumPy's per-call overhead would dominate.
    """
    dash = geometry["dash"]
    advance = (dash + geometry["gap"]) / dash
    # Sharper turns are tried only when gentle ones hit a wall or another
    # contour, so most of the contour stays smooth.
    spreads = (max_turn,) * 4 + (2 * max_turn,) * 4 + (2.0,) * 4
    size, cells = occupancy.size, occupancy.cells
    low, high = geometry["margin"], size - 1 - geometry["margin"]
    uniform, cos, sin = rnd.uniform, math.cos, math.sin

    def free(x, y):
        inside = low <= x <= high and low <= y <= high
        return inside and not cells[int(y) * size + int(x)]

    for _ in range(attempts):
        x, y = uniform(low + 1, high - 1), uniform(low + 1, high - 1)
        angle = uniform(0.0, 2 * math.pi)
        dashes = []
        for _ in range(num_dashes):
            if not free(x, y):
                break
            for spread in spreads:
                heading = angle + uniform(-spread, spread)
                dx, dy = dash * cos(heading), dash * sin(heading)
                if (
                    free(x + dx / 3, y + dy / 3)
                    and free(x + dx * 2 / 3, y + dy * 2 / 3)
                    and free(x + dx, y + dy)
                ):
                    break
            else:
                break
            dashes.append((x, y, x + dx, y + dy))
            angle = heading
            x, y = x + dx * advance, y + dy * advance
        else:
            dashes = np.asarray(dashes)
            occupancy.block(dashes)
            return dashes
    return None


def _render(segments, radii, size):
    """Anti-aliased uint8 image of round-capped strokes and discs.

    A pixel's ink is its coverage by the nearest stroke, approximated from
    its centre's distance `d` to the stroke's axis as `r + 0.5 - d`.
    """
    image = np.zeros((size, size), dtype="float32")
    for radius in np.unique(radii):
        chosen = segments[radii == radius]
        ys, xs, d = _distances(chosen, size, radius + 0.5)
        np.maximum.at(image, (ys, xs), np.clip(radius + 0.5 - d, 0.0, 1.0))
    return np.round(image * 255).astype("uint8")


def _draw_example(rnd, image_size, positive, contour_length, num_distractors):
    """One image, or None when the contours did not fit (caller retries)."""
    geometry = _scale(image_size)
    occupancy = _Occupancy(image_size, geometry)
    contours = []
    for _ in range(2):
        dashes = _walk(
            rnd, occupancy, geometry, contour_length, max_turn=math.pi / 5
        )
        if dashes is None:
            return None
        contours.append(dashes)
    for _ in range(num_distractors):
        length = max(2, contour_length // 4)
        dashes = _walk(rnd, occupancy, geometry, length, max_turn=0.6)
        if dashes is not None:
            contours.append(dashes)
    first, second = contours[0], contours[1]
    ends_a = (first[0, :2], first[-1, 2:])
    ends_b = (second[0, :2], second[-1, 2:])
    if positive:
        dots = np.stack(ends_a)
    else:
        dots = np.stack((ends_a[rnd.randrange(2)], ends_b[rnd.randrange(2)]))
    strokes = np.concatenate(contours)
    segments = np.concatenate([strokes, np.concatenate([dots, dots], 1)])
    radii = np.full(len(segments), geometry["width"] / 2)
    radii[len(strokes) :] = geometry["dot_radius"]
    return _render(segments, radii, image_size), dots.astype("float32")


def generate_pathfinder(
    num_examples,
    image_size=32,
    contour_length=14,
    num_distractors=None,
    seed=0,
    return_dots=False,
    progress=False,
):
    """Generated Pathfinder images and labels, deterministic under `seed`.

    Args:
        num_examples: number of images (half positive, half negative).
        image_size: side in pixels: 32 (Pathfinder), 64, 128 (Path-X).
        contour_length: dashes per long contour (the Pathfinder difficulty:
            6 easy, 9 intermediate, 14 hard; LRA uses 14).
        num_distractors: short distractor contours (default
            `image_size // 16`).
        seed: seed of the `numpy.random.Generator` that shuffles the
            labels and seeds one `random.Random` per image.
        return_dots: also return the (x, y) centres of the two dots.
        progress: show a tqdm progress bar.

    Returns:
        `(images, labels)`: uint8 (num_examples, image_size, image_size) and
        int32 (num_examples,) with 1 = connected; with `return_dots` also
        float32 dots of shape (num_examples, 2, 2).

    Example:

    >>> images, labels = generate_pathfinder(8, image_size=32, seed=0)
    >>> images.shape, float(labels.mean())
    ((8, 32, 32), 0.5)
    """
    num_examples = check_int("num_examples", num_examples, minimum=1)
    image_size = check_int("image_size", image_size, minimum=16)
    contour_length = check_int("contour_length", contour_length, minimum=2)
    num_distractors = check_int(
        "num_distractors", num_distractors, minimum=0, allow_none=True
    )
    check_examples_memory(
        "Pathfinder",
        {"num_examples": num_examples},
        image_size**2 + _EXAMPLE_OVERHEAD,
        image_size=image_size,
    )
    if num_distractors is None:
        num_distractors = image_size // 16
    rng = np.random.default_rng(seed)
    labels = np.arange(num_examples) % 2
    rng.shuffle(labels)
    # One scalar generator per image, seeded from `rng`: the walk draws
    # numbers one at a time, which `random.Random` does ~20x faster.
    seeds = rng.integers(2**63, size=num_examples)
    images = np.zeros((num_examples, image_size, image_size), dtype="uint8")
    dots = np.zeros((num_examples, 2, 2), dtype="float32")
    indices = range(num_examples)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc=f"Pathfinder {image_size}px")
    for i in indices:
        rnd = random.Random(int(seeds[i]))
        drawn = None
        while drawn is None:
            drawn = _draw_example(
                rnd,
                image_size,
                bool(labels[i]),
                contour_length,
                num_distractors,
            )
        images[i], dots[i] = drawn
    labels = labels.astype("int32")
    if return_dots:
        return images, labels, dots
    return images, labels


def images_to_sequences(images, mean=None, std=None):
    """uint8 images (n, h, w) to standardised float32 (n, h * w, 1)."""
    x = images.reshape(images.shape[0], -1, 1).astype("float32") / 255.0
    mean = float(x.mean()) if mean is None else mean
    std = float(x.std()) + 1e-6 if std is None else std
    return (x - mean) / std


def load_release(directory, image_size=32, max_examples=None):
    """Loads one released Pathfinder difficulty directory.

    Args:
        directory: e.g. `lra_release/pathfinder32/curv_contour_length_14`,
            holding `metadata/*.npy` and the image sub-directories.
        image_size: expected image side (32, 64, 128, 256).
        max_examples: read at most this many images (None: all).

    Returns:
        `(images, labels)`: uint8 (n, image_size, image_size), int32 (n,).
    """
    from PIL import Image

    metadata_dir = os.path.join(directory, "metadata")
    if not os.path.isdir(metadata_dir):
        raise FileNotFoundError(
            f"{metadata_dir} not found. The LRA release "
            "(https://storage.googleapis.com/long-range-arena/lra_release.gz)"
            " has it under lra_release/pathfinder{32,64,128,256}/"
            "curv_contour_length_14/."
        )
    rows = []
    for name in sorted(os.listdir(metadata_dir)):
        with open(os.path.join(metadata_dir, name)) as f:
            rows += [line.split() for line in f.read().splitlines() if line]
    if max_examples is not None:
        rows = rows[:max_examples]
    images = np.zeros((len(rows), image_size, image_size), dtype="uint8")
    labels = np.zeros((len(rows),), dtype="int32")
    for i, row in enumerate(rows):
        path = os.path.join(directory, row[0], row[1])
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("L"))
        if pixels.shape != (image_size, image_size):
            raise ValueError(
                f"{path}: expected a {image_size}x{image_size} image; got "
                f"shape {pixels.shape}."
            )
        images[i] = pixels
        labels[i] = int(row[3])
    if not rows:
        raise ValueError(f"{metadata_dir} lists no images.")
    check_class_labels(f"The labels of {metadata_dir}", labels, NUM_CLASSES)
    return images, labels


def load_data(
    image_size=32,
    contour_length=9,
    num_train=2000,
    num_validation=200,
    num_test=400,
    seed=0,
    directory=None,
    progress=False,
    as_dataset=False,
    batch_size=32,
):
    """Pathfinder (Path-X at 128 px) splits, generated or from the release.

    Generated images are seeded (split i uses seed `3 * seed + i`) and
    cached; no network is needed. Pixels become sequences in raster order,
    standardised with the training split's mean and standard deviation.
    The defaults are small (the `*_pathfinder_cpu` presets); the LRA sizes
    are those of the `*_pathfinder_paper` / `*_pathx_paper` presets.

    Args:
        image_size: 32, 64 or 128 pixels (128: Path-X).
        contour_length: dashes per path (LRA: 14).
        num_train: training images.
        num_validation: validation images.
        num_test: test images.
        seed: seed of the generator (and of the release's split).
        directory: a released `curv_contour_length_*` folder to read
            instead of generating (split 80/10/10 with `seed`).
        progress: show a tqdm bar while generating.
        as_dataset: return `PixelSequences` datasets instead of arrays:
            they keep the uint8 images (1 byte a pixel instead of 4) and
            standardise each batch when it is read, for sets that do not
            fit in memory as float32 (Path-X at the LRA size: 160000
            images of 128 x 128 pixels).
        batch_size: the datasets' batch size (with `as_dataset`).

    Returns:
        `(x_train, y_train), (x_val, y_val), (x_test, y_test)`: float32
        sequences (n, image_size ** 2, 1) and int labels (1: connected).
        With `as_dataset`, `(train, val, test)` `PixelSequences` of such
        `(x, y)` batches (the training set reshuffled every epoch).

    Example:

    >>> (x, y), _, _ = load_data(num_train=4, num_validation=2, num_test=2)
    >>> x.shape
    (4, 1024, 1)
    """
    from keras_ssm.datasets.generated import generate_splits

    image_size = check_int("image_size", image_size, minimum=16)
    seed = check_int("seed", seed, minimum=0)
    if directory:
        images, labels = load_release(directory, image_size)
        order = np.random.default_rng(seed).permutation(len(labels))
        n_val = n_test = len(labels) // 10
        parts = {
            "test": order[:n_test],
            "validation": order[n_test : n_test + n_val],
            "train": order[n_test + n_val :],
        }
        splits = {k: (images[v], labels[v]) for k, v in parts.items()}
    else:
        sizes = check_sizes(
            num_train=num_train,
            num_validation=num_validation,
            num_test=num_test,
        )
        contour_length = check_int("contour_length", contour_length, minimum=2)
        # uint8 images while generating; float32 sequences on top of them
        # unless `as_dataset` keeps the images.
        per_example = image_size**2 * (1 if as_dataset else 5)
        check_examples_memory(
            "Pathfinder",
            sizes,
            per_example + _EXAMPLE_OVERHEAD,
            image_size=image_size,
        )
        splits = generate_splits(
            "pathfinder",
            generate_pathfinder,
            {"image_size": image_size, "contour_length": contour_length},
            sizes=sizes.values(),
            seed=seed,
            example_shape=(image_size, image_size),
            num_classes=NUM_CLASSES,
            progress=progress,
        )
    train_images = splits["train"][0]
    if as_dataset:
        mean, std = _pixel_statistics(train_images)
        return tuple(
            PixelSequences(
                *splits[split],
                mean=mean,
                std=std,
                batch_size=batch_size,
                shuffle=split == "train",
                seed=seed,
            )
            for split in ("train", "validation", "test")
        )
    mean = float(train_images.mean()) / 255.0
    std = float((train_images / 255.0).std()) + 1e-6
    out = [(images_to_sequences(train_images), splits["train"][1])]
    for split in ("validation", "test"):
        x, y = splits[split]
        out.append((images_to_sequences(x, mean, std), y))
    return tuple(out)


def _pixel_statistics(images, chunk=1024):
    """Mean and std (+1e-6) of the pixels / 255, without a float copy."""
    total = squares = 0.0
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk].astype("float64") / 255.0
        total += block.sum()
        squares += np.square(block).sum()
    count = images.size
    mean = total / count
    return float(mean), float(
        np.sqrt(max(squares / count - mean**2, 0.0))
    ) + 1e-6


class PixelSequences(keras.utils.PyDataset):
    """Batches of standardised pixel sequences read from uint8 images.

    Args:
        images: uint8 images (n, height, width).
        labels: labels (n,).
        mean: pixel mean (of pixels / 255) to subtract.
        std: pixel standard deviation to divide by.
        batch_size: images per batch; the last batch may be smaller.
        shuffle: reshuffle the order at the start of every epoch.
        seed: seed of the shuffling.
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of
            `keras.utils.PyDataset`.
    """

    def __init__(
        self,
        images,
        labels,
        mean,
        std,
        batch_size=32,
        shuffle=False,
        seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if len(images) != len(labels):
            raise ValueError(
                f"`images` ({len(images)}) and `labels` ({len(labels)}) "
                "must have the same length."
            )
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise ValueError(
                f"`batch_size` must be a positive integer, got {batch_size!r}."
            )
        self.images, self.labels = images, np.asarray(labels)
        self.mean, self.std = float(mean), float(std)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(self.labels))
        if self.shuffle:
            self._rng.shuffle(self._order)

    def __len__(self):
        return -(-len(self.labels) // self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range [0, {len(self)}).")
        rows = self._order[
            index * self.batch_size : (index + 1) * self.batch_size
        ]
        rows = np.sort(rows)  # faster reads from a memory-mapped array
        x = images_to_sequences(self.images[rows], self.mean, self.std)
        return x, self.labels[rows]

    def on_epoch_end(self):
        if self.shuffle:
            self._rng.shuffle(self._order)
