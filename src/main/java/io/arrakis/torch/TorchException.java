package io.arrakis.torch;

/**
 * A libtorch operation failed. The message names the op and each argument's shape, dtype and device; libtorch's own
 * explanation goes to the process's standard error, since the 2.10 ABI has no call that returns it.
 */
public final class TorchException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    TorchException(String message) {
        super(message);
    }
}
