package org.sesa.opensearch.util;

import org.opensearch.common.unit.TimeValue;
import org.opensearch.ingest.ConfigurationUtils;

import java.util.Map;

import static org.opensearch.ingest.ConfigurationUtils.newConfigurationException;

/** Option readers the ingest and the search processor factories share, with messages that name the option. */
public final class ProcessorConfigs {

    private ProcessorConfigs() {}

    /**
     * An optional positive time value ({@code null} when absent); {@code example} is what the message suggests,
     * e.g. "10s or 500ms".
     */
    public static TimeValue readTimeout(String type, String tag, Map<String, Object> config, String key, String example) {
        String text = ConfigurationUtils.readOptionalStringProperty(type, tag, config, key);
        if (text == null) {
            return null;
        }
        TimeValue t;
        try {
            t = TimeValue.parseTimeValue(text, key);
        } catch (IllegalArgumentException e) {
            throw newConfigurationException(type, tag, key, "must be a time value such as " + example + ", got [" + text + "]");
        }
        if (t.millis() <= 0) {
            throw newConfigurationException(type, tag, key, "must be positive, got [" + text + "]");
        }
        return t;
    }
}
