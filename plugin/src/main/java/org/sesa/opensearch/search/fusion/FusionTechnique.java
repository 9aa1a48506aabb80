package org.sesa.opensearch.search.fusion;

import org.sesa.opensearch.util.KeyedEnum;

/** How {@code sesa_fuse} combines the branch rankings. */
public enum FusionTechnique implements KeyedEnum {
    /** Per-branch min-max normalisation (with a minimum range), then a weighted arithmetic mean. */
    MIN_MAX,
    /** Weighted reciprocal rank fusion: {@code sum_b w_b / (rank_constant + rank_b)}. */
    RRF;

    /** @throws IllegalArgumentException naming {@code what} when {@code value} is not a technique's name */
    public static FusionTechnique fromKey(String value, String what) {
        return KeyedEnum.fromKey(values(), value, what);
    }
}
