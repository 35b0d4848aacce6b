package io.arrakis.model.safetensors;

import java.nio.file.Path;

/**
 * A safetensors file, shard index or model folder that cannot be read or written as asked. The message names the file
 * and says what is wrong with it.
 */
public final class SafeTensorsException extends RuntimeException {
    private final transient Path file;

    /** {@code problem} with {@code file}; the message is {@code "<file>: <problem>"}. */
    public SafeTensorsException(Path file, String problem) {
        this(file, problem, null);
    }

    /** {@code problem} with {@code file}, caused by {@code cause}. */
    public SafeTensorsException(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
        this.file = file;
    }

    /** The file (or folder) the problem is with. */
    public Path file() {
        return file;
    }
}
