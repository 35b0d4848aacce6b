package io.arrakis.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * A Hugging Face hub cache folder made from a model folder, laid out as {@code huggingface_hub} downloads one:
 * {@code models--ORG--NAME/blobs/<sha256>} holds each file, {@code snapshots/<commit>/<file>} links to
 * {@code ../../blobs/<sha256>}, and {@code refs/main} holds the commit.
 */
public final class HubCacheLayout {
    /** The commit the snapshot is named after (any 40 hex digits). */
    public static final String COMMIT = "3f1c0e9d2b7a4c5e8f6a1b2c3d4e5f60718293a4";

    private HubCacheLayout() {
    }

    /** {@code cache/models--ORG--NAME} holding {@code files} (plain files, each copied once into blobs/). */
    public static Path build(Path cache, String repo, List<Path> files) throws IOException {
        Path folder = cache.resolve("models--" + repo.replace("/", "--"));
        Path snapshot = folder.resolve("snapshots").resolve(COMMIT);
        Files.createDirectories(snapshot);
        Files.createDirectories(folder.resolve("blobs"));
        Files.createDirectories(folder.resolve("refs"));
        for (Path file : files) {
            String blob = sha256(file);
            Files.copy(file, folder.resolve("blobs").resolve(blob));
            Files.createSymbolicLink(snapshot.resolve(file.getFileName().toString()), Path.of("..", "..", "blobs", blob));
        }
        Files.writeString(folder.resolve("refs").resolve("main"), COMMIT);
        return folder;
    }

    /** The plain files of {@code dir}. */
    public static List<Path> filesOf(Path dir) throws IOException {
        try (var entries = Files.list(dir)) {
            return entries.filter(Files::isRegularFile).sorted().toList();
        }
    }

    private static String sha256(Path file) throws IOException {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }
}
