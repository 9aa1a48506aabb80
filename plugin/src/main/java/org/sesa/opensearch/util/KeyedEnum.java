package org.sesa.opensearch.util;

import java.util.Arrays;
import java.util.Locale;

/**
 * An enum whose constants are named in JSON and in processor settings by their lower-case name ({@code MIN_MAX} is
 * {@code "min_max"}), with the one lookup of a constant by that name.
 */
public interface KeyedEnum {

    /** The constant's Java name (every enum has it). */
    String name();

    /** The name used in JSON and settings ({@code ext.sesa}, {@code weights}, {@code fields._sesa}, ...). */
    default String key() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The constant among {@code values} whose {@link #key()} is {@code key}; null when there is none. */
    static <E extends KeyedEnum> E find(E[] values, String key) {
        for (E e : values) {
            if (e.key().equals(key)) {
                return e;
            }
        }
        return null;
    }

    /** The keys of {@code values} in their order, as {@code [a, b, c]}. */
    static String keys(KeyedEnum[] values) {
        return Arrays.stream(values).map(KeyedEnum::key).toList().toString();
    }

    /** @throws IllegalArgumentException {@code [what] must be one of [a, b], got [key]} when no constant has that key */
    static <E extends KeyedEnum> E fromKey(E[] values, String key, String what) {
        E found = find(values, key);
        if (found == null) {
            throw new IllegalArgumentException("[" + what + "] must be one of " + keys(values) + ", got [" + key + "]");
        }
        return found;
    }
}
