package io.arrakis.bench;

import java.util.Map;
import java.util.Objects;
import java.util.Set;

/** The tools an experiment declared with {@link BaseInterpretabilityBench#useTools}, by name. */
public final class Tools {
    private final Map<String, Object> tools;

    Tools(Map<String, Object> tools) {
        this.tools = Map.copyOf(tools);
    }

    /**
     * The tool {@code name} as a {@code type}.
     *
     * @throws IllegalArgumentException when the experiment did not declare that tool, or it is not a {@code type}
     */
    public <T> T get(String name, Class<T> type) {
        Objects.requireNonNull(name, "tool name");
        Objects.requireNonNull(type, "tool type");
        Object tool = tools.get(name);
        if (tool == null) {
            throw new IllegalArgumentException("tool '" + name + "' was not declared by this experiment; it declared "
                    + tools.keySet() + " (add it to useTools(...))");
        }
        if (!type.isInstance(tool)) {
            throw new IllegalArgumentException("tool '" + name + "' is a " + tool.getClass().getName() + ", not a "
                    + type.getName() + (type.isPrimitive() ? " (a primitive type holds no object: ask for its box)" : ""));
        }
        return type.cast(tool);
    }

    /** The declared tools' names. */
    public Set<String> names() {
        return tools.keySet();
    }
}
