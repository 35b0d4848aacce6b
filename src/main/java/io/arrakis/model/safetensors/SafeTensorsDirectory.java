package io.arrakis.model.safetensors;

import io.arrakis.json.Json;

import io.arrakis.torch.Tensor;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The weights of a model folder in the Hugging Face layout: either one {@code model.safetensors}, or the shards a
 * {@code model.safetensors.index.json} names ({@code {"metadata": {...}, "weight_map": {tensor: shard file}}}), seen as
 * one set of tensors.
 *
 * <p>{@link #open} opens (memory-maps) every file and checks that they agree: every shard name is a plain file name in
 * the folder, no tensor is in two shards, and every tensor of the weight map is in the shard it names. Tensors a shard
 * holds but the weight map omits are included. Folders with only PyTorch pickle checkpoints ({@code pytorch_model.bin},
 * {@code *.pt}, ...) are refused: unpickling can run arbitrary code.
 */
public final class SafeTensorsDirectory implements AutoCloseable {
    /** The single-file weights name. */
    public static final String SINGLE_FILE = "model.safetensors";
    /** The shard index name. */
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private final Path dir;
    private final List<SafeTensorsFile> files;
    private final Map<String, SafeTensorsFile> byName;
    private final Map<String, String> metadata;

    private SafeTensorsDirectory(Path dir, List<SafeTensorsFile> files, Map<String, SafeTensorsFile> byName,
                                 Map<String, String> metadata) {
        this.dir = dir;
        this.files = files;
        this.byName = byName;
        this.metadata = metadata;
    }

    /**
     * Opens the weights in {@code dir}: {@code model.safetensors} if present, else the shards of
     * {@code model.safetensors.index.json}.
     *
     * @throws SafeTensorsException if there are no safetensors weights (with a specific message when there are only
     *                              pickle checkpoints), or any file is invalid or inconsistent with the index
     */
    public static SafeTensorsDirectory open(Path dir) {
        return open(dir, null);
    }

    /**
     * Opens the weights in {@code dir} that {@code weightsFile} names, as transformers reads a config's
     * {@code transformers_weights} before the usual names: a {@code .safetensors} file, or a
     * {@code .safetensors.index.json} index of shards. Where it is null, as {@link #open(Path)}.
     *
     * @throws SafeTensorsException as {@link #open(Path)}, and if {@code weightsFile} is no plain file name of such a
     *                              kind, or no file in {@code dir}
     */
    public static SafeTensorsDirectory open(Path dir, String weightsFile) {
        if (!Files.isDirectory(dir)) {
            throw new SafeTensorsException(dir, Files.exists(dir) ? "not a directory" : "no such directory");
        }
        if (weightsFile == null) {
            Path single = dir.resolve(SINGLE_FILE);
            Path index = dir.resolve(INDEX_FILE);
            checkLink(single);
            checkLink(index);
            if (Files.exists(single)) {
                return openSingle(dir, single);
            }
            if (Files.exists(index)) {
                return openSharded(dir, index);
            }
            throw noWeights(dir);
        }
        String problem = fileNameProblem(weightsFile);
        if (problem == null && !weightsFile.endsWith(".safetensors") && !weightsFile.endsWith(".safetensors.index.json")) {
            problem = "is neither a .safetensors file nor a .safetensors.index.json index";
        }
        if (problem != null) {
            throw new SafeTensorsException(dir, "config.json's transformers_weights " + Json.quote(weightsFile) + " "
                    + problem);
        }
        Path named = dir.resolve(weightsFile);
        checkLink(named);
        if (!Files.isRegularFile(named)) {
            throw new SafeTensorsException(dir, "config.json's transformers_weights names " + Json.quote(weightsFile)
                    + ", which is not a file here");
        }
        return weightsFile.endsWith(".safetensors") ? openSingle(dir, named) : openSharded(dir, named);
    }

    private static void checkLink(Path weights) {
        if (Files.isSymbolicLink(weights) && !Files.exists(weights)) {
            throw new SafeTensorsException(weights, "a symbolic link to a file that does not exist (a download that did"
                    + " not finish, or a blob deleted?)");
        }
    }

    private static SafeTensorsDirectory openSingle(Path dir, Path file) {
        SafeTensorsFile f = SafeTensorsFile.open(file);
        Map<String, SafeTensorsFile> byName = new TreeMap<>();
        for (String name : f.names()) {
            byName.put(name, f);
        }
        return new SafeTensorsDirectory(dir, List.of(f), Collections.unmodifiableMap(byName), f.metadata());
    }

    private static SafeTensorsException noWeights(Path dir) {
        List<String> pickles = new ArrayList<>();
        List<String> safetensors = new ArrayList<>();
        List<String> gguf = new ArrayList<>();
        List<String> flaxOrTf = new ArrayList<>();
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
            for (Path p : entries) {
                String name = p.getFileName().toString();
                String lower = name.toLowerCase(Locale.ROOT);
                if (lower.endsWith(".bin") || lower.endsWith(".pt") || lower.endsWith(".pth") || lower.endsWith(".ckpt")
                        || lower.equals("pytorch_model.bin.index.json")) {
                    pickles.add(name);
                } else if (lower.endsWith(".safetensors")) {
                    safetensors.add(name);
                } else if (lower.endsWith(".gguf")) {
                    gguf.add(name);
                } else if (lower.endsWith(".msgpack") || lower.endsWith(".h5")) {
                    flaxOrTf.add(name);
                }
            }
        } catch (IOException e) {
            return new SafeTensorsException(dir, "cannot list the folder: " + e, e);
        }
        Collections.sort(pickles);
        Collections.sort(safetensors);
        String none = "no " + SINGLE_FILE + " or " + INDEX_FILE + " here, ";
        if (safetensors.contains("adapter_model.safetensors")) {
            return new SafeTensorsException(dir, none + "but a PEFT adapter " + safetensors + ", which needs its base"
                    + " model: merge it in Python (peft: model.merge_and_unload(), then save_pretrained)");
        }
        if (safetensors.stream().anyMatch(n -> n.matches(".*-\\d+-of-\\d+\\.safetensors"))) {
            return new SafeTensorsException(dir, none + "but shards " + safetensors + " without the index that names"
                    + " their tensors: fetch " + INDEX_FILE + " too");
        }
        if (!safetensors.isEmpty()) {
            return new SafeTensorsException(dir, none + "only " + safetensors + "; name the weights file in config.json's"
                    + " transformers_weights, as transformers reads it, or open it with SafeTensorsFile.open");
        }
        if (!pickles.isEmpty()) {
            return new SafeTensorsException(dir, "only PyTorch pickle checkpoints here " + pickles + ". arrakis-jvm does not"
                    + " load pickle files, because unpickling can run arbitrary code; it needs safetensors weights ("
                    + SINGLE_FILE + " or " + INDEX_FILE + "). Convert the model in Python, e.g."
                    + " model.save_pretrained(dir, safe_serialization=True), or download its safetensors files");
        }
        if (!gguf.isEmpty()) {
            return new SafeTensorsException(dir, none + "only GGUF " + gguf + ", which holds quantized weights: load it"
                    + " in Python (transformers: from_pretrained(dir, gguf_file=...)) and save_pretrained it");
        }
        if (!flaxOrTf.isEmpty()) {
            return new SafeTensorsException(dir, none + "only Flax or TensorFlow weights " + flaxOrTf + ": convert them"
                    + " in Python (transformers 4: from_pretrained(dir, from_flax=True or from_tf=True), then"
                    + " save_pretrained)");
        }
        return new SafeTensorsException(dir, "no model weights here: expected " + SINGLE_FILE + " or " + INDEX_FILE);
    }

    private static SafeTensorsDirectory openSharded(Path dir, Path index) {
        Map<String, String> shardOf = new LinkedHashMap<>();
        Map<String, String> metadata;
        try {
            Map<?, ?> root = readIndex(index);
            Object weightMapValue = root.get("weight_map");
            if (!(weightMapValue instanceof Map<?, ?> weightMap)) {
                throw new SafeTensorsException(index, "\"weight_map\" must be an object mapping tensor names to shard"
                        + " files, found " + SafeTensorsFile.describe(weightMapValue));
            }
            for (Map.Entry<?, ?> e : weightMap.entrySet()) {
                String tensor = (String) e.getKey();
                if (!(e.getValue() instanceof String shard)) {
                    throw new SafeTensorsException(index, "\"weight_map\" maps " + Json.quote(tensor) + " to "
                            + SafeTensorsFile.describe(e.getValue()) + ", expected a shard file name");
                }
                checkPlainFileName(index, tensor, shard);
                shardOf.put(tensor, shard);
            }
            metadata = indexMetadata(index, root.get("metadata"));
        } catch (OutOfMemoryError e) { // what reading it made is garbage once this is thrown
            throw SafeTensorsFile.tooLargeToParse(index, "the index", index.toFile().length(), e);
        }

        List<SafeTensorsFile> files = new ArrayList<>();
        try {
            Map<String, SafeTensorsFile> byName = new TreeMap<>();
            Map<String, SafeTensorsFile> shards = new TreeMap<>();
            for (String shard : new TreeSet<>(shardOf.values())) {
                Path path = dir.resolve(shard);
                checkLink(path);
                if (!Files.isRegularFile(path)) {
                    throw new SafeTensorsException(index, "names shard " + Json.quote(shard) + ", which is not a file in " + dir);
                }
                SafeTensorsFile f = SafeTensorsFile.open(path);
                files.add(f);
                shards.put(shard, f);
                for (String name : f.names()) {
                    SafeTensorsFile other = byName.putIfAbsent(name, f);
                    if (other != null) {
                        throw new SafeTensorsException(index, "tensor " + Json.quote(name) + " is in two shards, "
                                + other.path().getFileName() + " and " + shard);
                    }
                }
            }
            for (Map.Entry<String, String> e : shardOf.entrySet()) {
                if (!shards.get(e.getValue()).contains(e.getKey())) {
                    SafeTensorsFile actual = byName.get(e.getKey());
                    throw new SafeTensorsException(index, "\"weight_map\" puts tensor " + Json.quote(e.getKey()) + " in "
                            + e.getValue() + ", which does not hold it"
                            + (actual == null ? "" : " (it is in " + actual.path().getFileName() + ")"));
                }
            }
            return new SafeTensorsDirectory(dir, List.copyOf(files), Collections.unmodifiableMap(byName), metadata);
        } catch (RuntimeException | Error e) {
            for (SafeTensorsFile f : files) {
                f.close();
            }
            throw e;
        }
    }

    private static Map<?, ?> readIndex(Path index) {
        byte[] bytes;
        try {
            long size = Files.size(index);
            if (size > SafeTensorsFile.MAX_HEADER_BYTES) {
                throw new SafeTensorsException(index, "the index is " + size + " bytes, more than the limit of "
                        + SafeTensorsFile.MAX_HEADER_BYTES);
            }
            bytes = Files.readAllBytes(index);
        } catch (IOException e) {
            throw new SafeTensorsException(index, "cannot read: " + e, e);
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new SafeTensorsException(index, "not valid UTF-8: " + e, e);
        }
        Object root;
        try {
            root = Json.parse(text);
        } catch (Json.ParseException e) {
            throw new SafeTensorsException(index, e.getMessage(), e);
        }
        if (!(root instanceof Map<?, ?> map)) {
            throw new SafeTensorsException(index, "must be a JSON object, found " + SafeTensorsFile.describe(root));
        }
        return map;
    }

    /** The index's "metadata", values other than strings written as JSON (e.g. {@code "total_size": "12345"}). */
    private static Map<String, String> indexMetadata(Path index, Object value) {
        if (value == null) {
            return Map.of();
        }
        if (!(value instanceof Map<?, ?> map)) {
            throw new SafeTensorsException(index, "\"metadata\" must be an object, found " + SafeTensorsFile.describe(value));
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : map.entrySet()) {
            metadata.put((String) e.getKey(), e.getValue() instanceof String s ? s : Json.write(e.getValue()));
        }
        return Collections.unmodifiableMap(metadata);
    }

    /** Rejects shard names that could reach outside the folder: separators, "." and "..", absolute paths. */
    private static void checkPlainFileName(Path index, String tensor, String shard) {
        String problem = fileNameProblem(shard);
        if (problem != null) {
            throw new SafeTensorsException(index, "\"weight_map\" maps " + Json.quote(tensor) + " to shard " + Json.quote(shard)
                    + ", which " + problem + "; shards must be plain file names in the model folder");
        }
    }

    /** Why {@code name} is no plain file name of a folder (a separator, "." or "..", an absolute path), or null. */
    private static String fileNameProblem(String name) {
        if (name.isEmpty()) {
            return "is empty";
        }
        if (name.indexOf('/') >= 0 || name.indexOf('\\') >= 0) {
            return "contains a path separator";
        }
        if (name.equals(".") || name.equals("..")) {
            return "is not a file name";
        }
        try {
            Path p = Path.of(name);
            if (p.isAbsolute() || p.getNameCount() != 1 || !p.getFileName().toString().equals(name)) {
                return "is not a plain file name";
            }
        } catch (InvalidPathException e) {
            return "is not a valid file name (" + e.getReason() + ")";
        }
        return null;
    }

    /** The model folder. */
    public Path path() {
        return dir;
    }

    /** The safetensors files opened: {@code model.safetensors}, or the shards in name order. */
    public List<Path> files() {
        return files.stream().map(SafeTensorsFile::path).toList();
    }

    /** Every tensor name across the files, sorted. */
    public Set<String> names() {
        return byName.keySet();
    }

    /** Whether some file holds a tensor called {@code name}. */
    public boolean contains(String name) {
        return byName.containsKey(name);
    }

    /**
     * The single file's {@code "__metadata__"}, or for sharded weights the index's {@code "metadata"} (values that are
     * not strings in the index, such as {@code total_size}, written as JSON text).
     */
    public Map<String, String> metadata() {
        return metadata;
    }

    /**
     * Where and what tensor {@code name} is; {@link TensorInfo#offset()} is within {@link #fileOf}{@code (name)}.
     *
     * @throws SafeTensorsException if there is no such tensor
     */
    public TensorInfo info(String name) {
        return fileOf(name).info(name);
    }

    /**
     * The file holding tensor {@code name}.
     *
     * @throws SafeTensorsException if there is no such tensor
     */
    public SafeTensorsFile fileOf(String name) {
        SafeTensorsFile f = byName.get(name);
        if (f == null) {
            throw new SafeTensorsException(dir, "no tensor named " + Json.quote(String.valueOf(name)) + " in the weights ("
                    + byName.size() + " tensors in " + files.size() + " file" + (files.size() == 1 ? "" : "s") + ")");
        }
        return f;
    }

    /** Tensor {@code name}'s bytes, a read-only slice of its file's mapping; see {@link SafeTensorsFile#data}. */
    public MemorySegment data(String name) {
        return fileOf(name).data(name);
    }

    /** Tensor {@code name} as a new CPU tensor; see {@link SafeTensorsFile#tensor}. */
    public Tensor tensor(String name) {
        return fileOf(name).tensor(name);
    }

    /** Closes (unmaps) every file. Closing twice is harmless. */
    @Override
    public void close() {
        for (SafeTensorsFile f : files) {
            f.close();
        }
    }

    @Override
    public String toString() {
        return "SafeTensorsDirectory[" + dir + ", " + byName.size() + " tensors in " + files.size() + " file"
                + (files.size() == 1 ? "" : "s") + "]";
    }
}
