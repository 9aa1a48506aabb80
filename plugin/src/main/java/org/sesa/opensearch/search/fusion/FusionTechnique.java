package org.sesa.opensearch.search.fusion;

import org.sesa.opensearch.util.KeyedEnum;

/** How {@code sesa_fuse} combines the branch rankings ({@link ScoreFusion} has the rules). */
public enum FusionTechnique implements KeyedEnum {
    /** Per-branch min-max normalisation (with a minimum range), then a weighted arithmetic mean. */
    MIN_MAX,
    /** Weighted reciprocal rank fusion: {@code sum_b w_b / (rank_constant + rank_b)}. */
    RRF,
    /**
     * Per-branch {@code (s - min) / sd} (the window's population standard deviation; 1 when it is 0), then the same
     * weighted arithmetic mean as min_max. The default of {@code sesa_fuse}. Last because {@code SesaSearchExt} sends
     * the ordinal between nodes: the older constants keep theirs.
     */
    Z_SCORE;

    /** The order messages and docs list the techniques in, as {@code ir/fusion.py}'s {@code TECHNIQUES}. */
    private static final FusionTechnique[] LISTED = { MIN_MAX, Z_SCORE, RRF };

    /** The techniques' keys as messages list them: {@code [min_max, z_score, rrf]}. */
    public static String keys() {
        return KeyedEnum.keys(LISTED);
    }

    /** @throws IllegalArgumentException naming {@code what} and {@link #keys()} when {@code value} is not a technique's name */
    public static FusionTechnique fromKey(String value, String what) {
        return KeyedEnum.fromKey(LISTED, value, what);
    }
}
