"""Per-op autograd glue where the generic glue of ``_autograd`` does not fit:
``<op>.py`` defines ``setup_context(ctx, inputs, output)`` and ``backward(ctx, *grads)``."""
