"""Transfer learning: cached fixed features, new heads, fine-tuning by groups.

The three strategies of the CS231n "CNNs in practice" lecture (after
Yosinski et al., "How transferable are features in deep neural networks?",
NIPS 2014): a linear classifier on fixed features (`FeatureExtractor`,
`cache_features`, `train_linear_classifier`), fine-tuning with a learning
rate per group of layers (`replace_head`, `fine_tune`,
`compile_with_groups`, `LRMultiplierOptimizer`), and both in sequence (`fine_tune(...,
multi_stage=True)`).
"""

from keras_cnnpractice.transfer.features import FeatureExtractor
from keras_cnnpractice.transfer.features import cache_features
from keras_cnnpractice.transfer.features import load_cached_features
from keras_cnnpractice.transfer.features import train_linear_classifier
from keras_cnnpractice.transfer.finetune import compile_with_groups
from keras_cnnpractice.transfer.finetune import fine_tune
from keras_cnnpractice.transfer.finetune import replace_head
from keras_cnnpractice.transfer.optimizer import DEFAULT_MULTIPLIERS
from keras_cnnpractice.transfer.optimizer import LRMultiplierOptimizer
from keras_cnnpractice.transfer.pretrained import load_pretrained

__all__ = ["DEFAULT_MULTIPLIERS", "FeatureExtractor", "LRMultiplierOptimizer",
           "cache_features", "compile_with_groups", "fine_tune", "load_cached_features",
           "load_pretrained", "replace_head", "train_linear_classifier"]
