package io.arrakis;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;

/**
 * The version of arrakis-jvm itself, as the build stamped it.
 *
 * <p>Maven writes the project version into the resource {@code io/arrakis/version.properties} (resource filtering,
 * see {@code pom.xml}), so the version is known both from the jar and from {@code target/classes}, unlike the jar
 * manifest's {@code Implementation-Version}, which only a packaged jar has.
 */
public final class Version {
    /** What {@link #get()} says when the resource is missing or was not filtered (a build outside Maven). */
    public static final String UNKNOWN = "unknown";

    private static final String VERSION = read();

    private Version() {
    }

    /**
     * The project version, e.g. {@code "0.1.0-SNAPSHOT"}, or {@link #UNKNOWN}.
     *
     * @return the version string
     */
    public static String get() {
        return VERSION;
    }

    private static String read() {
        try (InputStream in = Version.class.getResourceAsStream("version.properties")) {
            if (in == null) {
                return UNKNOWN;
            }
            Properties p = new Properties();
            p.load(in);
            String v = p.getProperty("version", "").strip();
            return v.isEmpty() || v.contains("${") ? UNKNOWN : v;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read io/arrakis/version.properties", e);
        }
    }
}
