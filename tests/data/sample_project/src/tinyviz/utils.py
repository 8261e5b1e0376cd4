"""Small helpers for colors and arrays."""

import numpy as np

DEFAULT_ALPHA = 1.0


def numpy_to_colors(array, alpha=DEFAULT_ALPHA):
    """Convert a NumPy array of RGB values in [0, 1] into renderer colors.

    Parameters
    ----------
    array : ndarray of shape (N, 3)
        The colors.
    alpha : float
        Opacity added to every color.
    """
    array = np.asarray(array, dtype=float)
    return np.hstack([array, np.full((len(array), 1), alpha)])


class ColorMap:
    """Maps scalar values to colors."""

    def __init__(self, name: str = "viridis") -> None:
        self.name = name

    def __call__(self, values):
        """Return one color per value."""
        return numpy_to_colors(np.stack([values, values, values], axis=1))
