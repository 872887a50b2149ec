"""Image files for the data-source tests, with the pixels a correct decoder
must give, built without the code under test: PNG and JPEG through
`tf.io.encode_*`, BMP by hand with numpy, and two small files made once
with Pillow and embedded here (a CMYK JPEG of four solid quadrants, and a
two-frame GIF)."""

import base64
import struct

import numpy as np
import tensorflow as tf

# 8x8 CMYK JPEG (Adobe marker), quadrants: cyan, magenta / yellow, black.
CMYK_JPEG = base64.b64decode(
    "/9j/7gAOQWRvYmUAZAAAAAAA/9sAQwABAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB"
    "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB/8AAFAgACAAIBEMRAE0RAFkRAEsR"
    "AP/EAB8AAAEFAQEBAQEBAAAAAAAAAAABAgMEBQYHCAkKC//EALUQAAIBAwMCBAMFBQQEAAAB"
    "fQECAwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2"
    "Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqi"
    "o6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk5ebn6Onq8fLz9PX29/j5"
    "+v/aAA4EQwBNAFkASwAAPwD9+v8Aghj/AMEMf+HLn/DUX/GUX/DSf/DSf/Ckv+aJf8Kd/wCE"
    "L/4U7/wtz/qrnxT/AOEj/wCEj/4Wn/1Av7I/sL/mKf2p/wAS79+v+C53/BDH/h9H/wAMu/8A"
    "GUX/AAzZ/wAM2f8AC7f+aJf8Li/4TT/hcX/Co/8Aqrnws/4Rz/hHP+FWf9R3+1/7d/5hf9l/"
    "8TH9+v8Aghj/AMFzv+H0f/DUX/GLv/DNn/DNn/Ckv+a2/wDC4v8AhNP+Fxf8Lc/6pH8LP+Ec"
    "/wCEc/4VZ/1Hf7X/ALd/5hf9l/8AEx/fr/gud/wXO/4cuf8ADLv/ABi7/wANJ/8ADSf/AAu3"
    "/mtv/Cnf+EL/AOFO/wDCo/8AqkfxT/4SP/hI/wDhaf8A1Av7I/sL/mKf2p/xLv/Z")
CMYK_QUADRANT_RGB = {(0, 0): (0, 255, 255), (0, 1): (255, 0, 255),
                     (1, 0): (255, 255, 0), (1, 1): (0, 0, 0)}

# 4x6 GIF, two frames: left half red and right half blue, then all green.
GIF_2_FRAMES = base64.b64decode(
    "R0lGODdhBgAEAIEAAP8AAAAA/wAAAAAAACwAAAAABgAEAAAIEAABCAxAUCAAggEMIlRIMCAA"
    "IfkEAQAAAQAsAAAAAAYABACBAP8AAAAAAAAAAAAACAsAAQgcSLCgwYEBAQA7")


def gif_first_frame():
    frame = np.zeros((4, 6, 3), np.uint8)
    frame[:, :3] = (255, 0, 0)
    frame[:, 3:] = (0, 0, 255)
    return frame


def cmyk_expected():
    """The RGB a CMYK-to-RGB conversion gives for `CMYK_JPEG`'s quadrants."""
    out = np.zeros((8, 8, 3), np.uint8)
    for (r, c), rgb in CMYK_QUADRANT_RGB.items():
        out[4 * r:4 * r + 4, 4 * c:4 * c + 4] = rgb
    return out


def noise(shape, seed):
    return np.random.default_rng(seed).integers(0, 256, shape, np.uint8)


def png(array):
    return tf.io.encode_png(array).numpy()


def jpeg(array, quality=90):
    return tf.io.encode_jpeg(array, quality=quality).numpy()


def bmp(rgb):
    """A 24-bit bottom-up BMP of an `(h, w, 3)` uint8 array."""
    height, width, _ = rgb.shape
    stride = (3 * width + 3) // 4 * 4
    rows = np.zeros((height, stride), np.uint8)
    rows[:, :3 * width] = rgb[::-1, :, ::-1].reshape(height, -1)
    pixels = rows.tobytes()
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0,
                       len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels
