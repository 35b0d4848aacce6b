package io.arrakis.model.safetensors;

import io.arrakis.torch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Random damage to a valid file (bytes flipped in the header, truncation, bytes spliced in): opening and loading either
 * works or throws {@link SafeTensorsException}, nothing else.
 */
class SafeTensorsFuzzTest {
    @TempDir
    Path dir;

    @Test
    void damagedFilesFailOnlyWithSafeTensorsException() throws IOException {
        Path valid = dir.resolve("valid.safetensors");
        Map<String, Tensor> tensors = new TreeMap<>();
        tensors.put("a", Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3));
        tensors.put("b", Tensor.of(new long[] {7, 8}, 2));
        tensors.put("c", Tensor.of(new boolean[] {true}));
        SafeTensorsWriter.write(valid, tensors, Map.of("k", "v"));
        tensors.values().forEach(Tensor::close);
        byte[] original = Files.readAllBytes(valid);
        int headerEnd = 8 + (int) ByteBuffer.wrap(original).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        String punctuation = "{}[]\":,0123456789-.eE \\u";
        Random random = new Random(42);
        int opened = 0;
        int rejected = 0;
        for (int round = 0; round < 1200; round++) {
            byte[] b = original.clone();
            switch (round % 4) {
                case 0 -> { // a few header bytes replaced by JSON punctuation
                    for (int k = 0; k < 1 + random.nextInt(3); k++) {
                        b[8 + random.nextInt(headerEnd - 8)] = (byte) punctuation.charAt(random.nextInt(punctuation.length()));
                    }
                }
                case 1 -> b = Arrays.copyOf(b, random.nextInt(b.length)); // truncated
                case 2 -> b[random.nextInt(headerEnd)] = (byte) random.nextInt(256); // any byte, the length prefix included
                default -> { // a digit of the header changed (sizes, offsets)
                    int at = 8 + random.nextInt(headerEnd - 8);
                    while (!Character.isDigit(b[at]) && at < headerEnd - 1) {
                        at++;
                    }
                    b[at] = (byte) ('0' + random.nextInt(10));
                }
            }
            Path p = dir.resolve("damaged" + round + ".safetensors"); // a fresh file: rewriting a just-unmapped one is slow
            Files.write(p, b);
            try (SafeTensorsFile st = SafeTensorsFile.open(p)) {
                opened++;
                for (String name : st.names()) {
                    st.data(name);
                    try (Tensor t = st.tensor(name)) {
                        assertEquals(st.info(name).numel(), t.numel());
                    } catch (SafeTensorsException unloadable) {
                        assertTrue(unloadable.getMessage().contains("cannot load"), unloadable.getMessage());
                    }
                }
            } catch (SafeTensorsException expected) {
                rejected++;
            } catch (RuntimeException | Error e) {
                fail("round " + round + ": " + e, e);
            }
            Files.delete(p);
        }
        assertTrue(opened > 50 && rejected > 400, "opened " + opened + ", rejected " + rejected);
    }
}
