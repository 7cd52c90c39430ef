"""Synthetic chest radiographs (frontal PA/AP and lateral), vectorised numpy + scipy.ndimage.

The image is built as a density map (1 = bone/soft-tissue white, 0 = air black) on a
normalised grid (x, y in [0, 1], image left = patient's right on a frontal view) and then
exposed: soft tissue of the body and abdomen, lung fields (apex, lateral rib margin,
mediastinal border, diaphragm domes with sharp costophrenic angles, gastric bubble),
mediastinum with trachea and aortic knob, heart silhouette (width = CTR x thoracic width,
magnified ~12% on AP views), spine, clavicles, posterior ribs, radial vessel texture from
the hila. Findings:
- cardiomegaly: wider heart silhouette (CTR above 0.5);
- pleural effusion: basal opacity with a meniscus rising laterally, blunted costophrenic
  angle, silhouetted dome; on one or both sides;
- edema/congestion: perihilar ("bat-wing") haze, prominent upper-zone vessels, Kerley B lines.
Acquisition variation: patient rotation and tilt, inspiration depth, exposure/contrast,
body habitus, AP vs PA, blur and quantum noise. Output is uint8 `[size, size]`.
Images are 512 x 512 (real MIMIC-CXR-JPG ~2500-3000 px) to keep generation fast.
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


def _polar_texture(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, hx: float, hy: float,
                   n_theta: int = 180, n_r: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Radial streak texture around a hilum at (hx, hy): vessel-like, float32 in ~[0, 1]; and r."""
    noise = rng.normal(size=(n_r, n_theta)).astype(np.float32)
    noise = ndimage.gaussian_filter(noise, sigma=(3.0, 0.8), mode="wrap")
    noise = np.clip(noise / (noise.std() + 1e-6), 0.0, None) ** 1.5
    dx, dy = x - hx, y - hy
    r = np.sqrt(dx * dx + dy * dy)
    th = (np.arctan2(dy, dx) + np.pi) / (2 * np.pi) * n_theta
    rr = np.clip(r / 0.45, 0.0, 1.0) * (n_r - 1)
    tex = ndimage.map_coordinates(noise, [rr.ravel(), th.ravel()], order=1, mode="grid-wrap")
    return tex.reshape(x.shape), r


def _finish(rng: np.random.Generator, img: np.ndarray, size: int, noise: float) -> np.ndarray:
    """Upsample a half-resolution render to `size`, add quantum noise, quantise to uint8."""
    img = ndimage.zoom(img.astype(np.float32), size / img.shape[0], order=1)
    img += rng.normal(0.0, noise, img.shape).astype(np.float32)
    return np.clip(img * 255.0, 0, 255).astype(np.uint8)


