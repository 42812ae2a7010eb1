"""Parallel loops whose body numba compiles once: ``run_blocks(body, n, *args)``
calls ``body(i, *args)`` for i in range(n), spread over numba's threads.

A ``parallel=True`` kernel costs its body's compilation about four times over:
numba compiles the loop body as a function, links it into a gufunc wrapper, that
into a parallel launcher, and that into the kernel, and LLVM optimises and
generates machine code for the whole linked module at each level (the two-pass
max-pool took 3.8-4.4 s to compile as a parallel kernel, its body 1.1 s as a
plain function; docs/performance.md).  Here the body is an ordinary ``@njit``
function, compiled once, and one small parallel loop calls it through its
address, as the GEMMs call OpenBLAS: nothing is linked twice.  The loop is
compiled once per tuple of argument types (~0.3 s), so bodies that can share
one, such as im2col and col2im, take their arguments in the same order.
"""
import numpy as np
from llvmlite import ir
from numba import njit, prange, typeof, types
from numba.extending import intrinsic
from ..cache_stamp import stamp

try:  # what numba's dispatcher itself keys its compiled versions by: ~0.2 us an argument
    from numba._dispatcher import compute_fingerprint as _fingerprint
except ImportError:  # pragma: no cover - another numba layout
    _fingerprint = typeof


@intrinsic
def _call(typingctx, fn, i, args):
    """Call the numba-compiled function at address ``fn`` with (i, *args);
    returns 1 where it raised (an allocation failed), else 0."""
    argtys = (types.int64,) + tuple(args.types)

    def codegen(context, builder, sig, llargs):
        f, i, tup = llargs
        values = [i] + [builder.extract_value(tup, k) for k in range(len(args.types))]
        fnty = context.call_conv.get_function_type(types.none, argtys)
        status, _ = context.call_conv.call_function(
            builder, builder.inttoptr(f, fnty.as_pointer()), types.none, argtys, values)
        return builder.zext(status.is_error, ir.IntType(64))
    return types.int64(fn, i, args), codegen


@njit(parallel=True, cache=True)
def _run(fn, n, args):
    failed = 0
    for i in prange(n):
        failed += _call(fn, i, args)
    return failed


_addresses = {}   # (body, argument fingerprints) -> address of its compiled code


def address(body, *args) -> int:
    """The address of ``body`` compiled for (int64, *the types of args), for
    :func:`call` (compiled once a process; from numba's cache where it is warm)."""
    key = (body,) + tuple(_fingerprint(a) for a in args)
    found = _addresses.get(key)
    if found is None:
        signature = (types.int64,) + tuple(typeof(a) for a in args)
        body.compile(signature)
        compiled = body.overloads[signature]
        found = compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)
        _addresses[key] = found
    return found


#: call(fn, i, args) inside an @njit function: fn(i, *args) for an address from
#: :func:`address`, with args of those types; 1 where it raised, else 0.  Unlike a
#: direct call, nothing is linked into the caller, so nothing compiles twice.
call = _call


def run_blocks(body, n, *args):
    """body(i, *args) for every i in range(n), in parallel: ``body`` is an
    ``@njit`` function whose calls must not write to the same memory."""
    if n > 0 and _run(address(body, *args), np.int64(n), args):
        raise MemoryError(f"{body.__name__} failed in a parallel block (out of memory)")


stamp(globals())  # the disk cache follows every kernel source
