"""The paired chest X-ray: pyqtgraph ImageItem with window/level, invert, zoom and pan,
and a line with the chest X-ray gate's decision. Receives a `CxrImage` (pixels float32
`[H, W]` in [0, 1])."""

from __future__ import annotations

import numpy as np

from app.qt import QtCore, QtWidgets, Signal, pg
from engine.records import CxrImage

SLIDER_STEPS = 1000


class CxrView(QtWidgets.QWidget):
    """Image with window (width) and level (centre) sliders; wheel zooms, drag pans.

    Signals:
        window_changed(float, float): (level, window) in grey units [0, 1].
    """

    window_changed = Signal(float, float)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.graphics = pg.GraphicsView(background="k")
        self.viewbox = pg.ViewBox(enableMenu=False, lockAspect=1.0, invertY=True)
        self.graphics.setCentralItem(self.viewbox)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.viewbox.addItem(self.image_item)
        self.caption = QtWidgets.QLabel("No chest X-ray open (Ctrl+Shift+O)")
        self.caption.setWordWrap(True)
        self.gate_label = QtWidgets.QLabel()
        self.gate_label.setWordWrap(True)
        self.gate_label.setVisible(False)
        self.invert_check = QtWidgets.QCheckBox("Invert")
        self.invert_check.setToolTip("Show the negative (for a file whose MONOCHROME1/2 tag "
                                     "does not match its pixels: bones should be white)")
        self.invert_check.toggled.connect(self.set_inverted)
        self.level_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.window_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        for s in (self.level_slider, self.window_slider):
            s.setRange(1, SLIDER_STEPS)
            s.valueChanged.connect(self._on_slider)
        self.reset_button = QtWidgets.QPushButton("Reset")
        self.reset_button.clicked.connect(self.reset_window)
        controls = QtWidgets.QGridLayout()
        controls.addWidget(QtWidgets.QLabel("Level"), 0, 0)
        controls.addWidget(self.level_slider, 0, 1)
        controls.addWidget(QtWidgets.QLabel("Window"), 1, 0)
        controls.addWidget(self.window_slider, 1, 1)
        controls.addWidget(self.reset_button, 0, 2)
        controls.addWidget(self.invert_check, 1, 2)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.caption)
        lay.addWidget(self.gate_label)
        lay.addWidget(self.graphics, 1)
        lay.addLayout(controls)
        self._image: CxrImage | None = None
        self.inverted = False
        self.level = 0.5
        self.window = 1.0
        self.set_image(None)

    @property
    def image(self) -> CxrImage | None:
        return self._image

    def set_image(self, image: CxrImage | None) -> None:
        """Show `image` (None clears), fitted to the view, full window."""
        self._image = image
        enabled = image is not None
        for w in (self.level_slider, self.window_slider, self.reset_button, self.invert_check):
            w.setEnabled(enabled)
        self.invert_check.blockSignals(True)
        self.invert_check.setChecked(False)
        self.invert_check.blockSignals(False)
        self.inverted = False
        self.set_gate(None)
        if image is None:
            self.image_item.clear()
            self.caption.setText("No chest X-ray open (Ctrl+Shift+O)")
            return
        self.image_item.setImage(self.displayed_pixels(), autoLevels=False)
        h, w = image.pixels.shape
        bits = [f"{w}×{h}"]
        if image.view_position:
            bits.append(image.view_position)
        if str(image.meta.get("photometric", "")).upper() == "MONOCHROME1":
            bits.append("MONOCHROME1 (inverted on reading)")
        if image.pixel_spacing_mm:
            bits.append(f"{image.pixel_spacing_mm[0]:.3g} mm/px")
        if image.source is not None:
            bits.insert(0, image.source.path.replace("\\", "/").rsplit("/", 1)[-1])
        self.caption.setText("Chest X-ray: " + " · ".join(bits))
        self.reset_window()
        self.viewbox.autoRange(padding=0.01)

    def displayed_pixels(self) -> np.ndarray:
        """The grey levels shown: float32 `[H, W]` in [0, 1], the image's pixels or, when
        inverted, 1 - pixels (empty `[0, 0]` without an image)."""
        if self._image is None:
            return np.zeros((0, 0), dtype=np.float32)
        px = np.asarray(self._image.pixels, dtype=np.float32)
        return (1.0 - px) if self.inverted else px

    def set_inverted(self, on: bool) -> None:
        """Show the image as a negative (`on`) or as read; window and level are kept."""
        self.inverted = bool(on) and self._image is not None
        if self.invert_check.isChecked() != self.inverted:
            self.invert_check.blockSignals(True)
            self.invert_check.setChecked(self.inverted)
            self.invert_check.blockSignals(False)
        if self._image is not None:
            self.image_item.setImage(self.displayed_pixels(), autoLevels=False)
            self.image_item.setLevels((self.level - self.window / 2, self.level + self.window / 2))

    def set_gate(self, text: str | None, accepted: bool = True) -> None:
        """The chest X-ray gate's decision under the caption (None hides it): a quiet
        line when `accepted`, a red one when the image was refused."""
        self.gate_label.setVisible(bool(text))
        self.gate_label.setText(text or "")
        self.gate_label.setStyleSheet(
            "color:#1e6b32;" if accepted else
            "color:white; background:#b01e1e; padding:3px; font-weight:bold;")

    def set_window(self, level: float, window: float) -> None:
        """Display grey levels `level ± window / 2` as black..white (units of the [0, 1]
        pixel scale)."""
        self.level = float(np.clip(level, 0.0, 1.0))
        self.window = float(np.clip(window, 1.0 / SLIDER_STEPS, 1.0))
        self.image_item.setLevels((self.level - self.window / 2, self.level + self.window / 2))
        for s, v in ((self.level_slider, self.level), (self.window_slider, self.window)):
            s.blockSignals(True)
            s.setValue(int(round(v * SLIDER_STEPS)))
            s.blockSignals(False)
        self.window_changed.emit(self.level, self.window)

    def reset_window(self) -> None:
        self.set_window(0.5, 1.0)

    def _on_slider(self, *_: object) -> None:
        self.set_window(self.level_slider.value() / SLIDER_STEPS,
                        self.window_slider.value() / SLIDER_STEPS)
