"""Pictures of galaxies drawn from a few numbers, for the lesson "Sort the galaxies".

These are drawings, not photographs: each galaxy is a simple model (a bulge of old stars, a disk,
spiral arms or a bar, clumps of young stars) seen with the axis ratio and position angle given
in the OpenNGC catalog.
"""

import numpy as np

KINDS = ['Elliptical', 'Lenticular', 'Spiral', 'Barred spiral', 'Irregular']

OLD_STARS = np.array([1.0, 0.8, 0.55])    # yellow-red light of old stars
YOUNG_STARS = np.array([0.55, 0.7, 1.0])  # blue light of young stars


def hubble_class(hubble):
    """One of KINDS for an OpenNGC Hubble type such as 'E', 'S0-a', 'SBb' or 'IB' (None if unknown)."""
    if not isinstance(hubble, str) or not hubble or '?' in hubble:
        return None
    if hubble.startswith('E-S0') or hubble.startswith('S0'):
        return 'Lenticular'
    if hubble.startswith('E'):
        return 'Elliptical'
    if hubble.startswith('I') or hubble.endswith('m'):  # Im, IB, Sm, SBm: Magellanic irregulars
        return 'Irregular'
    if hubble.startswith('SB'):
        return 'Barred spiral'
    if hubble.startswith('S'):
        return 'Spiral'
    return None


def _devaucouleurs(r, r_e):
    return np.exp(-7.67 * ((r / r_e) ** 0.25 - 1))


def galaxy_image(kind, axis_ratio=1.0, pa=0.0, arm_tightness=0.5, seed=0, npix=151):
    """An RGB picture (npix x npix x 3, values 0 to 1) of a galaxy of one kind.

    axis_ratio: minor / major axis (1 = round, 0.1 = a thin line: a disk seen edge-on).
    pa: position angle of the major axis in degrees, from north (up) towards east (left).
    arm_tightness: 0 for tightly wound arms and a big bulge (Sa), 1 for open arms (Sc).
    The major axis fills most of the picture.
    """
    q = float(np.clip(axis_ratio, 0.05, 1.0))
    half = np.linspace(-1.25, 1.25, npix)
    x, y = np.meshgrid(-half, half[::-1])  # x grows to the east (left), y to the north (up)
    t = np.radians(pa)
    u = x * np.sin(t) + y * np.cos(t)      # along the major axis
    v = x * np.cos(t) - y * np.sin(t)      # across it
    r = np.hypot(u, v / q)                 # radius in the galaxy's own plane
    theta = np.arctan2(v / q, u)
    bulge_r = np.hypot(u, v / max(q, 0.6))  # bulges are rounder than disks

    old = np.zeros_like(r)
    young = np.zeros_like(r)
    disk = np.exp(-r / 0.28) * (r < 1.1)
    if kind == 'Elliptical':
        old = _devaucouleurs(r, 0.35)
    elif kind == 'Lenticular':
        old = _devaucouleurs(bulge_r, 0.12) + 0.6 * disk
    elif kind in ('Spiral', 'Barred spiral'):
        pitch = np.radians(10 + 25 * arm_tightness)
        start = 0.3 if kind == 'Barred spiral' else 0.1
        arms = 0.5 * (1 + np.cos(2 * (theta - np.log(np.maximum(r, 1e-3) / start) / np.tan(pitch))))
        old = _devaucouleurs(bulge_r, 0.14 - 0.08 * arm_tightness) + 0.3 * disk
        young = 1.3 * disk * arms**3 * (r > start)
        if kind == 'Barred spiral':
            old = old + 1.0 * np.exp(-0.5 * ((u / 0.2) ** 2 + (v / q / 0.06) ** 2))
    elif kind == 'Irregular':
        rng = np.random.default_rng(seed)
        old = 0.3 * disk
        young = 0.2 * disk
        for _ in range(12):
            cu, cv = rng.normal(0, 0.35, 2)
            size = rng.uniform(0.04, 0.15)
            young += rng.uniform(0.3, 1.0) * np.exp(-0.5 * ((u - cu) ** 2 + (v / q - cv) ** 2) / size**2)
    else:
        raise ValueError(f'unknown kind of galaxy {kind!r}; choose one of {KINDS}')

    rgb = old[..., None] * OLD_STARS + young[..., None] * YOUNG_STARS
    rgb = rgb / max(np.percentile(rgb, 99.7), 1e-9)  # the brightest pixels saturate, like a photo
    return np.clip(np.arcsinh(3 * rgb) / np.arcsinh(3), 0, 1)


def arm_tightness(hubble):
    """0 (tight arms, Sa) to 1 (open arms, Sd) from an OpenNGC Hubble type."""
    for letter, value in (('d', 1.0), ('c', 0.75), ('b', 0.45), ('a', 0.15)):
        if isinstance(hubble, str) and hubble.rstrip('?').endswith(letter):
            return value
    return 0.5
