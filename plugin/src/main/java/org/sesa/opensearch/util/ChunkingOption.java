package org.sesa.opensearch.util;

import org.sesa.inference.v1.Chunking;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;

/**
 * The {@code chunking} option of a chunked encoding, {@code {"window_tokens": 0, "overlap_tokens": 32, "max_windows":
 * 64}}, with the same keys, defaults and rules wherever it is set: {@code sesa_encode}'s option and the {@code sesa_text}
 * mapping parameter. Every key is optional; unknown keys, non-integers and values out of range are refused with what is
 * allowed.
 */
public final class ChunkingOption {

    public static final String CHUNKING = "chunking";
    public static final String WINDOW_TOKENS = "window_tokens";
    public static final String OVERLAP_TOKENS = "overlap_tokens";
    public static final String MAX_WINDOWS = "max_windows";
    /** An index's chunking record for documents encoded whole ({@link #readRecord}). */
    public static final String OFF = "off";
    public static final int DEFAULT_OVERLAP_TOKENS = 32;
    public static final int DEFAULT_MAX_WINDOWS = 64;
    /** Limit of {@link #WINDOW_TOKENS} (the server clamps it to its passage window anyway). */
    public static final int MAX_WINDOW_TOKENS = 8192;
    /** Limit of {@link #MAX_WINDOWS}: every window is a vector in the document's nested field. */
    public static final int MAX_MAX_WINDOWS = 256;

    private ChunkingOption() {}

    /**
     * The option, or null when {@code raw} is null (chunking off).
     *
     * @param error makes the exception for a bad value from the property it concerns ({@code chunking} or
     *              {@code chunking.<key>}) and what is wrong with it
     */
    public static Chunking parse(Object raw, BiFunction<String, String, RuntimeException> error) {
        if (raw == null) {
            return null;
        }
        if (!(raw instanceof Map<?, ?> map)) {
            throw error.apply(
                CHUNKING,
                "must be an object such as {\"" + WINDOW_TOKENS + "\": 0, \"" + OVERLAP_TOKENS + "\": 32, \"" + MAX_WINDOWS + "\": 64}, got "
                    + describe(raw)
            );
        }
        for (Object key : map.keySet()) {
            if (List.of(WINDOW_TOKENS, OVERLAP_TOKENS, MAX_WINDOWS).contains(key) == false) {
                throw error.apply(CHUNKING, "has unknown key [" + key + "]: expected [" + WINDOW_TOKENS + ", " + OVERLAP_TOKENS + ", " + MAX_WINDOWS + "]");
            }
        }
        int window = integer(map, WINDOW_TOKENS, 0, error);
        int overlap = integer(map, OVERLAP_TOKENS, DEFAULT_OVERLAP_TOKENS, error);
        int maxWindows = integer(map, MAX_WINDOWS, DEFAULT_MAX_WINDOWS, error);
        if (window < 0 || window > MAX_WINDOW_TOKENS) {
            throw error.apply(
                CHUNKING + "." + WINDOW_TOKENS,
                "must be between 0 (the server's passage window) and " + MAX_WINDOW_TOKENS + ", got " + window
            );
        }
        if (overlap < 1) {
            throw error.apply(CHUNKING + "." + OVERLAP_TOKENS, "must be at least 1 (the server reads 0 as its default of 32), got " + overlap);
        }
        if (window > 0 && overlap * 2 > window) {
            throw error.apply(
                CHUNKING + "." + OVERLAP_TOKENS,
                "must be at most half of " + WINDOW_TOKENS + " [" + window + "] (the server would clamp it), got " + overlap
            );
        }
        if (maxWindows < 1 || maxWindows > MAX_MAX_WINDOWS) {
            throw error.apply(CHUNKING + "." + MAX_WINDOWS, "must be between 1 and " + MAX_MAX_WINDOWS + ", got " + maxWindows);
        }
        return Chunking.newBuilder().setWindowTokens(window).setOverlapTokens(overlap).setMaxWindows(maxWindows).build();
    }

    /** The option with every key set, as a mapping stores it: {@code {window_tokens, overlap_tokens, max_windows}}. */
    public static Map<String, Object> toMap(Chunking chunking) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put(WINDOW_TOKENS, chunking.getWindowTokens());
        m.put(OVERLAP_TOKENS, chunking.getOverlapTokens());
        m.put(MAX_WINDOWS, chunking.getMaxWindows());
        return m;
    }

    /**
     * Reads an index's chunking record ({@code _meta.sesa.chunking.<prefix>}, written when the index is created): the
     * option its documents were encoded with, read with the option's own rules, or null for {@link #OFF}.
     *
     * @throws IllegalArgumentException for a value that is neither
     */
    public static Chunking readRecord(Object raw) {
        if (OFF.equals(raw)) {
            return null;
        }
        if (raw instanceof Map<?, ?> == false) {
            throw new IllegalArgumentException("must be \"" + OFF + "\" or a chunking option such as {\"" + WINDOW_TOKENS + "\": 0}, got " + describe(raw));
        }
        return parse(raw, (where, what) -> new IllegalArgumentException("[" + where + "] " + what));
    }

    /** The option as a record and the messages show it: {@link #toMap} of it, or {@link #OFF} for null. */
    public static Object toRecord(Chunking chunking) {
        return chunking == null ? OFF : toMap(chunking);
    }

    private static int integer(Map<?, ?> map, String key, int defaultValue, BiFunction<String, String, RuntimeException> error) {
        Object v = map.get(key);
        if (v == null) {
            return defaultValue;
        }
        if (v instanceof Number n && (n instanceof Float || n instanceof Double) == false) {
            long l = n.longValue();
            if (l >= Integer.MIN_VALUE && l <= Integer.MAX_VALUE) {
                return (int) l;
            }
        }
        throw error.apply(CHUNKING + "." + key, "must be an integer, got " + describe(v));
    }

    private static String describe(Object value) {
        return value == null ? "null" : value.getClass().getSimpleName() + " [" + value + "]";
    }
}
