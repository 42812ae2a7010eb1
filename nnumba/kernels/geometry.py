"""Window arithmetic shared by the layers and both kernel sets: the one place
for a convolution's or a pool's output size."""


def pair(value) -> tuple[int, int]:
    """(h, w) from an int or a pair."""
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def out_size(size: int, kernel: int, stride: int = 1, pad: int = 0) -> int:
    """floor((size + 2 pad - kernel) / stride) + 1: the lecture's H - h + 1 at stride 1."""
    return (size + 2 * pad - kernel) // stride + 1


def conv2d_output_shape(H, W, kernel, stride=1, pad=0) -> tuple[int, int]:
    """(Ho, Wo) of a convolution over H x W."""
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(pad)
    return out_size(H, kh, sh, ph), out_size(W, kw, sw, pw)


def conv2d_output_array_shape(x_shape, w_shape, stride=1, pad=0) -> tuple:
    """(N, D, Ho, Wo) of a convolution of x (N, C, H, W) by w (D, C, kh, kw)."""
    return (x_shape[0], w_shape[0]) + conv2d_output_shape(x_shape[2], x_shape[3], w_shape[2:],
                                                          stride, pad)


def pool2d_output_shape(H, W, kernel, stride=None) -> tuple[int, int]:
    """(Ho, Wo) of an unpadded pool over H x W; the stride defaults to the kernel."""
    return conv2d_output_shape(H, W, kernel, kernel if stride is None else stride, 0)
