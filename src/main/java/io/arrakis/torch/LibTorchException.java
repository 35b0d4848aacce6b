package io.arrakis.torch;

/** libtorch could not be found or loaded; the message says what was looked for, where, and how to fix it. */
public final class LibTorchException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    LibTorchException(String message) {
        super(message);
    }

    LibTorchException(String message, Throwable cause) {
        super(message, cause);
    }
}
