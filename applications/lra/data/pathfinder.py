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
that "connected" is unambiguous. Images are drawn at 4x resolution and
averaged down, which gives anti-aliased strokes like the original renders.
Labels alternate positive/negative in a seeded shuffle, so each split is
balanced.

The loader reads the released LRA data: PNG images listed by the text
files in `<difficulty>/metadata/*.npy` (whitespace-separated rows
`subdir filename ... label ...`, the label in the fourth field).
"""

import math
import os

import numpy as np

SUPERSAMPLE = 4


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


class _Canvas:
    """High-resolution drawing plus an ownership map for separation."""

    def __init__(self, size, geometry):
        self.size = size
        self.geometry = geometry
        self.hi = np.zeros((size * SUPERSAMPLE,) * 2, dtype="float32")
        # owner[y, x] = id of the contour that drew near pixel (y, x).
        self.owner = np.zeros((size, size), dtype="int32")

    def free(self, points, contour_id):
        """True when `points` keep the separation from other contours."""
        sep = self.geometry["separation"]
        margin = self.geometry["margin"]
        r = int(math.ceil(sep))
        for x, y in points:
            if not (margin <= x <= self.size - 1 - margin):
                return False
            if not (margin <= y <= self.size - 1 - margin):
                return False
            x0, x1 = max(0, int(x) - r), min(self.size, int(x) + r + 2)
            y0, y1 = max(0, int(y) - r), min(self.size, int(y) + r + 2)
            window = self.owner[y0:y1, x0:x1]
            yy, xx = np.mgrid[y0:y1, x0:x1]
            near = (xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2 <= sep**2
            if np.any(near & (window != 0) & (window != contour_id)):
                return False
        return True

    def claim(self, points, contour_id):
        for x, y in points:
            xi = min(self.size - 1, max(0, int(x)))
            yi = min(self.size - 1, max(0, int(y)))
            self.owner[yi, xi] = contour_id

    def segment(self, start, end):
        """Draws a stroke of the configured width from start to end."""
        width = self.geometry["width"] * SUPERSAMPLE
        (x0, y0), (x1, y1) = start, end
        length = math.hypot(x1 - x0, y1 - y0) * SUPERSAMPLE
        steps = max(2, int(length * 2))
        for t in np.linspace(0.0, 1.0, steps):
            self.disc(
                (x0 + t * (x1 - x0), y0 + t * (y1 - y0)),
                width / 2 / SUPERSAMPLE,
            )

    def disc(self, center, radius):
        s = SUPERSAMPLE
        cx, cy = center[0] * s, center[1] * s
        r = radius * s
        x0, x1 = max(0, int(cx - r) - 1), min(self.hi.shape[1], int(cx + r) + 2)
        y0, y1 = max(0, int(cy - r) - 1), min(self.hi.shape[0], int(cy + r) + 2)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        inside = (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r**2
        self.hi[y0:y1, x0:x1][inside] = 1.0

    def image(self):
        s = SUPERSAMPLE
        small = self.hi.reshape(self.size, s, self.size, s).mean(axis=(1, 3))
        return np.round(small * 255).astype("uint8")


def _walk(rng, canvas, contour_id, num_dashes, max_turn, attempts=60):
    """A dashed random-walk contour; returns its dashes or None."""
    g = canvas.geometry
    step = g["dash"] + g["gap"]
    for _ in range(attempts):
        margin = g["margin"] + 1
        x = rng.uniform(margin, canvas.size - 1 - margin)
        y = rng.uniform(margin, canvas.size - 1 - margin)
        angle = rng.uniform(0, 2 * math.pi)
        dashes = []
        for _ in range(num_dashes):
            # Sharper turns are allowed only when gentle ones hit a wall or
            # another contour, so most of the contour stays smooth.
            for spread in (max_turn,) * 4 + (2 * max_turn,) * 4 + (2.0,) * 4:
                turn = rng.uniform(-spread, spread)
                heading = angle + turn
                dx, dy = math.cos(heading), math.sin(heading)
                end = (x + g["dash"] * dx, y + g["dash"] * dy)
                probe = [
                    (x + t * g["dash"] * dx, y + t * g["dash"] * dy)
                    for t in np.linspace(0, 1, 4)
                ]
                if canvas.free(probe, contour_id):
                    break
            else:
                dashes = None
                break
            dashes.append(((x, y), end))
            canvas.claim(probe, contour_id)
            angle = heading
            x, y = x + step * dx, y + step * dy
        if dashes:
            return dashes
        canvas.owner[canvas.owner == contour_id] = 0
    return None


def _draw_example(rng, image_size, positive, contour_length, num_distractors):
    """One image, or None when the contours did not fit (caller retries)."""
    canvas = _Canvas(image_size, _scale(image_size))
    max_turn = math.pi / 5
    contours = []
    for contour_id in (1, 2):
        dashes = _walk(rng, canvas, contour_id, contour_length, max_turn)
        if dashes is None:
            return None
        contours.append(dashes)
    for k in range(num_distractors):
        dashes = _walk(rng, canvas, 3 + k, max(2, contour_length // 4), 0.6)
        if dashes is not None:
            contours.append(dashes)
    for dashes in contours:
        for start, end in dashes:
            canvas.segment(start, end)
    first, second = contours[0], contours[1]
    ends_a = (first[0][0], first[-1][1])
    ends_b = (second[0][0], second[-1][1])
    if positive:
        dots = ends_a
    else:
        dots = (ends_a[int(rng.integers(2))], ends_b[int(rng.integers(2))])
    for dot in dots:
        canvas.disc(dot, canvas.geometry["dot_radius"])
    return canvas.image(), np.asarray(dots, dtype="float32")


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
        seed: seed of the `numpy.random.Generator`.
        return_dots: also return the (x, y) centres of the two dots.
        progress: show a tqdm progress bar.

    Returns:
        `(images, labels)`: uint8 (num_examples, image_size, image_size) and
        int32 (num_examples,) with 1 = connected; with `return_dots` also
        float32 dots of shape (num_examples, 2, 2).

    Example:

    >>> images, labels = generate_pathfinder(8, image_size=32, seed=0)
    >>> images.shape, labels.mean()
    ((8, 32, 32), 0.5)
    """
    if image_size < 16:
        raise ValueError(f"`image_size` must be >= 16; got {image_size}.")
    if contour_length < 2:
        raise ValueError(
            f"`contour_length` must be >= 2; got {contour_length}."
        )
    if num_distractors is None:
        num_distractors = image_size // 16
    rng = np.random.default_rng(seed)
    labels = np.arange(num_examples) % 2
    rng.shuffle(labels)
    images = np.zeros((num_examples, image_size, image_size), dtype="uint8")
    dots = np.zeros((num_examples, 2, 2), dtype="float32")
    indices = range(num_examples)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc=f"Pathfinder {image_size}px")
    for i in indices:
        drawn = None
        while drawn is None:
            drawn = _draw_example(
                rng,
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
    return images, labels
