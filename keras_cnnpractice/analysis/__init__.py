"""Network analyzer: output sizes, receptive fields, parameters, multiply-adds
and memory, per layer (`kcp-analyze MODEL`)."""

from keras_cnnpractice.analysis.geometry import conv_output_size
from keras_cnnpractice.analysis.summary import LayerRow
from keras_cnnpractice.analysis.summary import Summary
from keras_cnnpractice.analysis.summary import summarize

__all__ = ["LayerRow", "Summary", "conv_output_size", "summarize"]
