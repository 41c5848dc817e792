"""Tiny LightningModules written in the idioms of public projects, for ``tests/test_idioms.py``.

Each module names the public file whose idiom it follows. The code is ours, not copied: it keeps what a module
does with its targets (the loss, the metrics, the batch structure) and shrinks the network to a linear layer.
Every module records what the test needs to check it: the logits of its last training step in ``seen``, and the
type of every validation target with the validation logits in ``val_seen``.
"""
