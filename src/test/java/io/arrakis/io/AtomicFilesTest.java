package io.arrakis.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AtomicFilesTest {
    private static void write(Path file, String text) throws IOException {
        AtomicFiles.write(file, (channel, temp) -> AtomicFiles.writeFully(channel,
                ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8))));
    }

    /** Were: a temporary named after nothing in the working folder ("/"), or in its parent (""), then a vague failure. */
    @Test
    void aPathThatNamesAFolderIsRefused(@TempDir Path dir) {
        for (Path folder : new Path[] {Path.of("/"), Path.of(""), dir}) {
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> AtomicFiles.write(folder, (channel, temp) -> channel.write(ByteBuffer.wrap(new byte[] {1}))));
            org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().endsWith("it names a folder, not a file"),
                    e.getMessage());
        }
    }

    /** Was: the temporary name added about 19 characters, so a name of 240 or more failed with "File name too long". */
    @Test
    void aNameNearTheFileSystemsLimitIsWrittenAndNothingIsLeftBeside(@TempDir Path dir) throws IOException {
        for (int length : new int[] {5, 250, 255}) {
            Path file = dir.resolve("x".repeat(length - 4) + ".png");
            write(file, "first");
            write(file, "second");
            assertEquals("second", Files.readString(file));
        }
        try (Stream<Path> entries = Files.list(dir)) {
            assertEquals(3, entries.count(), "no temporary file is left");
        }
    }

    /** Was: the link was replaced by a file, and the file it pointed to kept its old content. */
    @Test
    void aSymbolicLinkIsWrittenThrough(@TempDir Path dir) throws IOException {
        Path target = Files.createDirectories(dir.resolve("results")).resolve("view.html");
        write(target, "old");
        Path link = Files.createSymbolicLink(dir.resolve("latest.html"), Path.of("results", "view.html"));
        Path chained = Files.createSymbolicLink(dir.resolve("chained.html"), link);
        write(chained, "new");
        assertEquals("new", Files.readString(target));
        assertEquals(Path.of("results", "view.html"), Files.readSymbolicLink(link), "the links stay links");
        assertEquals(link, Files.readSymbolicLink(chained));
        Path dangling = Files.createSymbolicLink(dir.resolve("next.html"), Path.of("results", "next.html"));
        write(dangling, "made");
        assertEquals("made", Files.readString(dir.resolve("results").resolve("next.html")));
        Path loop = dir.resolve("loop");
        Files.createSymbolicLink(loop, loop);
        assertThrows(java.nio.file.FileSystemException.class, () -> write(loop, "x"));
        try (Stream<Path> entries = Files.list(dir.resolve("results"))) {
            assertEquals(2, entries.count(), "no temporary file is left");
        }
    }

    /** Was: the replacement took the umask's permissions, so a private file came back readable by all. */
    @Test
    void aReplacedFileKeepsItsPermissions(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("private.json");
        write(file, "first");
        Set<PosixFilePermission> owner = PosixFilePermissions.fromString("rw-------");
        Files.setPosixFilePermissions(file, owner);
        write(file, "second");
        assertEquals(owner, Files.getPosixFilePermissions(file));
        Set<PosixFilePermission> shared = PosixFilePermissions.fromString("rw-rw-r--");
        Files.setPosixFilePermissions(file, shared);
        Path link = Files.createSymbolicLink(dir.resolve("link.json"), file.getFileName());
        write(link, "third");
        assertEquals(shared, Files.getPosixFilePermissions(file));
        assertEquals("third", Files.readString(file));
    }

    /** Was: the rename replaced a named pipe (or, run as root, a device such as /dev/null) with a plain file. */
    @Test
    void somethingThatIsNoFileIsNotReplaced(@TempDir Path dir) throws Exception {
        Path pipe = dir.resolve("pipe");
        assertEquals(0, new ProcessBuilder("mkfifo", pipe.toString()).start().waitFor());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> write(pipe, "x"));
        assertTrue(e.getMessage().contains("is a device, pipe or socket"), e.getMessage());
        assertTrue(Files.exists(pipe) && !Files.isRegularFile(pipe));
    }
}
