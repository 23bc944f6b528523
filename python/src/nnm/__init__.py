"""Read and write `.nnm` neural-network model files from Python and NumPy.

    import nnm
    model = nnm.load("model.nnm")            # every check of the Swift reader; zero-copy arrays
    model.tensors["layers.0.weight"]         # a read-only NumPy array over the file
    model.layers, model.preprocessing, model.classes, model.history, model.provenance
    model.predict(x)                         # the NumPy reference forward pass on raw inputs
    nnm.infer_partition("model.nnm", images) # nn-infer over a partition (Dask, Spark, Ray)

    nnm.save("model.nnm", nnm.from_blog({"W1": W1, "b1": b1, "W2": W2, "b2": b2}, layout="rows",
                                        activations=["relu", "softmax"], preprocessing=nnm.scale(1 / 255)))

The format is specified in Schemas/nnm-v1.md of the nnm project; files this package writes are
byte-identical to what the project's Swift tools (`nnconv`, `nn-train`) write for the same model.
"""

from .builders import ZScore, dense_model, from_blog, from_lists, from_nielsen, scale, zscore
from .errors import (BadLayout, BadTensorEntry, CannotCreate, CannotOpen, ChecksumMismatch, EmptyFile, HeaderChecksumMismatch,
                     HeaderTooLarge, InvalidJSON, InvalidModel, ModelProblem, NNMError, NonZeroPadding, OverlappingTensors,
                     PreambleChecksumMismatch, Truncated, UnknownFlags, UnsupportedVersion, WriteFailed, WrongMagic)
from .model import Model, __version__, load, loads, save, to_bytes
from .partition import InferenceFailed, Predictions, classify_block, classify_frame, frame_meta, infer_partition

__all__ = [
    "Model", "load", "loads", "save", "to_bytes", "from_blog", "from_lists", "from_nielsen", "dense_model", "scale", "zscore",
    "ZScore", "NNMError", "CannotOpen", "EmptyFile", "Truncated", "WrongMagic", "UnsupportedVersion", "UnknownFlags",
    "PreambleChecksumMismatch", "HeaderTooLarge", "HeaderChecksumMismatch", "InvalidJSON", "BadLayout", "BadTensorEntry",
    "OverlappingTensors", "NonZeroPadding", "ChecksumMismatch", "InvalidModel", "CannotCreate", "WriteFailed",
    "ModelProblem", "__version__", "infer_partition", "Predictions", "InferenceFailed", "classify_block", "classify_frame",
    "frame_meta",
]
