"""The conformance kits for layer and loss authors.

``check_layer(LayerClass, kwargs, input_shape)`` checks, in float64:

- the output shape equals ``output_shape`` and the dtype follows the input, and an
  output that is a view of the input says so (``output_is_view``);
- the output of a finite input is finite, and in evaluation mode it is the same at
  a second call and a sample's does not depend on the rest of its batch;
- the gradient for the input and for every parameter against central finite
  differences of ``sum(forward(x) * g)`` for a random ``g``, with the input
  gradient asked for and without it (the first layer of a model is not asked:
  its parameter gradients must be added all the same); a layer that draws does so
  from the generator ``random_generator()`` returns, put back before each forward;
- that gradients accumulate (a second backward adds the same again);
- for a layer with state or draws, the gradients in evaluation mode too, there the
  gradient of what that forward computes (``check_eval_gradient``);
- that forward leaves its input, and backward its upstream gradient, as they were
  (in a model they are other layers' arrays), the input gradient asked for or not;
- that a float32 copy computes the output and every gradient as the float64 one
  does, to float32 accuracy: within 64 times the spread float32-sized changes of
  the inputs and parameters give the float64 results (skipped for a layer whose
  forward is random);
- that two copies reset from generators of one seed are equal, and that
  ``flops()`` returns None or three counts;
- that at a batch of many copies of the example, large enough for a parallel
  kernel to split it between threads, the output (in evaluation mode) and the
  input gradient are copies of the example's, and parameter gradients are sums
  over the batch (a race loses updates);
- in evaluation mode, for a layer with neither state nor draws, a warning where
  the output differs from training's;
- that a wrong shape, a wrong dtype, NaN and an empty batch raise clear errors
  naming the layer;
- a save/load round trip through :mod:`nnumba.io` (the class is registered for it
  if it is not yet), after which a training forward moves the loaded layer's state
  as it moves the saved one's (what decides that is saved too).

Layers without a gradient (``has_gradient = False``) must raise
NoGradientError from backward.  An exception the layer's own code raises comes out
as a ConformanceError naming the check and the example, chained to it.
``check_all(LayerClass)`` runs every entry of ``LayerClass.examples``, and warns
where a layer naming no ``devices`` calls CPU kernels of its own; the test suite
runs it over every registered layer.

``check_device(LayerClass, device)`` runs each example on another device (without a
GPU, the CUDA simulator: ``NUMBA_ENABLE_CUDASIM=1`` set before numba.cuda is imported;
else DeviceUnavailableError) and compares forward and backward with the
CPU's, for every layer whose ``devices`` include it.  ``check_kernels(device)``
compares every kernel of a device's set with the CPU set's, the fused steps',
the losses' and the SGD update's included.

``check_dataset(loader, root=None)`` checks a data set loader as nnumba train calls
it, reading its files from ``root``.

``check_model(name, **options)`` checks a named model: deterministic builds, its
input shape through its layers, its train_defaults loss training its outputs, its
fused steps computing what their layers do one after another (``check_fused``), its
spec building it again, and the ``inputs``/``classes`` options nnumba train sets.

``check_loss(LossClass)`` checks a loss: its gradient against finite
differences for both reductions, the two reductions against each other
(``check_reductions``), the per-sample losses' shape, the float32 and float64
results, and clear errors for bad targets and predictions.
"""
from .batch_checks import OneThreadWarning
from .datasets import check_dataset
from .devices import check_device, check_kernels
from .eval_gradient import check_eval_gradient
from .layers import (ConformanceError, check_all, check_batch_sums, check_float32,
                     check_gradients, check_layer, check_read_only, check_rejections,
                     check_round_trip, numeric_gradient)
from .precision import LARGE, check_float32_modes
from .fused import check_fused
from .losses import KINDS, check_loss, check_loss_case, check_reductions
from .models import check_model

__all__ = ["ConformanceError", "KINDS", "LARGE", "OneThreadWarning", "check_all", "check_batch_sums",
           "check_dataset", "check_device", "check_kernels", "check_eval_gradient", "check_float32",
           "check_float32_modes", "check_fused", "check_gradients", "check_layer", "check_loss",
           "check_loss_case", "check_model", "check_read_only", "check_reductions", "check_rejections",
           "check_round_trip", "numeric_gradient"]
