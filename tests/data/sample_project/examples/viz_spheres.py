"""
Rendering many spheres
======================

This example draws three spheres of different radii and colors with one actor.
"""

import numpy as np

from tinyviz import actor, window

# %%
# Three centers, three colors and three radii, all in one actor.

centers = np.array([[0, 0, 0], [100, 0, 0], [200, 0, 0]])
colors = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
spheres = actor.sphere(centers, colors=colors, radii=10)
spheres.set_opacity(0.5)

# %%
# Show the scene.

scene = window.Scene()
scene.add(spheres)
window.show(scene)
