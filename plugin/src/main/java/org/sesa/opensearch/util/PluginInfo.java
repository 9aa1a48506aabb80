package org.sesa.opensearch.util;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;

/** Plugin name and version as the build stamped them (filtered resource), for the info action and user agent. */
public final class PluginInfo {

    private static final Properties PROPS = load();

    private PluginInfo() {}

    private static Properties load() {
        Properties p = new Properties();
        try (InputStream in = PluginInfo.class.getResourceAsStream("/org/sesa/opensearch/plugin.properties")) {
            if (in != null) {
                p.load(in);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return p;
    }

    public static String name() {
        return PROPS.getProperty("name", SesaConventions.get().pluginName());
    }

    public static String version() {
        return PROPS.getProperty("version", "unknown");
    }
}
