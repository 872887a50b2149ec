"""The lazy loader: the compiled library is used, and bad ones are refused."""

import pytest

from keras_cnnpractice.custom_ops import _loader


def test_compiled_library_is_loaded_and_matches_tensorflow():
    import tensorflow as tf
    module = _loader.load_op_library()
    assert hasattr(module, "keras_cnn_practice_stochastic_round")
    info = _loader.build_info()
    assert info["tensorflow_version"] == tf.__version__
    assert isinstance(info["cuda"], bool)
    assert info["xnor_popcount"] in ("avx512_vpopcntdq", "avx2", "popcnt64")
    assert info["isa"] == _loader.chosen_level()


def test_missing_library_says_how_to_rebuild(tmp_path):
    with pytest.raises(_loader.OpLibraryError, match="make install"):
        _loader.load_from(tmp_path / "_cnnpractice_ops.so")


def test_unloadable_library_says_how_to_rebuild(tmp_path):
    bogus = tmp_path / "_cnnpractice_ops.so"
    bogus.write_bytes(b"\x7fELF not really a shared object")
    with pytest.raises(_loader.OpLibraryError, match="make install"):
        _loader.load_from(bogus)


def test_library_built_for_other_tensorflow_is_refused():
    with pytest.raises(_loader.OpLibraryError,
                       match=r"built against TensorFlow 2\.0\.0.*make install"):
        _loader.check_build_info({"tensorflow_version": "2.0.0"},
                                 runtime_version="2.21.0")
    _loader.check_build_info({"tensorflow_version": "2.21.0"},
                             runtime_version="2.21.0")
