"""image_folder: order, labels, every format to RGB, bad files skipped."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_cnnpractice.data import image_folder
from tests.data import image_files as files

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def make_tree(root):
    """A folder per class with every format and every kind of bad file.

    Returns:
        `(good, bad)`: `{relative path: expected RGB pixels}` in the order
        the listing must give (classes sorted, then paths sorted), and the
        relative paths that must be skipped.
    """
    gray = files.noise((16, 16, 1), 1)
    gray_alpha = files.noise((16, 16, 2), 2)
    rgba = files.noise((16, 16, 4), 3)
    deep = np.random.default_rng(4).integers(0, 65536, (16, 16, 3),
                                             dtype=np.uint16)
    smooth = np.broadcast_to(np.linspace(0, 255, 16, dtype=np.uint8)[None, :,
                                                                      None],
                             (16, 16, 3)).copy()
    jpeg_bytes = files.jpeg(smooth)
    rgb = files.noise((16, 16, 3), 5)
    bmp_pixels = files.noise((5, 7, 3), 6)  # odd width: padded BMP rows
    sources = {
        "cat/a_rgb.png": (files.png(rgb), rgb),
        "cat/b_gray.png": (files.png(gray), np.repeat(gray, 3, axis=-1)),
        "cat/c_gray_alpha.png": (files.png(gray_alpha),
                                 np.repeat(gray_alpha[..., :1], 3, axis=-1)),
        "cat/d_rgba.png": (files.png(rgba), rgba[..., :3]),
        "cat/e_16bit.png": (files.png(deep), (deep >> 8).astype(np.uint8)),
        "cat/f.jpg": (jpeg_bytes, tf.io.decode_jpeg(jpeg_bytes).numpy()),
        "cat/g_cmyk.JPG": (files.CMYK_JPEG, files.cmyk_expected()),
        "cat/h.bmp": (files.bmp(bmp_pixels), bmp_pixels),
        "cat/i.gif": (files.GIF_2_FRAMES, files.gif_first_frame()),
        "cat/sub/j.jpeg": (jpeg_bytes, tf.io.decode_jpeg(jpeg_bytes).numpy()),
        "dog/ok.png": (files.png(rgb[::-1]), rgb[::-1]),
    }
    whole = files.jpeg(files.noise((16, 16, 3), 7))
    bad = {
        "dog/bad_empty.jpg": b"",
        "dog/bad_text.jpg": b"this is not a picture\n",
        "dog/bad_truncated.jpg": whole[:len(whole) // 2],
        "dog/bad_truncated.png": files.png(rgb)[:200],
    }
    ignored = {"cat/notes.txt": b"x", "cat/.hidden.png": b"",
               ".hidden_class/x.png": files.png(rgb)}
    for rel, data in [*((r, d) for r, (d, _) in sources.items()),
                      *bad.items(), *ignored.items()]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "empty").mkdir()
    os.symlink(root / "nowhere.png", root / "dog/bad_dangling_link.png")
    os.mkfifo(root / "dog/bad_fifo.png")  # opening it would block forever
    bad_paths = sorted([*bad, "dog/bad_dangling_link.png", "dog/bad_fifo.png"])
    if not IS_ROOT:  # root reads files whatever their permissions
        (root / "dog/bad_unreadable.png").write_bytes(files.png(rgb))
        os.chmod(root / "dog/bad_unreadable.png", 0)
        bad_paths = sorted([*bad_paths, "dog/bad_unreadable.png"])
    good = {rel: expected for rel, (_, expected) in sources.items()}
    return good, bad_paths


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    good, bad = make_tree(root)
    return root, good, bad


def test_every_format_decodes_to_the_expected_rgb(tree, tmp_path):
    root, good, bad = tree
    report = tmp_path / "skipped.json"
    ds = image_folder(root, report=report, workers=3)
    assert ds.class_names == ("cat", "dog", "empty")
    assert [os.path.relpath(p, root) for p in ds.files] == list(good)
    got = list(ds.dataset.as_numpy_iterator())
    assert len(got) == len(good)
    for (rel, expected), (image, label) in zip(good.items(), got):
        assert image.dtype == np.uint8 and image.shape[-1] == 3, rel
        assert label == (0 if rel.startswith("cat/") else 1), rel
        if rel.endswith("cmyk.JPG"):  # lossy: solid colors, within JPEG error
            error = np.abs(image.astype(int) - expected)
            assert error.mean() < 3 and error.max() <= 20, error
        else:
            np.testing.assert_array_equal(image, expected, err_msg=rel)
    skipped = [os.path.relpath(p, root) for p, _ in ds.skipped]
    assert sorted(skipped) == bad
    listed = json.loads(report.read_text())["skipped"]
    assert sorted(os.path.relpath(s["path"], root) for s in listed) == bad
    reasons = dict(zip(skipped, (r for _, r in ds.skipped)))
    assert reasons["dog/bad_empty.jpg"] == "empty file"
    assert reasons["dog/bad_fifo.png"] == "not a regular file"
    assert reasons["dog/bad_truncated.jpg"].startswith("cannot decode: ")
    assert "{{" not in reasons["dog/bad_text.jpg"]
    # Written through a temporary file, none of which is left behind.
    assert sorted(p.name for p in report.parent.iterdir()
                  if p.name.startswith(f".{report.name}")) == []


def test_skips_are_logged_in_one_warning(tree, caplog):
    root, _, bad = tree
    with caplog.at_level("WARNING"):
        image_folder(root, workers=1)
    warnings = [r.getMessage() for r in caplog.records
                if "unusable image" in r.getMessage()]
    assert len(warnings) == 1
    assert f"Skipped {len(bad)} unusable image file(s)" in warnings[0]


def test_lazy_validation_drops_bad_files_inside_tf_data(tree):
    root, good, _ = tree
    ds = image_folder(root, validate="lazy")
    got = list(ds.dataset.as_numpy_iterator())
    assert len(got) == len(good)
    np.testing.assert_array_equal(got[0][0], good["cat/a_rgb.png"])
    assert {os.path.relpath(p, root) for p, _ in ds.skipped} == {
        "dog/bad_dangling_link.png", "dog/bad_fifo.png"}


def test_resize_modes(tmp_path):
    # 16 x 32: red bands in the outer quarters, green in the central square.
    image = np.zeros((16, 32, 3), np.uint8)
    image[:, :8] = image[:, 24:] = (255, 0, 0)
    image[:, 8:24] = (0, 255, 0)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "wide.png").write_bytes(files.png(image))
    short, = image_folder(tmp_path, size=8).dataset.as_numpy_iterator()
    np.testing.assert_array_equal(short[0], np.full((8, 8, 3), (0, 255, 0)))
    exact, = image_folder(tmp_path, size=8,
                          resize="exact").dataset.as_numpy_iterator()
    assert exact[0].shape == (8, 8, 3)
    np.testing.assert_array_equal(exact[0][:, 0], np.full((8, 3),
                                                          (255, 0, 0)))
    np.testing.assert_array_equal(exact[0][:, 4], np.full((8, 3),
                                                          (0, 255, 0)))


@pytest.mark.parametrize("kwargs, match", [
    ({"validate": "maybe"}, "validate="),
    ({"size": 0}, "size=0"),
    ({"size": 8, "resize": "crop"}, "resize='crop'"),
    ({"workers": 0}, "workers=0"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(files.png(files.noise((4, 4, 3),
                                                                 0)))
    with pytest.raises(ValueError, match=match):
        image_folder(tmp_path, **kwargs)


def test_not_a_folder_per_class(tmp_path):
    with pytest.raises(ValueError, match="Received: root="):
        image_folder(tmp_path / "missing")
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(ValueError, match="No class folders"):
        image_folder(tmp_path)
