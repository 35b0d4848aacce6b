package io.arrakis.io;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;

/** Readable reasons for file errors, whose JDK messages are often the bare path. */
public final class IoErrors {
    private IoErrors() {
    }

    /**
     * What went wrong, naming the path involved: e.g. {@code permission denied on /proc/x} rather than {@code /proc/x}.
     *
     * @param e the failure
     * @return one phrase
     */
    public static String reason(IOException e) {
        return switch (e) {
            case AccessDeniedException a -> "permission denied on " + a.getFile();
            case FileAlreadyExistsException f -> f.getFile() + " already exists (a file where a folder is needed?)";
            case NoSuchFileException n -> "no such file or folder: " + n.getFile();
            case NotDirectoryException n -> n.getFile() + " is not a folder";
            case FileSystemException f when f.getReason() != null -> f.getMessage();
            case FileSystemException f -> f.getClass().getSimpleName() + " on " + f.getFile();
            default -> e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        };
    }
}
