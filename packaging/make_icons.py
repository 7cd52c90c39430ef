"""Draw the CroMoTEX Review icon (an ECG complex on red-gridded paper) with Pillow.

    python3 packaging/make_icons.py      # writes resources/icons/cromotex.{png,ico,icns}

The PNG (512x512 RGBA) is for Linux desktop files and the window icon, the .ico
(16-256 px) for the Windows executable and installer, the .icns for the macOS .app.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "resources" / "icons"
SIZE = 512


def draw(size: int = SIZE) -> Image.Image:
    """The icon as an RGBA image of `size` x `size` pixels."""
    s = size / 512.0
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle([16 * s, 16 * s, 496 * s, 496 * s], radius=96 * s,
                        fill=(255, 247, 245, 255), outline=(176, 32, 48, 255), width=int(12 * s))
    for i in range(1, 10):  # 5 mm grid of ECG paper
        x = 16 * s + i * 48 * s
        d.line([(x, 40 * s), (x, 472 * s)], fill=(240, 170, 170, 255), width=max(1, int(3 * s)))
        d.line([(40 * s, x), (472 * s, x)], fill=(240, 170, 170, 255), width=max(1, int(3 * s)))
    base = 300
    pts = [(40, base), (120, base), (140, base - 24), (160, base), (190, base), (206, base + 30),
           (236, 96), (266, 392), (286, base), (330, base), (370, base - 56), (410, base),
           (472, base)]
    d.line([(x * s, y * s) for x, y in pts], fill=(20, 20, 30, 255), width=max(2, int(22 * s)),
           joint="curve")
    return img


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    img = draw()
    img.save(OUT / "cromotex.png")
    img.save(OUT / "cromotex.ico", sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64),
                                           (128, 128), (256, 256)])
    img.save(OUT / "cromotex.icns")
    for f in sorted(OUT.iterdir()):
        sys.stdout.write(f"wrote {f} ({f.stat().st_size} bytes)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
