"""numba.cuda kernels: the CUDA twins of :mod:`nnumba.kernels.cpu`, same names and
signatures, on device arrays (numba.cuda DeviceNDArray, C-contiguous).

Nothing here is imported on the CPU path: importing numba.cuda costs time and
needs the numba-cuda package (``pip install "nnumba[cuda]"``). Layers reach these
kernels only after validating shapes and dtypes (Numba does no bounds checking).
Every module lists its kernels and the argument types they are compiled for in
``PTX_SIGNATURES``, so tests/test_cuda_ptx.py compiles each one for a real GPU.
"""
