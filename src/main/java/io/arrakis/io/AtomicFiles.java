package io.arrakis.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Files written so that a reader sees the old content or the new, never a part: the bytes go to
 * {@code .<file name>.<random>.tmp} beside the file ({@code .<random>.tmp} where that name would be too long), are
 * forced to disk, and the temporary file is renamed over the
 * file with {@code ATOMIC_MOVE}, which is forced to disk too where the folder can be (POSIX systems). A file
 * replaced keeps its POSIX permissions where the file system takes them. On failure the temporary file is deleted and the file is untouched; a crash
 * can leave only a temporary file, which readers of the folder should ignore.
 */
public final class AtomicFiles {
    private static final int MAX_NAME_BYTES = 255;
    private static final int MAX_LINKS = 40; // Linux's limit when it resolves a path

    private AtomicFiles() {
    }

    /** What goes into the file: written to {@code channel}, an empty file at {@code temp}. */
    @FunctionalInterface
    public interface Content {
        void writeTo(FileChannel channel, Path temp) throws IOException;
    }

    /**
     * Writes {@code file} from {@code content} atomically; throws what writing, forcing or renaming threw. A symbolic
     * link is written through, as a shell's {@code >} does: the file it points to is replaced and the link kept.
     *
     * @throws IllegalArgumentException when {@code file} is a folder, or something other than a file (a device such as
     *                                  {@code /dev/null}, a named pipe, a socket)
     */
    public static void write(Path file, Content content) throws IOException {
        Path absolute = throughLinks(file.toAbsolutePath());
        if (absolute.getFileName() == null || Files.isDirectory(absolute)) {
            throw new IllegalArgumentException("cannot write " + (file.toString().isEmpty() ? "''" : file)
                    + ": it names a folder, not a file");
        }
        if (Files.exists(absolute) && !Files.isRegularFile(absolute)) {
            // renaming over a device or a pipe would replace it with a plain file
            throw new IllegalArgumentException("cannot write " + file + ": it is a device, pipe or socket, not a file;"
                    + " this write replaces a whole file, so name one");
        }
        String random = Long.toHexString(ThreadLocalRandom.current().nextLong());
        String tempName = "." + absolute.getFileName() + "." + random + ".tmp";
        // file systems take names of up to 255 bytes: a name near that keeps only the random part
        Path temp = absolute.resolveSibling(tempName.getBytes(StandardCharsets.UTF_8).length <= MAX_NAME_BYTES ? tempName
                : "." + random + ".tmp");
        try {
            try (FileChannel channel = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                keepPermissions(absolute, temp);
                content.writeTo(channel, temp);
                channel.force(true);
            }
            Files.move(temp, absolute, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            forceFolder(absolute.getParent());
        } finally {
            try {
                Files.deleteIfExists(temp);
            } catch (IOException ignored) {
                // the write failed already, or succeeded; a stray temporary file is ignored by readers
            }
        }
    }

    /**
     * Gives {@code temp} the permissions of {@code file}, where it exists and the file system has POSIX permissions;
     * where it refuses them (some mounted file systems), the file takes the default ones rather than fail the write.
     */
    private static void keepPermissions(Path file, Path temp) {
        try {
            if (Files.getFileStore(temp).supportsFileAttributeView(PosixFileAttributeView.class) && Files.exists(file)) {
                Files.setPosixFilePermissions(temp, Files.getPosixFilePermissions(file));
            }
        } catch (IOException | UnsupportedOperationException e) {
            // the content matters more than its mode
        }
    }

    /**
     * Forces the folder's entries to disk, so the rename outlives a crash; where a folder cannot be opened or forced
     * (Windows, some file systems), the rename is as durable as the file system makes it: it has happened either way.
     */
    private static void forceFolder(Path folder) {
        try (FileChannel channel = FileChannel.open(folder, StandardOpenOption.READ)) {
            channel.force(true);
        } catch (IOException | UnsupportedOperationException e) {
            // the file is in place; only the durability of its name is the file system's
        }
    }

    /** The file {@code path} ends at after its symbolic links, which need not exist yet. */
    private static Path throughLinks(Path path) throws IOException {
        for (int links = 0; Files.isSymbolicLink(path); links++) {
            if (links == MAX_LINKS) {
                throw new FileSystemException(path.toString(), null, "too many levels of symbolic links");
            }
            path = path.resolveSibling(Files.readSymbolicLink(path)).toAbsolutePath();
        }
        return path;
    }

    /** Writes all of {@code buffer} (a channel may take fewer bytes per call). */
    public static void writeFully(FileChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }
}
