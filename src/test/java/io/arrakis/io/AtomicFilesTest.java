package io.arrakis.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

class AtomicFilesTest {
    private static void write(Path file, String text) throws IOException {
        AtomicFiles.write(file, (channel, temp) -> AtomicFiles.writeFully(channel,
                ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8))));
    }

    /** Was: the temporary name added about 19 characters, so a name of 240 or more failed with "File name too long". */
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
}
