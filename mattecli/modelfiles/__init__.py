"""Model files: everything that describes, finds, reads and writes a model, and nothing that trains one.

=====================  ===================================================================================
module                 what it holds
=====================  ===================================================================================
``config``             :class:`ModelConfig`, the network variant a file rebuilds (``PAPER``, ``LITE``, ...)
``catalog``            named models: bundled and cached weights files, ``matte models``
``weights``            ``.safetensors`` weights files (config and provenance in the metadata)
``checkpoint``         training checkpoints' format, and which file a run folder stands for
``onnx_model``         exported ``.onnx`` files' contract and metadata, and :class:`OnnxNet` that runs them
``onnx_export``        ``matte export -o FILE.onnx``: tracing a network into such a file
``loading``            the one loader behind ``--model``, ``--init``, ``matte eval`` / ``export``
=====================  ===================================================================================

Training (:mod:`mattecli.training`) imports these modules, never the reverse, so giving
:class:`~mattecli.inference.Matter` a run folder does not import the trainer (``tests/test_import_graph.py``
checks it). Importing this package imports nothing else; the modules import torch where they need it.
"""