def render_frontal(rng: np.random.Generator, traits: SubjectTraits, state: EpisodeState,
                   view: str, size: int = IMAGE_SIZE) -> np.ndarray:
    """Frontal radiograph (view "PA" or "AP") as uint8 `[size, size]` (rendered at size/2, upsampled)."""
    ap = view == "AP"
    out_size, size = size, size // 2
    habitus = (traits.bmi - 27.0) / 6.0
    cx = 0.5 + rng.normal(0.0, 0.012)
    x, y = _grid(size, rng.normal(0.0, 1.5), cx)
    hw = 0.335 * (1.0 + 0.02 * habitus) * rng.normal(1.0, 0.03)   # inner thoracic half-width
    insp = rng.normal(0.0, 1.0) - (0.6 if ap else 0.0)              # AP: often poorer inspiration
    y_top = 0.13 + rng.normal(0.0, 0.01)
    y_dome_r = 0.66 + 0.035 * -insp * 0.6 + rng.normal(0.0, 0.01)
    y_dome_l = y_dome_r + 0.02
    rotation = rng.normal(0.0, 0.012)                               # mediastinal shift (rotation)
    mx = cx + rotation

    # body soft tissue and neck/shoulders
    body_hw = hw + 0.07 + 0.035 * max(habitus, -1.0)
    body = _smoothstep(body_hw - np.abs(x - cx), 0.02) * _smoothstep(y - 0.02, 0.02)
    neck = _smoothstep(0.09 - np.abs(x - cx), 0.015) * _smoothstep(0.12 - y, 0.03)
    shoulder = _smoothstep(y - (0.07 + 0.25 * ((x - cx) / body_hw) ** 2), 0.03)
    dens = 0.50 * np.maximum(body * shoulder, neck)

    # lungs
    u = (x - mx) / hw                      # lateral coordinate, <0 image-left (patient right)
    au = np.abs(u)
    lung_h = np.where(u < 0, y_dome_r, y_dome_l) + 0.06 - y_top
    t = np.clip((y - y_top) / lung_h, 0.0, 1.0)
    lateral = np.sin(np.pi / 2 * np.clip(t * 1.6, 0.0, 1.0)) ** 0.7     # lateral margin / hw
    dome_top = np.where(u < 0, y_dome_r, y_dome_l)
    dome = dome_top + 0.07 * ((au - 0.55) / 0.45) ** 2                  # domes curve down laterally
    med = 0.13 + 0.02 * (y > 0.45)                                       # mediastinal half-width / hw
    lung = (_smoothstep(lateral - au, 0.012) * _smoothstep(au - med, 0.012)
            * _smoothstep(dome - y, 0.006) * _smoothstep(y - y_top, 0.01))

    # heart silhouette (ellipse on the diaphragm, 1/3 right of midline, 2/3 left)
    mag = (1.12 if ap else 1.0) * rng.normal(1.0, 0.025)
    width = state.ctr * 2.0 * hw * mag
    hcx = mx + width * (0.5 - 0.36)
    hh = 0.11 + 0.25 * width
    hcy = y_dome_l - 0.25 * hh
    heart = _smoothstep(1.0 - ((x - hcx) / (width / 2)) ** 2 - ((y - hcy) / hh) ** 2, 0.04)
    heart *= _smoothstep(y_dome_l + 0.015 - y, 0.01)
    knob = _smoothstep(0.03 - np.hypot(x - (mx + 0.065), y - 0.31), 0.006)
    med_hw = 0.05 + 0.025 * np.clip((y - 0.2) / 0.3, 0.0, 1.0)
    mediast = np.maximum(_smoothstep(med_hw - np.abs(x - mx), 0.01) * _smoothstep(0.62 - y, 0.02)
                         * _smoothstep(y - 0.1, 0.03), knob)
    trachea = _smoothstep(0.012 - np.abs(x - mx + 0.004 * (y - 0.2) / 0.1), 0.004) \
        * _smoothstep(0.33 - y, 0.01) * _smoothstep(y - 0.05, 0.02)
    lung *= (1.0 - heart) * (1.0 - mediast)

    # effusion: basal fluid with a lateral meniscus
    f_amount = max(0.0, state.fluid_z - (EFFUSION_Z - 0.35))
    if f_amount > 0:
        sides = {"bilateral": (-1, 1), "right": (-1,), "left": (1,)}[state.effusion_side]
        fluid = np.zeros_like(lung)
        for sgn in sides:
            amt = f_amount * (rng.uniform(0.5, 1.0) if len(sides) == 2 else 1.0)
            level = (y_dome_r if sgn < 0 else y_dome_l) + 0.06 - 0.11 * amt
            men = level - 0.07 * np.clip(amt * 2, 0.3, 1.0) * np.clip((au - 0.3) / 0.7, 0.0, 1.0) ** 2
            side_mask = (u * sgn) > 0
            fluid = np.maximum(fluid, side_mask * _smoothstep(y - men, 0.02))
        lung *= 1.0 - 0.92 * fluid

    # vessels from the hila, haze and Kerley lines (congestion)
    cong = state.congestion_z
    vessels = np.zeros_like(lung)
    haze = np.zeros_like(lung)
    for sgn in (-1, 1):
        hx, hy = mx + sgn * 0.09, 0.43
        tex, r = _polar_texture(rng, x, y, hx, hy)
        upper = 1.0 + 0.6 * max(cong, 0.0) * (y < hy)
        vessels += tex * np.exp(-r / 0.2) * _smoothstep(r - 0.05, 0.03) * upper * ((u * sgn) > 0)
        haze += np.exp(-((r / (0.09 + 0.03 * max(cong, 0)))) ** 2)
    vis = 0.035 * (1.0 + 0.5 * max(cong, 0.0))
    haze_amp = 0.22 * np.clip(cong - 0.1, 0.0, 2.0)
    kerley = np.zeros_like(lung)
    if cong > 0.9:
        n_lines = int(min(30, 6 + 10 * (cong - 0.9)))
        for _ in range(n_lines):
            sgn = rng.choice([-1, 1])
            ly = rng.uniform(0.47, 0.64)
            lx = mx + sgn * hw * rng.uniform(0.72, 0.9)
            kerley += (_smoothstep(0.0025 - np.abs(y - ly), 0.0015)
                       * _smoothstep(0.02 - np.abs(x - lx), 0.004))
    patch = np.zeros_like(lung)
    if cong > 1.4:
        pn = ndimage.zoom(rng.normal(size=(24, 24)).astype(np.float32), size / 24.0, order=1)
        patch = np.clip(pn - 0.3, 0, None) * np.clip(haze, 0, 1) * 0.15 * (cong - 1.4)

    # bones: clavicles, posterior ribs, spine
    clav = np.zeros_like(lung)
    for sgn in (-1, 1):
        cy = 0.17 + (ap * 0.025) - 0.11 * np.clip(sgn * (x - mx) - 0.03, 0.0, 0.3)
        clav += (_smoothstep(0.011 - np.abs(y - cy), 0.004) * _smoothstep(0.3 - sgn * (x - mx), 0.01)
                 * _smoothstep(sgn * (x - mx) - 0.03, 0.005))
    spacing = (dome_top - y_top) / 7.5
    phase = (y - y_top + 0.02 - 0.05 * au + 0.10 * au ** 2) / spacing
    frac = phase - np.floor(phase)
    ribs = (_smoothstep(0.2 - np.abs(frac - 0.5), 0.05) * (phase > 0) * (phase < 10)
            * _smoothstep(1.06 - au, 0.03) * _smoothstep(au - 0.12, 0.03))
    spine = _smoothstep(0.03 - np.abs(x - mx), 0.006) * (y < 0.97)

    # abdomen and gastric bubble
    bubble = _smoothstep(1.0 - ((x - (mx + 0.16)) / 0.05) ** 2 - ((y - (y_dome_l + 0.05)) / 0.03) ** 2, 0.3)
    gradient = 1.0 - 0.25 * np.clip((y - y_top) / 0.5, 0.0, 1.0)   # thicker tissue over the bases
    dens = dens - 0.36 * gradient * lung * (1.0 - np.clip(haze_amp * haze, 0, 0.8))
    dens += (vessels * vis + kerley * 0.10 + patch) * lung
    dens += 0.04 * mediast + 0.03 * spine + 0.10 * clav + 0.035 * ribs * (0.4 + lung)
    dens -= 0.12 * trachea
    dens -= 0.22 * bubble * (1.0 - lung)
    dens += 0.02 * heart

    # exposure and detector
    dens = ndimage.gaussian_filter(dens, sigma=0.6 + 0.3 * ap)
    gamma = rng.uniform(0.8, 1.2) * (1.1 if ap else 1.0)
    img = np.clip(dens / 0.66, 0.0, 1.0) ** gamma
    img = rng.uniform(0.02, 0.08) + img * rng.uniform(0.85, 0.97)
    return _finish(rng, img, out_size, 0.012 + 0.01 * ap)


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
