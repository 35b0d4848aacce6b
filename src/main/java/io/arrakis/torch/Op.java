package io.arrakis.torch;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** An ATen operator overload, with its C strings made once for the life of the JVM. */
final class Op {
    final String name;
    final String overload;
    final MemorySegment nameSegment;
    final MemorySegment overloadSegment;

    private Op(String name, String overload) {
        this.name = name;
        this.overload = overload;
        this.nameSegment = Arena.global().allocateFrom(name);
        this.overloadSegment = Arena.global().allocateFrom(overload);
    }

    /** {@code aten::name.overload}; the overload is "" for the default one. */
    static Op of(String name, String overload) {
        return new Op(name, overload);
    }

    @Override
    public String toString() {
        return overload.isEmpty() ? name : name + "." + overload;
    }
}
