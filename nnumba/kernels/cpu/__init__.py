"""CPU kernels: Numba @njit(parallel=True) functions on NumPy arrays; BLAS through NumPy from Python."""
