"""Synthetic chest radiographs (frontal PA/AP and lateral), vectorised numpy + scipy.ndimage.

The image is built as a density map (~0 = air, ~0.6 = dense soft tissue + bone) on a
normalised grid (x, y in [0, 1], image left = patient's right on a frontal view) and then
exposed. Frontal anatomy: neck, shoulders and chest wall as a cylinder-like soft-tissue
thickness (smooth lateral falloff), humeral heads; lung fields with rounded apices, darker
laterally, diaphragm domes (right higher than left) with sharp costophrenic and cardiophrenic
angles; clavicles, posterior ribs as curved bands with cortical margins, fainter anterior
ribs sloping medially, thoracic vertebrae (end plates, pedicles) seen through the mediastinum;
cardiomediastinal silhouette from SVC, aortic knob, main pulmonary artery, a tilted left
ventricle (convex left heart border and apex) and right atrium, total width = CTR x thoracic
width (magnified ~12% on AP views); trachea; hila (left higher) with branching vessels that
taper to the periphery; gastric bubble with a fluid level under the left dome; breast shadows
for most female subjects. Findings:
- cardiomegaly: wider heart silhouette (CTR above 0.5);
- pleural effusion: basal opacity with a meniscus rising laterally, blunted costophrenic
  angle, silhouetted dome; on one or both sides;
- edema/congestion: perihilar ("bat-wing") haze, upper-zone vessel redistribution, Kerley B
  lines at the lateral bases, fluffy airspace opacity when severe.
Acquisition variation: patient rotation and tilt, inspiration depth, body habitus, AP vs PA,
exposure (film-like sigmoid characteristic curve), geometric blur, mild edge enhancement,
correlated quantum noise (stronger where fewer photons arrive). Output is uint8
`[size, size]`; images are 512 x 512 (real MIMIC-CXR-JPG ~2500-3000 px) to keep generation
fast (~50 ms per frontal image on one core).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from training.phantom.latent import EFFUSION_Z, EpisodeState, SubjectTraits

IMAGE_SIZE: int = 512


def _smoothstep(x: np.ndarray, width: float) -> np.ndarray:
    """0 -> 1 soft step at x = 0 over +-width (vectorised)."""
    return np.clip(0.5 + x / (2.0 * width), 0.0, 1.0)


def _grid(size: int, tilt_deg: float, cx: float) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    a = np.deg2rad(tilt_deg)
    x = cx + (xx - cx) * np.cos(a) - (yy - 0.5) * np.sin(a)
    y = 0.5 + (xx - cx) * np.sin(a) + (yy - 0.5) * np.cos(a)
    return x, y


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, a: float, b: float,
             theta_deg: float = 0.0) -> np.ndarray:
    """1 - normalised squared radius of an ellipse rotated by `theta_deg` (> 0 inside)."""
    t = np.deg2rad(theta_deg)
    dx, dy = x - cx, y - cy
    u = (dx * np.cos(t) + dy * np.sin(t)) / a
    v = (-dx * np.sin(t) + dy * np.cos(t)) / b
    return 1.0 - u * u - v * v


def _solid(e: np.ndarray, edge: float = 0.05) -> np.ndarray:
    """Projected thickness (~[0, 1]) of an ellipsoid given `_ellipse` output: crisp border, rounded body."""
    return _smoothstep(e, edge) * (0.55 + 0.45 * np.sqrt(np.clip(e, 0.0, 1.0)))


def _band(d: np.ndarray, half: float, soft: float, cortex: float = 0.5) -> np.ndarray:
    """Cross-section of a bone band at signed distance `d` from its centre line: brighter
    cortical margins (weight `cortex`) around a fainter medulla."""
    inside = _smoothstep(half - np.abs(d), soft)
    return inside * ((1.0 - cortex) + cortex * np.clip(np.abs(d) / half, 0.0, 1.0) ** 3)


def _vessel_tree(rng: np.random.Generator, size: int, hx: float, hy: float, side: int,
                 upper_gain: float, lower_gain: float) -> np.ndarray:
    """Branching pulmonary vessels from a hilum at (hx, hy), float32 `[size, size]` (~[0, 1]).

    Nine trunks fanning from upwards through lateral to downwards, each branching
    dichotomously for 5 generations (calibre x0.72 and length x~0.72 per generation); points
    along each branch are splatted into three calibre layers blurred with matching widths, so
    vessels taper towards the periphery. `side` = -1 for the image-left (patient right) lung;
    `upper_gain` / `lower_gain` scale the calibre above / below the hilum (redistribution).
    """
    pts: list[list[np.ndarray]] = [[], [], []]
    wts: list[list[np.ndarray]] = [[], [], []]
    stack = []
    for th in np.linspace(-100.0, 105.0, 9) + rng.normal(0.0, 7.0, 9):
        a = np.deg2rad(th) if side > 0 else np.pi - np.deg2rad(th)
        stack.append((hx, hy, a, 0.075 * rng.uniform(0.8, 1.15), 1.0, 0))
    while stack:
        x0, y0, a, length, cal, gen = stack.pop()
        x1, y1 = x0 + length * np.cos(a), y0 + length * np.sin(a)
        s = np.linspace(0.0, 1.0, max(2, int(length * size * 1.5)))
        gain = upper_gain if y1 < hy - 0.03 else (lower_gain if y1 > hy + 0.03 else 1.0)
        layer = 0 if gen <= 1 else (1 if gen <= 3 else 2)
        pts[layer].append(np.stack([y0 + (y1 - y0) * s, x0 + (x1 - x0) * s]))
        wts[layer].append(cal * gain * (1.0 - 0.2 * s))
        if gen < 5:
            for d in (-1, 1):
                stack.append((x1, y1, a + d * np.deg2rad(rng.uniform(12.0, 30.0)) + rng.normal(0, 0.08),
                              length * rng.uniform(0.62, 0.82), cal * 0.72, gen + 1))
    out = np.zeros((size, size), np.float32)
    for layer, sigma in enumerate((1.5, 0.9, 0.6)):
        p = np.concatenate(pts[layer], axis=1) * size
        h, _, _ = np.histogram2d(p[0], p[1], bins=size, range=[[0, size], [0, size]],
                                 weights=np.concatenate(wts[layer]))
        out += ndimage.gaussian_filter(h.astype(np.float32), sigma) * sigma
    return out * (0.6 / size * 256)


def _finish(rng: np.random.Generator, img: np.ndarray, size: int, noise: float) -> np.ndarray:
    """Upsample a half-resolution render to `size`, add quantum noise (slightly correlated,
    stronger where fewer photons reach the detector, i.e. in bright areas), quantise to uint8."""
    img = ndimage.zoom(img.astype(np.float32), size / img.shape[0], order=1)
    n = ndimage.gaussian_filter(rng.normal(0.0, 1.0, img.shape).astype(np.float32), 0.7) * 2.2
    img += n * noise * (0.6 + 0.8 * np.clip(img, 0.0, 1.0))
    return np.clip(img * 255.0, 0, 255).astype(np.uint8)


def render_frontal(rng: np.random.Generator, traits: SubjectTraits, state: EpisodeState,
                   view: str, size: int = IMAGE_SIZE) -> np.ndarray:
    """Frontal radiograph (view "PA" or "AP") as uint8 `[size, size]` (rendered at size/2, upsampled)."""
    ap = view == "AP"
    out_size, size = size, size // 2
    habitus = (traits.bmi - 27.0) / 6.0
    age_z = (traits.age - 62.0) / 17.0
    cx = 0.5 + rng.normal(0.0, 0.012)
    x, y = _grid(size, rng.normal(0.0, 1.5), cx)
    hw = 0.335 * (1.0 + 0.02 * habitus) * rng.normal(1.0, 0.03)   # inner thoracic half-width
    insp = rng.normal(0.0, 1.0) - (0.6 if ap else 0.0)              # AP: often poorer inspiration
    y_top = 0.13 + rng.normal(0.0, 0.01)
    y_dome_r = 0.655 + 0.035 * -insp * 0.6 + rng.normal(0.0, 0.01)  # patient right (image left)
    y_dome_l = y_dome_r + 0.025 + rng.normal(0.0, 0.006)            # left dome lower
    rotation = rng.normal(0.0, 0.012)                               # mediastinal shift (rotation)
    mx = cx + rotation
    u = (x - mx) / hw                      # lateral coordinate, <0 image-left (patient right)
    au = np.abs(u)
    right = u < 0
    dome_top = np.where(right, y_dome_r, y_dome_l)

    # soft tissue: neck, shoulders, chest wall, flanks (cylindrical thickness: smooth falloff)
    wall = 0.05 + 0.03 * max(habitus, -1.0)
    chest_hw = hw * 1.05 + wall
    sh_hw = chest_hw + 0.10
    prof = 0.075 + (sh_hw - 0.075) * _smoothstep(y - 0.10, 0.07) \
        - (sh_hw - chest_hw) * _smoothstep(y - 0.33, 0.12)
    r = np.clip(1.0 - ((x - mx) / prof) ** 2, 0.0, 1.0)
    soft = r ** 0.45 * (0.92 + 0.08 * _smoothstep(y - 0.5, 0.3))
    dens = 0.44 * soft
    humerus = sum(_solid(_ellipse(x, y, mx + s * (chest_hw + 0.055), 0.165, 0.06, 0.07), 0.2)
                  for s in (-1, 1))
    dens += 0.07 * humerus

    # lungs: rounded apices, lateral rib margin, domes highest at mid-clavicular line with
    # deep, sharp costophrenic angles laterally and cardiophrenic angles medially
    lung_h = dome_top + 0.08 - y_top
    t = np.clip((y - y_top) / lung_h, 0.0, 1.0)
    lateral = np.sin(np.pi / 2 * np.clip(t * 1.7, 0.0, 1.0)) ** 0.6
    dome = dome_top + np.where(au > 0.42, 0.11 * ((au - 0.42) / 0.58) ** 2,
                               0.02 * ((0.42 - au) / 0.42) ** 2)
    lung = (_smoothstep(lateral - au, 0.01) * _smoothstep(au - 0.08, 0.02)
            * _smoothstep(dome - y, 0.005) * _smoothstep(y - y_top, 0.01))

    # cardiomediastinal silhouette: SVC / ascending aorta on the right, aortic knob, main
    # pulmonary artery, left ventricle (tilted ellipsoid giving the convex left heart border
    # and apex), right atrium; total width = CTR x thoracic width (AP magnifies ~12%)
    mag = (1.12 if ap else 1.0) * rng.normal(1.0, 0.025)
    width = state.ctr * 2.0 * hw * mag
    r_ext, l_ext = 0.36 * width, 0.64 * width
    th = 38.0 + rng.normal(0.0, 4.0)
    a_lv, b_lv = 0.78 * l_ext, 0.52 * l_ext
    c, s = np.cos(np.deg2rad(th)), np.sin(np.deg2rad(th))
    ext_x, ext_y = np.hypot(a_lv * c, b_lv * s), np.hypot(a_lv * s, b_lv * c)
    lv = _solid(_ellipse(x, y, mx + l_ext - ext_x, y_dome_l - 0.72 * ext_y, a_lv, b_lv, th), 0.06)
    ra_a = 0.62 * r_ext
    ra = _solid(_ellipse(x, y, mx - r_ext + ra_a, y_dome_r - 0.06, ra_a, 0.085 + 0.1 * r_ext), 0.06)
    knob_x = mx + 0.062 + 0.008 * age_z
    knob = _solid(_ellipse(x, y, knob_x, 0.305, 0.032, 0.03), 0.15)
    pa = _solid(_ellipse(x, y, mx + 0.058, 0.375, 0.026, 0.03), 0.15)
    upper_l = 0.045 + 0.012 * _smoothstep(y - 0.25, 0.05)
    upper_r = 0.05 + 0.012 * _smoothstep(y - 0.3, 0.08)
    upper = (_smoothstep(np.where(x > mx, upper_l - (x - mx), upper_r - (mx - x)), 0.006)
             * _smoothstep(y - 0.11, 0.03) * _smoothstep(0.56 - y, 0.06))
    heart = np.maximum(lv, ra) * _smoothstep(dome_top + 0.012 - y, 0.008)
    sil = np.maximum.reduce([heart, knob, pa, upper])
    trachea = (_smoothstep(0.011 - np.abs(x - mx + 0.006 * (y - 0.2) / 0.1), 0.004)
               * _smoothstep(0.35 - y, 0.015) * _smoothstep(y - 0.04, 0.02))
    lung *= 1.0 - 0.85 * sil

    # pleural effusion: basal fluid with a meniscus rising laterally (blunted costophrenic angle)
    f_amount = max(0.0, state.fluid_z - (EFFUSION_Z - 0.35))
    fluid = np.zeros_like(lung)
    pleural_space = lung.copy()
    if f_amount > 0:
        sides = {"bilateral": (-1, 1), "right": (-1,), "left": (1,)}[state.effusion_side]
        for sgn in sides:
            amt = f_amount * (rng.uniform(0.5, 1.0) if len(sides) == 2 else 1.0)
            level = (y_dome_r if sgn < 0 else y_dome_l) + 0.07 - 0.11 * amt
            men = level - 0.08 * np.clip(amt * 2, 0.3, 1.0) * np.clip((au - 0.3) / 0.7, 0.0, 1.0) ** 2
            fluid = np.maximum(fluid, ((u * sgn) > 0) * _smoothstep(y - men, 0.02))
        lung *= 1.0 - 0.92 * fluid

    # hila, vessels tapering to the periphery, congestion (redistribution, haze, Kerley B)
    cong = state.congestion_z
    cpos = max(cong, 0.0)
    vessels = np.zeros_like(lung)
    haze = np.zeros_like(lung)
    hila = np.zeros_like(lung)
    for sgn, hy in ((-1, 0.455), (1, 0.43)):          # left hilum higher than right
        hx = mx + sgn * (0.10 + 0.15 * width)
        vessels += _vessel_tree(rng, size, hx, hy, sgn, 1.0 + 0.3 * min(cpos, 2.0), 1.0 - 0.12 * min(cpos, 2.0))
        hila += _solid(_ellipse(x, y, hx, hy, 0.03 + 0.004 * cpos, 0.05, 20.0 * sgn), 0.3)
        haze += np.exp(-((x - hx) / (0.11 + 0.02 * cpos)) ** 2 - ((y - hy) / (0.12 + 0.02 * cpos)) ** 2)
    haze_amp = 0.30 * np.clip(cong - 0.1, 0.0, 2.0)
    kerley = np.zeros_like(lung)
    if cong > 0.9:
        for _ in range(int(min(30, 8 + 10 * (cong - 0.9)))):
            sgn = rng.choice([-1, 1])
            ly = rng.uniform(dome_top.min() - 0.14, dome_top.max() + 0.03)
            lx = mx + sgn * hw * rng.uniform(0.82, 0.95)
            ln = rng.uniform(0.012, 0.025)
            kerley += (_smoothstep(0.002 - np.abs(y - ly), 0.0015)
                       * _smoothstep(ln - np.abs(x - lx), 0.004))
    patch = np.zeros_like(lung)
    if cong > 1.4:
        pn = ndimage.zoom(rng.normal(size=(24, 24)).astype(np.float32), size / 24.0, order=1)
        patch = np.clip(pn, 0, None) * np.clip(haze, 0, 1) * min(0.05 * (cong - 1.4), 0.06)

    # bones: clavicles, posterior ribs (curved bands), faint anterior ribs, thoracic spine
    clav = np.zeros_like(lung)
    for sgn in (-1, 1):
        sx = np.clip((sgn * (x - mx) - 0.035) / 0.28, 0.0, 1.0)
        cy = 0.19 - 0.02 * ap - 0.055 * sx + 0.012 * np.sin(2 * np.pi * sx)
        clav += (_band(y - cy, 0.011 + 0.004 * sx, 0.003)
                 * _smoothstep(0.3 - sgn * (x - mx), 0.01) * _smoothstep(sgn * (x - mx) - 0.035, 0.005))
    spacing = (dome_top + 0.06 - y_top) / 9.0
    py = (y - y_top + 0.03 + 0.12 * au - 0.085 * au ** 2 - 0.7 * np.clip(au - 0.78, 0.0, None) ** 2) / spacing
    phase = np.where(py > 0, np.abs(py) ** 0.93 * 1.1, py)
    frac = phase - np.floor(phase)
    ribs = (_band(frac - 0.5, 0.21, 0.05) * (phase > 0) * (phase < 11)
            * _smoothstep(1.08 - au, 0.03) * _smoothstep(au - 0.1, 0.04) * (py > -0.5))
    pa_ = (y - y_top - 0.06 - 0.2 * (1.0 - au)) / (1.6 * spacing)
    fa = pa_ - np.floor(pa_)
    ant = (_band(fa - 0.5, 0.16, 0.06, 0.3) * (pa_ > 0) * (pa_ < 5.5)
           * _smoothstep(1.04 - au, 0.03) * _smoothstep(au - 0.35, 0.06))
    vph = (y - 0.04) / (0.040 + 0.012 * y)
    vf = vph - np.floor(vph)
    column = _smoothstep(0.028 - np.abs(x - mx), 0.006)
    spine = column * (0.75 + 0.25 * _smoothstep(np.abs(vf - 0.5) - 0.42, 0.03))
    pedicles = sum(_smoothstep(1.0 - ((x - mx - s * 0.021) / 0.007) ** 2 - ((vf - 0.35) / 0.18) ** 2, 0.3)
                   for s in (-1, 1)) * (y > 0.1)

    # breasts (some female subjects): lower-zone soft tissue with a convex inferior border
    breast = np.zeros_like(lung)
    if traits.sex == "F" and rng.random() < 0.75:
        bsz = (0.15 + 0.03 * max(habitus, -1.0)) * rng.uniform(0.85, 1.15)
        for sgn in (-1, 1):
            e = _ellipse(x, y, mx + sgn * hw * 0.68, y_dome_r - 0.06, bsz, bsz * 0.8)
            breast += _smoothstep(e, 0.08) * _smoothstep(y - (y_dome_r - 0.15), 0.08)

    # gastric bubble (air with a fluid level) under the left dome
    gy = y_dome_l + 0.045
    bubble = (_smoothstep(_ellipse(x, y, mx + 0.17, gy, 0.05, 0.032), 0.25)
              * _smoothstep(gy + 0.008 - y, 0.003))

    # composition (density: ~0 air .. ~0.6 dense soft tissue + bone)
    aer = (0.80 + 0.20 * np.clip(au, 0.0, 1.0)) * (0.86 + 0.14 * _smoothstep(y - y_top - 0.1, 0.08))
    dens -= 0.36 * aer * lung * (1.0 - np.clip(haze_amp * haze, 0, 0.8))
    dens += (vessels * (0.05 + 0.01 * cpos) + kerley * 0.10 + patch + 0.02 * hila) * lung
    dens += 0.05 * heart + 0.025 * sil + 0.05 * fluid * pleural_space
    dens += 0.018 * spine * (1.0 + 0.5 * sil) + 0.015 * pedicles * column
    dens += 0.085 * clav + 0.045 * ribs * (0.3 + lung) + 0.018 * ant * lung
    dens += 0.06 * breast * (0.4 + 0.6 * lung)
    dens -= 0.07 * trachea
    dens -= 0.22 * bubble * (1.0 - lung) * _smoothstep(y - y_dome_l - 0.01, 0.005)

    # geometric unsharpness, edge-enhancing processing and a film-like characteristic curve
    dens = ndimage.gaussian_filter(dens, sigma=0.7 + 0.3 * ap)
    dens += 0.3 * (dens - ndimage.gaussian_filter(dens, 6.0))
    g = rng.uniform(6.5, 8.5) * (0.85 if ap else 1.0)
    d0 = 0.30 + rng.normal(0.0, 0.02)
    lo, hi = 1.0 / (1.0 + np.exp(g * (d0 + 0.02))), 1.0 / (1.0 + np.exp(-g * (0.62 - d0)))
    img = (1.0 / (1.0 + np.exp(-g * (dens - d0))) - lo) / (hi - lo)
    img = rng.uniform(0.02, 0.06) + np.clip(img, 0.0, 1.0) * rng.uniform(0.86, 0.96)
    return _finish(rng, img, out_size, 0.010 + 0.008 * ap)


def render_lateral(rng: np.random.Generator, traits: SubjectTraits, state: EpisodeState,
                   size: int = IMAGE_SIZE) -> np.ndarray:
    """Lateral radiograph (patient facing image left) as uint8 `[size, size]` (rendered at size/2)."""
    out_size, size = size, size // 2
    x, y = _grid(size, rng.normal(0.0, 2.0), 0.5)
    depth = 0.33 * (1.0 + 0.04 * (traits.bmi - 27.0) / 6.0)
    body = _smoothstep(depth + 0.05 - np.abs(x - 0.5), 0.02)
    lung_e = ((x - 0.52) / depth) ** 2 + ((y - 0.45) / 0.33) ** 2
    lung = _smoothstep(1.0 - lung_e, 0.05) * _smoothstep(0.68 - y + 0.05 * (x - 0.5), 0.01)
    hw = 0.11 + 0.2 * (state.ctr - 0.45)
    heart = _smoothstep(1.0 - ((x - 0.38) / hw) ** 2 - ((y - 0.58) / 0.13) ** 2, 0.05)
    spine = _smoothstep(0.035 - np.abs(x - (0.78 - 0.05 * (y - 0.5))), 0.008)
    phase = y / 0.045
    vert = spine * (0.7 + 0.3 * np.cos(2 * np.pi * phase))
    lung *= 1.0 - heart
    if state.fluid_z > EFFUSION_Z - 0.35:
        level = 0.68 - 0.08 * (state.fluid_z - EFFUSION_Z + 0.35) - 0.06 * np.clip((x - 0.5) / 0.3, 0, 1)
        lung *= 1.0 - 0.9 * _smoothstep(y - level, 0.02)
    dens = 0.55 * body - 0.35 * lung + 0.15 * vert + 0.03 * heart
    dens = ndimage.gaussian_filter(dens, 0.8)
    img = np.clip(dens / 0.7, 0, 1) ** rng.uniform(0.8, 1.2)
    return _finish(rng, 0.04 + 0.9 * img, out_size, 0.015)
