package org.sesa.opensearch.search.processor;

import org.opensearch.common.unit.TimeValue;
import org.opensearch.ingest.ConfigurationUtils;
import org.opensearch.search.pipeline.Processor;
import org.sesa.opensearch.util.ProcessorConfigs;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

import static org.opensearch.ingest.ConfigurationUtils.newConfigurationException;

/**
 * What the factories of the search processors ({@code sesa_query}, {@code sesa_fuse}, {@code sesa_rerank})
 * share: the {@link Processor.Factory} entry point, which needs only the tag, description, ignore_failure and the
 * config, and the readers of the config values they have in common. Every reader removes its key from the config
 * and reports a bad value as a configuration exception naming the processor type, tag and key.
 *
 * @param <T> the kind of processor the pipeline holds (request or response processor)
 * @param <P> the processor this factory makes
 */
abstract class AbstractSesaProcessorFactory<T extends Processor, P extends T> implements Processor.Factory<T> {

    /** Keys that more than one of the processors has, with the same meaning. */
    public static final String TEXT_FIELDS = "text_fields";
    public static final String TIMEOUT = "timeout";
    public static final String STRICT = "strict";

    /** The {@code text_fields} of {@code sesa_query} and {@code sesa_rerank} when the definition has none. */
    public static final List<String> DEFAULT_TEXT_FIELDS = List.of("title", "text");

    @Override
    public final P create(
        Map<String, Processor.Factory<T>> factories,
        String tag,
        String description,
        boolean ignoreFailure,
        Map<String, Object> config,
        Processor.PipelineContext pipelineContext
    ) {
        return newProcessor(tag, description, ignoreFailure, config);
    }

    /** Parses and validates {@code config} (removing what it reads) and builds the processor. */
    abstract P newProcessor(String tag, String description, boolean ignoreFailure, Map<String, Object> config);

    /** An int in {@code [min, max]}; {@code def} when absent. */
    static int readRange(String type, String tag, Map<String, Object> config, String key, int def, int min, int max) {
        int v = ConfigurationUtils.readIntProperty(type, tag, config, key, def);
        if (v < min || v > max) {
            throw newConfigurationException(type, tag, key, "must be between " + min + " and " + max + ", got " + v);
        }
        return v;
    }

    /** An optional positive time value; null when absent. */
    static TimeValue readTimeout(String type, String tag, Map<String, Object> config, String key) {
        return ProcessorConfigs.readTimeout(type, tag, config, key, "5s or 500ms");
    }

    /** A number (or a string that parses as one); {@code def} when absent. */
    static double readDouble(String type, String tag, Map<String, Object> config, String key, double def) {
        Object v = config.remove(key);
        if (v == null) {
            return def;
        }
        if (v instanceof Number n) {
            return n.doubleValue();
        }
        if (v instanceof String s) {
            try {
                return Double.parseDouble(s);
            } catch (NumberFormatException e) {
                // fall through
            }
        }
        throw newConfigurationException(type, tag, key, "must be a number, got [" + v + "]");
    }

    /**
     * A number in {@code [0, 1]} (or a string that parses as one); {@code def} when absent. Anything else, NaN
     * included, is a configuration exception saying the allowed range.
     */
    static double readUnitInterval(String type, String tag, Map<String, Object> config, String key, double def) {
        Object raw = config.remove(key);
        if (raw == null) {
            return def;
        }
        double v = Double.NaN;
        if (raw instanceof Number n) {
            v = n.doubleValue();
        } else if (raw instanceof String s) {
            try {
                v = Double.parseDouble(s.trim());
            } catch (NumberFormatException e) {
                // NaN: rejected below
            }
        }
        if (Double.isFinite(v) == false || v < 0 || v > 1) {
            throw newConfigurationException(type, tag, key, "must be a number between 0 and 1, got [" + raw + "]");
        }
        return v;
    }

    /**
     * A non-empty list of field names, each accepted by {@code valid}; {@code def} when absent.
     *
     * @param notAList  the message when the value is not a non-empty list
     * @param entryRule what an entry must be; the message for a bad entry is this plus {@code ", got [entry]"}
     */
    static List<String> readFieldNames(
        String type,
        String tag,
        Map<String, Object> config,
        String key,
        List<String> def,
        Predicate<String> valid,
        String notAList,
        String entryRule
    ) {
        Object raw = config.remove(key);
        if (raw == null) {
            return def;
        }
        if (!(raw instanceof List<?> list) || list.isEmpty()) {
            throw newConfigurationException(type, tag, key, notAList);
        }
        List<String> out = new ArrayList<>();
        for (Object o : list) {
            if (!(o instanceof String s) || valid.test(s) == false) {
                throw newConfigurationException(type, tag, key, entryRule + ", got [" + o + "]");
            }
            out.add(s);
        }
        return List.copyOf(out);
    }
}
