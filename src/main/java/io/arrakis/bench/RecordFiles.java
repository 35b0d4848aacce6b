package io.arrakis.bench;

import io.arrakis.io.AtomicFiles;
import io.arrakis.json.Json;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/** The file side of {@link ExperimentLog}: experiment names, atomic writes, record files and temporary files. */
final class RecordFiles {
    private static final Pattern RECORD_FILE = Pattern.compile("[0-9a-f]{" + ExperimentLog.VERSION_LENGTH + "}\\.json");
    private static final int MAX_NAME_BYTES = 200;
    /** The file of an experiment's folder whose lock its writers take. */
    static final String LOCK_FILE = ".lock";
    /** This JVM's locks of folders, by the folder's hash: a file lock is held per process, not per thread. */
    private static final ReentrantLock[] FOLDER_LOCKS = java.util.stream.Stream.generate(ReentrantLock::new).limit(64)
            .toArray(ReentrantLock[]::new);

    private RecordFiles() {
    }

    /**
     * Runs {@code body} holding the lock of folder {@code dir}: a lock of this JVM and the lock of the folder's
     * {@value #LOCK_FILE} file, which other processes take too; so that a record's read, merge and write is not
     * interleaved with another writer's of the same folder. Where the file system has no locks (some network file
     * systems), or the lock file cannot be opened for writing (another user's), the lock of this JVM alone.
     */
    static <T> T locked(Path dir, Supplier<T> body) {
        Path folder;
        try {
            folder = dir.toRealPath(); // one lock however the folder is reached: links, letter case
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + dir + ": " + e, e);
        }
        ReentrantLock inThisJvm = FOLDER_LOCKS[Math.floorMod(folder.hashCode(), FOLDER_LOCKS.length)];
        inThisJvm.lock();
        try {
            FileChannel channel;
            try {
                channel = FileChannel.open(folder.resolve(LOCK_FILE), StandardOpenOption.CREATE,
                        StandardOpenOption.WRITE);
            } catch (IOException cannotOpen) {
                return body.get();
            }
            try (channel) {
                FileLock lock = lockOrNull(channel);
                try {
                    return body.get();
                } finally {
                    if (lock != null) {
                        lock.release();
                    }
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot unlock " + folder.resolve(LOCK_FILE) + ": " + e, e);
            }
        } finally {
            inThisJvm.unlock();
        }
    }

    /**
     * The lock of {@code channel}'s file, once no other channel of this JVM holds it (one opened through another
     * class loader's copy of this class); null where the file system has no locks.
     */
    private static FileLock lockOrNull(FileChannel channel) {
        while (true) {
            try {
                return channel.lock();
            } catch (java.nio.channels.OverlappingFileLockException heldInThisJvm) {
                LockSupport.parkNanos(1_000_000);
            } catch (IOException noLocks) {
                return null;
            }
        }
    }

    /**
     * Writes {@code bytes} to {@code file} so that readers see the old content or the new, never a mix: into
     * {@code .<file name>.<random>.tmp} in the same folder, forced to disk, then renamed over {@code file} with
     * {@code ATOMIC_MOVE}. On failure the temporary file is deleted and {@code file} is untouched.
     *
     * @param midWrite called with the temporary file when half of the bytes are in it (a test seam)
     */
    static void writeAtomically(Path file, byte[] bytes, Consumer<Path> midWrite) {
        try {
            AtomicFiles.write(file, (channel, temp) -> {
                int half = bytes.length / 2;
                AtomicFiles.writeFully(channel, ByteBuffer.wrap(bytes, 0, half));
                midWrite.accept(temp);
                AtomicFiles.writeFully(channel, ByteBuffer.wrap(bytes, half, bytes.length - half));
            });
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the experiment record " + file + ": " + e, e);
        }
    }

    /** The record files ({@code <version>.json}) in {@code dir}; none when it does not exist. */
    static List<Path> recordFiles(Path dir) {
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.filter(p -> RECORD_FILE.matcher(p.getFileName().toString()).matches()).toList();
        } catch (NoSuchFileException gone) {
            return List.of();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir + ": " + e, e);
        }
    }

    /** The record in {@code file}, or null when there is no such file. */
    static ExperimentRecord read(Path file) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException missing) {
            return null;
        } catch (CharacterCodingException e) {
            throw new IllegalStateException("not a valid experiment record: " + file + ": it is not UTF-8 text (it was"
                    + " edited or damaged)", e);
        } catch (IOException e) {
            if (Files.isDirectory(file)) {
                throw new IllegalStateException("not a valid experiment record: " + file + " is a folder", e);
            }
            throw new UncheckedIOException("cannot read the experiment record " + file + ": " + e, e);
        }
        return ExperimentRecord.parse(text, file);
    }

    /** Deletes the temporary files in {@code dir} last modified before {@code cutoff}; returns how many. */
    static int removeTempFiles(Path dir, Instant cutoff) {
        int removed = 0;
        try (Stream<Path> entries = Files.list(dir)) {
            for (Path p : entries.toList()) {
                String f = p.getFileName().toString();
                try {
                    if (f.startsWith(".") && f.endsWith(".tmp") && Files.isRegularFile(p)
                            && Files.getLastModifiedTime(p).toInstant().isBefore(cutoff) && Files.deleteIfExists(p)) {
                        removed++;
                    }
                } catch (NoSuchFileException gone) {
                    // renamed into place or removed meanwhile
                }
            }
        } catch (NoSuchFileException gone) {
            return removed;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot clean " + dir + ": " + e, e);
        }
        return removed;
    }

    static boolean isName(String name) {
        try {
            checkName(name);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    /** White space, no-break and zero-width spaces among them: a name that ends in one looks like the name without. */
    private static boolean blank(int c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == 0x200B || c == 0x2060 || c == 0xFEFF;
    }

    /** See {@link ExperimentLog#checkName(String)}. */
    static void checkName(String name) {
        Objects.requireNonNull(name, "experiment name");
        String problem = null;
        if (name.isEmpty()) {
            problem = "is empty";
        } else if (name.startsWith(".")) {
            problem = "starts with '.' (., .. and hidden names are not allowed)";
        } else if (name.getBytes(StandardCharsets.UTF_8).length > MAX_NAME_BYTES) {
            problem = "is longer than " + MAX_NAME_BYTES + " UTF-8 bytes";
        } else if (blank(name.codePointAt(0)) || blank(name.codePointBefore(name.length()))) {
            problem = "starts or ends with white space";
        } else {
            for (int i = 0; i < name.length() && problem == null; i++) {
                char c = name.charAt(i);
                if (c == '/' || c == '\\' || c == ':') {
                    problem = "contains '" + c + "' (names are single folder names)";
                } else if (Character.isISOControl(c)) {
                    problem = "contains the control character U+" + HexFormat.of().withUpperCase().toHexDigits(c);
                } else if (Character.isHighSurrogate(c) && i + 1 < name.length()
                        && Character.isLowSurrogate(name.charAt(i + 1))) {
                    i++; // a supplementary character, e.g. an emoji
                } else if (Character.isSurrogate(c)) {
                    problem = "contains an unpaired surrogate";
                }
            }
        }
        if (problem != null) {
            throw new IllegalArgumentException("experiment name "
                    + Json.quote(name.replaceAll("[\\p{Cntrl}\\p{Cs}]", "?")) + " " + problem);
        }
    }
}
