package io.arrakis.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Where a model's files are: a plain folder, or a Hugging Face hub cache folder ({@code models--ORG--NAME}, as
 * {@code huggingface_hub} downloads into {@code ~/.cache/huggingface/hub}), whose {@code refs/main} names the snapshot
 * {@code snapshots/<commit>} that holds the files as symbolic links into {@code blobs/}.
 */
public final class ModelFolder {
    /** The files of a folder a model's config and tokenizer are read from (its weights' reader checks their links). */
    private static final List<String> READ = List.of("config.json", "tokenizer.json");

    private ModelFolder() {
    }

    /**
     * The folder holding the model's files: the snapshot {@code refs/main} names when {@code dir} is a hub cache folder
     * (it has {@code snapshots/} and no {@code config.json} of its own), else {@code dir}. A path that is not a folder is returned as it is, for the caller
     * to refuse in its own words.
     *
     * @throws IllegalArgumentException when {@code refs/main} or the snapshot it names is missing, or the config or
     *                                  tokenizer is a symbolic link to nothing (a download that did not finish)
     */
    public static Path resolve(Path dir) {
        if (!Files.isDirectory(dir)) {
            return dir;
        }
        boolean hubCache = Files.isDirectory(dir.resolve("snapshots")) && !Files.exists(dir.resolve("config.json"));
        Path folder = hubCache ? snapshot(dir) : dir;
        checkLinks(folder);
        return folder;
    }

    private static Path snapshot(Path repo) {
        Path ref = repo.resolve("refs").resolve("main");
        if (!Files.isRegularFile(ref)) {
            throw new IllegalArgumentException(repo + " looks like a Hugging Face hub cache folder (it has snapshots/)"
                    + " but " + (Files.exists(ref) ? "its refs/main is no file" : "has no refs/main")
                    + " to name its snapshot; pass a snapshot folder itself, one of "
                    + list(repo.resolve("snapshots")));
        }
        String commit;
        try {
            byte[] bytes = Files.readAllBytes(ref);
            // as many characters as the file has bytes, whatever they are: a hash is ASCII
            commit = new String(bytes, java.nio.charset.StandardCharsets.ISO_8859_1).strip();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + ref, e);
        }
        if (!commit.matches("[0-9A-Za-z_-]{1,256}")) { // a folder name: no path may escape snapshots/
            String shown = commit.length() > 80 ? commit.substring(0, 80) + "..." : commit;
            throw new IllegalArgumentException(ref + " should hold a commit hash, got '" + shown + "'");
        }
        Path snapshot = repo.resolve("snapshots").resolve(commit);
        if (!Files.isDirectory(snapshot)) {
            throw new IllegalArgumentException(ref + " names snapshot " + commit + ", but " + snapshot + " is "
                    + (Files.exists(snapshot) ? "no folder" : "missing") + "; the snapshots there: "
                    + list(repo.resolve("snapshots")));
        }
        return snapshot;
    }

    /**
     * Refuses a link to nothing among the files read here; others (a pickle checkpoint whose blob was deleted to save
     * room) do not matter, as to transformers.
     */
    private static void checkLinks(Path folder) {
        for (String name : READ) {
            Path entry = folder.resolve(name);
            if (Files.isSymbolicLink(entry) && !Files.exists(entry)) {
                try {
                    throw new IllegalArgumentException(entry + " is a symbolic link to " + Files.readSymbolicLink(entry)
                            + ", which does not exist (a download that did not finish, or a blob deleted?)");
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot read the link " + entry, e);
                }
            }
        }
    }

    private static List<String> list(Path dir) {
        try (var entries = Files.list(dir)) {
            return entries.map(p -> p.getFileName().toString()).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + dir, e);
        }
    }
}
