"""The paired chest X-ray: pyqtgraph ImageItem with window/level, zoom and pan.
Receives a `CxrImage` (pixels float32 `[H, W]` in [0, 1])."""

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
        controls.addWidget(self.reset_button, 0, 2, 2, 1)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.caption)
        lay.addWidget(self.graphics, 1)
        lay.addLayout(controls)
        self._image: CxrImage | None = None
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
        for w in (self.level_slider, self.window_slider, self.reset_button):
            w.setEnabled(enabled)
        if image is None:
            self.image_item.clear()
            self.caption.setText("No chest X-ray open (Ctrl+Shift+O)")
            return
        self.image_item.setImage(np.asarray(image.pixels, dtype=np.float32), autoLevels=False)
        h, w = image.pixels.shape
        bits = [f"{w}×{h}"]
        if image.view_position:
            bits.append(image.view_position)
        if image.pixel_spacing_mm:
            bits.append(f"{image.pixel_spacing_mm[0]:.3g} mm/px")
        if image.source is not None:
            bits.insert(0, image.source.path.replace("\\", "/").rsplit("/", 1)[-1])
        self.caption.setText("Chest X-ray: " + " · ".join(bits))
        self.reset_window()
        self.viewbox.autoRange(padding=0.01)

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
