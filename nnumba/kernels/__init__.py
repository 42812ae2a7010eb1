"""Compute kernels: leaf functions on arrays, one set per device (cpu, cuda)."""
