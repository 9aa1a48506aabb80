package org.sesa.opensearch.search.fusion;

import java.util.Locale;

/** How {@code sesa_fuse} combines the branch rankings. */
public enum FusionTechnique {
    /** Per-branch min-max normalisation (with a minimum range), then a weighted arithmetic mean. */
    MIN_MAX,
    /** Weighted reciprocal rank fusion: {@code sum_b w_b / (rank_constant + rank_b)}. */
    RRF;

    public String key() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static FusionTechnique fromKey(String value, String what) {
        for (FusionTechnique t : values()) {
            if (t.key().equals(value)) {
                return t;
            }
        }
        throw new IllegalArgumentException("[" + what + "] must be one of [min_max, rrf], got [" + value + "]");
    }
}
