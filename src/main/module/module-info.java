/**
 * arrakis-jvm: hooked transformer models with an activation cache, a bench for experiments and a composer for head
 * composition and path patching, over libtorch through the Foreign Function & Memory API. The generated bindings
 * ({@code io.arrakis.bindings}) stay inside; {@code io.arrakis.torch} is the tensor API over them. On the module path,
 * grant native access with {@code --enable-native-access=io.arrakis,ai.djl.tokenizers} (the tokenizers' library loads
 * its own native code).
 */
module io.arrakis {
    requires transitive java.desktop;            // heatmaps are Java 2D images, in the API too
    requires org.jfree.jfreechart;
    requires jtokkit;
    requires ai.djl.api;
    requires ai.djl.tokenizers;
    requires org.slf4j;                          // DJL logs through it; as automatic modules they cannot say so
    requires org.apache.commons.statistics.descriptive;
    requires org.apache.commons.statistics.distribution;
    requires com.fasterxml.jackson.core;

    exports io.arrakis;
    exports io.arrakis.torch;
    exports io.arrakis.model;
    exports io.arrakis.model.family;
    exports io.arrakis.model.safetensors;
    exports io.arrakis.text;
    exports io.arrakis.composer;
    exports io.arrakis.bench;
    exports io.arrakis.plot;
    exports io.arrakis.io;
    exports io.arrakis.json;
    exports io.arrakis.view;
}
