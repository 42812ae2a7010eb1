"""Parallel loops whose body numba compiles once: ``run_blocks(body, n, *args)``
calls ``body(i, *args)`` for i in range(n), spread over numba's threads.

A ``parallel=True`` kernel costs its body's compilation about four times over:
numba compiles the loop body as a function, links it into a gufunc wrapper, that
into a parallel launcher, and that into the kernel, and LLVM optimises and
generates machine code for the whole linked module at each level (the two-pass
max-pool took 3.8-4.4 s to compile as a parallel kernel, its body 1.1 s as a
plain function; docs/performance.md).  Here the body is an ordinary ``@njit``
function, compiled once, called through its address, as the GEMMs call OpenBLAS:
nothing is linked twice.

The parallel loop itself (:func:`_run`) is compiled once for every body and
argument type, since it takes only integers: the trampoline it calls and the
address of the arguments.  Per tuple of argument types there is one small serial
function (:func:`_enter`), which stores the arguments on its stack and defines the
trampoline that reads them back and calls the body.  (Compiled per argument types,
the parallel loop itself cost 0.45-0.7 s each, a quarter of the CNN's cold start.)
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


_I64 = ir.IntType(64)
_TRAMPOLINE = (types.int64, types.int64)  # (i, the address of (body, args))


def _call_address(context, builder, address, restype, argtys, values):
    """(status, value) of the numba-compiled function at ``address``."""
    fnty = context.call_conv.get_function_type(restype, argtys)
    return context.call_conv.call_function(
        builder, builder.inttoptr(address, fnty.as_pointer()), restype, argtys, values)


def _call_body(context, builder, body, i, args, argtys):
    """body(i, *args) for the body at address ``body``: 1 where it raised, else 0."""
    values = [i] + [builder.extract_value(args, k) for k in range(len(argtys) - 1)]
    status, _ = _call_address(context, builder, body, types.none, argtys, values)
    return builder.zext(status.is_error, _I64)


def _count_or_failed(context, builder, address, argtys, values):
    """The int64 the function at ``address`` returns, or 1 where it raised."""
    status, value = _call_address(context, builder, address, types.int64, argtys, values)
    return builder.select(status.is_error, ir.Constant(_I64, 1), value)


@intrinsic
def _call(typingctx, fn, i, args):
    """Call the numba-compiled function at address ``fn`` with (i, *args);
    returns 1 where it raised (an allocation failed), else 0."""
    argtys = (types.int64,) + tuple(args.types)

    def codegen(context, builder, sig, llargs):
        f, i, tup = llargs
        return _call_body(context, builder, f, i, tup, argtys)
    return types.int64(fn, i, args), codegen


@intrinsic
def _call_trampoline(typingctx, fn, i, ptr):
    """fn(i, ptr) for the trampoline at address fn: 1 where it failed, else 0."""
    def codegen(context, builder, sig, llargs):
        return _count_or_failed(context, builder, llargs[0], _TRAMPOLINE, list(llargs[1:]))
    return types.int64(fn, i, ptr), codegen


@njit(parallel=True, cache=True)
def _run(fn, n, ptr):
    failed = 0
    for i in prange(n):
        failed += _call_trampoline(fn, i, ptr)
    return failed


def _trampoline(context, module, packed, argtys):
    """An LLVM function (i, ptr) -> 0 or 1, internal to ``module``, in numba's calling
    convention: it loads (body, args) of LLVM type ``packed`` from ptr and calls
    body(i, *args).  No numba code: nothing takes or drops a reference."""
    fnty = context.call_conv.get_function_type(types.int64, _TRAMPOLINE)
    fn = ir.Function(module, fnty, name=module.get_unique_name("nnumba_blocks_trampoline"))
    fn.linkage = "internal"
    builder = ir.IRBuilder(fn.append_basic_block())
    i, ptr = context.call_conv.get_arguments(fn)
    both = builder.load(builder.inttoptr(ptr, packed.as_pointer()))
    body, args = builder.extract_value(both, 0), builder.extract_value(both, 1)
    context.call_conv.return_value(builder, _call_body(context, builder, body, i, args, argtys))
    return fn


@intrinsic
def _launch(typingctx, run, body, n, args):
    """run(trampoline, n, &(body, args)) for the parallel loop at address ``run``,
    the trampoline made here for these argument types: the number of failed blocks."""
    argtys = (types.int64,) + tuple(args.types)

    def codegen(context, builder, sig, llargs):
        r, b, count, a = llargs
        packed = ir.LiteralStructType([_I64, a.type])
        slot = builder.alloca(packed)  # lives until the loop has returned
        builder.store(builder.insert_value(builder.insert_value(
            ir.Constant(packed, ir.Undefined), b, 0), a, 1), slot)
        tramp = _trampoline(context, builder.module, packed, argtys)
        values = [builder.ptrtoint(tramp, _I64), count, builder.ptrtoint(slot, _I64)]
        return _count_or_failed(context, builder, r, (types.int64,) * 3, values)
    return types.int64(run, body, n, args), codegen


@njit(cache=True)
def _enter(run, body, n, args):
    return _launch(run, body, n, args)


_loop: list = []  # [the address of _run]


def _launcher() -> int:
    if not _loop:
        _run(0, 0, 0)  # compiled (int64 x 3), and numba's threads started, as by any kernel
        compiled = _run.overloads[(types.int64,) * 3]
        _loop.append(compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name))
    return _loop[0]


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
    if n > 0 and _enter(_launcher(), address(body, *args), np.int64(n), args):
        raise MemoryError(f"{body.__name__} failed in a parallel block: out of memory, or "
                          f"an exception of the body's own (numba passes no more back)")


stamp(globals())  # the disk cache follows every kernel source
