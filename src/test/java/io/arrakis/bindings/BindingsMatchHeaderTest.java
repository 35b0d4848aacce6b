package io.arrakis.bindings;

import org.junit.jupiter.api.Test;

import java.lang.foreign.AddressLayout;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The committed bindings must be what jextract makes of native/include/arrakis_torch.h: every function the header
 * declares has a binding whose descriptor matches the declared C types, and there is no binding the header lacks.
 * A header edit without regeneration fails here, without needing jextract.
 */
class BindingsMatchHeaderTest {
    private static final Path HEADER = Path.of("native/include/arrakis_torch.h");
    private static final Pattern DECLARATION =
            Pattern.compile("^([A-Za-z_][A-Za-z0-9_ *]*?)\\s*\\b([A-Za-z_][A-Za-z0-9_]*)\\((.*)\\);$");

    /** What each C type of the header is in the System V x86-64 ABI, as a Java carrier and a size. */
    private static Optional<MemoryLayout> layoutOf(String cType) {
        String t = cType.replace("const ", "").trim();
        if (t.endsWith("*") || t.equals("AtenTensorHandle") || t.equals("StableListHandle") || t.equals("StringHandle")) {
            return Optional.of(ValueLayout.ADDRESS);
        }
        return switch (t) {
            case "void" -> Optional.empty();
            case "AOTITorchError", "int32_t", "uint32_t" -> Optional.of(ValueLayout.JAVA_INT);
            case "int64_t", "uint64_t", "size_t", "StableIValue" -> Optional.of(ValueLayout.JAVA_LONG);
            case "double" -> Optional.of(ValueLayout.JAVA_DOUBLE);
            case "bool" -> Optional.of(ValueLayout.JAVA_BOOLEAN);
            default -> throw new AssertionError("the header uses C type '" + cType + "', which this test does not map;"
                    + " add it here with its ABI layout");
        };
    }

    private static Map<String, FunctionDescriptor> declaredFunctions() throws Exception {
        Map<String, FunctionDescriptor> functions = new LinkedHashMap<>();
        for (String line : Files.readAllLines(HEADER)) {
            String l = line.trim();
            if (l.startsWith("typedef") || l.startsWith("#") || l.startsWith("/*") || l.startsWith("*") || !l.endsWith(");")) {
                continue;
            }
            Matcher m = DECLARATION.matcher(l);
            assertTrue(m.matches(), "cannot read declaration (keep one per line): " + l);
            String returnType = m.group(1);
            List<MemoryLayout> params = new ArrayList<>();
            String args = m.group(3).trim();
            if (!args.equals("void") && !args.isEmpty()) {
                for (String arg : args.split(",")) {
                    String a = arg.trim();
                    // drop the parameter name: the type is everything before the last identifier
                    String type = a.replaceFirst("\\s*\\b[A-Za-z_][A-Za-z0-9_]*$", "");
                    if (type.endsWith("*") || a.contains("*")) {
                        type = a.substring(0, a.lastIndexOf('*') + 1);
                    }
                    params.add(layoutOf(type).orElseThrow());
                }
            }
            MemoryLayout[] p = params.toArray(MemoryLayout[]::new);
            functions.put(m.group(2), layoutOf(returnType).map(r -> FunctionDescriptor.of(r, p))
                    .orElseGet(() -> FunctionDescriptor.ofVoid(p)));
        }
        return functions;
    }

    private static final Path BINDINGS = Path.of("bindings/io/arrakis/bindings/arrakis_torch_h.java");
    /** A generated holder: {@code private static class NAME { ... DESC = FunctionDescriptor.of(...); ...}}. */
    private static final Pattern HOLDER = Pattern.compile(
            "private static class (\\w+) \\{\\s*public static final FunctionDescriptor DESC = FunctionDescriptor\\.(of|ofVoid)\\(([^;]*)\\);");

    /**
     * The descriptors of the committed bindings, read from their source: reading them through the classes would make
     * each binding look its symbol up, and the CUDA-only ones are absent from a CPU libtorch.
     */
    private static Map<String, String> generatedDescriptors() throws Exception {
        Map<String, String> descriptors = new LinkedHashMap<>();
        Matcher m = HOLDER.matcher(Files.readString(BINDINGS));
        while (m.find()) {
            List<String> layouts = new ArrayList<>();
            for (String token : m.group(3).split(",")) {
                String t = token.trim();
                if (!t.isEmpty()) {
                    layouts.add(switch (t.replace("arrakis_torch_h.", "")) {
                        case "C_INT" -> "int/4";
                        case "C_LONG", "C_LONG_LONG" -> "long/8";
                        case "C_DOUBLE" -> "double/8";
                        case "C_BOOL" -> "boolean/1";
                        case "C_POINTER" -> "MemorySegment/8";
                        default -> throw new AssertionError("unexpected layout " + t + " in the binding of " + m.group(1));
                    });
                }
            }
            String ret = m.group(2).equals("of") ? layouts.remove(0) : "void";
            descriptors.put(m.group(1), "(" + String.join(" ", layouts) + ")" + ret);
        }
        return descriptors;
    }

    private static String shape(MemoryLayout layout) {
        Class<?> carrier = layout instanceof AddressLayout ? java.lang.foreign.MemorySegment.class
                : ((ValueLayout) layout).carrier();
        return carrier.getSimpleName() + "/" + layout.byteSize();
    }

    private static String shape(FunctionDescriptor d) {
        List<String> args = d.argumentLayouts().stream().map(BindingsMatchHeaderTest::shape).toList();
        return "(" + String.join(" ", args) + ")" + d.returnLayout().map(BindingsMatchHeaderTest::shape).orElse("void");
    }

    @Test
    void everyDeclaredFunctionHasAMatchingBinding() throws Exception {
        Map<String, FunctionDescriptor> declared = declaredFunctions();
        Map<String, String> generated = generatedDescriptors();
        assertTrue(declared.size() > 40, "the header declares " + declared.size() + " functions; expected the full subset");
        List<String> problems = new ArrayList<>();
        for (Map.Entry<String, FunctionDescriptor> e : declared.entrySet()) {
            String binding = generated.get(e.getKey());
            if (binding == null) {
                problems.add(e.getKey() + ": declared in the header but has no binding");
            } else if (!binding.equals(shape(e.getValue()))) {
                problems.add(e.getKey() + ": header says " + shape(e.getValue()) + ", binding has " + binding);
            }
        }
        if (!problems.isEmpty()) {
            fail("bindings/ is out of date with " + HEADER + "; run scripts/generate-bindings.sh:\n  "
                    + String.join("\n  ", problems));
        }
    }

    @Test
    void noBindingWithoutADeclaration() throws Exception {
        TreeSet<String> extra = new TreeSet<>(generatedDescriptors().keySet());
        extra.removeAll(declaredFunctions().keySet());
        assertEquals(new TreeSet<>(), extra, "bindings for functions the header no longer declares; regenerate bindings/");
    }

    @Test
    void everyBindingIsAPublicMethodOfTheHeaderClass() throws Exception {
        for (String name : declaredFunctions().keySet()) {
            boolean found = false;
            for (Method m : arrakis_torch_h.class.getMethods()) {
                found |= m.getName().equals(name) && Modifier.isStatic(m.getModifiers());
            }
            assertTrue(found, "no public static method " + name + " in arrakis_torch_h");
        }
    }
}
